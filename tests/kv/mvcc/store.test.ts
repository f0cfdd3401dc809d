// MvccStore: persistence (flush/reopen), compaction on disk, snapshots, size.

import { ClassicLevel } from 'classic-level';
import { MvccCore, MvccStore, RevisionEvents, isMvccError, mvccLimits } from '../../../src/kv/mvcc';
import { b, collect, fromChunks, kvs, revs, rmDir, tmpDir } from './helpers';

const ALL = { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) };

interface Meta {
  consistentIndex: number;
  term: number;
}

/** Everything observable about a store's state, for equality between two stores. */
function observe(st: MvccCore): unknown {
  const out: Record<string, unknown> = {
    revision: st.revision,
    compactRevision: st.compactRevision,
    keys: st.indexedKeyCount,
    hash: st.hashKV(),
    history: revs(st.eventsBetween({ fromRevision: st.compactRevision }).revisions),
  };
  for (let r = Math.max(st.compactRevision, 1); r <= st.revision; r++) out[`at${r}`] = kvs(st.range({ ...ALL, revision: r }).kvs);
  return out;
}

function workload(st: MvccCore, n: number, seed = 1): void {
  let x = seed;
  const rnd = (m: number): number => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x % m;
  };
  for (let i = 0; i < n; i++) {
    const tw = st.write();
    const ops = 1 + rnd(3);
    for (let j = 0; j < ops; j++) {
      const k = b(`k${rnd(20)}`);
      if (rnd(5) === 0) tw.deleteRange(k, rnd(2) === 0 ? undefined : b(`k${rnd(20)}`));
      else tw.put(k, b(`v${i}.${j}`.repeat(1 + rnd(4))), rnd(3));
    }
    tw.end();
    if (rnd(15) === 0 && st.revision > st.compactRevision + 2) st.compact(st.revision - 1 - rnd(2));
  }
}

