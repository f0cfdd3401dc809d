// The snapshot stream: a self-describing, checksummed serialization of a store's db.
//
//   magic   "SKFMVCC" 0x01                                     8 bytes
//   frame   type(u8) length(u32 BE) payload                    repeated
//     HEADER  (1): the meta record (format, compacted and current revision, meta); first
//     RECORD  (2): keyLength(u16 BE) key value: one revision record, in key order
//     END     (3): recordCount(u32 BE, high) recordCount(u32 BE, low) crc32(u32 BE); last
//
// The crc32 covers every byte before the END frame. Frames may span chunk boundaries; every
// chunk but the last is exactly snapshotChunkBytesMax bytes.

import { crc32 } from './crc32';
import { MvccError } from './errors';
import { REV_KEY_BYTES, REV_PREFIX } from './encoding';
import { snapshotChunkBytesMax, snapshotFrameBytesMax } from './limits';

const MAGIC = Buffer.from('SKFMVCC\x01', 'latin1');
const FRAME_HEADER = 1;
const FRAME_RECORD = 2;
const FRAME_END = 3;
const FRAME_HEAD_BYTES = 5;
const END_PAYLOAD_BYTES = 12;

export type DbRecord = [key: Uint8Array, value: Uint8Array];

/** Encodes a header and batches of db records into chunks of at most snapshotChunkBytesMax. */
export async function* encodeSnapshot(header: Uint8Array, batches: AsyncIterable<DbRecord[]>): AsyncGenerator<Uint8Array> {
  const out = new ChunkWriter();
  out.write(MAGIC);
  out.frame(FRAME_HEADER, header.length);
  out.write(header);
  yield* out.takeFull();
  let count = 0;
  for await (const batch of batches) {
    for (const [key, value] of batch) {
      out.frame(FRAME_RECORD, 2 + key.length + value.length);
      const klen = Buffer.allocUnsafe(2);
      klen.writeUInt16BE(key.length, 0);
      out.write(klen);
      out.write(key);
      out.write(value);
      count++;
    }
    yield* out.takeFull();
  }
  const end = Buffer.allocUnsafe(FRAME_HEAD_BYTES + END_PAYLOAD_BYTES);
  end[0] = FRAME_END;
  end.writeUInt32BE(END_PAYLOAD_BYTES, 1);
  end.writeUInt32BE(Math.floor(count / 0x1_0000_0000), 5);
  end.writeUInt32BE(count >>> 0, 9);
  end.writeUInt32BE(out.crc, 13);
  out.write(end);
  yield* out.takeAll();
}

class ChunkWriter {
  crc = 0;
  private chunk: Buffer = Buffer.allocUnsafe(snapshotChunkBytesMax);
  private used = 0;
  private full: Buffer[] = [];

  frame(type: number, length: number): void {
    const h = Buffer.allocUnsafe(FRAME_HEAD_BYTES);
    h[0] = type;
    h.writeUInt32BE(length, 1);
    this.write(h);
  }

  write(bytes: Uint8Array): void {
    this.crc = crc32(bytes, this.crc);
    let off = 0;
    while (off < bytes.length) {
      const n = Math.min(bytes.length - off, this.chunk.length - this.used);
      this.chunk.set(bytes.subarray(off, off + n), this.used);
      this.used += n;
      off += n;
      if (this.used === this.chunk.length) {
        this.full.push(this.chunk);
        this.chunk = Buffer.allocUnsafe(snapshotChunkBytesMax);
        this.used = 0;
      }
    }
  }

  takeFull(): Buffer[] {
    const f = this.full;
    this.full = [];
    return f;
  }

  takeAll(): Buffer[] {
    const f = this.takeFull();
    if (this.used > 0) f.push(this.chunk.subarray(0, this.used));
    this.used = 0;
    return f;
  }
}

export type SnapshotPart = { kind: 'header'; header: Uint8Array } | { kind: 'records'; records: DbRecord[] };

/**
 * Decodes a snapshot stream: the header first, then batches of records. Throws MvccError
 * ERR_SNAPSHOT_INVALID on a bad magic, a malformed or out-of-order frame, a checksum or count
 * mismatch, bytes after the end, or a stream that ends early.
 */
export async function* decodeSnapshot(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<SnapshotPart> {
  let buf: Buffer = Buffer.alloc(0);
  let crc = 0;
  let sawMagic = false;
  let sawHeader = false;
  let ended = false;
  let count = 0;
  let lastKey: Uint8Array | undefined;
  const invalid = (why: string): MvccError => new MvccError('ERR_SNAPSHOT_INVALID', why);

  for await (const chunk of chunks) {
    if (ended) {
      if (chunk.length > 0) throw invalid('bytes after the end frame');
      continue;
    }
    buf = buf.length === 0 ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : Buffer.concat([buf, chunk]);
    let off = 0;
    if (!sawMagic) {
      if (buf.length < MAGIC.length) continue;
      if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) throw invalid('not a skiff mvcc snapshot');
      crc = crc32(buf.subarray(0, MAGIC.length), crc);
      off = MAGIC.length;
      sawMagic = true;
    }
    const records: DbRecord[] = [];
    while (buf.length - off >= FRAME_HEAD_BYTES) {
      const type = buf[off];
      const len = buf.readUInt32BE(off + 1);
      if (len > snapshotFrameBytesMax) throw invalid(`frame of ${len} bytes`);
      if (buf.length - off < FRAME_HEAD_BYTES + len) break;
      const payload = buf.subarray(off + FRAME_HEAD_BYTES, off + FRAME_HEAD_BYTES + len);
      switch (type) {
        case FRAME_HEADER:
          if (sawHeader) throw invalid('second header');
          sawHeader = true;
          yield { kind: 'header', header: new Uint8Array(payload) };
          break;
        case FRAME_RECORD: {
          if (!sawHeader) throw invalid('record before the header');
          if (len < 2) throw invalid('short record');
          const klen = payload.readUInt16BE(0);
          if (klen !== REV_KEY_BYTES || len < 2 + klen) throw invalid('bad record key');
          const key = new Uint8Array(payload.subarray(2, 2 + klen));
          if (key[0] !== REV_PREFIX) throw invalid('bad record key');
          if (lastKey !== undefined && Buffer.compare(lastKey, key) >= 0) throw invalid('records out of order');
          lastKey = key;
          records.push([key, new Uint8Array(payload.subarray(2 + klen))]);
          count++;
          break;
        }
        case FRAME_END: {
          if (!sawHeader) throw invalid('end before the header');
          if (len !== END_PAYLOAD_BYTES) throw invalid('bad end frame');
          const n = payload.readUInt32BE(0) * 0x1_0000_0000 + payload.readUInt32BE(4);
          if (n !== count) throw invalid(`record count ${count}, expected ${n}`);
          if (payload.readUInt32BE(8) !== crc) throw invalid('checksum mismatch');
          ended = true;
          break;
        }
        default:
          throw invalid(`unknown frame type ${type}`);
      }
      if (!ended) crc = crc32(buf.subarray(off, off + FRAME_HEAD_BYTES + len), crc);
      off += FRAME_HEAD_BYTES + len;
      if (ended) break;
    }
    if (records.length > 0) yield { kind: 'records', records };
    buf = buf.subarray(off);
    if (ended && buf.length > 0) throw invalid('bytes after the end frame');
  }
  if (!ended) throw invalid('truncated stream');
}
