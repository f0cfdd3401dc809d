// A small protobuf wire reader for the hot paths that decode by hand. A well-formed message
// reads as protobufjs reads it (the decoder every other message goes through): the last
// occurrence of a scalar field wins, unknown fields (groups included) are skipped, int64
// values become JS numbers, exact up to 2^53 (PROTO_LOADER_OPTIONS), and a truncated field
// or a bad wire type fails with protobufjs's error text. Varints are read as grpc-go reads
// them, where protobufjs is laxer: one longer than five bytes where 32 bits are wanted is
// read whole (protobufjs skips ten bytes blindly), and one cut off by the end of the message
// is an error (protobufjs can take it as complete).

/** Wire types (shared with ProtoWriter). */
export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;
const WIRE_FIXED32 = 5;

const EMPTY = Buffer.alloc(0);

export class ProtoReader {
  pos = 0;
  private lo = 0;
  private hi = 0;

  constructor(private readonly buf: Buffer) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  private outOfRange(n: number): Error {
    return new RangeError(`index out of range: ${this.pos} + ${n} > ${this.buf.length}`);
  }

  /** Reads a varint into lo/hi (its low and high 32 bits). */
  private varint64(): void {
    const b = this.buf;
    let lo = 0;
    let hi = 0;
    let i = 0;
    let byte = 0;
    for (; i < 4; i++) {
      if (this.pos >= b.length) throw this.outOfRange(1);
      byte = b[this.pos++]!;
      lo = (lo | ((byte & 0x7f) << (i * 7))) >>> 0;
      if (byte < 0x80) {
        this.lo = lo;
        this.hi = 0;
        return;
      }
    }
    // The fifth byte holds bits 28-34: 4 for lo, 3 for hi.
    if (this.pos >= b.length) throw this.outOfRange(1);
    byte = b[this.pos++]!;
    lo = (lo | ((byte & 0x7f) << 28)) >>> 0;
    hi = (byte & 0x7f) >> 4;
    if (byte >= 0x80) {
      for (i = 0; i < 5; i++) {
        if (this.pos >= b.length) throw this.outOfRange(1);
        byte = b[this.pos++]!;
        hi = (hi | ((byte & 0x7f) << (i * 7 + 3))) >>> 0;
        if (byte < 0x80) break;
      }
      if (byte >= 0x80) throw new Error('invalid varint encoding');
    }
    this.lo = lo;
    this.hi = hi;
  }

  /** A field's tag: field number * 8 + wire type (protobufjs reads it as a uint32). */
  tag(): number {
    this.varint64();
    return this.lo;
  }

  uint32(): number {
    this.varint64();
    return this.lo;
  }

  /** int64 as a signed JS number (protobufjs's LongBits.toNumber(false)). */
  int64(): number {
    this.varint64();
    let lo = this.lo;
    let hi = this.hi;
    if (hi >>> 31) {
      lo = (~lo + 1) >>> 0;
      hi = ~hi >>> 0;
      if (!lo) hi = (hi + 1) >>> 0;
      return -(lo + hi * 4294967296);
    }
    return lo + hi * 4294967296;
  }

  bool(): boolean {
    return this.uint32() !== 0;
  }

  /** A length-delimited field's bytes: a view of the message's buffer, no copy. */
  bytes(): Buffer {
    const n = this.uint32();
    const start = this.pos;
    const end = start + n;
    if (end > this.buf.length) throw this.outOfRange(n);
    this.pos = end;
    return n === 0 ? EMPTY : this.buf.subarray(start, end);
  }

  /** Skips a field of the given wire type (after its tag). */
  skipType(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint64();
        break;
      case WIRE_FIXED64:
        this.skip(8);
        break;
      case WIRE_LEN:
        this.skip(this.uint32());
        break;
      case WIRE_START_GROUP:
        for (;;) {
          const t = this.uint32() & 7;
          if (t === WIRE_END_GROUP) break;
          this.skipType(t);
        }
        break;
      case WIRE_FIXED32:
        this.skip(4);
        break;
      default:
        throw new Error(`invalid wire type ${wireType} at offset ${this.pos}`);
    }
  }

  private skip(n: number): void {
    if (this.pos + n > this.buf.length) throw this.outOfRange(n);
    this.pos += n;
  }
}
