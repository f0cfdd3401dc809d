// The Raft log on disk (wal.ts, disk-storage.ts): random histories of appends, conflicting
// suffixes, hard states, compactions and installed snapshots, checked against a plain model
// after every reopen, with segments small enough to be cut and deleted all the time; torn
// and corrupt files.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { DiskStorage } from '../../src/raft/disk-storage';
import { Entry, EntryType, HardState, SnapshotMetadata } from '../../src/raft/types';
import { seededRandom } from '../../src/raft/util';
import { sealRecord, Wal, WalWriteMode } from '../../src/raft/wal';
import { withTempDir } from '../helpers/temp-dir';

const cs = { voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };

function mkEntry(index: number, term: number, size: number, salt: number): Entry {
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (index * 31 + term * 7 + salt + i) & 0xff;
  return { index, term, type: size % 11 === 0 ? EntryType.ConfChange : EntryType.Normal, data };
}

/** What the log should hold. */
class Model {
  snap = { index: 0, term: 0 };
  ents: Entry[] = [];
  hs: HardState = { term: 0, vote: 0, commit: 0 };
  get last(): number {
    return this.snap.index + this.ents.length;
  }
  term(i: number): number {
    return i === this.snap.index ? this.snap.term : this.ents[i - this.snap.index - 1].term;
  }
}

function expectSame(s: DiskStorage, m: Model): void {
  expect(s.firstIndex()).toBe(m.snap.index + 1);
  expect(s.lastIndex()).toBe(m.last);
  expect(s.term(m.snap.index)).toBe(m.snap.term);
  const got = m.last >= m.snap.index + 1 ? s.entries(m.snap.index + 1, m.last + 1, Infinity) : [];
  expect(got.length).toBe(m.ents.length);
  got.forEach((e, i) => {
    const w = m.ents[i];
    expect([e.index, e.term, e.type]).toEqual([w.index, w.term, w.type]);
    expect(Buffer.from(e.data).equals(Buffer.from(w.data))).toBe(true);
  });
  expect(s.hardStateNow()).toEqual({ ...m.hs, commit: Math.min(m.hs.commit, m.last) });
}

const withDir = (f: (dir: string) => Promise<void>): Promise<void> => withTempDir('wal-', f);

/** Writes 20 entries into small segments; returns the segment files. */
async function writeSegments(dir: string, opts: { segmentBytes: number }): Promise<string[]> {
  const s = await DiskStorage.open(dir, opts);
  for (let i = 1; i <= 20; i++) await s.save({ entries: [mkEntry(i, 1, 200, 0)], hardState: { term: 1, vote: 1, commit: 0 }, sync: true });
  const files = s.walFiles();
  await s.close();
  return files;
}

/**
 * `pipelined`: appends and commit-index writes are not waited for (as a pipelined Raft node
 * makes them), so that background writes queue up behind the one in flight and go out
 * together.
 */
