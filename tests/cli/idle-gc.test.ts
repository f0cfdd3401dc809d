// Giving memory back after a burst: when the detector fires, that the collection it starts
// runs in this very process (no --expose-gc on the command line), and that it is a full,
// compacting one.

import * as v8 from 'node:v8';
import { compactingCollection, gcFunction, IdleDetector, startIdleGc } from '../../src/cli/idle-gc';

const opts = { sampleMs: 20, busyUtilization: 0.3, quietUtilization: 0.05, quietSamples: 2 };

test('fires once after a busy stretch followed by enough quiet samples, and not before a busy one', () => {
  const d = new IdleDetector(opts);
  // Quiet from the start: nothing to give back.
  expect([0, 0, 0, 0].map((u) => d.sample(u))).toEqual([false, false, false, false]);
  // Busy, then a sample in between (neither busy nor quiet) restarts the quiet count.
  expect([0.9, 0.5, 0.01, 0.1, 0.01, 0.01].map((u) => d.sample(u))).toEqual([false, false, false, false, false, true]);
  // Once per busy stretch.
  expect([0.01, 0.01, 0.01].map((u) => d.sample(u))).toEqual([false, false, false]);
  // Busy again in the middle of a quiet count: the count starts over.
  expect([0.8, 0.01, 0.8, 0.01, 0.01].map((u) => d.sample(u))).toEqual([false, false, false, false, true]);
});

test('after a burst of allocation, the process collects once it is quiet, not during the burst', async () => {
  const collectedAt: number[] = [];
  const stop = startIdleGc(() => collectedAt.push(Date.now()), opts);
  try {
    const until = Date.now() + 150;
    let keep: unknown[] = [];
    while (Date.now() < until) {
      keep.push(new Array(1000).fill(Math.random()));
      if (keep.length > 100) keep = [];
      await new Promise((r) => setImmediate(r));
    }
    keep = [];
    expect(collectedAt).toEqual([]);
    const quietFrom = Date.now();
    await new Promise((r) => setTimeout(r, 250));
    // The collection's own work can make one more busy sample, hence possibly a second one.
    expect(collectedAt.length).toBeGreaterThanOrEqual(1);
    expect(collectedAt[0]).toBeGreaterThanOrEqual(quietFrom);
  } finally {
    stop();
  }
});

function oldSpace(): { used: number; size: number } {
  const s = v8.getHeapSpaceStatistics().find((x) => x.space_name === 'old_space')!;
  return { used: s.space_used_size, size: s.space_size };
}

test('the collection is a full one and compacts the old generation: pages left sparse by a burst go back', () => {
  const gc = gcFunction();
  // The worker's heap holds other things too: measure against what was there before.
  gc();
  const base = oldSpace().used;
  // A burst that leaves the old generation sparse: many objects promoted, nine in ten then dropped.
  let all: Array<{ a: number; b: string }> | undefined = [];
  for (let i = 0; i < 600_000; i++) all.push({ a: i, b: `x${i}` });
  gc();
  const burst = oldSpace().used - base;
  const keep = all.filter((_x, i) => i % 10 === 0);
  all = undefined;
  const pauseMs = compactingCollection(gc);
  const after = oldSpace();
  expect(keep.length).toBe(60_000);
  expect(pauseMs).toBeGreaterThan(0);
  // Full: the dropped objects are gone (a young-generation collection would leave them).
  expect(after.used - base).toBeLessThan(burst / 2);
  // Compacting: the pages hold little more than what is live.
  expect(after.size - after.used).toBeLessThan(8 * 1024 * 1024);
});
