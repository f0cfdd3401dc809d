// How a `skiff store` member process is started: one definition for everything that launches
// members (`skiff cluster up`, the chaos harness, the tests and the benchmarks), so that all
// of them run the same process.
//
// V8's young generation grows to two 16 MiB semi-spaces under a burst of writes and keeps
// them, about 24 MiB more resident memory than 4 MiB ones; 8 MiB semi-spaces it is. A
// scavenge's pause grows with what survives it, and how often scavenges come with the
// semi-space's size: at 4 MiB a member under put at 128 clients made ~25 scavenges a second,
// pausing 5-25 ms each on the busy machine (about a tenth of its time). Measured with 8
// alternating runs each (medians, 8 MiB vs 4 MiB, after the key index stopped allocating a
// tree node per new key): put at 128 clients 16.3k vs 15.0k ops/s, p99 lower in both sets of
// runs (29.9 vs 34.3 ms, 34.3 vs 37.8); at 16 clients 5655 vs 5544; watch 273k vs 274k
// events/s; the memory workload's largest member 152-155 vs 148-150 MiB. (Earlier, when a
// put allocated more, 4 MiB had been the faster: its requests in flight died young enough.)
//
// V8 collects with helper threads by default (parallel scavenges, concurrent marking). Three
// members and their clients share two cores here, so a helper mostly waits for a core, and
// the collection it helps waits for it. --single-threaded-gc does all of it on the member's
// own thread. Measured with 4 alternating runs each (medians, with vs without): put at 128
// clients 17.7k vs 16.3k ops/s, p99 30.6 vs 33.0 ms (lower in all 4 pairs), member CPU per
// 1k puts 0.084 vs 0.092 s; watch p99 18.1 vs 19.6 ms at the same events/s.
//
// glibc's malloc keeps freed memory by default: each thread may get an arena of its own (up
// to 8 per core), and the thresholds for giving memory back to the kernel grow with the
// largest block freed. A member frees many large network and write buffers, so after a burst
// of writes it kept tens of MiB it no longer used. Fixed thresholds and two arenas make it
// return that memory as it is freed (a member's resident set after 100k puts: about 25 MiB
// less). These settings are read when the process starts, so they are set here, in the
// member's environment; a value the caller's environment already has wins.

import * as fs from 'node:fs';
import * as path from 'node:path';

/** The repository root (holding package.json), from src/ or dist/src/ or tests/. */
export const repoRoot = ((): string => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`package.json not found above ${__dirname}`);
    dir = up;
  }
  return dir;
})();

/** The CLI's entry point. */
export const skiffBin = path.join(repoRoot, 'bin', 'skiff');

/** Node flags of a member (see above); extra flags given to `memberProcess` come after and win. */
export const memberNodeFlags: readonly string[] = ['--max-semi-space-size=8', '--single-threaded-gc'];

/** glibc malloc settings for a member (see above). */
export const memberMallocEnv: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_TRIM_THRESHOLD_: String(128 * 1024),
  MALLOC_MMAP_THRESHOLD_: String(256 * 1024),
};

export interface MemberProcess {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/**
 * The command line and environment of `skiff store <storeArgs>`, run by this process's node.
 * `nodeArgs` are extra node flags (`--cpu-prof`).
 */
export function memberProcess(storeArgs: readonly string[], nodeArgs: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): MemberProcess {
  return {
    command: process.execPath,
    args: [...memberNodeFlags, ...nodeArgs, skiffBin, 'store', ...storeArgs],
    env: { ...memberMallocEnv, ...env },
  };
}
