// The in-memory engine: revisions, generations, range, write transactions, compaction,
// events and history, hash.

import { MvccCore, MvccError, RevisionEvents, isMvccError } from '../../../src/kv/mvcc';
import { b, ev, kv, kvs, revs } from './helpers';

const ALL = { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) };

function expectMvccError(f: () => unknown, code: string, message: string): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(MvccError);
  expect((err as MvccError).code).toBe(code);
  expect((err as MvccError).message).toBe(message);
}

describe('revisions', () => {
  test('an empty store is at revision 1, never compacted', () => {
    const st = new MvccCore();
    expect(st.revision).toBe(1);
    expect(st.compactRevision).toBe(0);
    expect(st.range(ALL)).toEqual({ kvs: [], count: 0, more: false });
  });

  test('each changing write txn takes the next revision; changes inside get subs 0,1,2', () => {
    const st = new MvccCore();
    expect(st.put(b('a'), b('1')).revision).toBe(2);
    const tw = st.write();
    expect(tw.beginRevision).toBe(2);
    tw.put(b('b'), b('1'));
    tw.put(b('c'), b('1'));
    tw.deleteRange(b('a'));
    expect(tw.end()).toBe(3);
    expect(st.revision).toBe(3);
    const h = st.eventsBetween({ fromRevision: 3 });
    expect(h.revisions.map((r) => r.events.map((e) => `${e.type}:${Buffer.from(e.kv.key).toString()}`))).toEqual([
      ['PUT:b', 'PUT:c', 'DELETE:a'],
    ]);
  });

  test('a txn that changes nothing does not bump the revision', () => {
    const st = new MvccCore();
    st.put(b('a'), b('1'));
    const tw = st.write();
    tw.range({ key: b('a') });
    expect(tw.end()).toBe(2);
    expect(st.revision).toBe(2);
    // Deleting nothing changes nothing.
    expect(st.deleteRange(b('zzz'))).toEqual({ revision: 2, deleted: [] });
    expect(st.deleteRange(b('x'), b('y'))).toEqual({ revision: 2, deleted: [] });
    expect(st.revision).toBe(2);
  });

  test('one write txn at a time; a txn is unusable after end()', () => {
    const st = new MvccCore();
    const tw = st.write();
    expect(() => st.write()).toThrow(/assertion failed/);
    tw.end();
    expect(() => tw.put(b('a'), b('1'))).toThrow(/assertion failed/);
    expect(() => st.write().end()).not.toThrow();
  });
});

describe('generations', () => {
  test('put keeps create revision and bumps version; delete ends the generation; recreate starts at version 1', () => {
    const st = new MvccCore();
    st.put(b('k'), b('v1'), 7); // 2
    st.put(b('k'), b('v2')); // 3
    expect(kv(st.get(b('k'))!)).toEqual({ key: 'k', value: 'v2', create: 2, mod: 3, ver: 2, lease: 0 });
    expect(kvs(st.deleteRange(b('k')).deleted)).toEqual([{ key: 'k', value: 'v2', create: 2, mod: 3, ver: 2, lease: 0 }]); // 4
    expect(st.get(b('k'))).toBeUndefined();
    const { prevKv } = st.put(b('k'), b('v3')); // 5
    expect(prevKv).toBeUndefined();
    expect(kv(st.get(b('k'))!)).toEqual({ key: 'k', value: 'v3', create: 5, mod: 5, ver: 1, lease: 0 });
    // Reads at every old revision see the state then.
    expect(st.get(b('k'), 1)).toBeUndefined();
    expect(kv(st.get(b('k'), 2)!)).toEqual({ key: 'k', value: 'v1', create: 2, mod: 2, ver: 1, lease: 7 });
    expect(kv(st.get(b('k'), 3)!)).toEqual({ key: 'k', value: 'v2', create: 2, mod: 3, ver: 2, lease: 0 });
    expect(st.get(b('k'), 4)).toBeUndefined();
    expect(kv(st.get(b('k'), 5)!).ver).toBe(1);
  });

  test('put returns the previous state (for prev_kv, ignore_value, ignore_lease)', () => {
    const st = new MvccCore();
    expect(st.put(b('k'), b('v1'), 5).prevKv).toBeUndefined();
    expect(kv(st.put(b('k'), b('v2')).prevKv!)).toEqual({ key: 'k', value: 'v1', create: 2, mod: 2, ver: 1, lease: 5 });
  });

  test('the store owns copies of views into larger buffers', () => {
    const st = new MvccCore();
    const big = Buffer.from('xxkeyxxvaluexx');
    st.put(big.subarray(2, 5), big.subarray(7, 12));
    big.fill(0);
    expect(kv(st.get(b('key'))!).value).toBe('value');
  });
});

