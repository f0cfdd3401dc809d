// MvccStore.defragment: the data is unchanged, the space of compacted revisions is given
// back, writes go on afterwards, and a defragment cut short is finished (or undone) on open.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { MvccStore } from '../../../src/kv/mvcc';
import { b, kvs, tmpDir } from './helpers';

describe('MvccStore.defragment', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('keeps the data, shrinks the db after a compaction, and the store stays writable', async () => {
    const kvDir = path.join(dir, 'kv');
    const s = await MvccStore.open<{ n: number }>(kvDir);
    const big = 'x'.repeat(10_000);
    for (let i = 0; i < 100; i++) {
      const tw = s.write();
      tw.put(b(`k${i % 5}`), b(`${big}${i}`), 0);
      tw.end();
      await s.flush({ n: i });
    }
    s.compact(s.revision);
    await s.flush({ n: 100 });
    const before = kvs(s.range({ key: b('k'), rangeEnd: b('l') }).kvs);
    const grown = s.dbSizeBytes();
    await s.defragment();
    expect(s.dbSizeBytes()).toBeLessThan(grown / 4);
    expect(kvs(s.range({ key: b('k'), rangeEnd: b('l') }).kvs)).toEqual(before);
    const tw = s.write();
    tw.put(b('after'), b('1'), 0);
    tw.end();
    await s.flush({ n: 101 });
    await s.close();

    const again = await MvccStore.open<{ n: number }>(kvDir);
    expect(again.savedMeta).toEqual({ n: 101 });
    expect(kvs(again.range({ key: b('k'), rangeEnd: b('l') }).kvs)).toEqual(before);
    expect(again.range({ key: b('after') }).kvs).toHaveLength(1);
    await again.close();
    expect(fs.readdirSync(dir)).toEqual(['kv']);
  });

  test('a flush asked for while a defragment runs is written to the new db (the old one closes its batches)', async () => {
    const kvDir = path.join(dir, 'kv');
    const s = await MvccStore.open<{ n: number }>(kvDir);
    for (let i = 0; i < 20; i++) {
      const tw = s.write();
      tw.put(b(`k${i}`), b(`v${i}`), 0);
      tw.end();
    }
    await s.flush({ n: 1 });
    const defrag = s.defragment();
    const tw = s.write();
    tw.put(b('during'), b('1'), 0);
    tw.end();
    const flushed = s.flush({ n: 2 });
    await defrag;
    await flushed;
    await s.close();
    const again = await MvccStore.open<{ n: number }>(kvDir);
    expect(again.savedMeta).toEqual({ n: 2 });
    expect(again.range({ key: b('during') }).kvs).toHaveLength(1);
    expect(again.range({ key: b('k'), rangeEnd: b('l') }).kvs).toHaveLength(20);
    await again.close();
  });

  test('open() finishes a swap cut short between its renames, and drops a half-made copy', async () => {
    const kvDir = path.join(dir, 'kv');
    const s = await MvccStore.open<{ n: number }>(kvDir);
    const tw = s.write();
    tw.put(b('a'), b('1'), 0);
    tw.end();
    await s.flush({ n: 1 });
    await s.close();
    // Crashed after moving the old db aside, before moving the new one in.
    fs.cpSync(kvDir, `${kvDir}.defragged`, { recursive: true });
    fs.renameSync(kvDir, `${kvDir}.predefrag`);
    const r = await MvccStore.open<{ n: number }>(kvDir);
    expect(r.range({ key: b('a') }).kvs).toHaveLength(1);
    await r.close();
    expect(fs.readdirSync(dir)).toEqual(['kv']);
    // Crashed while copying: the copy is dropped, the db is the old one.
    fs.mkdirSync(`${kvDir}.defrag`);
    const r2 = await MvccStore.open<{ n: number }>(kvDir);
    expect(r2.savedMeta).toEqual({ n: 1 });
    await r2.close();
    expect(fs.readdirSync(dir)).toEqual(['kv']);
  });
});
