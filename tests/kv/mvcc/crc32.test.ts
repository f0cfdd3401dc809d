import { crc32, crc32Portable } from '../../../src/kv/mvcc/crc32';

describe('crc32', () => {
  test('known value, incremental, native equals portable', () => {
    const data = Buffer.from('123456789');
    expect(crc32(data)).toBe(0xcbf43926);
    expect(crc32Portable(data)).toBe(0xcbf43926);
    expect(crc32(data.subarray(4), crc32(data.subarray(0, 4)))).toBe(0xcbf43926);
  });

  test('empty input leaves the value unchanged, whatever its memory', () => {
    const empty = new Uint8Array(0);
    Buffer.from(empty.buffer, 0, 0).toString('latin1'); // materializes a null backing store
    expect(crc32(empty, 12345)).toBe(12345);
    expect(crc32Portable(empty, 12345)).toBe(12345);
  });
});