describe('range', () => {
  function seeded(): MvccCore {
    const st = new MvccCore();
    st.put(b('a'), b('3')); // 2
    st.put(b('b'), b('1')); // 3
    st.put(b('c'), b('2')); // 4
    st.put(b('b'), b('4')); // 5 (b: create 3, version 2)
    st.put(b('d'), b('0')); // 6
    st.put(b('\x00'), b('z')); // 7
    return st;
  }
  const keys = (r: { kvs: { key: Uint8Array }[] }): string[] => r.kvs.map((x) => Buffer.from(x.key).toString('latin1'));

  test('single key, half-open range, >= key, all keys', () => {
    const st = seeded();
    expect(keys(st.range({ key: b('b') }))).toEqual(['b']);
    expect(keys(st.range({ key: b('b'), rangeEnd: new Uint8Array(0) }))).toEqual(['b']);
    expect(keys(st.range({ key: b('x') }))).toEqual([]);
    expect(keys(st.range({ key: b('a'), rangeEnd: b('c') }))).toEqual(['a', 'b']);
    expect(keys(st.range({ key: b('c'), rangeEnd: b('a') }))).toEqual([]); // rangeEnd <= key
    expect(keys(st.range({ key: b('b'), rangeEnd: new Uint8Array([0]) }))).toEqual(['b', 'c', 'd']);
    expect(keys(st.range(ALL))).toEqual(['\x00', 'a', 'b', 'c', 'd']);
    // Prefix range: [a, b) holds a and a\xff... but not b.
    st.put(b('a\xff'), b('p'));
    expect(keys(st.range({ key: b('a'), rangeEnd: b('b') }))).toEqual(['a', 'a\xff']);
  });

  test('key order is byte order', () => {
    const st = new MvccCore();
    for (const k of ['\xff', '\x7f', '\x80', 'a', 'A', '\x00\x01', '\x00']) st.put(b(k), b('v'));
    expect(keys(st.range({ key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) }))).toEqual([
      '\x00',
      '\x00\x01',
      'A',
      'a',
      '\x7f',
      '\x80',
      '\xff',
    ]);
  });

  test('limit, count and more', () => {
    const st = seeded();
    const r = st.range({ ...ALL, limit: 2 });
    expect(keys(r)).toEqual(['\x00', 'a']);
    expect(r.count).toBe(5);
    expect(r.more).toBe(true);
    const r2 = st.range({ ...ALL, limit: 5 });
    expect([keys(r2).length, r2.count, r2.more]).toEqual([5, 5, false]);
    const r3 = st.range({ ...ALL, limit: 0 });
    expect([keys(r3).length, r3.count, r3.more]).toEqual([5, 5, false]);
  });

  test('countOnly and keysOnly', () => {
    const st = seeded();
    expect(st.range({ ...ALL, countOnly: true })).toEqual({ kvs: [], count: 5, more: false });
    expect(st.range({ ...ALL, countOnly: true, limit: 1 })).toEqual({ kvs: [], count: 5, more: false });
    const r = st.range({ key: b('b'), keysOnly: true });
    expect(kvs(r.kvs)).toEqual([{ key: 'b', value: '', create: 3, mod: 5, ver: 2, lease: 0 }]);
    expect(kv(st.get(b('b'))!).value).toBe('4'); // the stored value is untouched
  });

  test('sort by every target, both orders; NONE with a non-KEY target sorts ascending', () => {
    const st = seeded();
    const all = { key: b('a'), rangeEnd: b('e') };
    expect(keys(st.range({ ...all, sortOrder: 'ASCEND', sortTarget: 'KEY' }))).toEqual(['a', 'b', 'c', 'd']);
    expect(keys(st.range({ ...all, sortOrder: 'DESCEND', sortTarget: 'KEY' }))).toEqual(['d', 'c', 'b', 'a']);
    expect(keys(st.range({ ...all, sortOrder: 'ASCEND', sortTarget: 'VALUE' }))).toEqual(['d', 'c', 'a', 'b']);
    expect(keys(st.range({ ...all, sortOrder: 'DESCEND', sortTarget: 'VALUE' }))).toEqual(['b', 'a', 'c', 'd']);
    expect(keys(st.range({ ...all, sortOrder: 'ASCEND', sortTarget: 'CREATE' }))).toEqual(['a', 'b', 'c', 'd']);
    expect(keys(st.range({ ...all, sortOrder: 'DESCEND', sortTarget: 'CREATE' }))).toEqual(['d', 'c', 'b', 'a']);
    expect(keys(st.range({ ...all, sortOrder: 'ASCEND', sortTarget: 'MOD' }))).toEqual(['a', 'c', 'b', 'd']);
    expect(keys(st.range({ ...all, sortOrder: 'DESCEND', sortTarget: 'MOD' }))).toEqual(['d', 'b', 'c', 'a']);
    // version: a=1 b=2 c=1 d=1; ties stay in key order (the sort is stable)
    expect(keys(st.range({ ...all, sortOrder: 'ASCEND', sortTarget: 'VERSION' }))).toEqual(['a', 'c', 'd', 'b']);
    expect(keys(st.range({ ...all, sortOrder: 'DESCEND', sortTarget: 'VERSION' }))).toEqual(['b', 'a', 'c', 'd']);
    // etcd: order NONE + target KEY = key order; order NONE + other target = ASCEND.
    expect(keys(st.range({ ...all, sortOrder: 'NONE', sortTarget: 'KEY' }))).toEqual(['a', 'b', 'c', 'd']);
    expect(keys(st.range({ ...all, sortOrder: 'NONE', sortTarget: 'MOD' }))).toEqual(['a', 'c', 'b', 'd']);
  });

  test('sort with limit: a sort order reads everything, then truncates', () => {
    const st = seeded();
    const all = { key: b('a'), rangeEnd: b('e') };
    const r = st.range({ ...all, sortOrder: 'DESCEND', sortTarget: 'MOD', limit: 2 });
    expect([keys(r), r.count, r.more]).toEqual([['d', 'b'], 4, true]);
    // etcd quirk: order NONE with a non-KEY target reads only limit+1 keys (in key order),
    // then sorts those ascending and truncates.
    const q = st.range({ ...all, sortOrder: 'NONE', sortTarget: 'VALUE', limit: 1 });
    // first 2 keys by key: a(3) b(4) -> sorted by value: a, b -> first: a
    expect([keys(q), q.count, q.more]).toEqual([['a'], 4, true]);
  });

  test('min/max mod and create revision filters apply after reading; count is before them', () => {
    const st = seeded();
    const all = { key: b('a'), rangeEnd: b('e') };
    // a: c2 m2, b: c3 m5, c: c4 m4, d: c6 m6
    let r = st.range({ ...all, minModRevision: 4 });
    expect([keys(r), r.count, r.more]).toEqual([['b', 'c', 'd'], 4, false]);
    r = st.range({ ...all, maxModRevision: 4 });
    expect([keys(r), r.count]).toEqual([['a', 'c'], 4]);
    r = st.range({ ...all, minCreateRevision: 3, maxCreateRevision: 4 });
    expect([keys(r), r.count]).toEqual([['b', 'c'], 4]);
    // more: filtered results beyond limit
    r = st.range({ ...all, minModRevision: 4, limit: 2 });
    expect([keys(r), r.count, r.more]).toEqual([['b', 'c'], 4, true]);
    r = st.range({ ...all, minModRevision: 5, limit: 2 });
    expect([keys(r), r.count, r.more]).toEqual([['b', 'd'], 4, false]);
    // countOnly ignores filters (etcd counts in the index)
    expect(st.range({ ...all, minModRevision: 5, countOnly: true }).count).toBe(4);
  });

  test('reads at old revisions, errors at compacted and future revisions', () => {
    const st = seeded();
    expect(keys(st.range({ ...ALL, revision: 3 }))).toEqual(['a', 'b']);
    expect(kv(st.range({ key: b('b'), revision: 4 }).kvs[0]).value).toBe('1');
    expect(st.range({ ...ALL, revision: 1 }).count).toBe(0);
    expectMvccError(() => st.range({ ...ALL, revision: 8 }), 'ERR_FUTURE_REV', 'mvcc: required revision is a future revision');
    st.compact(4);
    expectMvccError(() => st.range({ ...ALL, revision: 3 }), 'ERR_COMPACTED', 'mvcc: required revision has been compacted');
    expect(keys(st.range({ ...ALL, revision: 4 }))).toEqual(['a', 'b', 'c']); // the compacted revision itself is readable
    expect(kv(st.range({ key: b('b'), revision: 4 }).kvs[0]).value).toBe('1');
  });
});

