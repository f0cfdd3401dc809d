// The index keeps each revision's key and value packed (latin1 strings) and makes KeyValues
// on demand: every byte value must come back unchanged, orders must stay byte orders, and
// what is handed out is the caller's own copy.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MvccCore, MvccStore } from '../../../src/kv/mvcc';

const ALL = { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) };
const every = Uint8Array.from({ length: 256 }, (_, i) => 255 - i);

describe('packed keys and values', () => {
  test('every byte value survives, in the index, in history and on disk', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mvcc-packed-'));
    try {
      const st = await MvccStore.open(dir);
      const key = Uint8Array.from([0x00, 0x7f, 0x80, 0xff, 0xc3, 0xa9]);
      st.put(key, every);
      st.put(key, new Uint8Array(0));
      st.put(new Uint8Array([0xff]), Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7) & 0xff));
      expect(Buffer.from(st.get(key, 2)!.value)).toEqual(Buffer.from(every));
      expect(st.get(key)!.value.length).toBe(0);
      expect(Buffer.from(st.get(key)!.key)).toEqual(Buffer.from(key));
      const ev = st.eventsBetween({ fromRevision: 2 }).revisions;
      expect(Buffer.from(ev[1].events[0].prevKv!.value)).toEqual(Buffer.from(every));
      const hash = st.hashKV().hash;
      await st.flush(undefined);
      await st.close();
      const again = await MvccStore.open(dir);
      expect(Buffer.from(again.get(key, 2)!.value)).toEqual(Buffer.from(every));
      expect(Buffer.from(again.get(new Uint8Array([0xff]))!.value)).toEqual(Buffer.from(Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7) & 0xff)));
      expect(again.hashKV().hash).toBe(hash);
      await again.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('sorting by key and by value is byte order, including bytes >= 0x80', () => {
    const st = new MvccCore();
    const vals = [[0x80], [0x7f, 0xff], [0xff], [0x00], [0x7f]];
    vals.forEach((v, i) => st.put(Uint8Array.from([0xf0 - i * 0x30]), Uint8Array.from(v)));
    const byValue = st.range({ ...ALL, sortTarget: 'VALUE', sortOrder: 'ASCEND' }).kvs.map((kv) => Buffer.from(kv.value).toString('hex'));
    expect(byValue).toEqual(['00', '7f', '7fff', '80', 'ff']);
    const byKey = st.range({ ...ALL, sortTarget: 'KEY', sortOrder: 'DESCEND' }).kvs.map((kv) => kv.key[0]);
    expect(byKey).toEqual([0xf0, 0xc0, 0x90, 0x60, 0x30]);
    const keysOnly = st.range({ ...ALL, keysOnly: true, limit: 2 });
    expect(keysOnly.kvs.map((kv) => kv.value.length)).toEqual([0, 0]);
    expect(keysOnly.more).toBe(true);
  });

  test('a KeyValue handed out is a copy: changing it changes nothing in the store', () => {
    const st = new MvccCore();
    const value = Uint8Array.from([1, 2, 3]);
    st.put(Uint8Array.from([9]), value);
    value[0] = 7; // the caller's buffer, after the put
    const kv = st.get(Uint8Array.from([9]))!;
    expect(Array.from(kv.value)).toEqual([1, 2, 3]);
    kv.value[1] = 0;
    kv.key[0] = 0;
    expect(Array.from(st.get(Uint8Array.from([9]))!.value)).toEqual([1, 2, 3]);
  });
});
