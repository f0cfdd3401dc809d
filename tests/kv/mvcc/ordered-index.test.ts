// The key index's container against a plain model (a Map, sorted when asked), with merges
// made frequent so that every mix of sorted array, log, deletions and re-adds is walked.

import * as fc from 'fast-check';
import { MergeLimits, OrderedIndex } from '../../../src/kv/mvcc/ordered-index';

type Op =
  | { t: 'set'; k: string; v: number }
  | { t: 'del'; k: string }
  | { t: 'range'; low: string; high: string; incl: boolean }
  | { t: 'all' }
  | { t: 'max' };

// 21 keys of a few byte values: keys come back often, share prefixes, and sort by bytes above
// 0x7f.
const keyArb = fc
  .array(fc.constantFrom(0, 0x61, 0x80, 0xff), { minLength: 0, maxLength: 2 })
  .map((bytes) => Buffer.from(bytes).toString('latin1'));

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('set' as const), k: keyArb, v: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('del' as const), k: keyArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('range' as const), low: keyArb, high: keyArb, incl: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ t: 'all' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'max' as const }) },
);

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1'));

function modelRange(m: Map<string, number>, low: string, high: string, incl: boolean): [string, number][] {
  return [...m]
    .filter(([k]) => byteOrder(k, low) >= 0 && (byteOrder(k, high) < 0 || (incl && k === high)))
    .sort(([a], [b]) => byteOrder(a, b));
}

function check(ops: Op[], limits: MergeLimits): void {
  const idx = new OrderedIndex<number>(limits);
  const model = new Map<string, number>();
  for (const op of ops) {
    if (op.t === 'set') {
      idx.set(op.k, op.v);
      model.set(op.k, op.v);
    } else if (op.t === 'del') {
      idx.delete(op.k);
      model.delete(op.k);
    } else if (op.t === 'range') {
      const got: [string, number][] = [];
      idx.forRange(op.low, op.high, op.incl, (k, v) => got.push([k, v]));
      expect(got).toEqual(modelRange(model, op.low, op.high, op.incl));
    } else if (op.t === 'all') {
      const got: [string, number][] = [];
      idx.forEach((v, k) => got.push([k, v]));
      expect(got).toEqual([...model].sort(([a], [b]) => byteOrder(a, b)));
    } else {
      const keys = [...model.keys()].sort(byteOrder);
      expect(idx.maxKey()).toBe(keys[keys.length - 1]);
    }
    expect(idx.size).toBe(model.size);
    for (const k of [op.t === 'set' || op.t === 'del' ? op.k : '']) expect(idx.get(k)).toBe(model.get(k));
  }
}

describe('OrderedIndex', () => {
  test('matches a sorted map, merging after every few changes', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 120 }), fc.integer({ min: 1, max: 6 }), (ops, min) => {
        check(ops, { max: 64, share: 4, min });
      }),
      { numRuns: 400 },
    );
  });

  test('matches a sorted map with the default limits (no merge: everything in the log)', () => {
    fc.assert(fc.property(fc.array(opArb, { maxLength: 120 }), (ops) => check(ops, { max: 65536, share: 16, min: 1024 })), {
      numRuns: 100,
    });
  });

  test('a walk is not changed by keys its callback adds, nor by the merge they cause', () => {
    const idx = new OrderedIndex<number>({ max: 2, share: 1, min: 2 });
    for (const k of ['b', 'd', 'f']) idx.set(k, 0);
    const seen: string[] = [];
    idx.forEach((_v, k) => {
      seen.push(k);
      idx.set(`${k}0`, 1); // sorts right after k: a walk that saw it would list it next
      idx.set(`a${k}`, 1);
    });
    expect(seen).toEqual(['b', 'd', 'f']);
    const after: string[] = [];
    idx.forEach((_v, k) => after.push(k));
    expect(after).toEqual(['ab', 'ad', 'af', 'b', 'b0', 'd', 'd0', 'f', 'f0']);
  });

  test('a merge drops the keys deleted since the last one, and keeps a key added again', () => {
    const idx = new OrderedIndex<number>({ max: 4, share: 1, min: 4 });
    for (const k of ['a', 'b', 'c', 'd']) idx.set(k, 0); // merged
    idx.delete('a');
    idx.delete('b');
    idx.set('b', 1);
    idx.set('e', 1); // 3 keys logged and 2 deletions: merged
    expect(idx['sorted']).toEqual(['b', 'c', 'd', 'e']);
    expect(idx['log']).toEqual([]);
  });

  test('many random keys: walks in byte order across merges of a large array', () => {
    const idx = new OrderedIndex<number>();
    const model = new Map<string, number>();
    let s = 12345;
    for (let i = 0; i < 60_000; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      const k = Buffer.from([s & 0xff, (s >>> 8) & 0xff, (s >>> 16) & 0xff]).toString('latin1');
      if (i % 7 === 3) {
        idx.delete(k);
        model.delete(k);
      } else {
        idx.set(k, i);
        model.set(k, i);
      }
    }
    const got: string[] = [];
    idx.forEach((_v, k) => got.push(k));
    expect(got).toEqual([...model.keys()].sort(byteOrder));
    const low = Buffer.from([0x40]).toString('latin1');
    const high = Buffer.from([0x41]).toString('latin1');
    const part: [string, number][] = [];
    idx.forRange(low, high, false, (k, v) => part.push([k, v]));
    expect(part).toEqual(modelRange(model, low, high, false));
  });
});
