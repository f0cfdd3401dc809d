// Property test: the store against a naive model that keeps the full state at every revision
// (a list of all revisions) and the events of each one.

import * as fc from 'fast-check';
import { MvccCore, MvccStore, RangeOptions, SortOrder, SortTarget, isMvccError } from '../../../src/kv/mvcc';
import { b, ev, heldValueBytes, kvs, rmDir, tmpDir } from './helpers';

interface MKv {
  key: string;
  value: string;
  create: number;
  mod: number;
  ver: number;
  lease: number;
}
type MEvent = { type: 'PUT' | 'DELETE'; kv: MKv; prev?: MKv };

class Model {
  /** states[r] = the map of live keys at revision r (states[0] unused). */
  states: Map<string, MKv>[] = [new Map(), new Map()];
  events: MEvent[][] = [[], []];
  compactRev = 0;
  get rev(): number {
    return this.states.length - 1;
  }
  readRev(rev: number, cur = this.rev): number | 'ERR_FUTURE_REV' | 'ERR_COMPACTED' {
    if (rev > cur) return 'ERR_FUTURE_REV';
    if (rev <= 0) return cur;
    if (rev < this.compactRev) return 'ERR_COMPACTED';
    return rev;
  }
}

const KEYS = ['\x00', 'a', 'a\x00', 'ab', 'b', 'ba', 'c', '\xff', '\xff\xff'];
const keyArb = fc.constantFrom(...KEYS);
const endArb = fc.oneof(fc.constant(undefined), fc.constant('\x00'), keyArb);

type SubOp =
  | { op: 'put'; key: string; value: string; lease: number }
  | { op: 'del'; key: string; end: string | undefined }
  | { op: 'get'; key: string };
type Op =
  | { op: 'txn'; subs: SubOp[] }
  | { op: 'compact'; back: number }
  | { op: 'range'; key: string; end: string | undefined; back: number; limit: number; order: SortOrder; target: SortTarget; keysOnly: boolean; countOnly: boolean; minMod: number; maxMod: number; minCreate: number; maxCreate: number }
  | { op: 'history'; back: number; span: number; key: string | undefined; end: string | undefined; eventsMax: number };

const subOpArb: fc.Arbitrary<SubOp> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('put' as const), key: keyArb, value: fc.constantFrom('', 'x', 'y', 'zz', '\x00'), lease: fc.constantFrom(0, 0, 5, 7) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('del' as const), key: keyArb, end: endArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('get' as const), key: keyArb }) },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ op: fc.constant('txn' as const), subs: fc.array(subOpArb, { minLength: 0, maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('compact' as const), back: fc.integer({ min: -1, max: 6 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('range' as const),
      key: keyArb,
      end: endArb,
      back: fc.integer({ min: -1, max: 8 }),
      limit: fc.constantFrom(0, 0, 1, 2, 3),
      order: fc.constantFrom<SortOrder>('NONE', 'NONE', 'ASCEND', 'DESCEND'),
      target: fc.constantFrom<SortTarget>('KEY', 'KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'),
      keysOnly: fc.boolean(),
      countOnly: fc.constantFrom(false, false, false, true),
      minMod: fc.constantFrom(0, 0, 0, 3, 6),
      maxMod: fc.constantFrom(0, 0, 0, 4, 8),
      minCreate: fc.constantFrom(0, 0, 0, 3),
      maxCreate: fc.constantFrom(0, 0, 0, 5),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('history' as const),
      back: fc.integer({ min: -1, max: 10 }),
      span: fc.integer({ min: 0, max: 6 }),
      key: fc.oneof(fc.constant(undefined), keyArb),
      end: endArb,
      eventsMax: fc.constantFrom(0, 0, 1, 3),
    }),
  },
);

function inSpan(k: string, key: string, end: string | undefined): boolean {
  if (end === undefined || end === '') return k === key;
  if (end === '\x00') return k >= key;
  return k >= key && k < end;
}

const cmpStr = (a: string, c: string): number => (a < c ? -1 : a > c ? 1 : 0);

