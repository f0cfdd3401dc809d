// The few etcd v3 messages the benchmark needs, encoded and decoded by hand (proto3 wire
// format: varints and length-delimited fields), plus the gRPC message framing. Field
// numbers are those of proto/etcd/rpc.proto and proto/etcd/kv.proto.
//
// Encoders return a whole gRPC frame (1 byte compressed flag = 0, 4 bytes big-endian
// length, the protobuf message), ready to write on an HTTP/2 stream. Decoders read only the
// fields the benchmark looks at and skip the rest.

/** gRPC's length-prefixed message header: compressed flag + uint32 length. */
export const frameHeaderBytes = 5;

// Wire types.
const wireVarint = 0;
const wireFixed64 = 1;
const wireLengthDelimited = 2;
const wireFixed32 = 5;

function varintBytes(n: number): number {
  // invariant: n is a non-negative safe integer (lengths, revisions, counts).
  let bytes = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    bytes++;
  }
  return bytes;
}

function writeVarint(buf: Buffer, offset: number, n: number): number {
  while (n >= 0x80) {
    buf[offset++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[offset++] = n;
  return offset;
}

function bytesFieldBytes(len: number): number {
  return 1 + varintBytes(len) + len;
}

function writeBytesField(buf: Buffer, offset: number, field: number, data: Uint8Array): number {
  buf[offset++] = (field << 3) | wireLengthDelimited;
  offset = writeVarint(buf, offset, data.length);
  buf.set(data, offset);
  return offset + data.length;
}

function writeVarintField(buf: Buffer, offset: number, field: number, n: number): number {
  buf[offset++] = (field << 3) | wireVarint;
  return writeVarint(buf, offset, n);
}

function frame(messageBytes: number): Buffer {
  const buf = Buffer.allocUnsafe(frameHeaderBytes + messageBytes);
  buf[0] = 0;
  buf.writeUInt32BE(messageBytes, 1);
  return buf;
}

/** A single empty message (StatusRequest and the like). */
export function encodeEmpty(): Buffer {
  return frame(0);
}

/** PutRequest { key = 1, value = 2 }. */
export function encodePut(key: Uint8Array, value: Uint8Array): Buffer {
  const bytes = bytesFieldBytes(key.length) + bytesFieldBytes(value.length);
  const buf = frame(bytes);
  let o = writeBytesField(buf, frameHeaderBytes, 1, key);
  o = writeBytesField(buf, o, 2, value);
  // invariant: the frame is exactly filled.
  if (o !== buf.length) throw new Error(`encodePut: wrote ${o} of ${buf.length} bytes`);
  return buf;
}

export interface RangeRequestFields {
  key: Uint8Array;
  /** Empty: the single key. */
  rangeEnd?: Uint8Array;
  limit?: number;
  serializable?: boolean;
  keysOnly?: boolean;
}

/** RangeRequest { key = 1, range_end = 2, limit = 3, serializable = 7, keys_only = 8 }. */
export function encodeRange(r: RangeRequestFields): Buffer {
  const rangeEnd = r.rangeEnd ?? Buffer.alloc(0);
  const limit = r.limit ?? 0;
  let bytes = bytesFieldBytes(r.key.length);
  if (rangeEnd.length > 0) bytes += bytesFieldBytes(rangeEnd.length);
  if (limit > 0) bytes += 1 + varintBytes(limit);
  if (r.serializable) bytes += 2;
  if (r.keysOnly) bytes += 2;
  const buf = frame(bytes);
  let o = writeBytesField(buf, frameHeaderBytes, 1, r.key);
  if (rangeEnd.length > 0) o = writeBytesField(buf, o, 2, rangeEnd);
  if (limit > 0) o = writeVarintField(buf, o, 3, limit);
  if (r.serializable) o = writeVarintField(buf, o, 7, 1);
  if (r.keysOnly) o = writeVarintField(buf, o, 8, 1);
  if (o !== buf.length) throw new Error(`encodeRange: wrote ${o} of ${buf.length} bytes`);
  return buf;
}

/** WatchRequest { create_request = 1: WatchCreateRequest { key = 1, range_end = 2, start_revision = 3 } }. */
export function encodeWatchCreate(key: Uint8Array, rangeEnd: Uint8Array, startRevision = 0): Buffer {
  let inner = bytesFieldBytes(key.length);
  if (rangeEnd.length > 0) inner += bytesFieldBytes(rangeEnd.length);
  if (startRevision > 0) inner += 1 + varintBytes(startRevision);
  const buf = frame(1 + varintBytes(inner) + inner);
  let o = frameHeaderBytes;
  buf[o++] = (1 << 3) | wireLengthDelimited;
  o = writeVarint(buf, o, inner);
  o = writeBytesField(buf, o, 1, key);
  if (rangeEnd.length > 0) o = writeBytesField(buf, o, 2, rangeEnd);
  if (startRevision > 0) o = writeVarintField(buf, o, 3, startRevision);
  if (o !== buf.length) throw new Error(`encodeWatchCreate: wrote ${o} of ${buf.length} bytes`);
  return buf;
}

/** The end of a prefix range: the prefix with its last byte incremented (etcd's GetPrefixRangeEnd). */
export function prefixRangeEnd(prefix: Uint8Array): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/** A cursor over one protobuf message. */
class Reader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  /** A varint as a JS number (exact up to 2^53; revisions and lengths never get near). */
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error('protobuf: truncated varint');
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw new Error('protobuf: varint longer than 10 bytes');
  }

  /** A varint as a bigint (64-bit member ids). */
  varintBig(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error('protobuf: truncated varint');
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return result;
      shift += 7n;
    }
    throw new Error('protobuf: varint longer than 10 bytes');
  }

  /** Reads a length prefix and returns [start, end) of the field's bytes, moving past them. */
  lengthDelimited(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    const end = start + len;
    if (end > this.end) throw new Error('protobuf: length-delimited field past the end');
    this.pos = end;
    return [start, end];
  }

  skip(wireType: number): void {
    switch (wireType) {
      case wireVarint:
        this.varint();
        return;
      case wireFixed64:
        this.pos += 8;
        return;
      case wireLengthDelimited:
        this.lengthDelimited();
        return;
      case wireFixed32:
        this.pos += 4;
        return;
      default:
        throw new Error(`protobuf: unsupported wire type ${wireType}`);
    }
  }
}