describe('MvccStore persistence', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir();
  });
  afterEach(() => rmDir(dir));

  test('a fresh store is empty at revision 1 with no meta', async () => {
    const st = await MvccStore.open<Meta>(dir);
    expect([st.revision, st.compactRevision, st.savedMeta]).toEqual([1, 0, undefined]);
    await st.close();
    const again = await MvccStore.open<Meta>(dir);
    expect([again.revision, again.savedMeta]).toEqual([1, undefined]);
    await again.close();
  });

  test('write, flush, close, reopen: the same state and meta', async () => {
    const st = await MvccStore.open<Meta>(dir);
    workload(st, 200);
    await st.flush({ consistentIndex: 42, term: 3 });
    expect(st.savedMeta).toEqual({ consistentIndex: 42, term: 3 });
    const before = observe(st);
    await st.close();
    const re = await MvccStore.open<Meta>(dir);
    expect(re.savedMeta).toEqual({ consistentIndex: 42, term: 3 });
    expect(observe(re)).toEqual(before);
    // And it goes on from there identically.
    workload(re, 50, 7);
    await re.flush({ consistentIndex: 43, term: 3 });
    const after = observe(re);
    await re.close();
    const re2 = await MvccStore.open<Meta>(dir);
    expect(observe(re2)).toEqual(after);
    await re2.close();
  });

  test('unflushed changes are not on disk; flushed state and meta match', async () => {
    const st = await MvccStore.open<Meta>(dir);
    st.put(b('a'), b('1'));
    await st.flush({ consistentIndex: 1, term: 1 });
    const flushed = observe(st);
    st.put(b('a'), b('2'));
    st.compact(3);
    expect(st.pendingCount).toBe(2);
    await st.close();
    const re = await MvccStore.open<Meta>(dir);
    expect(observe(re)).toEqual(flushed);
    expect(re.savedMeta).toEqual({ consistentIndex: 1, term: 1 });
    await re.close();
  });

  test('flush writes one batch: everything since the last flush plus meta, in call order', async () => {
    const st = await MvccStore.open<Meta>(dir);
    const p: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) {
      st.put(b(`k${i % 3}`), b(`v${i}`));
      p.push(st.flush({ consistentIndex: i, term: 1 })); // not awaited: they queue in order
    }
    await Promise.all(p);
    expect(st.pendingCount).toBe(0);
    const before = observe(st);
    await st.close();
    const re = await MvccStore.open<Meta>(dir);
    expect(observe(re)).toEqual(before);
    expect(re.savedMeta).toEqual({ consistentIndex: 19, term: 1 });
    await re.close();
  });

  test('compaction is persisted: dropped revisions leave the disk, history from the compacted revision stays', async () => {
    const st = await MvccStore.open<Meta>(dir);
    st.put(b('a'), b('1')); // 2
    st.put(b('a'), b('2')); // 3
    st.put(b('b'), b('1')); // 4
    const tw = st.write(); // 5
    tw.deleteRange(b('b'));
    tw.put(b('c'), b('1'));
    tw.end();
    st.put(b('c'), b('2')); // 6
    await st.flush({ consistentIndex: 6, term: 1 });
    st.compact(5);
    await st.flush({ consistentIndex: 7, term: 1 });
    const before = observe(st);
    await st.close();

    const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    const keys = await db.keys({ gte: Buffer.from('r'), lt: Buffer.from('s') }).all();
    await db.close();
    const mains = keys.map((k) => k.readUInt32BE(5) + '.' + k.readUInt32BE(9));
    // 2 (a superseded) and 4 (b deleted at 5) are gone; 3 kept (a's latest); 5's records stay for history.
    expect(mains).toEqual(['3.0', '5.0', '5.1', '6.0']);

    const re = await MvccStore.open<Meta>(dir);
    expect(observe(re)).toEqual(before);
    expect(revs(re.eventsBetween({ fromRevision: 5 }).revisions)[0].events.map((e) => e.type)).toEqual(['DELETE', 'PUT']);
    re.compact(6); // now the records of 5 that left the index go too
    await re.flush({ consistentIndex: 8, term: 1 });
    const after = observe(re);
    await re.close();
    const re2 = await MvccStore.open<Meta>(dir);
    expect(observe(re2)).toEqual(after);
    expect(re2.compactRevision).toBe(6);
    await re2.close();
  });

  test('dbSizeBytes grows with data', async () => {
    const st = await MvccStore.open<Meta>(dir);
    const empty = st.dbSizeBytes();
    for (let i = 0; i < 200; i++) st.put(b(`k${i}`), new Uint8Array(1000).fill(i));
    await st.flush({ consistentIndex: 1, term: 1 });
    expect(st.dbSizeBytes()).toBeGreaterThan(empty + 100_000);
    await st.close();
  });

  test('reopened stores and fresh ones fed the same writes hash alike', async () => {
    const st = await MvccStore.open<Meta>(dir);
    const mem = new MvccCore();
    workload(st, 300, 3);
    workload(mem, 300, 3);
    await st.flush({ consistentIndex: 300, term: 2 });
    await st.close();
    const re = await MvccStore.open<Meta>(dir);
    expect(re.hashKV()).toEqual(mem.hashKV());
    await re.close();
  });

  test('a closed store refuses flushes and writes', async () => {
    const st = await MvccStore.open<Meta>(dir);
    await st.close();
    await expect(st.flush({ consistentIndex: 1, term: 1 })).rejects.toThrow();
    expect(() => st.write()).toThrow();
  });
});