describe('write transactions', () => {
  test('reads inside a write txn see its own earlier writes; other readers do not until end()', () => {
    const st = new MvccCore();
    st.put(b('a'), b('1')); // 2
    const tw = st.write();
    expect(tw.revision).toBe(2);
    expect(kv(tw.put(b('a'), b('2'))!.kv).value).toBe('1');
    expect(tw.revision).toBe(3);
    expect(kv(tw.get(b('a'))!)).toEqual({ key: 'a', value: '2', create: 2, mod: 3, ver: 2, lease: 0 });
    expect(kvs(tw.range({ key: b('a') }).kvs)[0].value).toBe('2');
    // a read in the txn may ask for its revision, not beyond
    expect(tw.range({ key: b('a'), revision: 3 }).kvs.length).toBe(1);
    expect(() => tw.range({ key: b('a'), revision: 4 })).toThrow(MvccError);
    tw.put(b('n'), b('x'));
    expect(tw.range({ key: b('a'), rangeEnd: b('z') }).count).toBe(2);
    // outside the txn: still revision 2
    expect(kv(st.get(b('a'))!).value).toBe('1');
    expect(st.get(b('n'))).toBeUndefined();
    expect(() => st.range({ key: b('a'), revision: 3 })).toThrow(MvccError); // not yet committed: future
    expect(st.range({ key: b('a'), rangeEnd: b('z') }).count).toBe(1);
    tw.end();
    expect(st.range({ key: b('a'), rangeEnd: b('z') }).count).toBe(2);
  });

  test('delete then put of the same key in one txn starts a new generation at this revision', () => {
    const st = new MvccCore();
    st.put(b('k'), b('1')); // 2
    st.put(b('k'), b('2')); // 3
    const tw = st.write();
    expect(kvs(tw.deleteRange(b('k')))).toEqual([{ key: 'k', value: '2', create: 2, mod: 3, ver: 2, lease: 0 }]);
    expect(tw.get(b('k'))).toBeUndefined();
    expect(tw.put(b('k'), b('3'))).toBeUndefined();
    tw.end(); // 4
    expect(kv(st.get(b('k'))!)).toEqual({ key: 'k', value: '3', create: 4, mod: 4, ver: 1, lease: 0 });
  });

  test('put then delete of a new key in one txn leaves it absent', () => {
    const st = new MvccCore();
    const tw = st.write();
    tw.put(b('k'), b('1'));
    expect(kvs(tw.deleteRange(b('k')))).toHaveLength(1);
    expect(tw.end()).toBe(2);
    expect(st.get(b('k'))).toBeUndefined();
    expect(st.range(ALL).count).toBe(0);
  });

  test('two puts to one key in one txn: version counts both, events both', () => {
    const st = new MvccCore();
    const seen: RevisionEvents[] = [];
    st.onRevision((e) => seen.push(e));
    st.put(b('k'), b('0')); // 2
    const tw = st.write();
    tw.put(b('k'), b('1'));
    expect(kv(tw.put(b('k'), b('2'))!.kv).value).toBe('1');
    tw.end(); // 3
    expect(kv(st.get(b('k'))!)).toEqual({ key: 'k', value: '2', create: 2, mod: 3, ver: 3, lease: 0 });
    // As etcd's watch: prevKv is the state before the revision (mod_revision - 1) for both.
    expect(revs(seen.slice(1))).toEqual([
      {
        rev: 3,
        events: [
          { type: 'PUT', kv: { key: 'k', value: '1', create: 2, mod: 3, ver: 2, lease: 0 }, prev: { key: 'k', value: '0', create: 2, mod: 2, ver: 1, lease: 0 } },
          { type: 'PUT', kv: { key: 'k', value: '2', create: 2, mod: 3, ver: 3, lease: 0 }, prev: { key: 'k', value: '0', create: 2, mod: 2, ver: 1, lease: 0 } },
        ],
      },
    ]);
  });
});

