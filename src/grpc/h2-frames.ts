// HTTP/2's wire (RFC 9113 §4, §6, §7): the frame types, flags, settings and error codes,
// and the frame header, as both sides of a connection use them: the server here (http2.ts)
// and the benchmark's client (bench/h2-connection.ts).

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const enum FrameType {
  DATA = 0x0,
  HEADERS = 0x1,
  PRIORITY = 0x2,
  RST_STREAM = 0x3,
  SETTINGS = 0x4,
  PUSH_PROMISE = 0x5,
  PING = 0x6,
  GOAWAY = 0x7,
  WINDOW_UPDATE = 0x8,
  CONTINUATION = 0x9,
}

export const FLAG_END_STREAM = 0x1;
export const FLAG_ACK = 0x1;
export const FLAG_END_HEADERS = 0x4;
export const FLAG_PADDED = 0x8;
export const FLAG_PRIORITY = 0x20;

/** RFC 9113 §7 error codes. */
export const enum ErrorCode {
  NO_ERROR = 0x0,
  PROTOCOL_ERROR = 0x1,
  INTERNAL_ERROR = 0x2,
  FLOW_CONTROL_ERROR = 0x3,
  SETTINGS_TIMEOUT = 0x4,
  STREAM_CLOSED = 0x5,
  FRAME_SIZE_ERROR = 0x6,
  REFUSED_STREAM = 0x7,
  CANCEL = 0x8,
  COMPRESSION_ERROR = 0x9,
  CONNECT_ERROR = 0xa,
  ENHANCE_YOUR_CALM = 0xb,
  INADEQUATE_SECURITY = 0xc,
  HTTP_1_1_REQUIRED = 0xd,
}

export const enum Setting {
  HEADER_TABLE_SIZE = 0x1,
  ENABLE_PUSH = 0x2,
  MAX_CONCURRENT_STREAMS = 0x3,
  INITIAL_WINDOW_SIZE = 0x4,
  MAX_FRAME_SIZE = 0x5,
  MAX_HEADER_LIST_SIZE = 0x6,
}

export const DEFAULT_WINDOW = 65_535;
export const DEFAULT_MAX_FRAME = 16_384;
export const MAX_WINDOW = 2 ** 31 - 1;
export const FRAME_HEADER = 9;

/** A connection error (RFC 9113 §5.4.1): the connection ends with GOAWAY carrying `code`. */
export class ConnectionError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The 9-byte header of a frame with a payload of `length` bytes. */
export function frameHeader(type: FrameType, flags: number, streamId: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER);
  writeFrameHeader(h, 0, type, flags, streamId, length);
  return h;
}

/** Writes a frame header into `buf` at `off`. */
export function writeFrameHeader(buf: Buffer, off: number, type: FrameType, flags: number, streamId: number, length: number): void {
  buf[off] = (length >>> 16) & 0xff;
  buf[off + 1] = (length >>> 8) & 0xff;
  buf[off + 2] = length & 0xff;
  buf[off + 3] = type;
  buf[off + 4] = flags;
  buf.writeUInt32BE(streamId, off + 5);
}

/**
 * A DATA or HEADERS payload without its padding (PADDED flag) and without `extra` bytes
 * after the pad length (HEADERS' priority fields), checked.
 */
export function unpadded(flags: number, payload: Buffer, extra = 0): Buffer {
  if ((flags & FLAG_PADDED) === 0) return extra === 0 ? payload : payload.subarray(extra);
  if (payload.length < 1) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'padded frame too short');
  const pad = payload[0]!;
  if (1 + extra + pad > payload.length) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'padding exceeds the frame');
  return payload.subarray(1 + extra, payload.length - pad);
}