describe('MvccStore snapshots', () => {
  const dirs: string[] = [];
  const dir = (): string => {
    const d = tmpDir();
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmDir(d);
  });

  test('round trip: same state, revisions and meta; chunks are bounded', async () => {
    const src = await MvccStore.open<Meta>(dir());
    workload(src, 300, 5);
    for (let i = 0; i < 5; i++) src.put(b(`big${i}`), new Uint8Array(700_000).fill(i)); // forces several chunks
    const chunks = await collect(src.writeSnapshot({ consistentIndex: 99, term: 4 }));
    expect(chunks.length).toBeGreaterThan(2);
    for (const c of chunks) expect(c.length).toBeLessThanOrEqual(mvccLimits.snapshotChunkBytesMax);
    const dst = await MvccStore.restoreSnapshot<Meta>(dir(), fromChunks(chunks));
    expect(dst.savedMeta).toEqual({ consistentIndex: 99, term: 4 });
    expect(observe(dst)).toEqual(observe(src));
    await src.close();
    await dst.close();
  });

  test('a snapshot is one point in time while writes, compactions and flushes go on', async () => {
    const src = await MvccStore.open<Meta>(dir());
    workload(src, 200, 11);
    const stream = src.writeSnapshot({ consistentIndex: 200, term: 1 });
    const expected = observe(src);
    const expectedHash = src.hashKV();
    // Keep applying while the stream is read.
    const it = stream[Symbol.asyncIterator]();
    const chunks: Uint8Array[] = [];
    let i = 0;
    for (;;) {
      workload(src, 20, 100 + i);
      if (src.revision - 2 > src.compactRevision) src.compact(src.revision - 2);
      void src.flush({ consistentIndex: 201 + i, term: 1 });
      i++;
      const r = await it.next();
      if (r.done === true) break;
      chunks.push(new Uint8Array(r.value));
    }
    expect(i).toBeGreaterThan(1);
    const dst = await MvccStore.restoreSnapshot<Meta>(dir(), fromChunks(chunks));
    expect(dst.savedMeta).toEqual({ consistentIndex: 200, term: 1 });
    expect(observe(dst)).toEqual(expected);
    expect(dst.hashKV()).toEqual(expectedHash);
    await src.close();
    await dst.close();
  });

  test('without meta: the state of the last flush', async () => {
    const src = await MvccStore.open<Meta>(dir());
    src.put(b('a'), b('1'));
    await src.flush({ consistentIndex: 1, term: 1 });
    const flushed = observe(src);
    src.put(b('a'), b('2')); // not flushed
    const dst = await MvccStore.restoreSnapshot<Meta>(dir(), fromChunks(await collect(src.writeSnapshot())));
    expect(dst.savedMeta).toEqual({ consistentIndex: 1, term: 1 });
    expect(observe(dst)).toEqual(flushed);
    await src.close();
    await dst.close();
  });

  test('restore replaces an existing store and it goes on like the source', async () => {
    const src = await MvccStore.open<Meta>(dir());
    workload(src, 150, 21);
    const target = dir();
    const old = await MvccStore.open<Meta>(target);
    workload(old, 30, 99);
    await old.flush({ consistentIndex: 5, term: 1 });
    await old.close();
    const dst = await MvccStore.restoreSnapshot<Meta>(target, src.writeSnapshot({ consistentIndex: 150, term: 2 }));
    const seenSrc: RevisionEvents[] = [];
    const seenDst: RevisionEvents[] = [];
    src.onRevision((e) => seenSrc.push(e));
    dst.onRevision((e) => seenDst.push(e));
    workload(src, 40, 8);
    workload(dst, 40, 8);
    expect(observe(dst)).toEqual(observe(src));
    expect(revs(seenDst)).toEqual(revs(seenSrc));
    await src.close();
    await dst.close();
  });

  test('corrupt, truncated or foreign streams are refused and leave the target untouched', async () => {
    const src = await MvccStore.open<Meta>(dir());
    workload(src, 100, 2);
    const chunks = await collect(src.writeSnapshot({ consistentIndex: 1, term: 1 }));
    await src.close();
    const target = dir();
    const keep = await MvccStore.open<Meta>(target);
    keep.put(b('mine'), b('1'));
    await keep.flush({ consistentIndex: 7, term: 7 });
    await keep.close();

    const whole = Buffer.concat(chunks);
    const flipped = Buffer.from(whole);
    flipped[Math.floor(flipped.length / 2)] ^= 0xff;
    const cases: Uint8Array[][] = [
      [whole.subarray(0, whole.length - 5)], // truncated
      [whole.subarray(0, Math.floor(whole.length / 2))],
      [flipped],
      [Buffer.concat([whole, Buffer.from('x')])], // trailing bytes
      [Buffer.from('not a snapshot at all')],
      [],
    ];
    for (const c of cases) {
      let err: unknown;
      try {
        await MvccStore.restoreSnapshot<Meta>(target, fromChunks(c));
      } catch (e) {
        err = e;
      }
      expect(isMvccError(err, 'ERR_SNAPSHOT_INVALID')).toBe(true);
    }
    const after = await MvccStore.open<Meta>(target);
    expect(after.savedMeta).toEqual({ consistentIndex: 7, term: 7 });
    expect(kvs(after.range(ALL).kvs).map((x) => x.key)).toEqual(['mine']);
    await after.close();
    // Splitting the same bytes differently restores fine.
    const pieces: Uint8Array[] = [];
    for (let i = 0; i < whole.length; i += 777) pieces.push(whole.subarray(i, i + 777));
    const ok = await MvccStore.restoreSnapshot<Meta>(target, fromChunks(pieces));
    expect(ok.savedMeta).toEqual({ consistentIndex: 1, term: 1 });
    const okHash = ok.hashKV();
    await ok.close();
    // Even byte by byte (the magic and every frame header split), with empty chunks between.
    const tiny: Uint8Array[] = [];
    for (let i = 0; i < whole.length; i += 3) tiny.push(whole.subarray(i, i + 3), new Uint8Array(0));
    const ok2 = await MvccStore.restoreSnapshot<Meta>(target, fromChunks(tiny));
    expect(ok2.hashKV()).toEqual(okHash);
    await ok2.close();
  });
});
