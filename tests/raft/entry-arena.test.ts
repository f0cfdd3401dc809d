import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DiskStorage } from '../../src/raft/disk-storage';
import { arenaChunkBytes, arenaOwnBufferBytesMin, EntryArena } from '../../src/raft/entry-arena';
import { Entry, EntryType } from '../../src/raft/types';

function entry(index: number, term: number, bytes: number, fill = index & 0xff): Entry {
  return { index, term, type: bytes === 3 ? EntryType.ConfChange : EntryType.Normal, data: new Uint8Array(bytes).fill(fill) };
}

function same(a: Entry, b: Entry): void {
  expect({ ...a, data: Buffer.from(a.data) }).toEqual({ ...b, data: Buffer.from(b.data) });
}

describe('EntryArena', () => {
  test('holds copies of the entries and gives them back, sized like entriesLimitedBySize', () => {
    const a = new EntryArena(5);
    const src: Entry[] = [];
    for (let i = 5; i < 5 + 500; i++) src.push(entry(i, 1 + (i >> 7), [0, 3, 300, arenaOwnBufferBytesMin, 1000][i % 5]));
    for (const e of src) a.push(e);
    expect(a.firstIndex).toBe(5);
    expect(a.lastIndex).toBe(504);
    // Copied: changing the caller's buffers changes nothing here.
    const before = Buffer.from(src[2].data);
    src[2].data.fill(0xee);
    expect(Buffer.from(a.entry(7).data)).toEqual(before);
    src[2].data.set(before);
    a.slice(5, 505, Infinity).forEach((e, i) => same(e, src[i]));
    expect(a.term(300)).toBe(src[295].term);
    // maxBytes: at least one entry, then while the sum of (bytes + 16) stays within it.
    expect(a.slice(7, 505, 0).length).toBe(1);
    expect(a.slice(7, 505, 316 + 1016).map((e) => e.index)).toEqual([7]); // 316 + 16400 > limit
    expect(a.slice(5, 505, 16 + 19 + 316).map((e) => e.index)).toEqual([5, 6, 7]);
  });

  test('truncation keeps earlier views valid; compaction frees chunks no entry uses', () => {
    const a = new EntryArena(1);
    const perChunk = Math.floor(arenaChunkBytes / 1000);
    const n = perChunk * 10;
    for (let i = 1; i <= n; i++) a.push(entry(i, 1, 1000));
    expect(a.chunkBytes).toBe(10 * arenaChunkBytes);
    const view = a.entry(n).data;
    a.truncateFrom(n - 5);
    expect(a.lastIndex).toBe(n - 6);
    for (let i = n - 5; i <= n; i++) a.push(entry(i, 2, 1000, 0x77));
    expect(Buffer.from(view)).toEqual(Buffer.alloc(1000, n & 0xff)); // not overwritten
    expect(a.entry(n).term).toBe(2);
    expect(a.entry(n).data[0]).toBe(0x77);
    a.dropBefore(perChunk * 5 + 2);
    expect(a.chunkBytes).toBeLessThanOrEqual(6 * arenaChunkBytes);
    expect(a.firstIndex).toBe(perChunk * 5 + 2);
    same(a.entry(perChunk * 5 + 2), entry(perChunk * 5 + 2, 1, 1000));
    a.dropBefore(a.lastIndex + 1);
    expect(a.length).toBe(0);
    expect(a.chunkBytes).toBeLessThanOrEqual(arenaChunkBytes);
    a.push(entry(a.lastIndex + 1, 3, 10));
    expect(a.entry(a.lastIndex).term).toBe(3);
  });

  test('own buffers of large entries go with their entries', () => {
    const a = new EntryArena(1);
    a.push(entry(1, 1, arenaOwnBufferBytesMin * 2));
    a.push(entry(2, 1, 10));
    a.push(entry(3, 1, arenaOwnBufferBytesMin));
    expect(a.chunkBytes).toBe(arenaChunkBytes + arenaOwnBufferBytesMin * 3);
    a.truncateFrom(3);
    expect(a.chunkBytes).toBe(arenaChunkBytes + arenaOwnBufferBytesMin * 2);
    a.dropBefore(2);
    expect(a.chunkBytes).toBe(arenaChunkBytes);
    a.reset(10);
    expect(a.length).toBe(0);
    expect(a.chunkBytes).toBe(0);
    expect(a.firstIndex).toBe(10);
  });
});

describe('DiskStorage keeps its log packed', () => {
  test('entries survive save, compact and reopen', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'disk-storage-'));
    try {
      const s = await DiskStorage.open(dir);
      const src: Entry[] = [];
      for (let i = 1; i <= 300; i++) src.push(entry(i, 1, (i * 37) % 700));
      await s.save({ entries: src.slice(0, 200), hardState: { term: 1, vote: 1, commit: 100 }, sync: true });
      // A conflicting suffix from a new leader replaces entries 150..
      const replaced = src.slice(149).map((e) => ({ ...e, term: 2 }));
      await s.save({ entries: replaced, hardState: { term: 2, vote: 2, commit: 100 }, sync: true });
      const want = [...src.slice(0, 149), ...replaced];
      s.entries(1, 301, Infinity).forEach((e, i) => same(e, want[i]));
      await s.compact({ index: 120, term: 1, confState: { voters: [1], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } }, 100);
      expect(s.firstIndex()).toBe(101);
      expect(s.term(100)).toBe(1);
      expect(s.term(200)).toBe(2);
      await s.close();
      const r = await DiskStorage.open(dir);
      expect(r.firstIndex()).toBe(101);
      expect(r.lastIndex()).toBe(300);
      r.entries(101, 301, Infinity).forEach((e, i) => same(e, want[100 + i]));
      await r.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
