// A small protobuf (proto3) wire writer for the hot paths that encode by hand: varints,
// length-delimited fields and pre-encoded bytes, into one buffer that grows. Fields equal
// to their proto3 default are left out, as protobuf encoders do.

import { WIRE_LEN, WIRE_VARINT } from './proto-reader';

export class ProtoWriter {
  private buf: Buffer = Buffer.allocUnsafe(512);
  private pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private varint(n: number): void {
    // Non-negative safe integers only (lengths, revisions, ids below 2^53).
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
    while (n >= 0x80) {
      b[p++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    b[p++] = n;
    this.pos = p;
  }

  private tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  /** An unsigned (or non-negative) integer field; negative int64 values take ten bytes, two's complement. */
  int(field: number, n: number): this {
    if (n === 0) return this;
    this.tag(field, WIRE_VARINT);
    if (n > 0) {
      this.varint(n);
      return this;
    }
    let v = BigInt.asUintN(64, BigInt(n));
    this.ensure(10);
    for (let i = 0; i < 10; i++) {
      const byte = Number(v & 0x7fn);
      v >>= 7n;
      this.buf[this.pos++] = v === 0n ? byte : byte | 0x80;
      if (v === 0n) break;
    }
    return this;
  }

  bool(field: number, b: boolean): this {
    if (!b) return this;
    this.tag(field, WIRE_VARINT);
    this.varint(1);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    if (data.length === 0) return this;
    return this.lengthDelimited(field, data);
  }

  string(field: number, s: string): this {
    if (s === '') return this;
    return this.lengthDelimited(field, Buffer.from(s, 'utf8'));
  }

  /** A length-delimited field even when empty (a present but empty sub-message). */
  lengthDelimited(field: number, data: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.varint(data.length);
    this.raw(data);
    return this;
  }

  /** Bytes already encoded (whole fields). */
  raw(data: Uint8Array): this {
    this.ensure(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
    return this;
  }

  /**
   * The bytes written as one gRPC message: the 5-byte prefix (not compressed, length) and
   * the bytes, in one new buffer; the writer is empty again.
   */
  finishFramed(): Buffer {
    const out = Buffer.allocUnsafe(5 + this.pos);
    out[0] = 0;
    out.writeUInt32BE(this.pos, 1);
    this.buf.copy(out, 5, 0, this.pos);
    this.pos = 0;
    return out;
  }

  /** The bytes written, copied out; the writer is empty again. */
  finish(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    this.pos = 0;
    return out;
  }
}