/** etcd v3.4's Range, written from its description, over a full state map. */
function modelRange(state: Map<string, MKv>, o: Extract<Op, { op: 'range' }>): { kvs: MKv[]; count: number; more: boolean } {
  let all = [...state.values()].filter((x) => inSpan(x.key, o.key, o.end)).sort((x, y) => cmpStr(x.key, y.key));
  const count = all.length;
  if (o.countOnly) return { kvs: [], count, more: false };
  const filtered = o.minMod !== 0 || o.maxMod !== 0 || o.minCreate !== 0 || o.maxCreate !== 0;
  if (o.order === 'NONE' && !filtered && o.limit > 0) all = all.slice(0, o.limit + 1);
  all = all.filter(
    (x) =>
      (o.maxMod === 0 || x.mod <= o.maxMod) &&
      (o.minMod === 0 || x.mod >= o.minMod) &&
      (o.maxCreate === 0 || x.create <= o.maxCreate) &&
      (o.minCreate === 0 || x.create >= o.minCreate),
  );
  const order = o.target !== 'KEY' && o.order === 'NONE' ? 'ASCEND' : o.order;
  if (order !== 'NONE') {
    const f: Record<SortTarget, (x: MKv, y: MKv) => number> = {
      KEY: (x, y) => cmpStr(x.key, y.key),
      VERSION: (x, y) => x.ver - y.ver,
      CREATE: (x, y) => x.create - y.create,
      MOD: (x, y) => x.mod - y.mod,
      VALUE: (x, y) => cmpStr(x.value, y.value),
    };
    const c = f[o.target];
    all = [...all].sort(order === 'ASCEND' ? c : (x, y) => c(y, x));
  }
  let more = false;
  if (o.limit > 0 && all.length > o.limit) {
    all = all.slice(0, o.limit);
    more = true;
  }
  if (o.keysOnly) all = all.map((x) => ({ ...x, value: '' }));
  return { kvs: all, count, more };
}

function errCode(f: () => unknown): unknown {
  try {
    return f();
  } catch (e) {
    if (isMvccError(e)) return e.code;
    throw e;
  }
}

/** Applies one op to the model and the store(s), checking every answer. */
function step(m: Model, stores: MvccCore[], o: Op): void {
  switch (o.op) {
    case 'txn': {
      const rev = m.rev + 1;
      const work = new Map(m.states[m.rev]);
      const evs: MEvent[] = [];
      const tws = stores.map((x) => x.write());
      for (const so of o.subs) {
        if (so.op === 'put') {
          const prev = work.get(so.key);
          const nkv: MKv = { key: so.key, value: so.value, create: prev?.create ?? rev, mod: rev, ver: (prev?.ver ?? 0) + 1, lease: so.lease };
          work.set(so.key, nkv);
          const pm = m.states[m.rev].get(so.key);
          evs.push(pm === undefined ? { type: 'PUT', kv: nkv } : { type: 'PUT', kv: nkv, prev: pm });
          for (const tw of tws) {
            const got = tw.put(b(so.key), b(so.value), so.lease);
            expect(got === undefined ? undefined : kvs([got.kv])[0]).toEqual(prev);
          }
        } else if (so.op === 'del') {
          const gone = [...work.values()].filter((x) => inSpan(x.key, so.key, so.end)).sort((x, y) => cmpStr(x.key, y.key));
          for (const g of gone) {
            work.delete(g.key);
            const pm = m.states[m.rev].get(g.key);
            const dkv: MKv = { key: g.key, value: '', create: 0, mod: rev, ver: 0, lease: 0 };
            evs.push(pm === undefined ? { type: 'DELETE', kv: dkv } : { type: 'DELETE', kv: dkv, prev: pm });
          }
          for (const tw of tws) expect(kvs(tw.deleteRange(b(so.key), so.end === undefined ? undefined : b(so.end)))).toEqual(gone);
        } else {
          for (const tw of tws) {
            const got = tw.get(b(so.key));
            expect(got === undefined ? undefined : kvs([got])[0]).toEqual(work.get(so.key));
            expect(kvs(tw.range({ key: b(so.key) }).kvs)).toEqual(work.has(so.key) ? [work.get(so.key)] : []);
          }
        }
      }
      const ends = tws.map((tw) => tw.end());
      if (evs.length > 0) {
        m.states.push(work);
        m.events.push(evs);
      }
      for (const e of ends) expect(e).toBe(m.rev);
      break;
    }
    case 'compact': {
      const rev = m.rev - o.back;
      const want = rev <= m.compactRev ? 'ERR_COMPACTED' : rev > m.rev ? 'ERR_FUTURE_REV' : undefined;
      for (const x of stores) expect(errCode(() => x.compact(rev))).toBe(want);
      if (want === undefined) m.compactRev = rev;
      break;
    }
    case 'range': {
      const revision = o.back < 0 ? 0 : Math.max(m.rev - o.back, 1);
      const opts: RangeOptions = {
        key: b(o.key),
        rangeEnd: o.end === undefined ? undefined : b(o.end),
        revision,
        limit: o.limit,
        sortOrder: o.order,
        sortTarget: o.target,
        keysOnly: o.keysOnly,
        countOnly: o.countOnly,
        minModRevision: o.minMod,
        maxModRevision: o.maxMod,
        minCreateRevision: o.minCreate,
        maxCreateRevision: o.maxCreate,
      };
      const r = m.readRev(revision);
      const want = typeof r === 'string' ? r : modelRange(m.states[r], o);
      for (const x of stores) {
        const got = errCode(() => {
          const res = x.range(opts);
          return { kvs: kvs(res.kvs), count: res.count, more: res.more };
        });
        expect(got).toEqual(want);
      }
      break;
    }
    case 'history': {
      const from = m.rev - o.back;
      const to = from + o.span; // 0 or less: the current revision
      const last = to <= 0 ? m.rev : Math.min(to, m.rev);
      let want: unknown;
      if (from < m.compactRev) want = 'ERR_COMPACTED';
      else {
        const out: Array<{ rev: number; events: MEvent[] }> = [];
        let n = 0;
        let next = Math.max(last + 1, Math.max(from, m.compactRev, 1));
        for (let r = Math.max(from, m.compactRev, 1); r <= last; r++) {
          const es = m.events[r]
            .filter((e) => o.key === undefined || inSpan(e.kv.key, o.key, o.end))
            // events at the compacted revision have no prevKv (compactRev - 1 is unreadable)
            .map((e) => (r === m.compactRev && e.prev !== undefined ? { type: e.type, kv: e.kv } : e));
          if (es.length === 0) continue;
          out.push({ rev: r, events: es });
          n += es.length;
          if (o.eventsMax > 0 && n >= o.eventsMax) {
            next = r + 1;
            break;
          }
        }
        want = { revisions: out, next };
      }
      for (const x of stores) {
        const got = errCode(() => {
          const h = x.eventsBetween({
            fromRevision: from,
            toRevision: to,
            key: o.key === undefined ? undefined : b(o.key),
            rangeEnd: o.key === undefined || o.end === undefined ? undefined : b(o.end),
            eventsMax: o.eventsMax,
          });
          return {
            revisions: h.revisions.map((rv) => ({
              rev: rv.revision,
              events: rv.events.map((e) => {
                const x2 = ev(e);
                return x2.prev === undefined ? { type: x2.type, kv: x2.kv } : { type: x2.type, kv: x2.kv, prev: x2.prev };
              }),
            })),
            next: h.nextRevision,
          };
        });
        expect(got).toEqual(want);
      }
      break;
    }
  }
}

