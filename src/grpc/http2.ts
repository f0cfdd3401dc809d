// The server side of HTTP/2 (RFC 9113), as much of it as a gRPC server needs, written for
// speed: frames are parsed straight out of the socket's buffers, and everything the
// connection sends during one turn of the event loop goes out in one socket write.
//
// Why not node:http2: nghttp2 (under node:http2) refuses requests whose `:authority` is not
// a bare authority, and etcdctl 3.4 sends `:authority: http://127.0.0.1:2379` when given
// URL endpoints, which Go's HTTP/2 server (and so etcd) accepts. Its per-stream objects
// are also the largest CPU cost of a small unary call.
//
// What is here: the connection preface and SETTINGS, HEADERS/CONTINUATION with HPACK,
// DATA with flow control in both directions, RST_STREAM, PING, GOAWAY, WINDOW_UPDATE,
// PRIORITY (ignored), stream states and the connection and stream errors of RFC 9113 §5.4.
// Not here: server push, which gRPC never uses, and the client side.

import type * as net from 'node:net';
import {
  ConnectionError,
  DEFAULT_MAX_FRAME,
  DEFAULT_WINDOW,
  ErrorCode,
  FLAG_ACK,
  FLAG_END_HEADERS,
  FLAG_END_STREAM,
  FLAG_PADDED,
  FLAG_PRIORITY,
  FRAME_HEADER,
  FrameType,
  MAX_WINDOW,
  PREFACE,
  Setting,
  frameHeader,
  writeFrameHeader,
  unpadded,
} from './h2-frames';
import { HpackDecoder, HpackEncoder, HpackError, type HeaderList } from './hpack';

export { ErrorCode, FrameType, PREFACE } from './h2-frames';

/** Receive windows this server offers: generous, as everything here is on one host or a LAN. */
const STREAM_WINDOW = 1 << 20;
const CONNECTION_WINDOW = 16 << 20;
const MAX_HEADER_LIST = 64 * 1024;
/** How many streams one connection may have open at once. */
const MAX_STREAMS = 100_000;
/** Below this many bytes the frames of a turn are joined into one buffer before writing. */
const JOIN_BELOW = 64 * 1024;
/** A stream refuses more queued output above this (its writer waits for 'drain'). */
export const STREAM_HIGH_WATER = 1 << 20;

/** What a connection tells its owner about streams. */
export interface StreamListener {
  /** A new request: its headers (pseudo-headers included), and whether the request ends here. */
  onStream(stream: ServerStream, headers: HeaderList, endStream: boolean): void;
}

type Pending = { data: Buffer; end: boolean } | { trailers: HeaderList };

/** What a stream tells its owner (server.ts's CallSink: the call itself). */
export interface StreamSink {
  streamData(chunk: Buffer): void;
  streamEnd(): void;
  /** The stream ended without a response: reset by the peer, or the connection closed. */
  streamAbort(code: ErrorCode): void;
  streamDrain(): void;
}

/**
 * One request/response exchange. The owner sets the sink; data arrives as the raw payload
 * of DATA frames (message framing is the owner's).
 */
export class ServerStream {
  /** Told of request data, its end, an abort and drain (server.ts's CallSink). */
  sink: StreamSink | undefined;

  sendWindow: number;
  /** Receive window left, and bytes received but not yet credited back. */
  recvWindow = STREAM_WINDOW;
  private uncredited = 0;
  private paused = false;
  remoteEnded = false;
  /** Set once the response is complete (END_STREAM sent) or the stream was reset. */
  closed = false;
  headersSent = false;
  private queue: Pending[] = [];
  queuedBytes = 0;

  constructor(
    readonly conn: Http2ServerConnection,
    readonly id: number,
  ) {
    this.sendWindow = conn.peerInitialWindow;
  }

