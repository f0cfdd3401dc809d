// `skiff cluster up` as a user runs it (the README's `npm start`): three members on etcd's
// local ports, etcdctl against all of them, each member started with the launch settings of
// src/cli/member-process.ts, and Ctrl-C stopping every member.

import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { localMemberPorts } from '../../src/cli/commands/cluster';
import { memberMallocEnv, memberNodeFlags } from '../../src/cli/member-process';
import { canBind } from '../../src/chaos/ports';
import { etcdctl, requireBuild, requireTool, skiffBin } from '../helpers/cluster';
import { waitFor } from '../helpers/store-client';

let up: ChildProcess | undefined;
let memberPids: number[] = [];
let dir: string | undefined;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

afterAll(() => {
  for (const pid of [up?.pid, ...memberPids]) {
    if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
  }
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
});

describe('skiff cluster up', () => {
  test('serves etcdctl on 2379, 22379 and 32379, and Ctrl-C stops every member', async () => {
    requireBuild();
    if (!requireTool('etcdctl', 'apt-get install etcd-client')) return;
    const ports = [0, 1, 2].map(localMemberPorts);
    for (const p of ports.flatMap((m) => [m.clientPort, m.peerPort, m.metricsPort])) {
      if (!(await canBind(p))) throw new Error(`port ${p} is taken: skiff cluster up needs etcd's local ports (is a cluster already running?)`);
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-cluster-up-'));
    const proc = spawn(process.execPath, [skiffBin, 'cluster', 'up', `--data-dir=${path.join(dir, 'data')}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    up = proc;
    let out = '';
    proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    await waitFor(
      'the cluster to be up',
      async () => {
        if (proc.exitCode !== null) throw new Error(`skiff cluster up exited with ${proc.exitCode}:\n${out}`);
        return out.includes('Ctrl-C stops the members.') ? true : undefined;
      },
      { timeoutMs: 40_000 },
    );
    memberPids = [...out.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1]));
    expect(memberPids).toHaveLength(3);

    const endpoints = ports.map((p) => `127.0.0.1:${p.clientPort}`).join(',');
    etcdctl(`127.0.0.1:${ports[0].clientPort}`, ['put', 'greeting', 'hello']);
    for (const p of ports) {
      expect(etcdctl(`127.0.0.1:${p.clientPort}`, ['get', 'greeting', '--print-value-only']).trim()).toBe('hello');
    }
    const status = JSON.parse(etcdctl(endpoints, ['endpoint', 'status', '-w', 'json'])) as { Status: { leader: string | number; header: { member_id: string | number } } }[];
    expect(status).toHaveLength(3);
    expect(new Set(status.map((s) => String(s.Status.leader))).size).toBe(1);

    for (const pid of memberPids) {
      const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      for (const f of memberNodeFlags) expect(args).toContain(f);
      expect(args).toContain('store');
      const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      for (const [k, v] of Object.entries(memberMallocEnv)) expect(env).toContain(`${k}=${v}`);
    }

    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.kill('SIGINT');
    expect(await exited).toBe(0);
    await waitFor('every member to exit', async () => (memberPids.some(alive) ? undefined : true), { timeoutMs: 10_000 });
  }, 90_000);
});
