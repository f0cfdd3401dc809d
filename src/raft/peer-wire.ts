// The peer transport's wire: what a member writes on a TCP (or TLS) connection to another
// member's peer port. The same port serves gRPC (the peer-members service) and is told
// apart by the first bytes.
//
//   connection  = PREFACE, then frames
//   frame       = u32 BE length of the rest, u8 kind, payload
//
//   kind    direction   payload
//   HELLO   → first     u8 purpose (1 messages, 2 snapshot), f64 LE cluster id, from, to
//   MSG     →           one Raft message (message-codec.ts)
//   SNAP    →           the snapshot's MsgSnap (message-codec.ts), data left empty
//   DATA    →           a piece of the snapshot's data, in order
//   END     →           the snapshot's data is complete
//   ACK     ←           u64 BE: the snapshot's data bytes the receiver took in
//   ERROR   ←           u8 code, utf-8 reason; the receiver closes the connection after it
//
// Connections are one-way: A sends to B on a connection A opened; B's messages to A go on
// B's own connection. A messages connection lives as long as both members do; a snapshot
// gets its own connection, closed once it is acknowledged. Ids of 0 in HELLO are not
// checked (a member that does not know the cluster id yet).

export const PREFACE = Buffer.from('SKIFF-RAFT/1\r\n', 'latin1');

export const enum FrameKind {
  Hello = 1,
  Msg = 2,
  Snap = 3,
  Data = 4,
  End = 5,
  Ack = 6,
  Error = 7,
}

export const enum Purpose {
  Messages = 1,
  Snapshot = 2,
}

export const enum RefusalCode {
  /** HELLO's cluster id or receiver id does not match this member. */
  Mismatch = 1,
  /** The sender was removed from the cluster (etcd answers 410 Gone). */
  Removed = 2,
  /** A frame this side does not accept here (a bug or another version). */
  Protocol = 3,
  /** The state machine failed to take the snapshot in. */
  Snapshot = 4,
}

export interface Hello {
  purpose: Purpose;
  clusterId: number;
  from: number;
  to: number;
}

export const frameHeaderBytes = 5;
const helloBytes = 1 + 3 * 8;

/** The 5-byte header of a frame whose payload has `payloadBytes` bytes. */
export function frameHeader(kind: FrameKind, payloadBytes: number): Buffer {
  const h = Buffer.allocUnsafe(frameHeaderBytes);
  h.writeUInt32BE(payloadBytes + 1, 0);
  h[4] = kind;
  return h;
}

/** A whole frame in one buffer. */
export function frame(kind: FrameKind, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const b = Buffer.allocUnsafe(frameHeaderBytes + payload.byteLength);
  b.writeUInt32BE(payload.byteLength + 1, 0);
  b[4] = kind;
  b.set(payload, frameHeaderBytes);
  return b;
}

export function encodeHello(h: Hello): Buffer {
  const p = Buffer.allocUnsafe(helloBytes);
  p[0] = h.purpose;
  p.writeDoubleLE(h.clusterId, 1);
  p.writeDoubleLE(h.from, 9);
  p.writeDoubleLE(h.to, 17);
  return frame(FrameKind.Hello, p);
}

export function decodeHello(p: Buffer): Hello {
  if (p.length !== helloBytes || (p[0] !== Purpose.Messages && p[0] !== Purpose.Snapshot)) throw new Error('malformed HELLO frame');
  return { purpose: p[0], clusterId: p.readDoubleLE(1), from: p.readDoubleLE(9), to: p.readDoubleLE(17) };
}

export function encodeRefusal(code: RefusalCode, reason: string): Buffer {
  const text = Buffer.from(reason, 'utf8');
  const p = Buffer.allocUnsafe(1 + text.length);
  p[0] = code;
  text.copy(p, 1);
  return frame(FrameKind.Error, p);
}

export function decodeRefusal(p: Buffer): { code: RefusalCode; reason: string } {
  if (p.length < 1) throw new Error('malformed ERROR frame');
  return { code: p[0], reason: p.toString('utf8', 1) };
}

export function encodeAck(bytes: number): Buffer {
  const p = Buffer.allocUnsafe(8);
  p.writeBigUInt64BE(BigInt(bytes), 0);
  return frame(FrameKind.Ack, p);
}

export function decodeAck(p: Buffer): number {
  if (p.length !== 8) throw new Error('malformed ACK frame');
  return Number(p.readBigUInt64BE(0));
}

/**
 * Cuts a byte stream into frames. Payloads are views into the received bytes (no copy):
 * whatever keeps a payload's data for long copies it out (DiskStorage writes entries' data into its own buffers).
 */
export class FrameReader {
  /** Received bytes not yet cut into frames, and how many. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The length field of the frame being assembled, once known. */
  private needed = 0;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly onFrame: (kind: FrameKind, payload: Buffer) => void,
  ) {}

  /** Feeds received bytes; throws on a frame over the size limit (the connection is then unusable). */
  push(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    // A large frame arrives in many chunks: join them only once it is complete.
    if (this.needed > 0 && this.pendingBytes < this.needed) return;
    if (this.pendingBytes < frameHeaderBytes) return;
    const b = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.needed = 0;
    let o = 0;
    while (b.length - o >= frameHeaderBytes) {
      const len = b.readUInt32BE(o);
      if (len < 1 || len > this.maxFrameBytes) throw new Error(`peer frame of ${len} bytes (limit ${this.maxFrameBytes})`);
      if (b.length - o - 4 < len) {
        this.needed = 4 + len;
        break;
      }
      const kind = b[o + 4] as FrameKind;
      const payload = b.subarray(o + frameHeaderBytes, o + 4 + len);
      o += 4 + len;
      this.onFrame(kind, payload);
    }
    if (o < b.length) {
      // Keep only the unread tail (a copy when it is a small part of a large buffer).
      const rest = b.subarray(o);
      this.pending.push(rest.length * 4 < b.length ? Buffer.from(rest) : rest);
      this.pendingBytes = rest.length;
    }
  }
}