async function randomHistory(seed: number, mode: WalWriteMode, cacheBytes?: number, pipelined = false): Promise<void> {
  await withDir(async (dir) => {
    const rng = seededRandom(seed);
    const rnd = (): number => rng.float();
    const int = (n: number): number => rng.int(n);
    const opts = { segmentBytes: 2048, mode, ...(cacheBytes !== undefined ? { cacheBytes } : {}) };
    let s = await DiskStorage.open(dir, opts);
    const m = new Model();
    let term = 1;
    let pending: Promise<void>[] = [];
    const written = async (p: Promise<void>): Promise<void> => {
      if (pipelined) pending.push(p);
      else await p;
    };
    for (let step = 0; step < 250; step++) {
      const r = rnd();
      if (r < 0.45) {
        // Append at the end, or replace a suffix after the commit index.
        const from = rnd() < 0.8 ? m.last + 1 : m.hs.commit + 1 + int(Math.max(1, m.last - m.hs.commit));
        if (from <= m.snap.index) continue;
        if (rnd() < 0.2) term++;
        const es: Entry[] = [];
        const n = 1 + int(6);
        for (let i = 0; i < n; i++) es.push(mkEntry(from + i, term, int(3) === 0 ? 0 : int(400), seed + step));
        const hs = { term, vote: 1 + int(3), commit: m.hs.commit };
        await written(s.save({ entries: es, hardState: hs, sync: true }));
        m.ents = [...m.ents.slice(0, from - m.snap.index - 1), ...es];
        m.hs = hs;
      } else if (r < 0.6) {
        // The commit index advances.
        if (m.hs.commit >= m.last) continue;
        m.hs = { ...m.hs, commit: m.hs.commit + 1 + int(m.last - m.hs.commit) };
        await written(s.save({ entries: [], hardState: m.hs, sync: true }));
      } else if (r < 0.72) {
        // Compaction up to some committed entry.
        if (m.hs.commit <= m.snap.index) continue;
        const c = m.snap.index + 1 + int(m.hs.commit - m.snap.index);
        const meta: SnapshotMetadata = { index: m.hs.commit, term: m.term(m.hs.commit), confState: cs };
        const t = m.term(c);
        await s.compact(meta, c);
        m.ents = m.ents.slice(c - m.snap.index);
        m.snap = { index: c, term: t };
      } else if (r < 0.75) {
        // A snapshot from the leader: the log restarts after it.
        const at = m.last + int(20) - 5;
        if (at <= m.snap.index) continue;
        term++;
        await s.save({ entries: [], snapshot: { data: new Uint8Array(0), metadata: { index: at, term, confState: cs } }, hardState: { term, vote: 0, commit: at }, sync: true });
        m.snap = { index: at, term };
        m.ents = [];
        m.hs = { term, vote: 0, commit: at };
      } else if (r < 0.9) {
        await Promise.all(pending);
        pending = [];
        await s.close();
        s = await DiskStorage.open(dir, opts);
        expectSame(s, m);
      }
      expectSame(s, m);
    }
    await Promise.all(pending);
    await s.close();
    s = await DiskStorage.open(dir, opts);
    expectSame(s, m);
    // Compaction deleted old segments: few are left.
    expect(s.walFiles().length).toBeLessThan(12);
    await s.close();
  });
}

