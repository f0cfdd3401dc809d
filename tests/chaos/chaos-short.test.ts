// A short seeded chaos run against a real 3-member skiff cluster (kill -9, SIGSTOP and
// partitions through the fault proxies), with every checker: it must pass.
// CHAOS_SEED and CHAOS_DURATION override the seed and the seconds of faults.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../../src/chaos/cluster';
import { runChaos } from '../../src/chaos/run';

const seed = Number(process.env.CHAOS_SEED ?? 20240611);
const durationSec = Number(process.env.CHAOS_DURATION ?? 40);

test(`chaos: skiff, 3 members, ${durationSec} s of kill, pause and partition faults (seed ${seed}) pass every checker`, async () => {
  if (!fs.existsSync(path.join(repoRoot, 'dist', 'src', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test builds first)');
  const result = await runChaos({ seed, durationSec, nodes: 3, faults: ['kill', 'pause', 'partition'], target: 'skiff' });
  const report = `${result.lines.join('\n')}\n${JSON.stringify(result.summary)}`;
  if (!result.passed) throw new Error(`chaos run failed (seed ${seed}; replay: npm run chaos -- --seed ${seed} --duration ${durationSec}; log in ${result.dir}):\n${report}`);
  expect(result.summary.linearizable).toBe(true);
  expect(result.summary.lost_acked).toBe(0);
  expect(result.summary.watch_ok).toBe(true);
  expect(result.summary.leases_ok).toBe(true);
  expect(result.summary.ops).toBeGreaterThan(1000);
  expect(result.summary.failovers).toBeGreaterThan(0);
  // Passed: its run directory (the chaos log; the members' data went already) goes too.
  fs.rmSync(result.dir, { recursive: true, force: true });
}, (durationSec + 150) * 1000);
