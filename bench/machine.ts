// The machine and the versions a result was measured with.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from '../tests/helpers/cluster';

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryBytes: number;
  os: string;
  node: string;
  etcdVersion: string;
  skiffVersion: string;
  skiffCommit: string;
  /** Whether the working tree had changes not committed (the measured code is then not exactly skiffCommit). */
  skiffDirty: boolean;
  /** 1, 5 and 15 minute load averages at the start and at the end: other work on the machine shows here. */
  loadAverageStart: number[];
  loadAverageEnd: number[];
}

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], cwd: repoRoot }).trim();
  } catch {
    return '';
  }
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  const etcd = /etcd Version:\s*(\S+)/.exec(run('etcd', ['--version']));
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryBytes: os.totalmem(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    etcdVersion: etcd ? etcd[1] : 'unknown',
    skiffVersion: pkg.version,
    skiffCommit: run('git', ['rev-parse', 'HEAD']) || 'unknown',
    skiffDirty: run('git', ['status', '--porcelain', '--untracked-files=no']) !== '',
    loadAverageStart: os.loadavg(),
    loadAverageEnd: [],
  };
}
