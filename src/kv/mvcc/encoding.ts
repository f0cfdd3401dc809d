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
  b[0] = REV_PREFIX;
  b.writeUInt32BE(Math.floor(main / 0x1_0000_0000), 1);
  b.writeUInt32BE(main >>> 0, 5);
  b.writeUInt32BE(sub, 9);
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

export function encodePut(key: Uint8Array, value: Uint8Array, lease: number, createRevision: number, version: number): Buffer {
  return packr.pack([key, value, lease, createRevision, version]);
}

export function encodeTombstone(key: Uint8Array): Buffer {
  return packr.pack([key]);
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