export interface ResponseHeaderFields {
  memberId: bigint;
  revision: number;
}

function decodeHeader(buf: Uint8Array, start: number, end: number): ResponseHeaderFields {
  const r = new Reader(buf, start, end);
  const h: ResponseHeaderFields = { memberId: 0n, revision: 0 };
  while (!r.done()) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 2 && wt === wireVarint) h.memberId = r.varintBig();
    else if (field === 3 && wt === wireVarint) h.revision = r.varint();
    else r.skip(wt);
  }
  return h;
}

/** The revision in a response's header (field 1): PutResponse, RangeResponse, ... */
export function decodeHeaderRevision(msg: Uint8Array): number {
  const r = new Reader(msg, 0, msg.length);
  while (!r.done()) {
    const tag = r.varint();
    if (tag >>> 3 === 1 && (tag & 7) === wireLengthDelimited) {
      const [s, e] = r.lengthDelimited();
      return decodeHeader(msg, s, e).revision;
    }
    r.skip(tag & 7);
  }
  return 0;
}

export interface KeyValueFields {
  key: Buffer;
  modRevision: number;
  valueBytes: number;
}

function decodeKeyValue(buf: Uint8Array, start: number, end: number): KeyValueFields {
  const r = new Reader(buf, start, end);
  const kv: KeyValueFields = { key: Buffer.alloc(0), modRevision: 0, valueBytes: 0 };
  while (!r.done()) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 1 && wt === wireLengthDelimited) {
      const [s, e] = r.lengthDelimited();
      kv.key = Buffer.from(buf.buffer, buf.byteOffset + s, e - s);
    } else if (field === 3 && wt === wireVarint) kv.modRevision = r.varint();
    else if (field === 5 && wt === wireLengthDelimited) {
      const [s, e] = r.lengthDelimited();
      kv.valueBytes = e - s;
    } else r.skip(wt);
  }
  return kv;
}

export interface RangeResponseFields {
  revision: number;
  kvs: KeyValueFields[];
  more: boolean;
  count: number;
}

export function decodeRangeResponse(msg: Uint8Array): RangeResponseFields {
  const r = new Reader(msg, 0, msg.length);
  const out: RangeResponseFields = { revision: 0, kvs: [], more: false, count: 0 };
  while (!r.done()) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 1 && wt === wireLengthDelimited) {
      const [s, e] = r.lengthDelimited();
      out.revision = decodeHeader(msg, s, e).revision;
    } else if (field === 2 && wt === wireLengthDelimited) {
      const [s, e] = r.lengthDelimited();
      out.kvs.push(decodeKeyValue(msg, s, e));
    } else if (field === 3 && wt === wireVarint) out.more = r.varint() !== 0;
    else if (field === 4 && wt === wireVarint) out.count = r.varint();
    else r.skip(wt);
  }
  return out;
}

export interface StatusResponseFields {
  memberId: bigint;
  leader: bigint;
  version: string;
  raftIndex: number;
}

