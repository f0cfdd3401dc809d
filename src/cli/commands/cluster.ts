// `skiff cluster up`: a local highly available store of N members (default 3) on
// 127.0.0.1, each a `skiff store` child process, with etcd's conventional local ports
// (clients 2379, 22379, 32379; peers 2380, 22380, 32380). Runs in the foreground;
// Ctrl-C (or SIGTERM) stops every member by pid.

import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { memberProcess } from '../member-process';

interface ClusterArgs {
  members: number;
  'data-dir': string;
  'log-level': string;
}

interface LocalMember {
  name: string;
  clientPort: number;
  peerPort: number;
  metricsPort: number;
  proc?: ChildProcess;
}

/** etcd's Procfile ports: member i (0-based) gets 2379 + 20000*i for clients, +1 for peers. */
export function localMemberPorts(i: number): { clientPort: number; peerPort: number; metricsPort: number } {
  const base = 2379 + 10000 * (i === 0 ? 0 : i + 1);
  return { clientPort: base, peerPort: base + 1, metricsPort: base + 2 };
}


async function waitHealthy(m: LocalMember, deadlineMs: number): Promise<boolean> {
  while (Date.now() < deadlineMs) {
    if (m.proc?.exitCode !== null && m.proc?.exitCode !== undefined) return false;
    try {
      const res = await fetch(`http://127.0.0.1:${m.metricsPort}/health`);
      if (res.status === 200) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

export const clusterCommand: CommandModule<object, ClusterArgs> = {
  command: 'cluster up',
  describe: 'Run a local highly available store (N `skiff store` members on 127.0.0.1)',
  builder: (y: Argv) =>
    y
      .option('members', { type: 'number', default: 3, describe: 'Number of members (1, 3 or 5)' })
      .option('data-dir', { type: 'string', default: 'skiff-data', describe: 'Directory for the members\' data (one subdirectory each)' })
      .option('log-level', { type: 'string', default: 'warn', describe: 'Log level of the members (their logs go to <data-dir>/<name>.log)' }) as unknown as Argv<ClusterArgs>,
  handler: async (args) => {
    const n = args.members;
    if (![1, 3, 5].includes(n)) {
      process.stderr.write('skiff cluster up: --members must be 1, 3 or 5\n');
      process.exitCode = 1;
      return;
    }
    const dataDir = path.resolve(args['data-dir']);
    fs.mkdirSync(dataDir, { recursive: true });
    const members: LocalMember[] = Array.from({ length: n }, (_, i) => ({ name: `skiff${i + 1}`, ...localMemberPorts(i) }));
    const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
    for (const m of members) {
      const memberDir = path.join(dataDir, m.name);
      // An existing data directory restarts the member from disk (initial flags are then ignored).
      const log = fs.openSync(path.join(dataDir, `${m.name}.log`), 'a');
      const launch = memberProcess([
        `--name=${m.name}`,
        `--data-dir=${memberDir}`,
        `--listen-client-urls=http://127.0.0.1:${m.clientPort}`,
        `--advertise-client-urls=http://127.0.0.1:${m.clientPort}`,
        `--listen-peer-urls=http://127.0.0.1:${m.peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${m.peerPort}`,
        `--initial-cluster=${initialCluster}`,
        '--initial-cluster-token=skiff-local',
        `--listen-metrics-urls=http://127.0.0.1:${m.metricsPort}`,
        `--log-level=${args['log-level']}`,
      ]);
      m.proc = spawn(launch.command, launch.args, { stdio: ['ignore', log, log], env: launch.env });
      fs.closeSync(log);
    }
    let stopping = false;
    const stopAll = async (): Promise<void> => {
      if (stopping) return;
      stopping = true;
      process.stdout.write('\nstopping members...\n');
      await Promise.all(
        members.map(
          (m) =>
            new Promise<void>((resolve) => {
              const p = m.proc;
              if (!p || p.exitCode !== null || p.signalCode !== null) return resolve();
              const t = setTimeout(() => p.kill('SIGKILL'), 5000);
              p.once('exit', () => {
                clearTimeout(t);
                resolve();
              });
              p.kill('SIGTERM');
            }),
        ),
      );
    };
    process.on('SIGINT', () => void stopAll().then(() => process.exit(0)));
    process.on('SIGTERM', () => void stopAll().then(() => process.exit(0)));
    const deadline = Date.now() + 30_000;
    const healthy = await Promise.all(members.map((m) => waitHealthy(m, deadline)));
    if (healthy.some((h) => !h)) {
      process.stderr.write(`skiff cluster up: members did not become healthy; see the logs in ${dataDir}\n`);
      await stopAll();
      process.exitCode = 1;
      return;
    }
    const endpoints = members.map((m) => `127.0.0.1:${m.clientPort}`).join(',');
    process.stdout.write(
      [
        `skiff: ${n}-member store running (data in ${dataDir})`,
        ...members.map((m) => `  ${m.name}: client http://127.0.0.1:${m.clientPort}  peer http://127.0.0.1:${m.peerPort}  metrics http://127.0.0.1:${m.metricsPort}/metrics (pid ${m.proc?.pid})`),
        '',
        'Try:',
        `  ETCDCTL_API=3 etcdctl --endpoints=${endpoints} put hello world`,
        `  ETCDCTL_API=3 etcdctl --endpoints=${endpoints} get hello`,
        `  ETCDCTL_API=3 etcdctl --endpoints=${endpoints} endpoint status -w table`,
        '',
        'Ctrl-C stops the members.',
        '',
      ].join('\n'),
    );
    // Stay up while the members run; if one exits, say so (it can be restarted from its data).
    for (const m of members) {
      m.proc?.once('exit', (code, signal) => {
        if (!stopping) process.stderr.write(`member ${m.name} exited (${signal ?? code}); see ${path.join(dataDir, `${m.name}.log`)}\n`);
      });
    }
    await new Promise<void>(() => undefined);
  },
};
