// The log index's per-entry columns (chunks of typed arrays) against a plain array model,
// across chunk boundaries: appends, suffix truncation, prefix drops and clears.

import * as fc from 'fast-check';
import { EntryColumns, LogEntries } from '../../src/raft/log-entries';
import { EntryType } from '../../src/raft/types';

interface Row {
  term: number;
  type: EntryType;
  blockId: number;
  offset: number;
  length: number;
}

type Op = { kind: 'push'; count: number } | { kind: 'truncate'; frac: number } | { kind: 'drop'; frac: number } | { kind: 'clear' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('push' as const), count: fc.oneof(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 4000, max: 9000 })) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), frac: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('drop' as const), frac: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const) }) },
);

function check(cols: EntryColumns, model: Row[]): void {
  expect(cols.length).toBe(model.length);
  // Every position near the ends and the chunk boundaries, and a stride through the rest.
  const probe = new Set<number>();
  for (let k = 0; k < model.length; k += 97) probe.add(k);
  for (const k of [0, 1, model.length - 2, model.length - 1, 4095, 4096, 4097, 8191, 8192]) if (k >= 0 && k < model.length) probe.add(k);
  for (const k of probe) {
    const r = model[k];
    expect([cols.term(k), cols.type(k), cols.blockId(k), cols.offset(k), cols.dataLength(k)]).toEqual([r.term, r.type, r.blockId, r.offset, r.length]);
  }
}

test('EntryColumns reads back what a plain array holds after any sequence of operations', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 25 }), (ops) => {
      const cols = new EntryColumns();
      let model: Row[] = [];
      let next = 1;
      for (const o of ops) {
        switch (o.kind) {
          case 'push':
            for (let i = 0; i < o.count; i++, next++) {
              const r: Row = { term: 2 ** 40 + next, type: next % 3 === 0 ? EntryType.ConfChange : EntryType.Normal, blockId: 2 ** 33 + (next >> 3), offset: (next * 7919) % 2 ** 32, length: next % 5 === 0 ? 0 : next % 70000 };
              cols.push(r.term, r.type, r.blockId, r.offset, r.length);
              model.push(r);
            }
            break;
          case 'truncate': {
            const n = Math.floor(o.frac * model.length);
            cols.truncate(n);
            model = model.slice(0, n);
            break;
          }
          case 'drop': {
            const k = Math.floor(o.frac * model.length);
            cols.dropFront(k);
            model = model.slice(k);
            break;
          }
          case 'clear':
            cols.clear();
            model = [];
        }
        check(cols, model);
      }
    }),
    { seed: 3, numRuns: 60 },
  );
});

test('out-of-range operations are refused', () => {
  const cols = new EntryColumns();
  cols.push(1, EntryType.Normal, 0, 0, 1);
  expect(() => cols.truncate(2)).toThrow();
  expect(() => cols.dropFront(2)).toThrow();
  expect(() => cols.push(1, EntryType.Normal, 0, 2 ** 32, 1)).toThrow(/out of range/);
});

describe('LogEntries block cache', () => {
  test('keeps the newest durable blocks within its budget, evicting oldest first, never a block still being written', () => {
    const reads: number[] = [];
    const files = new Map<number, Buffer>();
    const ents = new LogEntries(1, (seq, offset, len) => {
      reads.push(seq);
      return files.get(seq)!.subarray(offset, offset + len);
    }, 1000);
    const write = (i: number): number => {
      const buf = Buffer.alloc(100, i & 0xff);
      files.set(i, buf);
      const id = ents.addBlock(i, 0, buf.length, buf);
      ents.push(i, 1, EntryType.Normal, id, 0, buf.length);
      return id;
    };
    // Fifteen writes in flight: nothing is evicted while none is durable.
    const ids = Array.from({ length: 15 }, (_, k) => write(k + 1));
    expect(ents.cachedBlockBytes).toBe(1500);
    for (const id of ids.slice(0, 12)) ents.blockDurable(id);
    // Over budget by 500: the five oldest went; the three in flight stay.
    expect(ents.cachedBlockBytes).toBe(1000);
    expect(ents.slice(6, 16, Infinity).map((e) => e.data[0])).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    expect(reads).toEqual([]);
    expect(ents.slice(1, 6, Infinity).map((e) => e.data[0])).toEqual([1, 2, 3, 4, 5]);
    expect(reads).toEqual([1, 2, 3, 4, 5]);
    for (const id of ids.slice(12)) ents.blockDurable(id);
    for (let i = 16; i <= 400; i++) ents.blockDurable(write(i));
    expect(ents.cachedBlockBytes).toBe(1000);
    reads.length = 0;
    expect(ents.slice(391, 401, Infinity).map((e) => e.data[0])).toEqual([391, 392, 393, 394, 395, 396, 397, 398, 399, 400].map((i) => i & 0xff));
    expect(reads).toEqual([]);
    ents.reset(401);
    expect(ents.cachedBlockBytes).toBe(0);
    for (let i = 401; i <= 420; i++) ents.blockDurable(write(i));
    expect(ents.cachedBlockBytes).toBe(1000);
  });
});
