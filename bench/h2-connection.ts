// The client side of one HTTP/2 connection (RFC 9113) over plain TCP, as lean as a
// benchmark client needs: it opens streams with a fixed header block, sends DATA, and
// hands each stream its response headers, DATA and trailers. node:http2 costs the client
// twice the CPU per call (an async resource, an event emitter and a Duplex per stream),
// and the client shares the machine's cores with the members it measures.
//
// Covered: the preface and SETTINGS exchange, HPACK decoding of every header block (the
// server's dynamic table), request header blocks encoded without indexing (so one block
// per path serves every call), flow control both ways, PING, RST_STREAM, GOAWAY. The frames
// of one turn go out in one socket write. No TLS, no server push, no priorities.

import * as net from 'node:net';
import { HeaderList, HpackDecoder, HpackEncoder } from '../src/grpc/hpack';
import {
  DEFAULT_MAX_FRAME,
  DEFAULT_WINDOW,
  ErrorCode,
  FLAG_ACK,
  FLAG_END_HEADERS,
  FLAG_END_STREAM,
  FLAG_PRIORITY,
  FRAME_HEADER,
  FrameType,
  PREFACE,
  Setting,
  frameHeader,
  unpadded,
} from '../src/grpc/h2-frames';

/** Receive windows offered to the server: large, so watch streams are not throttled. */
export const streamWindowBytes = 1 << 20;
export const connectionWindowBytes = 16 << 20;

/** What a stream is told. */
export interface StreamEvents {
  /** The response headers, then (if any) the trailers. `end` when the block ended the stream. */
  onHeaders(headers: HeaderList, end: boolean): void;
  onData(data: Buffer, end: boolean): void;
  /** The stream ended without a clean end: reset by the server, or the connection failed. */
  onAbort(reason: string, code: ErrorCode | undefined): void;
}

interface ClientStream {
  id: number;
  events: StreamEvents;
  /** Bytes the server lets us send on this stream. */
  sendWindow: number;
  /** DATA waiting for window: payload and whether it ends the stream. */
  pending: Array<{ data: Buffer; end: boolean }>;
  /** Bytes received since the last WINDOW_UPDATE for this stream. */
  unacked: number;
}

export class H2Connection {
  private readonly socket: net.Socket;
  private readonly decoder = new HpackDecoder();
  private readonly streams = new Map<number, ClientStream>();
  private nextStreamId = 1;
  private out: Buffer[] = [];
  private flushScheduled = false;
  private inbuf: Buffer | undefined;
  private connSendWindow = DEFAULT_WINDOW;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = DEFAULT_MAX_FRAME;
  private connUnacked = 0;
  /** Header block fragments of a HEADERS not yet ended by END_HEADERS. */
  private continuing: { id: number; end: boolean; parts: Buffer[] } | undefined;
  private ready = false;
  private readyWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  /** Set once the connection can open no more streams (closed, failed or GOAWAY). */
  closedReason: string | undefined;