  /** Response headers (not flow-controlled); `end` for a trailers-only response. */
  sendHeaders(headers: HeaderList, end = false): void {
    if (this.closed) return;
    this.headersSent = true;
    this.conn.writeHeaders(this.id, headers, end);
    if (end) this.conn.streamDone(this, true);
  }

  /** Queues body bytes; false once the stream holds more than it should (wait for streamDrain). */
  sendData(data: Buffer, end = false): boolean {
    if (this.closed) return false;
    this.queue.push({ data, end });
    this.queuedBytes += data.length;
    this.conn.pump(this);
    return this.queuedBytes < STREAM_HIGH_WATER;
  }

  /** Ends the response with trailers, after any queued data. */
  sendTrailers(trailers: HeaderList): void {
    if (this.closed) return;
    this.queue.push({ trailers });
    this.conn.pump(this);
  }

  /** Abandons the stream (RST_STREAM). */
  reset(code: ErrorCode = ErrorCode.CANCEL): void {
    if (this.closed) return;
    this.conn.writeRst(this.id, code);
    this.conn.streamDone(this, true);
  }

  /** Stops (or restarts) crediting the peer for data received: it will stall once the window is spent. */
  setPaused(paused: boolean): void {
    this.paused = paused;
    if (!paused) this.credit(0);
  }

  /** Called by the connection for every DATA payload byte count taken in. */
  credit(n: number): void {
    this.uncredited += n;
    if (this.paused || this.remoteEnded || this.closed) return;
    if (this.uncredited >= STREAM_WINDOW / 4) {
      this.conn.writeWindowUpdate(this.id, this.uncredited);
      this.recvWindow += this.uncredited;
      this.uncredited = 0;
    }
  }

  /** Sends what the windows allow; true when nothing is left queued. */
  flushQueue(): boolean {
    const conn = this.conn;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      if ('trailers' in head) {
        this.queue.shift();
        conn.writeHeaders(this.id, head.trailers, true);
        conn.streamDone(this, true);
        return true;
      }
      const room = Math.min(this.sendWindow, conn.sendWindow, conn.peerMaxFrame);
      if (head.data.length > 0 && room <= 0) return false;
      const n = Math.min(head.data.length, room);
      const last = n === head.data.length;
      const chunk = last ? head.data : head.data.subarray(0, n);
      conn.writeData(this.id, chunk, last && head.end);
      this.sendWindow -= n;
      conn.sendWindow -= n;
      this.queuedBytes -= n;
      if (last) {
        this.queue.shift();
        if (head.end) {
          conn.streamDone(this, true);
          return true;
        }
      } else {
        head.data = head.data.subarray(n);
      }
    }
    return true;
  }

  /** Drops queued output (the stream is gone). */
  discard(): void {
    this.queue = [];
    this.queuedBytes = 0;
  }
}

export interface ConnectionOptions {
  /** Called once when the connection is gone (socket closed). */
  onClose?: () => void;
  /**
   * Connections with frames written but not yet sent: the connection is in it from its first
   * frame of a turn to the flush, so that the owner can send every connection's at once
   * (flush()) before it blocks its thread.
   */
  unflushed?: Set<Http2ServerConnection>;
  /** An unexpected exception while handling the peer's frames (the connection was closed). */
  onInternalError?: (e: unknown) => void;
}

