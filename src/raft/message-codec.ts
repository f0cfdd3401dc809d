// The binary form of a Raft message on the peer transport. Fixed fields at fixed offsets,
// then the entries (each with its data inline); the rare snapshot travels as msgpack. About
// a third of msgpackr's CPU for an append, and entries' data are views into the received
// bytes (no copy).
//
//   0      u8   codecVersion
//   1      u8   type (index in MessageTypes)
//   2      u8   flags: 1 reject, 2 context, 4 snapshot
//   3      f64 x 7   to, from, term, logTerm, index, commit, rejectHint
//   59     u32  entry count
//   63     entries: f64 term, f64 index, u8 type, u32 data bytes, data
//          context: u32 bytes, utf-8 (flag 2)
//          snapshot: u32 bytes, msgpack (flag 4)

import { Packr } from 'msgpackr';
import { assert } from './errors';
import { Entry, Message, MessageType, MessageTypes, Snapshot } from './types';

const packr = new Packr({ useRecords: false, moreTypes: false });

const codecVersion = 1;
const flagReject = 1;
const flagContext = 2;
const flagSnapshot = 4;
const headerBytes = 63;
const entryHeaderBytes = 21;

const typeIndex = new Map<MessageType, number>(MessageTypes.map((t, i) => [t, i]));
assert(MessageTypes.length < 256, 'message types fit in a byte');

/** Encoded messages are cut from shared slabs (a fresh ArrayBuffer per message costs more than encoding it). */
const slabBytes = 256 * 1024;
let slab = Buffer.allocUnsafeSlow(slabBytes);
let slabOffset = 0;

function allocate(bytes: number): Buffer {
  if (bytes > slabBytes / 8) return Buffer.allocUnsafeSlow(bytes);
  if (slabOffset + bytes > slabBytes) {
    slab = Buffer.allocUnsafeSlow(slabBytes);
    slabOffset = 0;
  }
  const b = slab.subarray(slabOffset, slabOffset + bytes);
  slabOffset += (bytes + 7) & ~7;
  return b;
}

export function encodeMessage(m: Message): Buffer {
  let bytes = headerBytes;
  for (const e of m.entries) bytes += entryHeaderBytes + e.data.byteLength;
  const context = m.context !== undefined ? Buffer.from(m.context, 'utf8') : undefined;
  if (context) bytes += 4 + context.length;
  const snapshot = m.snapshot !== undefined ? packr.pack(m.snapshot) : undefined;
  if (snapshot) bytes += 4 + snapshot.length;
  const b = allocate(bytes);
  b[0] = codecVersion;
  b[1] = typeIndex.get(m.type)!;
  b[2] = (m.reject ? flagReject : 0) | (context ? flagContext : 0) | (snapshot ? flagSnapshot : 0);
  b.writeDoubleLE(m.to, 3);
  b.writeDoubleLE(m.from, 11);
  b.writeDoubleLE(m.term, 19);
  b.writeDoubleLE(m.logTerm, 27);
  b.writeDoubleLE(m.index, 35);
  b.writeDoubleLE(m.commit, 43);
  b.writeDoubleLE(m.rejectHint, 51);
  b.writeUInt32LE(m.entries.length, 59);
  let o = headerBytes;
  for (const e of m.entries) {
    b.writeDoubleLE(e.term, o);
    b.writeDoubleLE(e.index, o + 8);
    b[o + 16] = e.type;
    b.writeUInt32LE(e.data.byteLength, o + 17);
    o += entryHeaderBytes;
    b.set(e.data, o);
    o += e.data.byteLength;
  }
  if (context) {
    b.writeUInt32LE(context.length, o);
    context.copy(b, o + 4);
    o += 4 + context.length;
  }
  if (snapshot) {
    b.writeUInt32LE(snapshot.length, o);
    snapshot.copy(b, o + 4);
    o += 4 + snapshot.length;
  }
  assert(o === bytes, 'message encoded to its computed size');
  return b;
}

export function decodeMessage(bytes: Uint8Array): Message {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < headerBytes || b[0] !== codecVersion) throw new Error(`unknown raft message encoding (${b.length} bytes, first ${b[0]})`);
  const type = MessageTypes[b[1]];
  if (type === undefined) throw new Error(`unknown raft message type ${b[1]}`);
  const flags = b[2];
  const count = b.readUInt32LE(59);
  const entries: Entry[] = new Array<Entry>(count);
  let o = headerBytes;
  for (let i = 0; i < count; i++) {
    if (o + entryHeaderBytes > b.length) throw new Error('truncated raft message');
    const len = b.readUInt32LE(o + 17);
    const start = o + entryHeaderBytes;
    if (start + len > b.length) throw new Error('truncated raft message');
    entries[i] = { term: b.readDoubleLE(o), index: b.readDoubleLE(o + 8), type: b[o + 16], data: b.subarray(start, start + len) };
    o = start + len;
  }
  const m: Message = {
    type,
    to: b.readDoubleLE(3),
    from: b.readDoubleLE(11),
    term: b.readDoubleLE(19),
    logTerm: b.readDoubleLE(27),
    index: b.readDoubleLE(35),
    commit: b.readDoubleLE(43),
    rejectHint: b.readDoubleLE(51),
    reject: (flags & flagReject) !== 0,
    entries,
  };
  if (flags & flagContext) {
    const len = b.readUInt32LE(o);
    m.context = b.toString('utf8', o + 4, o + 4 + len);
    o += 4 + len;
  }
  if (flags & flagSnapshot) {
    const len = b.readUInt32LE(o);
    m.snapshot = packr.unpack(b.subarray(o + 4, o + 4 + len)) as Snapshot;
    o += 4 + len;
  }
  if (o !== b.length) throw new Error('trailing bytes in raft message');
  return m;
}
