// On-disk layout in classic-level (LevelDB), all keys and values as bytes:
//
//   'm'                          -> msgpack MetaRecord: format, compacted and current
//                                   revision, and the server's opaque meta
//   'r' main(u64 BE) sub(u32 BE) -> msgpack [key] for a tombstone,
//                                   [key, value, lease, createRevision, version] for a put
//
// Revision records sort by (main, sub), so the db replays in revision order (as etcd's key
// bucket). A record exists for every revision entry still in the key index or in the history.

import { Packr } from 'msgpackr';
import { MvccError } from './errors';
import { keyString } from './keys';

export const FORMAT_VERSION = 1;

export const META_KEY: Buffer = Buffer.from('m', 'latin1');
export const REV_PREFIX = 0x72; // 'r'
export const REV_RANGE_GTE: Buffer = Buffer.from([REV_PREFIX]);
export const REV_RANGE_LT: Buffer = Buffer.from([REV_PREFIX + 1]);
export const REV_KEY_BYTES = 13;

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export interface MetaRecord<M> {
  format: number;
  compactRevision: number;
  currentRevision: number;
  /** The server's opaque meta of the last flush; undefined before the first. */
  meta: M | undefined;
}

export function encodeMeta<M>(rec: MetaRecord<M>): Buffer {
  return packr.pack(rec);
}

export function decodeMeta<M>(bytes: Uint8Array): MetaRecord<M> {
  const rec = unpack(bytes) as Partial<MetaRecord<M>> | null;
  if (rec === null || typeof rec !== 'object' || rec.format !== FORMAT_VERSION) {
    throw new MvccError('ERR_STORE_CORRUPT', `unknown meta record format ${String(rec?.format)}`);
  }
  if (!isRevision(rec.compactRevision) || !isRevision(rec.currentRevision) || rec.currentRevision < 1) {
    throw new MvccError('ERR_STORE_CORRUPT', 'bad revisions in meta record');
  }
  return { format: rec.format, compactRevision: rec.compactRevision, currentRevision: rec.currentRevision, meta: rec.meta };
}

export function revKey(main: number, sub: number): Buffer {
  const b = Buffer.allocUnsafe(REV_KEY_BYTES);
  writeRevKey(b, 0, main, sub);
  return b;
}

export function parseRevKey(b: Uint8Array): { main: number; sub: number } {
  if (b.length !== REV_KEY_BYTES || b[0] !== REV_PREFIX) throw new MvccError('ERR_STORE_CORRUPT', 'bad revision key');
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { main: v.getUint32(1) * 0x1_0000_0000 + v.getUint32(5), sub: v.getUint32(9) };
}

export interface StoredRevision {
  key: Uint8Array;
  tombstone: boolean;
  value: Uint8Array;
  lease: number;
  createRevision: number;
  version: number;
}

// Revision records are written by hand (plain msgpack, read back by msgpackr): flush writes
// every record of a batch into one buffer, with no per-record allocation.

/** Upper bound of the bytes of a revision key plus its record. */
export function revisionRecordBytesMax(key: Uint8Array, value: Uint8Array | undefined): number {
  return revisionRecordBytesMaxOf(key.length, value?.length);
}

/** revisionRecordBytesMax from the key's and value's lengths (value undefined: a tombstone). */
export function revisionRecordBytesMaxOf(keyBytes: number, valueBytes: number | undefined): number {
  return REV_KEY_BYTES + 1 + 5 + keyBytes + (valueBytes === undefined ? 0 : 5 + valueBytes + 3 * 9);
}

/** Writes the revision key at `off`; returns the offset after it. */
export function writeRevKey(buf: Buffer, off: number, main: number, sub: number): number {
  buf[off] = REV_PREFIX;
  buf.writeUInt32BE(Math.floor(main / 0x1_0000_0000), off + 1);
  buf.writeUInt32BE(main >>> 0, off + 5);
  buf.writeUInt32BE(sub, off + 9);
  return off + REV_KEY_BYTES;
}