describe('compaction', () => {
  test('errors: at or below the compacted revision, above the current one', () => {
    const st = new MvccCore();
    st.put(b('a'), b('1'));
    st.put(b('a'), b('2')); // 3
    expectMvccError(() => st.compact(4), 'ERR_FUTURE_REV', 'mvcc: required revision is a future revision');
    st.compact(2);
    expectMvccError(() => st.compact(2), 'ERR_COMPACTED', 'mvcc: required revision has been compacted');
    expectMvccError(() => st.compact(1), 'ERR_COMPACTED', 'mvcc: required revision has been compacted');
    st.compact(3);
    expect(st.compactRevision).toBe(3);
    expect(st.revision).toBe(3); // compaction does not change the revision
  });

  test('keeps each key\'s latest revision <= rev unless deleted, drops the rest', () => {
    const st = new MvccCore();
    st.put(b('a'), b('a1')); // 2
    st.put(b('a'), b('a2')); // 3
    st.put(b('b'), b('b1')); // 4
    st.deleteRange(b('b')); // 5
    st.put(b('c'), b('c1')); // 6
    st.deleteRange(b('c')); // 7
    st.put(b('c'), b('c2')); // 8
    st.compact(6);
    // a: 3 kept (readable at 6 and later); b: deleted at 5 -> gone from the index
    expect(kv(st.get(b('a'), 6)!).value).toBe('a2');
    expect(st.get(b('b'), 6)).toBeUndefined();
    expect(kv(st.get(b('c'), 6)!).value).toBe('c1');
    expect(st.get(b('c'), 7)).toBeUndefined();
    expect(kv(st.get(b('c'), 8)!)).toEqual({ key: 'c', value: 'c2', create: 8, mod: 8, ver: 1, lease: 0 });
    expect(st.indexedKeyCount).toBe(2); // b removed entirely
    st.compact(7); // c's tombstone at 7 is the latest <= 7: dropped with what precedes it
    expect(st.get(b('c'), 7)).toBeUndefined();
    expect(kv(st.get(b('a'), 7)!).value).toBe('a2');
    expect(st.indexedKeyCount).toBe(2);
    st.deleteRange(b('a')); // 9
    st.compact(9);
    expect(st.indexedKeyCount).toBe(1);
    expect(kvs(st.range(ALL).kvs)).toEqual([{ key: 'c', value: 'c2', create: 8, mod: 8, ver: 1, lease: 0 }]);
  });

  test('the etcd key_index_test history through the store (sub revision 15.1)', () => {
    const st = new MvccCore();
    // revisions 2..16, key "foo" at 2, 4, del 6, 8, 10, del 12, 14, 15.1, del 16; "x" fills the rest
    for (let r = 2; r <= 16; r++) {
      const tw = st.write();
      if ([2, 4, 8, 10, 14].includes(r)) tw.put(b('foo'), b(`v${r}`));
      else if ([6, 12, 16].includes(r)) tw.deleteRange(b('foo'));
      else if (r === 15) {
        tw.put(b('x'), b(`x${r}`));
        tw.put(b('foo'), b('v15'));
      } else tw.put(b('x'), b(`x${r}`));
      expect(tw.end()).toBe(r);
    }
    st.compact(4);
    const at = (rev: number): string | undefined => {
      const x = st.get(b('foo'), rev);
      return x === undefined ? undefined : `${x.modRevision}/${x.createRevision}/${x.version}`;
    };
    expect([17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4].map((r) => (r > 16 ? 'future' : at(r)))).toEqual([
      'future',
      undefined,
      '15/14/2',
      '14/14/1',
      undefined,
      undefined,
      '10/8/2',
      '10/8/2',
      '8/8/1',
      '8/8/1',
      undefined,
      undefined,
      '4/2/2',
      '4/2/2',
    ]);
  });
});

