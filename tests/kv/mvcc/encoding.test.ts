import { Packr } from 'msgpackr';
import { decodeRevision, encodePut, encodeTombstone, parseRevKey, revKey } from '../../../src/kv/mvcc/encoding';
import { MvccError } from '../../../src/kv/mvcc';

const packr = new Packr({ useRecords: false });

describe('revision record encoding', () => {
  test('hand-written records are the msgpack msgpackr reads back', () => {
    const ints = [0, 1, 127, 128, 255, 65535, 0xffff_ffff, 0x1_0000_0000, 2 ** 53 - 1, -1, -(2 ** 40)];
    const lens = [0, 1, 255, 256, 65535, 65536];
    for (const n of ints) {
      for (const len of lens) {
        const key = new Uint8Array(len % 300).fill(7);
        const value = new Uint8Array(len).fill(9);
        const rec = encodePut(key, value, n, Math.abs(n), Math.abs(n));
        const [k, v, ...ints3] = packr.unpack(rec) as [Buffer, Buffer, number, number, number];
        expect([Buffer.from(key).equals(k), Buffer.from(value).equals(v), ints3]).toEqual([true, true, [n, Math.abs(n), Math.abs(n)]]);
        const d = decodeRevision(rec);
        expect([d.tombstone, d.lease, d.createRevision, d.version, d.value.length]).toEqual([false, n, Math.abs(n), Math.abs(n), len]);
      }
    }
    const t = decodeRevision(encodeTombstone(new Uint8Array([1, 2, 3])));
    expect([t.tombstone, Array.from(t.key)]).toEqual([true, [1, 2, 3]]);
  });

  test('revision keys sort by (main, sub) and parse back', () => {
    const pairs: Array<[number, number]> = [
      [2, 0],
      [2, 1],
      [255, 0],
      [256, 0],
      [0xffff_ffff, 7],
      [0x1_0000_0000, 0],
      [2 ** 53 - 1, 0xffff_ffff],
    ];
    const keys = pairs.map(([m, s]) => revKey(m, s));
    for (let i = 1; i < keys.length; i++) expect(Buffer.compare(keys[i - 1], keys[i])).toBe(-1);
    expect(keys.map((k) => parseRevKey(k))).toEqual(pairs.map(([main, sub]) => ({ main, sub })));
  });

  test('garbage is ERR_STORE_CORRUPT', () => {
    for (const bad of [Buffer.from([0xc1]), packr.pack({ a: 1 }), packr.pack([1, 2]), packr.pack([Buffer.from('k'), Buffer.from('v'), 'x', 1, 1])]) {
      expect(() => decodeRevision(bad)).toThrow(MvccError);
    }
    expect(() => parseRevKey(Buffer.from('m'))).toThrow(MvccError);
  });
});
