// The key range of one watcher, normalized as etcd's watch server does it:
//   empty key            -> [0x00] (the smallest key)
//   empty range_end      -> the single key
//   range_end == [0x00]  -> every key >= key
//   otherwise            -> [key, range_end), which must not be empty

export type KeyRange =
  | { kind: 'single'; key: Buffer; keyStr: string }
  | { kind: 'from'; key: Buffer }
  | { kind: 'range'; key: Buffer; end: Buffer };

/** The key as a map key: latin1 maps each byte to one char, so it is exact and order-free. */
export function keyString(key: Uint8Array): string {
  return asBuffer(key).toString('latin1');
}

/** The normalized range, or undefined when [key, range_end) is empty (etcd refuses it). */
export function normalizeKeyRange(key: Uint8Array | undefined, rangeEnd: Uint8Array | undefined): KeyRange | undefined {
  const k = key === undefined || key.length === 0 ? Buffer.from([0]) : Buffer.from(key);
  if (rangeEnd === undefined || rangeEnd.length === 0) return { kind: 'single', key: k, keyStr: keyString(k) };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { kind: 'from', key: k };
  const end = Buffer.from(rangeEnd);
  if (Buffer.compare(k, end) >= 0) return undefined;
  return { kind: 'range', key: k, end };
}

export function rangeContains(range: KeyRange, key: Uint8Array): boolean {
  switch (range.kind) {
    case 'single':
      return Buffer.compare(range.key, key) === 0;
    case 'from':
      return Buffer.compare(key, range.key) >= 0;
    case 'range':
      return Buffer.compare(key, range.key) >= 0 && Buffer.compare(key, range.end) < 0;
  }
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}