/**
 * Writes a put's record ([key, value, lease, createRevision, version]) at `off`; the key is
 * given as its index string (keys.ts: one latin1 char per byte), written without a Buffer of it.
 */
export function writePut(buf: Buffer, off: number, key: string, value: Uint8Array, lease: number, createRevision: number, version: number): number {
  buf[off++] = 0x95; // fixarray of 5
  off = writeBinString(buf, off, key);
  off = writeBin(buf, off, value);
  off = writeInt(buf, off, lease);
  off = writeInt(buf, off, createRevision);
  return writeInt(buf, off, version);
}

/** Writes a tombstone's record ([key]) at `off`. */
export function writeTombstone(buf: Buffer, off: number, key: string): number {
  buf[off++] = 0x91; // fixarray of 1
  return writeBinString(buf, off, key);
}

function writeBinHead(buf: Buffer, off: number, n: number): number {
  if (n < 0x100) {
    buf[off++] = 0xc4;
    buf[off++] = n;
  } else if (n < 0x10000) {
    buf[off++] = 0xc5;
    buf.writeUInt16BE(n, off);
    off += 2;
  } else {
    buf[off++] = 0xc6;
    buf.writeUInt32BE(n, off);
    off += 4;
  }
  return off;
}

function writeBin(buf: Buffer, off: number, bytes: Uint8Array): number {
  off = writeBinHead(buf, off, bytes.length);
  buf.set(bytes, off);
  return off + bytes.length;
}

/** Bytes given as a latin1 string (one char per byte, 0..255). */
function writeBinString(buf: Buffer, off: number, s: string): number {
  off = writeBinHead(buf, off, s.length);
  return off + buf.write(s, off, s.length, 'latin1');
}

function writeInt(buf: Buffer, off: number, n: number): number {
  if (n >= 0 && n < 0x80) {
    buf[off] = n; // positive fixint
    return off + 1;
  }
  if (n >= 0 && n < 0x1_0000_0000) {
    buf[off] = 0xce; // uint32
    buf.writeUInt32BE(n, off + 1);
    return off + 5;
  }
  buf[off] = 0xcb; // float64: exact for every safe integer, as msgpackr writes them
  buf.writeDoubleBE(n, off + 1);
  return off + 9;
}

/** A put's record as a standalone buffer (tests, tools). */
export function encodePut(key: Uint8Array, value: Uint8Array, lease: number, createRevision: number, version: number): Buffer {
  const buf = Buffer.allocUnsafe(revisionRecordBytesMax(key, value));
  return buf.subarray(0, writePut(buf, 0, keyString(key), value, lease, createRevision, version));
}

/** A tombstone's record as a standalone buffer (tests, tools). */
export function encodeTombstone(key: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(revisionRecordBytesMax(key, undefined));
  return buf.subarray(0, writeTombstone(buf, 0, keyString(key)));
}

export function decodeRevision(bytes: Uint8Array): StoredRevision {
  const a = unpack(bytes) as unknown[];
  if (!Array.isArray(a) || !(a[0] instanceof Uint8Array)) throw new MvccError('ERR_STORE_CORRUPT', 'bad revision record');
  if (a.length === 1) return { key: a[0], tombstone: true, value: new Uint8Array(0), lease: 0, createRevision: 0, version: 0 };
  const [key, value, lease, createRevision, version] = a;
  if (a.length !== 5 || !(value instanceof Uint8Array) || typeof lease !== 'number' || !isRevision(createRevision) || !isRevision(version)) {
    throw new MvccError('ERR_STORE_CORRUPT', 'bad revision record');
  }
  return { key: key as Uint8Array, tombstone: false, value, lease, createRevision, version };
}

function unpack(bytes: Uint8Array): unknown {
  try {
    return packr.unpack(bytes);
  } catch (e) {
    throw new MvccError('ERR_STORE_CORRUPT', `undecodable record: ${(e as Error).message}`);
  }
}

function isRevision(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}