  constructor(
    readonly host: string,
    readonly port: number,
  ) {
    this.socket = net.connect({ host, port });
    this.socket.setNoDelay(true);
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(Setting.ENABLE_PUSH, 0);
    settings.writeUInt32BE(0, 2);
    settings.writeUInt16BE(Setting.INITIAL_WINDOW_SIZE, 6);
    settings.writeUInt32BE(streamWindowBytes, 8);
    this.out.push(PREFACE);
    this.frame(FrameType.SETTINGS, 0, 0, settings);
    this.windowUpdate(0, connectionWindowBytes - DEFAULT_WINDOW);
    this.flush();
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk));
    this.socket.on('error', (e) => this.fail(e.message));
    this.socket.on('close', () => this.fail('connection closed'));
  }

  /** Resolves once the server's SETTINGS arrived; rejects if the connection fails first. */
  whenReady(): Promise<void> {
    if (this.ready) return Promise.resolve();
    if (this.closedReason !== undefined) return Promise.reject(new Error(this.closedReason));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  get usable(): boolean {
    return this.closedReason === undefined;
  }

  /**
   * Opens a stream with a complete header block (no END_STREAM) and returns its id. Frames
   * written before the server's SETTINGS arrive are queued in order with the preface.
   */
  open(headerBlock: Buffer, events: StreamEvents): number {
    if (this.closedReason !== undefined) throw new Error(this.closedReason);
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    this.streams.set(id, { id, events, sendWindow: this.peerInitialWindow, pending: [], unacked: 0 });
    this.frame(FrameType.HEADERS, FLAG_END_HEADERS, id, headerBlock);
    return id;
  }

  /** Sends DATA on an open stream (queued while the server's windows are too small). */
  send(id: number, data: Buffer, end: boolean): void {
    const s = this.streams.get(id);
    if (s === undefined) return;
    s.pending.push({ data, end });
    this.drain(s);
  }

  /** Resets a stream (RST_STREAM) and forgets it; its events are not called again. */
  reset(id: number, code: ErrorCode): void {
    if (!this.streams.delete(id)) return;
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(code, 0);
    this.frame(FrameType.RST_STREAM, 0, id, p);
  }

  close(): void {
    this.fail('connection closed by the client');
    this.socket.destroy();
  }

  private drain(s: ClientStream): void {
    while (s.pending.length > 0) {
      const { data, end } = s.pending[0];
      const n = Math.min(data.length, this.peerMaxFrame);
      if (n > s.sendWindow || n > this.connSendWindow) return;
      s.sendWindow -= n;
      this.connSendWindow -= n;
      const last = n === data.length;
      this.frame(FrameType.DATA, last && end ? FLAG_END_STREAM : 0, s.id, data.subarray(0, n));
      if (last) s.pending.shift();
      else s.pending[0] = { data: data.subarray(n), end };
    }
  }

  private frame(type: FrameType, flags: number, id: number, payload: Buffer): void {
    this.out.push(frameHeader(type, flags, id, payload.length), payload);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  private windowUpdate(id: number, increment: number): void {
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(increment, 0);
    this.frame(FrameType.WINDOW_UPDATE, 0, id, p);
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.out.length === 0 || this.socket.destroyed) return;
    const bufs = this.out;
    this.out = [];
    this.socket.write(bufs.length === 1 ? bufs[0] : Buffer.concat(bufs));
  }

  private receive(chunk: Buffer): void {
    let buf = this.inbuf === undefined ? chunk : Buffer.concat([this.inbuf, chunk]);
    let o = 0;
    try {
      while (buf.length - o >= FRAME_HEADER) {
        const len = buf.readUIntBE(o, 3);
        if (buf.length - o < FRAME_HEADER + len) break;
        const type = buf[o + 3];
        const flags = buf[o + 4];
        const id = buf.readUInt32BE(o + 5) & 0x7fffffff;
        this.onFrame(type, flags, id, buf.subarray(o + FRAME_HEADER, o + FRAME_HEADER + len));
        o += FRAME_HEADER + len;
      }
    } catch (e) {
      this.fail(`protocol error: ${(e as Error).message}`);
      this.socket.destroy();
      return;
    }
    buf = buf.subarray(o);
    this.inbuf = buf.length > 0 ? Buffer.from(buf) : undefined;
    if (this.connUnacked >= connectionWindowBytes / 4) {
      this.windowUpdate(0, this.connUnacked);
      this.connUnacked = 0;
    }
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.continuing !== undefined && type !== FrameType.CONTINUATION) throw new Error('expected CONTINUATION');
    switch (type) {
      case FrameType.DATA: {
        this.connUnacked += payload.length;
        const s = this.streams.get(id);
        const data = unpadded(flags, payload);
        if (s === undefined) return; // reset by us: its data only counts against the window
        s.unacked += payload.length;
        const end = (flags & FLAG_END_STREAM) !== 0;
        if (end) this.streams.delete(id);
        else if (s.unacked >= streamWindowBytes / 4) {
          this.windowUpdate(id, s.unacked);
          s.unacked = 0;
        }
        s.events.onData(data, end);
        return;
      }
      case FrameType.HEADERS: {
        const block = unpadded(flags, payload, flags & FLAG_PRIORITY ? 5 : 0);
        const end = (flags & FLAG_END_STREAM) !== 0;
        if (flags & FLAG_END_HEADERS) this.onHeaderBlock(id, block, end);
        else this.continuing = { id, end, parts: [Buffer.from(block)] };
        return;
      }
      case FrameType.CONTINUATION: {
        const c = this.continuing;
        if (c === undefined || c.id !== id) throw new Error('unexpected CONTINUATION');
        c.parts.push(Buffer.from(payload));
        if (flags & FLAG_END_HEADERS) {
          this.continuing = undefined;
          this.onHeaderBlock(id, Buffer.concat(c.parts), c.end);
        }
        return;
      }
      case FrameType.RST_STREAM: {
        const s = this.streams.get(id);
        if (s === undefined) return;
        this.streams.delete(id);
        const code = payload.readUInt32BE(0) as ErrorCode;
        s.events.onAbort(`stream reset by the server (code ${code})`, code);
        return;
      }
      case FrameType.SETTINGS:
        if (flags & FLAG_ACK) return;
        this.applySettings(payload);
        this.frame(FrameType.SETTINGS, FLAG_ACK, 0, Buffer.alloc(0));
        if (!this.ready) {
          this.ready = true;
          for (const w of this.readyWaiters.splice(0)) w.resolve();
        }
        return;
      case FrameType.PING:
        if (!(flags & FLAG_ACK)) this.frame(FrameType.PING, FLAG_ACK, 0, Buffer.from(payload));
        return;
      case FrameType.GOAWAY: {
        const last = payload.readUInt32BE(0) & 0x7fffffff;
        this.closedReason ??= `the server sent GOAWAY (code ${payload.readUInt32BE(4)})`;
        for (const [sid, s] of this.streams) {
          if (sid <= last) continue;
          this.streams.delete(sid);
          s.events.onAbort(this.closedReason, ErrorCode.REFUSED_STREAM);
        }
        return;
      }
      case FrameType.WINDOW_UPDATE: {
        const inc = payload.readUInt32BE(0) & 0x7fffffff;
        if (id === 0) {
          this.connSendWindow += inc;
          for (const s of this.streams.values()) if (s.pending.length > 0) this.drain(s);
        } else {
          const s = this.streams.get(id);
          if (s === undefined) return;
          s.sendWindow += inc;
          this.drain(s);
        }
        return;
      }
      default:
        return; // PRIORITY, PUSH_PROMISE (disabled), unknown types: ignored
    }
  }

  private onHeaderBlock(id: number, block: Buffer, end: boolean): void {
    // Every block is decoded, even for streams we reset: the dynamic table depends on it.
    const headers = this.decoder.decode(block);
    const s = this.streams.get(id);
    if (s === undefined) return;
    if (end) this.streams.delete(id);
    s.events.onHeaders(headers, end);
  }

  private applySettings(p: Buffer): void {
    for (let o = 0; o + 6 <= p.length; o += 6) {
      const key = p.readUInt16BE(o);
      const value = p.readUInt32BE(o + 2);
      if (key === Setting.INITIAL_WINDOW_SIZE) {
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const s of this.streams.values()) s.sendWindow += delta;
        if (delta > 0) for (const s of this.streams.values()) if (s.pending.length > 0) this.drain(s);
      } else if (key === Setting.MAX_FRAME_SIZE) {
        this.peerMaxFrame = value;
      }
      // HEADER_TABLE_SIZE needs nothing: request blocks never use the dynamic table.
    }
  }

  private fail(reason: string): void {
    if (this.closedReason === undefined) this.closedReason = reason;
    for (const w of this.readyWaiters.splice(0)) w.reject(new Error(reason));
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const s of streams) s.events.onAbort(reason, undefined);
  }
}

/** A request header block encoded without the dynamic table: the same bytes serve every call. */
export function staticHeaderBlock(headers: HeaderList): Buffer {
  return new HpackEncoder(4096, { shouldIndex: () => false }).encode(headers);
}