describe('DiskStorage on the write-ahead log', () => {
  for (const mode of ['inline', 'background'] as const) {
    test(`random histories survive reopening (${mode} writes)`, async () => {
      for (let seed = 1; seed <= 6; seed++) await randomHistory(seed, mode);
    });
  }

  test('random histories with writes not waited for: queued background writes go out together, in order', async () => {
    for (let seed = 11; seed <= 16; seed++) await randomHistory(seed, 'background', undefined, true);
  });

  test('random histories, with almost no entries kept in memory (read back from the files)', async () => {
    for (let seed = 101; seed <= 106; seed++) await randomHistory(seed, seed % 2 === 0 ? 'inline' : 'background', 600);
  });

  test('entries beyond the cache are read back from the log files, and memory stays within it', async () => {
    await withDir(async (dir) => {
      const opts = { segmentBytes: 64 * 1024, cacheBytes: 8 * 1024 };
      const s = await DiskStorage.open(dir, opts);
      const want: Entry[] = [];
      for (let i = 1; i <= 500; i++) {
        const e = mkEntry(i, 1 + (i >> 6), 50 + (i % 300), 7);
        want.push(e);
        await s.save({ entries: [e], hardState: { term: e.term, vote: 1, commit: i - 1 }, sync: true });
      }
      expect(s.cachedBlockBytes()).toBeLessThanOrEqual(8 * 1024);
      const got = s.entries(1, 501, Infinity);
      got.forEach((e, i) => {
        expect(e.term).toBe(want[i].term);
        expect(Buffer.from(e.data).equals(Buffer.from(want[i].data))).toBe(true);
      });
      // maxBytes: at least one entry, then while the sum of (bytes + 16) stays within it.
      expect(s.entries(3, 501, 0).length).toBe(1);
      expect(s.entries(3, 501, want[2].data.length + 16 + want[3].data.length + 16).map((e) => e.index)).toEqual([3, 4]);
      await s.close();
    });
  });

  test('a torn last write is dropped, and nothing written before it comes back later', async () => {
    await withDir(async (dir) => {
      const opts = { segmentBytes: 1 << 20 };
      let s = await DiskStorage.open(dir, opts);
      const e = (i: number, t: number): Entry => mkEntry(i, t, 100, 0);
      await s.save({ entries: [e(1, 1)], hardState: { term: 1, vote: 1, commit: 0 }, sync: true });
      await s.save({ entries: [e(2, 1)], sync: true });
      await s.save({ entries: [e(3, 1)], sync: true });
      await s.close();
      const [file] = fs.readdirSync(dir);
      const buf = fs.readFileSync(path.join(dir, file));
      // Find the record of entry 2 (the second entries record) and break its checksum.
      const offsets: number[] = [];
      for (let at = 0; buf.readUInt32LE(at) !== 0; at += 8 + buf.readUInt32LE(at)) offsets.push(at);
      const second = offsets.filter((o) => buf[o + 8] === 1)[1];
      buf[second + 20] ^= 0xff;
      fs.writeFileSync(path.join(dir, file), buf);

      s = await DiskStorage.open(dir, opts);
      expect(s.lastIndex()).toBe(1);
      // Entry 2 again, the same size as the broken one: the old entry 3 right after it must
      // not be read as part of the log.
      await s.save({ entries: [e(2, 2)], sync: true });
      await s.close();
      s = await DiskStorage.open(dir, opts);
      expect(s.lastIndex()).toBe(2);
      expect(s.term(2)).toBe(2);
      await s.close();
    });
  });

  test('a bad record in a segment that is not the last fails the open', async () => {
    await withDir(async (dir) => {
      const opts = { segmentBytes: 1024 };
      const files = await writeSegments(dir, opts);
      expect(files.length).toBeGreaterThan(2);
      const buf = fs.readFileSync(files[0]);
      buf[40] ^= 0xff;
      fs.writeFileSync(files[0], buf);
      await expect(DiskStorage.open(dir, opts)).rejects.toThrow(/corrupt/);
    });
  });

  test('a missing segment fails the open', async () => {
    await withDir(async (dir) => {
      const opts = { segmentBytes: 1024 };
      const files = await writeSegments(dir, opts);
      fs.rmSync(files[1]);
      await expect(DiskStorage.open(dir, opts)).rejects.toThrow(/missing segment/);
    });
  });

  test('a Raft log in the old LevelDB format is refused with a clear message', async () => {
    await withDir(async (dir) => {
      fs.writeFileSync(path.join(dir, 'CURRENT'), 'MANIFEST-000001\n');
      await expect(DiskStorage.open(dir)).rejects.toThrow(/older format \(LevelDB\)/);
    });
  });

  test('the next segment is filled with zeros ahead of time; a stale spare is never read', async () => {
    await withDir(async (dir) => {
      const segmentBytes = 256 * 1024;
      // A spare left by a crash, full of garbage.
      fs.writeFileSync(path.join(dir, 'next.wal.tmp'), Buffer.alloc(segmentBytes, 0xab));
      const seen: string[] = [];
      let w = Wal.open(dir, { segmentBytes }, () => undefined);
      const record = (text: string): Buffer => {
        const b = Buffer.alloc(8 + text.length);
        b.write(text, 8);
        sealRecord(b, 0, text.length);
        return b;
      };
      await w.spareSettled();
      expect(fs.readFileSync(path.join(dir, 'next.wal.tmp')).every((b) => b === 0)).toBe(true);
      await w.cut(1);
      expect(w.segmentsFromSpare).toBe(1);
      await w.append(record('first'), true);
      const [seg] = w.files();
      const bytes = fs.readFileSync(seg);
      expect(bytes.length).toBe(segmentBytes);
      expect(bytes.subarray(8 + 'first'.length).every((b) => b === 0)).toBe(true);
      await w.close();
      expect(fs.existsSync(path.join(dir, 'next.wal.tmp'))).toBe(false);
      w = Wal.open(dir, { segmentBytes }, (p) => seen.push(p.toString()));
      expect(seen).toEqual(['first']);
      await w.close();
    });
  });

  test('segments are made at their full size and deleted once compacted', async () => {
    await withDir(async (dir) => {
      const opts = { segmentBytes: 4096 };
      const s = await DiskStorage.open(dir, opts);
      for (let i = 1; i <= 100; i++) await s.save({ entries: [mkEntry(i, 1, 300, 0)], hardState: { term: 1, vote: 1, commit: i }, sync: true });
      const before = s.walFiles();
      expect(before.length).toBeGreaterThan(5);
      for (const f of before) expect(fs.statSync(f).size).toBeGreaterThanOrEqual(4096);
      await s.compact({ index: 90, term: 1, confState: cs }, 90);
      const after = s.walFiles();
      expect(after.length).toBeLessThan(4);
      for (const f of before.filter((f) => !after.includes(f))) expect(fs.existsSync(f)).toBe(false);
      await s.close();
      const r = await DiskStorage.open(dir, opts);
      expect(r.firstIndex()).toBe(91);
      expect(r.lastIndex()).toBe(100);
      expect(r.hardStateNow()).toEqual({ term: 1, vote: 1, commit: 100 });
      await r.close();
    });
  });
});