export function decodeStatusResponse(msg: Uint8Array): StatusResponseFields {
  const r = new Reader(msg, 0, msg.length);
  const out: StatusResponseFields = { memberId: 0n, leader: 0n, version: '', raftIndex: 0 };
  while (!r.done()) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 1 && wt === wireLengthDelimited) {
      const [s, e] = r.lengthDelimited();
      out.memberId = decodeHeader(msg, s, e).memberId;
    } else if (field === 2 && wt === wireLengthDelimited) {
      const [s, e] = r.lengthDelimited();
      out.version = Buffer.from(msg.buffer, msg.byteOffset + s, e - s).toString('utf8');
    } else if (field === 4 && wt === wireVarint) out.leader = r.varintBig();
    else if (field === 5 && wt === wireVarint) out.raftIndex = r.varint();
    else r.skip(wt);
  }
  return out;
}

export interface WatchEventFields {
  /** 0 = PUT, 1 = DELETE. */
  type: number;
  /** The key is msg[keyStart, keyEnd) of the decoded message (no copy per event). */
  keyStart: number;
  keyEnd: number;
  modRevision: number;
}

export interface WatchResponseFields {
  watchId: number;
  created: boolean;
  canceled: boolean;
  compactRevision: number;
  cancelReason: string;
  fragment: boolean;
  events: WatchEventFields[];
}

function decodeEvent(buf: Uint8Array, start: number, end: number): WatchEventFields {
  const r = new Reader(buf, start, end);
  const ev: WatchEventFields = { type: 0, keyStart: 0, keyEnd: 0, modRevision: 0 };
  while (!r.done()) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 1 && wt === wireVarint) ev.type = r.varint();
    else if (field === 2 && wt === wireLengthDelimited) {
      const [s, e] = r.lengthDelimited();
      const kv = new Reader(buf, s, e);
      while (!kv.done()) {
        const t = kv.varint();
        if (t >>> 3 === 1 && (t & 7) === wireLengthDelimited) [ev.keyStart, ev.keyEnd] = kv.lengthDelimited();
        else if (t >>> 3 === 3 && (t & 7) === wireVarint) ev.modRevision = kv.varint();
        else kv.skip(t & 7);
      }
    } else r.skip(wt);
  }
  return ev;
}

export function decodeWatchResponse(msg: Uint8Array): WatchResponseFields {
  const r = new Reader(msg, 0, msg.length);
  const out: WatchResponseFields = { watchId: 0, created: false, canceled: false, compactRevision: 0, cancelReason: '', fragment: false, events: [] };
  while (!r.done()) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 2 && wt === wireVarint) out.watchId = r.varint();
    else if (field === 3 && wt === wireVarint) out.created = r.varint() !== 0;
    else if (field === 4 && wt === wireVarint) out.canceled = r.varint() !== 0;
    else if (field === 5 && wt === wireVarint) out.compactRevision = r.varint();
    else if (field === 6 && wt === wireLengthDelimited) {
      const [s, e] = r.lengthDelimited();
      out.cancelReason = Buffer.from(msg.buffer, msg.byteOffset + s, e - s).toString('utf8');
    } else if (field === 7 && wt === wireVarint) out.fragment = r.varint() !== 0;
    else if (field === 11 && wt === wireLengthDelimited) {
      const [s, e] = r.lengthDelimited();
      out.events.push(decodeEvent(msg, s, e));
    } else r.skip(wt);
  }
  return out;
}

/**
 * Splits a byte stream into gRPC messages. Feed it the DATA chunks of one HTTP/2 stream in
 * order; it calls onMessage with each whole message (a view that may share memory with the
 * chunk: copy it to keep it).
 */
export class FrameSplitter {
  private chunks: Buffer[] = [];
  private bytes = 0;
  /** Bytes needed before the next message is whole: a header, or a header and its message. */
  private needed = frameHeaderBytes;

  constructor(private readonly onMessage: (msg: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    // Concatenate only once the next message is whole: linear in the bytes received.
    if (this.bytes < this.needed) return;
    const buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.bytes);
    let o = 0;
    for (;;) {
      if (buf.length - o < frameHeaderBytes) {
        this.needed = frameHeaderBytes;
        break;
      }
      if (buf[o] !== 0) throw new Error('grpc: compressed messages are not supported');
      const len = buf.readUInt32BE(o + 1);
      if (buf.length - o - frameHeaderBytes < len) {
        this.needed = frameHeaderBytes + len;
        break;
      }
      this.onMessage(buf.subarray(o + frameHeaderBytes, o + frameHeaderBytes + len));
      o += frameHeaderBytes + len;
    }
    const rest = buf.subarray(o);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.bytes = rest.length;
  }

  /** Bytes of an incomplete message held back. */
  pendingBytes(): number {
    return this.bytes;
  }
}