/** Checks the state at every readable revision and the hash agreement between stores. */
function checkAll(m: Model, stores: MvccCore[]): void {
  for (let r = Math.max(m.compactRev, 1); r <= m.rev; r++) {
    const want = [...m.states[r].values()].sort((x, y) => cmpStr(x.key, y.key));
    for (const x of stores) expect(kvs(x.range({ key: b('\x00'), rangeEnd: b('\x00'), revision: r }).kvs)).toEqual(want);
  }
  for (const x of stores) {
    expect(x.valueStats().liveBytes).toBe(heldValueBytes(x));
    expect(x.revision).toBe(m.rev);
    expect(x.compactRevision).toBe(m.compactRev);
    expect(x.hashKV()).toEqual(stores[0].hashKV());
  }
}

describe('model-based', () => {
  test('the in-memory engine matches the naive model', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 120 }), (ops) => {
        const m = new Model();
        // The second keeps its values in slabs of 8 bytes: slabs fill, empty and are evacuated.
        const stores = [new MvccCore(), new MvccCore({ valueSlabBytes: 8 })];
        for (const o of ops) step(m, stores, o);
        checkAll(m, stores);
      }),
      { numRuns: 300 },
    );
  });

  test('a persisted store, flushed and reopened along the way, matches the model', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(opArb, fc.nat(9)), { minLength: 1, maxLength: 60 }), async (ops) => {
        let dir = tmpDir();
        const dirs: string[] = [];
        try {
          const m = new Model();
          let st = await MvccStore.open<{ n: number }>(dir, { valueSlabBytes: 8 });
          const mem = new MvccCore();
          let n = 0;
          for (const [o, dice] of ops) {
            step(m, [mem, st], o);
            if (dice === 0) await st.flush({ n: ++n });
            if (dice === 1) {
              await st.flush({ n: ++n });
              await st.close();
              st = await MvccStore.open<{ n: number }>(dir, { valueSlabBytes: 8 });
              expect(st.savedMeta).toEqual({ n });
            }
            if (dice === 2) {
              // Hand the state over through a snapshot, as to a lagging member.
              const chunks = st.writeSnapshot({ n: ++n });
              const next = tmpDir();
              const restored = await MvccStore.restoreSnapshot<{ n: number }>(next, chunks);
              await st.close();
              rmDir(dir);
              dirs.push(next);
              st = restored;
              dir = next;
              expect(st.savedMeta).toEqual({ n });
            }
          }
          await st.flush({ n: ++n });
          await st.close();
          st = await MvccStore.open<{ n: number }>(dir);
          checkAll(m, [mem, st]);
          step(m, [mem, st], { op: 'history', back: m.rev, span: m.rev + 1, key: undefined, end: undefined, eventsMax: 0 });
          await st.close();
        } finally {
          rmDir(dir);
          for (const d of dirs) rmDir(d);
        }
      }),
      { numRuns: 40 },
    );
  });
});

