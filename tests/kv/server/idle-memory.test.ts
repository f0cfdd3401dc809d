import { IdleMemoryReclaimer, IdleReclaimPolicy, idleReclaimDefaults } from '../../../src/kv/server/idle-memory';

const mib = 1024 * 1024;
const opts = { ...idleReclaimDefaults, growthBytesMin: 16 * mib, growthRatioMin: 0.25 };

describe('IdleReclaimPolicy', () => {
  it('collects when idle and memory grew by both the minimum bytes and the minimum ratio', () => {
    const p = new IdleReclaimPolicy(opts, 40 * mib);
    expect(p.check(0.01, 55 * mib)).toBe(false); // +15 MiB: below 16 MiB
    expect(p.check(0.01, 60 * mib)).toBe(true); // +20 MiB, 50%
  });

  it('does not collect while the loop is busy, however much memory grew', () => {
    const p = new IdleReclaimPolicy(opts, 40 * mib);
    expect(p.check(0.5, 200 * mib)).toBe(false);
    expect(p.check(opts.idleUtilizationMax + 0.001, 200 * mib)).toBe(false);
    expect(p.check(opts.idleUtilizationMax, 200 * mib)).toBe(true);
  });

  it('requires the ratio as well on a large baseline', () => {
    const p = new IdleReclaimPolicy(opts, 200 * mib);
    expect(p.check(0, 240 * mib)).toBe(false); // +40 MiB is 20% < 25%
    expect(p.check(0, 251 * mib)).toBe(true);
  });

  it('takes the next sample after a collection as the new baseline, and does not collect on it', () => {
    const p = new IdleReclaimPolicy(opts, 40 * mib);
    expect(p.check(0, 100 * mib)).toBe(true);
    expect(p.check(0, 100 * mib)).toBe(false); // the collection runs in between; this is its result
    expect(p.baseline).toBe(100 * mib);
    expect(p.check(0, 120 * mib)).toBe(false); // +20 MiB is 20% of 100
    expect(p.check(0, 126 * mib)).toBe(true);
  });

  it('follows the baseline down when V8 collected on its own', () => {
    const p = new IdleReclaimPolicy(opts, 100 * mib);
    expect(p.check(0.9, 50 * mib)).toBe(false);
    expect(p.baseline).toBe(50 * mib);
    expect(p.check(0, 70 * mib)).toBe(true);
  });
});

describe('IdleMemoryReclaimer', () => {
  it('frees garbage left by a burst once the process is idle', async () => {
    const events: { usedBytes: number; baselineBytes: number }[] = [];
    const r = IdleMemoryReclaimer.start((e) => events.push(e), { ...idleReclaimDefaults, checkIntervalMs: 100, growthBytesMin: 8 * mib, growthRatioMin: 0.1 });
    expect(r).toBeDefined();
    try {
      // A burst: dead Buffers (external memory) and dead strings, nothing kept.
      let junk: unknown[] = [];
      for (let i = 0; i < 400; i++) {
        junk.push(Buffer.alloc(64 * 1024, i), 'x'.repeat(10_000) + i);
        if (junk.length > 40) junk = [];
      }
      junk = [];
      const before = process.memoryUsage();
      const deadline = Date.now() + 10_000;
      while (r!.collections === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
      expect(r!.collections).toBeGreaterThan(0);
      await new Promise((res) => setTimeout(res, 500)); // the incremental collection finishes
      const after = process.memoryUsage();
      expect(after.heapUsed + after.external).toBeLessThan(before.heapUsed + before.external - 8 * mib);
      expect(events[0].usedBytes).toBeGreaterThan(events[0].baselineBytes);
    } finally {
      r!.stop();
    }
  });
});
