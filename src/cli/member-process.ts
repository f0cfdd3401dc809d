// How a `skiff store` member process is started: one definition for everything that launches
// members (`skiff cluster up`, the chaos harness, the tests and the benchmarks), so that all
// of them run the same process.
//
// V8's young generation grows to two 16 MiB semi-spaces under a burst of writes and keeps
// them, about 24 MiB more resident memory than 4 MiB ones. With 4 MiB, though, the requests
// in flight at 128 clients did not die young enough. Put at 128 clients, two rounds of 8
// alternating runs: 8 MiB semi-spaces 8718 and 7912 ops/s (medians), 4 MiB 8211 and 6529,
// for about 8 MiB more resident memory per member. 8 it is.
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
export const memberNodeFlags: readonly string[] = ['--max-semi-space-size=8'];

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
