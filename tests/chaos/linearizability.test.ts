import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { checkOperations } from '../../src/chaos/linearizability';
import { checkRegisters, toOperations } from '../../src/chaos/register-checker';
import { closedWindow } from '../../src/chaos/minimize';
import { registerModel, UNKNOWN_STATE } from '../../src/chaos/register-model';
import { cas, casUnknown, read, sequentialRegisterHistory, write, writeUnknown } from './histories';

const k = '/chaos/reg/k0';

function verdict(ops: Parameters<typeof checkRegisters>[0]): boolean {
  return checkRegisters(ops).ok;
}

describe('linearizability of a register history', () => {
  test('an empty history is linearizable', () => {
    expect(verdict([])).toBe(true);
  });

  test('sequential write then read of the value is linearizable', () => {
    expect(verdict([write(1, k, 0, 10, 'a'), read(2, k, 20, 30, 'a')])).toBe(true);
  });

  test('stale read: a read that starts after a write was acknowledged sees the older value', () => {
    const ops = [write(1, k, 0, 10, 'a'), write(1, k, 20, 30, 'b'), read(2, k, 40, 50, 'a')];
    const r = checkRegisters(ops);
    expect(r.ok).toBe(false);
    expect(r.keys[0].verdict).toBe('illegal');
  });

  test('a read concurrent with a write may see either value', () => {
    const base = [write(1, k, 0, 10, 'a'), write(1, k, 20, 60, 'b')];
    expect(verdict([...base, read(2, k, 30, 40, 'a')])).toBe(true);
    expect(verdict([...base, read(2, k, 30, 40, 'b')])).toBe(true);
  });

  test('reads must agree on an order: once a concurrent read saw the new value, a later read cannot see the old one', () => {
    const ops = [write(1, k, 0, 10, 'a'), write(1, k, 20, 100, 'b'), read(2, k, 30, 40, 'b'), read(3, k, 50, 60, 'a')];
    expect(verdict(ops)).toBe(false);
  });

  test('lost write: an acknowledged write that no later read sees', () => {
    const ops = [write(1, k, 0, 10, 'a'), write(2, k, 20, 30, 'b'), read(3, k, 40, 50, 'a'), read(3, k, 60, 70, 'a')];
    expect(verdict(ops)).toBe(false);
  });

  test('a read of a value never written is illegal', () => {
    expect(verdict([read(1, k, 0, 10, 'ghost')])).toBe(false);
  });

  test('a read of nothing before any write is fine; after an acknowledged write it is not', () => {
    expect(verdict([read(1, k, 0, 10, null), write(2, k, 20, 30, 'a')])).toBe(true);
    expect(verdict([write(2, k, 0, 10, 'a'), read(1, k, 20, 30, null)])).toBe(false);
  });

  test('an unknown-outcome write may take effect long after it was sent, or never', () => {
    const sent = writeUnknown(1, k, 0, 5, 'late');
    expect(verdict([sent, read(2, k, 100, 110, null), read(2, k, 200, 210, 'late')])).toBe(true);
    expect(verdict([sent, read(2, k, 100, 110, null)])).toBe(true);
    // ... but not before it was sent.
    expect(verdict([read(2, k, 0, 10, 'late'), writeUnknown(1, k, 20, 25, 'late')])).toBe(false);
    // ... and only once: after it was overwritten it cannot come back.
    expect(verdict([sent, read(2, k, 100, 110, 'late'), write(3, k, 120, 130, 'b'), read(2, k, 200, 210, 'late')])).toBe(false);
  });

  test('compare-and-swap: success needs the expected value; failure reads the current one', () => {
    expect(verdict([write(1, k, 0, 10, 'a'), cas(2, k, 20, 30, 'a', 'b', { ok: true }), read(3, k, 40, 50, 'b')])).toBe(true);
    expect(verdict([write(1, k, 0, 10, 'a'), cas(2, k, 20, 30, 'x', 'b', { ok: true })])).toBe(false);
    expect(verdict([write(1, k, 0, 10, 'a'), cas(2, k, 20, 30, 'a', 'b', { ok: false, read: 'a' })])).toBe(false);
    expect(verdict([write(1, k, 0, 10, 'a'), cas(2, k, 20, 30, null, 'b', { ok: false, read: 'a' })])).toBe(true);
    expect(verdict([cas(2, k, 20, 30, null, 'b', { ok: true }), read(1, k, 40, 50, 'b')])).toBe(true);
  });

  test('an unknown-outcome cas applies only if its compare held where it is placed', () => {
    expect(verdict([write(1, k, 0, 10, 'a'), casUnknown(2, k, 20, 30, 'a', 'b'), read(3, k, 40, 50, 'b')])).toBe(true);
    expect(verdict([write(1, k, 0, 10, 'a'), casUnknown(2, k, 20, 30, 'z', 'b'), read(3, k, 40, 50, 'b')])).toBe(false);
  });

  test('unknown-outcome writes shown by the final history never to have applied are left out', () => {
    const ops = [write(1, k, 0, 10, 'a'), writeUnknown(2, k, 20, 30, 'b'), read(3, k, 40, 50, 'b')];
    expect(checkRegisters(ops).ok).toBe(true);
    const r = checkRegisters(ops, { applied: (_key, value) => value !== 'b' });
    expect(r.droppedUnapplied).toBe(1);
    expect(r.ok).toBe(false);
  });

  test('keys are checked apart (P-compositionality)', () => {
    const ops = [write(1, 'x', 0, 10, 'a'), write(1, 'y', 0, 10, 'b'), read(2, 'x', 20, 30, 'a'), read(2, 'y', 20, 30, 'a')];
    const r = checkRegisters(ops);
    expect(r.keys.map((x) => [x.key, x.verdict])).toEqual([
      ['x', 'ok'],
      ['y', 'illegal'],
    ]);
  });

  test('a value read with two mod_revisions is a revision anomaly', () => {
    const ops = [write(1, k, 0, 10, 'a', 5), read(2, k, 20, 30, 'a', 5), read(2, k, 40, 50, 'a', 7)];
    const r = checkRegisters(ops);
    expect(r.anomalies).toHaveLength(1);
    expect(r.ok).toBe(false);
  });

  test('a violation is written out as a small window that still fails', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaos-witness-'));
    try {
      // A long linearizable history with one stale read in the middle.
      const ops = sequentialRegisterHistory(7, 3000, [k], { unknownChance: 0 });
      const writes = ops.filter((o) => o.f === 'write' && o.status === 'ok');
      const w1 = writes[100];
      const later = writes.find((w) => w.invokeMs > w1.completeMs + 100) as (typeof writes)[number];
      ops.push(read(99, k, later.completeMs + 1, later.completeMs + 2, w1.value as string));
      const r = checkRegisters(ops, { outDir: dir });
      expect(r.ok).toBe(false);
      const kr = r.keys[0];
      expect(kr.verdict).toBe('illegal');
      expect(kr.witnessFile).toBeDefined();
      expect(kr.witnessOps).toBeLessThan(40);
      const text = fs.readFileSync(kr.witnessFile as string, 'utf8');
      expect(text).toContain(`read -> "${w1.value}"`);
      // The witness alone fails, from any start state.
      const jsonLines = text.split('\n').filter((l) => l.startsWith('{'));
      const witnessOps = jsonLines.map((l) => JSON.parse(l));
      expect(witnessOps).toHaveLength(kr.witnessOps as number);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('property: histories of a real register are linearizable', () => {
  test('random sequential histories made concurrent are accepted', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 80 }), (seed, n, spread) => {
        const ops = sequentialRegisterHistory(seed, n, ['a', 'b', 'c'], { spreadMs: spread });
        const r = checkRegisters(ops);
        return r.ok && r.keys.every((x) => x.verdict === 'ok');
      }),
      { numRuns: 300 },
    );
  });

  test('long histories (checked window by window first) are accepted', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 401, max: 2000 }), fc.integer({ min: 1, max: 80 }), (seed, n, spread) => {
        const r = checkRegisters(sequentialRegisterHistory(seed, n, ['a'], { spreadMs: spread, unknownChance: 0.1 }));
        return r.ok;
      }),
      { numRuns: 30 },
    );
  });

  test('every window of a linearizable history, with its straddling ops optional, is linearizable from an unknown state', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 80 }), fc.integer({ min: 0, max: 150 }), fc.integer({ min: 1, max: 60 }), (seed, spread, s, len) => {
        const { operations } = toOperations(sequentialRegisterHistory(seed, 200, ['a'], { spreadMs: spread, unknownChance: 0.1 }));
        const sorted = [...operations].sort((a, b) => a.callMs - b.callMs);
        const e = Math.min(sorted.length - 1, s + len);
        if (s > e) return true;
        return checkOperations(registerModel, closedWindow(sorted, s, e), { initState: UNKNOWN_STATE }).verdict === 'ok';
      }),
      { numRuns: 300 },
    );
  });

  test('a read changed to a value written strictly later is rejected', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), (seed) => {
        const ops = sequentialRegisterHistory(seed, 200, ['a'], { spreadMs: 5, unknownChance: 0 });
        const firstRead = ops.findIndex((o, i) => o.f === 'read' && ops.slice(i + 1).some((w) => w.f === 'write' && w.invokeMs > o.completeMs));
        if (firstRead < 0) return true;
        const r0 = ops[firstRead];
        const future = ops.slice(firstRead + 1).find((w) => w.f === 'write' && w.invokeMs > r0.completeMs) as (typeof ops)[number];
        ops[firstRead] = { ...r0, readValue: future.value };
        return !checkRegisters(ops).ok;
      }),
      { numRuns: 100 },
    );
  });

  test('100k operations over 8 keys check within the time budget', () => {
    const keys = Array.from({ length: 8 }, (_, i) => `k${i}`);
    const ops = sequentialRegisterHistory(42, 100_000, keys, { spreadMs: 60, unknownChance: 0.002 });
    const started = performance.now();
    const r = checkRegisters(ops);
    const elapsed = performance.now() - started;
    expect(r.ok).toBe(true);
    expect(elapsed).toBeLessThan(60_000);
  }, 120_000);

  test('the generic checker reports its search size', () => {
    const { operations } = toOperations([write(1, k, 0, 10, 'a'), read(2, k, 20, 30, 'a')]);
    const r = checkOperations(registerModel, operations);
    expect(r.verdict).toBe('ok');
    expect(r.configurations).toBe(2);
  });
});