describe('events and history', () => {
  test('listeners get each committed revision with prevKv; dispose stops them', () => {
    const st = new MvccCore();
    const seen: RevisionEvents[] = [];
    const sub = st.onRevision((e) => seen.push(e));
    st.put(b('a'), b('1'), 3); // 2
    st.put(b('a'), b('2')); // 3
    st.write().end(); // nothing
    st.deleteRange(b('a'), b('b')); // 4
    sub.dispose();
    st.put(b('a'), b('3')); // 5
    expect(revs(seen)).toEqual([
      { rev: 2, events: [{ type: 'PUT', kv: { key: 'a', value: '1', create: 2, mod: 2, ver: 1, lease: 3 } }] },
      {
        rev: 3,
        events: [{ type: 'PUT', kv: { key: 'a', value: '2', create: 2, mod: 3, ver: 2, lease: 0 }, prev: { key: 'a', value: '1', create: 2, mod: 2, ver: 1, lease: 3 } }],
      },
      {
        rev: 4,
        events: [{ type: 'DELETE', kv: { key: 'a', value: '', create: 0, mod: 4, ver: 0, lease: 0 }, prev: { key: 'a', value: '2', create: 2, mod: 3, ver: 2, lease: 0 } }],
      },
    ]);
  });

  test('a throwing listener does not stop the others, and the write is committed', () => {
    const st = new MvccCore();
    const seen: number[] = [];
    st.onRevision(() => {
      throw new Error('boom');
    });
    st.onRevision((e) => seen.push(e.revision));
    expect(() => st.put(b('a'), b('1'))).toThrow('boom');
    expect(seen).toEqual([2]);
    expect(st.revision).toBe(2);
    expect(() => st.write().end()).not.toThrow();
  });

  test('eventsBetween returns history equal to what listeners saw', () => {
    const st = new MvccCore();
    const seen: RevisionEvents[] = [];
    st.onRevision((e) => seen.push(e));
    st.put(b('a'), b('1'));
    st.put(b('b'), b('1'));
    const tw = st.write();
    tw.put(b('a'), b('2'));
    tw.deleteRange(b('b'));
    tw.end();
    st.put(b('c'), b('1'));
    expect(revs(st.eventsBetween({ fromRevision: 1 }).revisions)).toEqual(revs(seen));
    expect(revs(st.eventsBetween({ fromRevision: 3, toRevision: 4 }).revisions)).toEqual(revs(seen.slice(1, 3)));
    expect(st.eventsBetween({ fromRevision: 6 })).toEqual({ revisions: [], nextRevision: 6 });
  });

  test('eventsBetween: key filter, eventsMax never splits a revision, nextRevision continues', () => {
    const st = new MvccCore();
    st.put(b('a'), b('1')); // 2
    const tw = st.write(); // 3: two events
    tw.put(b('a'), b('2'));
    tw.put(b('b'), b('2'));
    tw.end();
    st.put(b('c'), b('1')); // 4
    st.put(b('a'), b('3')); // 5
    let h = st.eventsBetween({ fromRevision: 2, eventsMax: 2 });
    expect(h.revisions.map((r) => [r.revision, r.events.length])).toEqual([
      [2, 1],
      [3, 2],
    ]);
    expect(h.nextRevision).toBe(4);
    h = st.eventsBetween({ fromRevision: h.nextRevision, eventsMax: 2 });
    expect(h.revisions.map((r) => r.revision)).toEqual([4, 5]);
    expect(h.nextRevision).toBe(6);
    // only key a
    h = st.eventsBetween({ fromRevision: 2, key: b('a') });
    expect(h.revisions.map((r) => [r.revision, r.events.length])).toEqual([
      [2, 1],
      [3, 1],
      [5, 1],
    ]);
    // [b, d)
    h = st.eventsBetween({ fromRevision: 2, key: b('b'), rangeEnd: b('d') });
    expect(h.revisions.map((r) => r.revision)).toEqual([3, 4]);
    expect(h.nextRevision).toBe(6);
  });

  test('after compaction: below the compacted revision is compacted; from it, every event is there', () => {
    const st = new MvccCore();
    st.put(b('a'), b('1')); // 2
    st.put(b('b'), b('1')); // 3
    const tw = st.write(); // 4: delete a, put b
    tw.deleteRange(b('a'));
    tw.put(b('b'), b('2'));
    tw.end();
    st.put(b('b'), b('3')); // 5
    st.compact(4);
    expectMvccError(() => st.eventsBetween({ fromRevision: 3 }), 'ERR_COMPACTED', 'mvcc: required revision has been compacted');
    const h = st.eventsBetween({ fromRevision: 4 });
    // The deletion at the compacted revision is still reported (etcd loses it); events at the
    // compacted revision carry no prevKv (etcd cannot read compactRev - 1 either).
    expect(revs(h.revisions)).toEqual([
      {
        rev: 4,
        events: [
          { type: 'DELETE', kv: { key: 'a', value: '', create: 0, mod: 4, ver: 0, lease: 0 } },
          { type: 'PUT', kv: { key: 'b', value: '2', create: 3, mod: 4, ver: 2, lease: 0 } },
        ],
      },
      {
        rev: 5,
        events: [{ type: 'PUT', kv: { key: 'b', value: '3', create: 3, mod: 5, ver: 3, lease: 0 }, prev: { key: 'b', value: '2', create: 3, mod: 4, ver: 2, lease: 0 } }],
      },
    ]);
    st.compact(5);
    expect(() => st.eventsBetween({ fromRevision: 4 })).toThrow(MvccError);
    expect(st.eventsBetween({ fromRevision: 5 }).revisions.map((r) => r.events.map(ev))).toEqual([
      [{ type: 'PUT', kv: { key: 'b', value: '3', create: 3, mod: 5, ver: 3, lease: 0 } }],
    ]);
  });
});

