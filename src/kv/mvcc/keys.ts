// Keys are bytes; the ordered index is keyed by the latin1 string of those bytes, one char per
// byte (0..255), so that JS string order (UTF-16 code units) equals byte order.

/** The index key of `key`: one latin1 char per byte. */
export function keyString(key: Uint8Array): string {
  const n = key.length;
  if (n <= 24) {
    // Short keys: a loop beats creating a Buffer view.
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(key[i]);
    return s;
  }
  return Buffer.from(key.buffer, key.byteOffset, n).toString('latin1');
}

/** Bytes of an index key (inverse of keyString). */
export function keyBytes(s: string): Uint8Array {
  return Buffer.from(s, 'latin1');
}

/** A copy of `bytes` that owns its memory, unless it already does (a view would pin its parent). */
export function ownedBytes(bytes: Uint8Array): Uint8Array {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return bytes;
  return new Uint8Array(bytes);
}

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

/**
 * How a (key, rangeEnd) pair selects keys, as etcd reads it:
 * - `single`: rangeEnd empty/undefined: the key itself;
 * - `from`: rangeEnd = [0x00]: every key >= key (so key = rangeEnd = [0x00] is every key);
 * - `between`: the half-open [key, rangeEnd) (empty when rangeEnd <= key).
 */
export type KeySpan =
  | { kind: 'single'; low: string }
  | { kind: 'from'; low: string }
  | { kind: 'between'; low: string; high: string };

export function keySpan(key: Uint8Array, rangeEnd: Uint8Array | undefined): KeySpan {
  const low = keyString(key);
  if (rangeEnd === undefined || rangeEnd.length === 0) return { kind: 'single', low };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { kind: 'from', low };
  return { kind: 'between', low, high: keyString(rangeEnd) };
}

export function spanContains(span: KeySpan, k: string): boolean {
  switch (span.kind) {
    case 'single':
      return k === span.low;
    case 'from':
      return k >= span.low;
    case 'between':
      return k >= span.low && k < span.high;
  }
}

/** Byte-wise comparison, as Go's bytes.Compare. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}
