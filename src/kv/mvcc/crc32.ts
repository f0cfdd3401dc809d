// CRC-32 (IEEE), incremental: crc32(b, crc32(a)) === crc32(a ++ b). Native zlib.crc32 where
// Node has it (>= 20.15), a table-driven fallback otherwise; both give the same values.

import * as zlib from 'node:zlib';

type Crc32 = (data: Uint8Array, value?: number) => number;

const native = (zlib as unknown as { crc32?: Crc32 }).crc32;

let table: Uint32Array | undefined;

function crcTable(): Uint32Array {
  if (table !== undefined) return table;
  table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

export function crc32Portable(data: Uint8Array, value = 0): number {
  const t = crcTable();
  let c = (value ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * Native zlib.crc32 returns 0 for an empty array whose memory pointer is null (zlib's
 * crc32(crc, Z_NULL, 0) answers the initial value), so empty input never reaches it.
 */
export const crc32: Crc32 =
  native === undefined ? crc32Portable : (data, value = 0) => (data.length === 0 ? value >>> 0 : native(data, value));