describe('hashKV', () => {
  function feed(st: MvccCore): void {
    st.put(b('a'), b('1'), 9);
    st.put(b('b'), b('2'));
    st.deleteRange(b('a'));
    st.put(b('a'), b('3'));
    const tw = st.write();
    tw.put(b('c'), b('4'));
    tw.put(b('d'), b('5'));
    tw.end();
    st.compact(4);
    st.put(b('b'), b('6'));
  }

  test('two stores fed the same writes agree; any difference changes the hash', () => {
    const x = new MvccCore();
    const y = new MvccCore();
    feed(x);
    feed(y);
    expect(x.hashKV()).toEqual(y.hashKV());
    expect(x.hashKV(5)).toEqual(y.hashKV(5));
    expect(x.hashKV()).toEqual({ hash: expect.any(Number), hashRevision: 7, compactRevision: 4, revision: 7 });
    expect(x.hashKV(5).hash).not.toBe(x.hashKV(6).hash);
    const hashBefore = x.hashKV(7).hash;
    x.put(b('b'), b('6')); // same value, another revision
    expect(x.hashKV(7).hash).toBe(hashBefore); // the past does not change
    expect(x.hashKV().hash).not.toBe(y.hashKV().hash);
    y.put(b('b'), b('7'));
    expect(x.hashKV().hash).not.toBe(y.hashKV().hash);
  });

  test('errors at compacted and future revisions', () => {
    const x = new MvccCore();
    feed(x);
    expect(() => x.hashKV(4)).toThrow(MvccError);
    expect(isMvccError((() => { try { x.hashKV(99); } catch (e) { return e; } })(), 'ERR_FUTURE_REV')).toBe(true);
  });
});