/** One client connection, from the preface on. */
export class Http2ServerConnection {
  private readonly decoder = new HpackDecoder(4096, { maxHeaderListSize: MAX_HEADER_LIST });
  private readonly encoder = new HpackEncoder(4096);
  /** Header lists already found well-formed (the decoder hands out the same list for the same indexed block). */
  private readonly wellFormed = new WeakSet<HeaderList>();
  private readonly streams = new Map<number, ServerStream>();
  private lastStreamId = 0;
  private buf: Buffer = Buffer.alloc(0);
  private prefaceSeen = false;
  /** A header block in progress (HEADERS without END_HEADERS, then CONTINUATIONs). */
  private headerBlock: { streamId: number; endStream: boolean; parts: Buffer[]; size: number } | undefined;
  /**
   * Frames written this turn, in order: their payloads and, three numbers per frame, type,
   * flags and stream id. The frame headers are made only at the flush, in the buffer that
   * goes to the socket (a header Buffer per frame cost an object per frame).
   */
  private out: Buffer[] = [];
  private outMeta: number[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  /** Streams waiting for connection-level send window. */
  private blocked = new Set<ServerStream>();
  private goingAway = false;
  private dead = false;
  private recvUncredited = 0;

  peerInitialWindow = DEFAULT_WINDOW;
  peerMaxFrame = DEFAULT_MAX_FRAME;
  sendWindow = DEFAULT_WINDOW;

  constructor(
    readonly socket: net.Socket,
    private readonly listener: StreamListener,
    private readonly options: ConnectionOptions = {},
  ) {
    socket.setNoDelay(true);
    // Server preface: our SETTINGS, then a larger connection receive window.
    this.writeSettings([
      [Setting.ENABLE_PUSH, 0],
      [Setting.MAX_CONCURRENT_STREAMS, MAX_STREAMS],
      [Setting.INITIAL_WINDOW_SIZE, STREAM_WINDOW],
      [Setting.MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST],
    ]);
    this.writeWindowUpdate(0, CONNECTION_WINDOW - DEFAULT_WINDOW);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
    socket.on('end', () => this.close());
  }

  /** Bytes read from the socket before this connection took it over (the sniffed preface). */
  feed(chunk: Buffer): void {
    this.receive(chunk);
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /** Graceful shutdown: GOAWAY, no new streams; the socket closes when the last stream ends. */
  goAway(): void {
    if (this.goingAway || this.dead) return;
    this.goingAway = true;
    this.writeGoAway(ErrorCode.NO_ERROR, '');
    if (this.streams.size === 0) this.endSocketAfterFlush();
  }

  /** Immediate shutdown: every stream aborted, the socket destroyed. */
  destroy(): void {
    this.close();
  }

  // -------------------------------------------------------------------------
  // Reading
  // -------------------------------------------------------------------------

  private receive(chunk: Buffer): void {
    if (this.dead) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    try {
      if (!this.prefaceSeen) {
        if (this.buf.length < PREFACE.length) {
          if (!PREFACE.subarray(0, this.buf.length).equals(this.buf)) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'bad connection preface');
          return;
        }
        if (!this.buf.subarray(0, PREFACE.length).equals(PREFACE)) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'bad connection preface');
        this.buf = this.buf.subarray(PREFACE.length);
        this.prefaceSeen = true;
      }
      let off = 0;
      const b = this.buf;
      while (b.length - off >= FRAME_HEADER && !this.dead) {
        const length = (b[off]! << 16) | (b[off + 1]! << 8) | b[off + 2]!;
        if (length > DEFAULT_MAX_FRAME) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${length} bytes`);
        if (b.length - off < FRAME_HEADER + length) break;
        const type = b[off + 3]!;
        const flags = b[off + 4]!;
        const streamId = b.readUInt32BE(off + 5) & 0x7fffffff;
        const payload = b.subarray(off + FRAME_HEADER, off + FRAME_HEADER + length);
        off += FRAME_HEADER + length;
        this.frame(type, flags, streamId, payload);
      }
      this.buf = off === b.length ? Buffer.alloc(0) : b.subarray(off);
      // Keep the unparsed tail from pinning a large chunk.
      if (this.buf.length > 0 && this.buf.buffer.byteLength > 4 * this.buf.length + 65536) this.buf = Buffer.from(this.buf);
    } catch (e) {
      if (e instanceof ConnectionError) {
        this.fail(e.code, e.message);
        return;
      }
      if (e instanceof HpackError) {
        this.fail(ErrorCode.COMPRESSION_ERROR, e.message);
        return;
      }
      // A bug on our side must not take the process down from a socket callback: this
      // connection ends, the others go on.
      this.fail(ErrorCode.INTERNAL_ERROR, e instanceof Error ? e.message : String(e));
      this.options.onInternalError?.(e);
    }
  }

  private frame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (this.headerBlock !== undefined && (type !== FrameType.CONTINUATION || streamId !== this.headerBlock.streamId)) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'expected CONTINUATION');
    }
    switch (type) {
      case FrameType.DATA:
        return this.onDataFrame(flags, streamId, payload);
      case FrameType.HEADERS:
        return this.onHeadersFrame(flags, streamId, payload);
      case FrameType.CONTINUATION:
        return this.onContinuation(flags, streamId, payload);
      case FrameType.PRIORITY:
        if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (payload.length !== 5) this.streamError(streamId, ErrorCode.FRAME_SIZE_ERROR);
        return;
      case FrameType.RST_STREAM:
        return this.onRst(streamId, payload);
      case FrameType.SETTINGS:
        return this.onSettings(flags, streamId, payload);
      case FrameType.PUSH_PROMISE:
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE from a client');
      case FrameType.PING:
        if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
        if (payload.length !== 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING of the wrong size');
        if ((flags & FLAG_ACK) === 0) this.writeFrame(FrameType.PING, FLAG_ACK, 0, Buffer.from(payload));
        return;
      case FrameType.GOAWAY:
        if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
        // The client will open no more streams; the ones open run to their end.
        this.goingAway = true;
        if (this.streams.size === 0) this.endSocketAfterFlush();
        return;
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(streamId, payload);
      default:
        return; // unknown frame types are ignored (§4.1)
    }
  }

  private onDataFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    // The whole frame, padding included, counts against both windows.
    this.creditConnection(payload.length);
    const stream = this.streams.get(streamId);
    if (stream === undefined || stream.remoteEnded) {
      if (streamId > this.lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on an idle stream');
      // A stream we closed or reset: the peer may not know yet (§5.1); a half-closed one is an error.
      if (stream !== undefined) this.streamError(streamId, ErrorCode.STREAM_CLOSED);
      return;
    }
    stream.recvWindow -= payload.length;
    if (stream.recvWindow < 0) {
      this.streamError(streamId, ErrorCode.FLOW_CONTROL_ERROR);
      return;
    }
    const data = unpadded(flags, payload);
    const end = (flags & FLAG_END_STREAM) !== 0;
    if (end) stream.remoteEnded = true;
    stream.credit(payload.length);
    if (data.length > 0) stream.sink?.streamData(data);
    if (end) stream.sink?.streamEnd();
  }

  private onHeadersFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
    const block = unpadded(flags, payload, (flags & FLAG_PRIORITY) !== 0 ? 5 : 0);
    if ((flags & FLAG_PADDED) !== 0 && (flags & FLAG_PRIORITY) !== 0 && payload.length < 6) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'HEADERS too short');
    const endStream = (flags & FLAG_END_STREAM) !== 0;
    if ((flags & FLAG_END_HEADERS) === 0) {
      this.headerBlock = { streamId, endStream, parts: [Buffer.from(block)], size: block.length };
      return;
    }
    this.onHeaderBlock(streamId, endStream, block);
  }

  private onContinuation(flags: number, _streamId: number, payload: Buffer): void {
    const hb = this.headerBlock;
    if (hb === undefined) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION without HEADERS');
    hb.parts.push(Buffer.from(payload));
    hb.size += payload.length;
    if (hb.size > 4 * MAX_HEADER_LIST) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'header block too large');
    if ((flags & FLAG_END_HEADERS) === 0) return;
    this.headerBlock = undefined;
    this.onHeaderBlock(hb.streamId, hb.endStream, Buffer.concat(hb.parts));
  }

  private onHeaderBlock(streamId: number, endStream: boolean, block: Buffer): void {
    // Always decode: the HPACK state is shared by the whole connection.
    const headers = this.decoder.decode(block);
    const existing = this.streams.get(streamId);
    if (existing !== undefined) {
      // Trailers from the client: must end the stream.
      if (existing.remoteEnded) return this.streamError(streamId, ErrorCode.STREAM_CLOSED);
      if (!endStream) return this.streamError(streamId, ErrorCode.PROTOCOL_ERROR);
      existing.remoteEnded = true;
      existing.sink?.streamEnd();
      return;
    }
    if (streamId <= this.lastStreamId) {
      // A stream already closed: frames may still be in flight from the peer (§5.1).
      return;
    }
    if (streamId % 2 === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'even stream id from a client');
    this.lastStreamId = streamId;
    if (this.goingAway) {
      this.writeRst(streamId, ErrorCode.REFUSED_STREAM);
      return;
    }
    if (this.streams.size >= MAX_STREAMS) {
      this.writeRst(streamId, ErrorCode.REFUSED_STREAM);
      return;
    }
    if (!this.wellFormed.has(headers)) {
      if (checkRequestHeaders(headers) !== undefined) {
        this.writeRst(streamId, ErrorCode.PROTOCOL_ERROR);
        return;
      }
      if (Object.isFrozen(headers)) this.wellFormed.add(headers);
    }
    const stream = new ServerStream(this, streamId);
    this.streams.set(streamId, stream);
    if (endStream) stream.remoteEnded = true;
    this.listener.onStream(stream, headers, endStream);
  }

  private onRst(streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (payload.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM of the wrong size');
    if (streamId > this.lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on an idle stream');
    const stream = this.streams.get(streamId);
    if (stream === undefined) return;
    this.streamDone(stream, false);
    stream.sink?.streamAbort(payload.readUInt32BE(0) as ErrorCode);
  }

  private onSettings(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if ((flags & FLAG_ACK) !== 0) {
      if (payload.length !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ack with a payload');
      return;
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS of the wrong size');
    for (let i = 0; i < payload.length; i += 6) {
      const id = payload.readUInt16BE(i);
      const value = payload.readUInt32BE(i + 2);
      switch (id) {
        case Setting.HEADER_TABLE_SIZE:
          this.encoder.setMaxTableSize(Math.min(value, 4096));
          break;
        case Setting.ENABLE_PUSH:
          if (value > 1) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'ENABLE_PUSH not 0 or 1');
          break;
        case Setting.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'INITIAL_WINDOW_SIZE too large');
          const delta = value - this.peerInitialWindow;
          this.peerInitialWindow = value;
          for (const s of this.streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'stream window overflow');
          }
          if (delta > 0) for (const s of [...this.streams.values()]) this.pump(s);
          break;
        }
        case Setting.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME || value > 16_777_215) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'MAX_FRAME_SIZE out of range');
          this.peerMaxFrame = value;
          break;
        default:
          break; // MAX_CONCURRENT_STREAMS (we push nothing), MAX_HEADER_LIST_SIZE, unknown: ignored
      }
    }
    this.writeFrame(FrameType.SETTINGS, FLAG_ACK, 0, Buffer.alloc(0));
  }

  private onWindowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE of the wrong size');
    const inc = payload.readUInt32BE(0) & 0x7fffffff;
    if (streamId === 0) {
      if (inc === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.sendWindow += inc;
      if (this.sendWindow > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window overflow');
      const waiting = [...this.blocked];
      this.blocked.clear();
      for (const s of waiting) this.pump(s);
      return;
    }
    const stream = this.streams.get(streamId);
    if (inc === 0) {
      if (stream !== undefined) this.streamError(streamId, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    if (stream === undefined) return;
    stream.sendWindow += inc;
    if (stream.sendWindow > MAX_WINDOW) return this.streamError(streamId, ErrorCode.FLOW_CONTROL_ERROR);
    this.pump(stream);
  }

  private creditConnection(n: number): void {
    this.recvUncredited += n;
    if (this.recvUncredited >= CONNECTION_WINDOW / 4) {
      this.writeWindowUpdate(0, this.recvUncredited);
      this.recvUncredited = 0;
    }
  }

  private streamError(streamId: number, code: ErrorCode): void {
    const stream = this.streams.get(streamId);
    this.writeRst(streamId, code);
    if (stream !== undefined) {
      this.streamDone(stream, false);
      stream.sink?.streamAbort(code);
    }
  }

  // -------------------------------------------------------------------------
  // Writing
  // -------------------------------------------------------------------------

  /** Sends a stream's queued data as far as the windows allow. */
  pump(stream: ServerStream): void {
    if (this.dead || stream.closed) return;
    const before = stream.queuedBytes;
    const done = stream.flushQueue();
    if (!done && this.sendWindow <= 0) this.blocked.add(stream);
    if (before >= STREAM_HIGH_WATER && stream.queuedBytes < STREAM_HIGH_WATER && !stream.closed) {
      const sink = stream.sink;
      if (sink !== undefined) queueMicrotask(() => sink.streamDrain());
    }
  }

  /** The stream is over: forgotten, and the owner told nothing more (done by the caller). */
  streamDone(stream: ServerStream, _sentEnd: boolean): void {
    if (stream.closed) return;
    stream.closed = true;
    stream.discard();
    this.blocked.delete(stream);
    this.streams.delete(stream.id);
    if (this.goingAway && this.streams.size === 0) this.endSocketAfterFlush();
  }

  writeHeaders(streamId: number, headers: HeaderList, end: boolean): void {
    const block = this.encoder.encode(headers);
    const max = this.peerMaxFrame;
    if (block.length <= max) {
      this.writeFrame(FrameType.HEADERS, FLAG_END_HEADERS | (end ? FLAG_END_STREAM : 0), streamId, block);
      return;
    }
    this.writeFrame(FrameType.HEADERS, end ? FLAG_END_STREAM : 0, streamId, block.subarray(0, max));
    for (let off = max; off < block.length; off += max) {
      const last = off + max >= block.length;
      this.writeFrame(FrameType.CONTINUATION, last ? FLAG_END_HEADERS : 0, streamId, block.subarray(off, off + max));
    }
  }

  writeData(streamId: number, data: Buffer, end: boolean): void {
    this.writeFrame(FrameType.DATA, end ? FLAG_END_STREAM : 0, streamId, data);
  }

  writeRst(streamId: number, code: ErrorCode): void {
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(code, 0);
    this.writeFrame(FrameType.RST_STREAM, 0, streamId, p);
  }

  writeWindowUpdate(streamId: number, inc: number): void {
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(inc, 0);
    this.writeFrame(FrameType.WINDOW_UPDATE, 0, streamId, p);
  }

  private writeSettings(settings: Array<[Setting, number]>): void {
    const p = Buffer.allocUnsafe(settings.length * 6);
    settings.forEach(([id, v], i) => {
      p.writeUInt16BE(id, i * 6);
      p.writeUInt32BE(v, i * 6 + 2);
    });
    this.writeFrame(FrameType.SETTINGS, 0, 0, p);
  }

  private writeGoAway(code: ErrorCode, debug: string): void {
    const d = Buffer.from(debug, 'utf8');
    const p = Buffer.allocUnsafe(8 + d.length);
    p.writeUInt32BE(this.lastStreamId, 0);
    p.writeUInt32BE(code, 4);
    d.copy(p, 8);
    this.writeFrame(FrameType.GOAWAY, 0, 0, p);
  }

  private writeFrame(type: FrameType, flags: number, streamId: number, payload: Buffer): void {
    if (this.dead) return;
    const n = payload.length;
    this.out.push(payload);
    this.outMeta.push(type, flags, streamId);
    this.outBytes += FRAME_HEADER + n;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.options.unflushed?.add(this);
      // With one stream open (a lone caller, or one watch stream) nothing else is coming to
      // share the write: it goes out once the current work is done, not a turn later (about
      // 0.1 ms of a lone put's latency). With more, the turn's frames share one write.
      if (this.streams.size <= 1) process.nextTick(() => this.flush());
      else setImmediate(() => this.flush());
    }
  }

  /** Everything written this turn goes out in one write (now, when called before the flush scheduled). */
  flush(): void {
    this.flushScheduled = false;
    this.options.unflushed?.delete(this);
    if (this.dead || this.out.length === 0) return;
    const out = this.out;
    const meta = this.outMeta;
    const bytes = this.outBytes;
    this.out = [];
    this.outMeta = [];
    this.outBytes = 0;
    if (bytes < JOIN_BELOW) {
      const buf = Buffer.allocUnsafe(bytes);
      let off = 0;
      for (let i = 0; i < out.length; i++) {
        const p = out[i]!;
        writeFrameHeader(buf, off, meta[3 * i]!, meta[3 * i + 1]!, meta[3 * i + 2]!, p.length);
        buf.set(p, off + FRAME_HEADER);
        off += FRAME_HEADER + p.length;
      }
      this.socket.write(buf);
      return;
    }
    // Large payloads are not copied: each goes out after its own header.
    this.socket.cork();
    for (let i = 0; i < out.length; i++) {
      const p = out[i]!;
      this.socket.write(frameHeader(meta[3 * i]!, meta[3 * i + 1]!, meta[3 * i + 2]!, p.length));
      if (p.length > 0) this.socket.write(p);
    }
    this.socket.uncork();
  }

  private endSocketAfterFlush(): void {
    setImmediate(() => {
      this.flush();
      if (!this.dead) this.socket.end();
    });
  }

  /** A connection error: GOAWAY with the code, then the socket closes. */
  private fail(code: ErrorCode, message: string): void {
    if (this.dead) return;
    this.writeGoAway(code, message);
    this.flush();
    this.socket.end();
    this.close();
  }

  private close(): void {
    if (this.dead) return;
    this.dead = true;
    this.options.unflushed?.delete(this);
    this.out = [];
    this.outMeta = [];
    const streams = [...this.streams.values()];
    this.streams.clear();
    this.blocked.clear();
    for (const s of streams) {
      s.closed = true;
      s.discard();
      s.sink?.streamAbort(ErrorCode.CANCEL);
    }
    if (!this.socket.destroyed) {
      // Let a pending GOAWAY go out, then make sure the socket does not linger.
      setTimeout(() => this.socket.destroy(), 1000).unref();
    }
    this.options.onClose?.();
  }
}

/** RFC 9113 §8.3.1 checks of a request's pseudo-headers; a reason when malformed. */
function checkRequestHeaders(headers: HeaderList): string | undefined {
  let method = false;
  let path = false;
  let scheme = false;
  let regular = false;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    const name = h[0];
    const value = h[1];
    if (name.charCodeAt(0) === 58 /* ':' */) {
      if (regular) return 'pseudo-header after a regular header';
      if (name === ':method') {
        if (method) return 'duplicate :method';
        method = true;
      } else if (name === ':path') {
        if (path || value === '') return 'bad :path';
        path = true;
      } else if (name === ':scheme') {
        if (scheme) return 'duplicate :scheme';
        scheme = true;
      } else if (name !== ':authority') {
        return `unknown pseudo-header ${name}`;
      }
      continue;
    }
    regular = true;
    if (name !== name.toLowerCase()) return 'upper-case header name';
    if (name === 'connection' || name === 'transfer-encoding' || name === 'upgrade' || name === 'keep-alive' || name === 'proxy-connection') return `connection-specific header ${name}`;
    if (name === 'te' && value !== 'trailers') return 'te other than trailers';
  }
  if (!method || !path || !scheme) return 'missing pseudo-header';
  return undefined;
}
