// Starting the clusters to measure, through the test harness (tests/helpers/cluster.ts),
// with retries: its free ports are found before the members bind them, and on a busy
// machine another process can take one in between (EADDRINUSE). StoreCluster.start leaves
// the members that did start running when one fails; those are found as this process's
// children that appeared during the attempt, ended by pid, and their data removed.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClusterOptions, StoreCluster } from '../tests/helpers/cluster';
import { sleep } from './workload';

/** Attempts at starting one cluster. */
export const clusterStartAttemptsMax = 3;

/** Pids of this process's live (not zombie) children, from /proc. */
function childPids(): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is the state (field 3), fields[1] the parent pid (field 4).
    if (Number(fields[1]) === process.pid && fields[0] !== 'Z') out.push(Number(name));
  }
  return out;
}

function dataDirOf(pid: number): string | undefined {
  try {
    const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const flag = args.find((a) => a.startsWith('--data-dir='));
    return flag?.slice('--data-dir='.length);
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Ends the members a failed StoreCluster.start left running and removes their cluster directory. */
async function cleanUpFailedStart(before: ReadonlySet<number>): Promise<void> {
  const leaked = childPids().filter((p) => !before.has(p));
  const dirs = new Set<string>();
  for (const pid of leaked) {
    const dataDir = dataDirOf(pid);
    if (dataDir) dirs.add(path.dirname(dataDir));
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + 5000;
  while (leaked.some(alive) && Date.now() < deadline) await sleep(20);
  for (const dir of dirs) {
    // Only the harness's own temporary cluster directories.
    if (path.dirname(dir) === os.tmpdir() && /^(skiff|etcd)-cluster-/.test(path.basename(dir))) fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function startCluster(opts: ClusterOptions, log: (line: string) => void): Promise<StoreCluster> {
  for (let attempt = 1; ; attempt++) {
    const before = new Set(childPids());
    try {
      return await StoreCluster.start(opts);
    } catch (e) {
      await cleanUpFailedStart(before);
      const reason = (e as Error).message;
      const cause = /EADDRINUSE[^\n]*/.exec(reason)?.[0] ?? reason.split('\n')[0];
      if (attempt >= clusterStartAttemptsMax) throw e;
      log(`  ${opts.kind} cluster did not start (${cause}); retrying`);
    }
  }
}
