// A lean gRPC client over node:http2: unary calls and one bidirectional stream kind
// (Watch), standard gRPC framing, no compression, no retries, no name resolution. It
// exists because @grpc/grpc-js spends about twice the client CPU per call, and the client
// shares the machine's cores with the members it measures.
//
// A unary call is one HTTP/2 stream: HEADERS (:method POST, :path /etcdserverpb.KV/Put,
// content-type application/grpc, te trailers), one DATA frame with the length-prefixed
// message and END_STREAM; the answer is HEADERS, DATA, and trailers carrying grpc-status
// (or a trailers-only answer with grpc-status in the HEADERS).

import * as http2 from 'node:http2';
import { FrameSplitter } from './wire';

/** gRPC status codes used here (grpc-js `constants.ts` names). */
export const grpcStatus = Object.freeze({
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  UNAVAILABLE: 14,
});

/** HTTP/2 receive windows: larger than the 64 KiB default so watch streams and big range answers are not throttled by window updates. */
export const streamWindowBytes = 1 << 20;
export const connectionWindowBytes = 16 << 20;

export class GrpcCallError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
  ) {
    super(`grpc status ${code}: ${details}`);
    this.name = 'GrpcCallError';
  }
}

export const methods = Object.freeze({
  put: '/etcdserverpb.KV/Put',
  range: '/etcdserverpb.KV/Range',
  watch: '/etcdserverpb.Watch/Watch',
  status: '/etcdserverpb.Maintenance/Status',
});

/**
 * The request headers of a method. node:http2 adds :authority and :scheme to the object
 * it is given, so each connection keeps its own (reused for every call: no copy per call).
 */
function requestHeaders(path: string): http2.OutgoingHttpHeaders {
  return {
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
    'user-agent': 'skiff-bench',
  };
}

/** Concatenates the DATA of a unary answer and returns its one message. */
function singleMessage(chunks: Buffer[]): Buffer {
  const buf = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
  if (buf.length < 5) throw new GrpcCallError(grpcStatus.UNKNOWN, `answer of ${buf.length} bytes has no message`);
  if (buf[0] !== 0) throw new GrpcCallError(grpcStatus.UNKNOWN, 'compressed answers are not supported');
  const len = buf.readUInt32BE(1);
  if (buf.length !== 5 + len) throw new GrpcCallError(grpcStatus.UNKNOWN, `answer of ${buf.length} bytes, message length ${len}`);
  return buf.subarray(5);
}

function statusOf(h: http2.IncomingHttpHeaders): number | undefined {
  const s = h['grpc-status'];
  return s === undefined ? undefined : Number(s);
}

function messageOf(h: http2.IncomingHttpHeaders): string {
  const m = h['grpc-message'];
  if (m === undefined) return '';
  const text = Array.isArray(m) ? m.join(',') : m;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export interface StreamHandlers {
  onMessage(msg: Buffer): void;
  /** The stream ended: status OK when the server ended it cleanly. */
  onClose(err: GrpcCallError | undefined): void;
}

export interface BidiStream {
  write(frame: Buffer): void;
  /** Cancels the stream (RST_STREAM CANCEL). */
  cancel(): void;
}

/** One HTTP/2 connection to one endpoint; reconnects on the next call after it breaks. */
export class Connection {
  private session: http2.ClientHttp2Session | undefined;
  private readonly headersByPath = new Map<string, http2.OutgoingHttpHeaders>();

  constructor(readonly endpoint: string) {}

  private headers(path: string): http2.OutgoingHttpHeaders {
    let h = this.headersByPath.get(path);
    if (h === undefined) {
      h = requestHeaders(path);
      this.headersByPath.set(path, h);
    }
    return h;
  }

  private getSession(): http2.ClientHttp2Session {
    const cur = this.session;
    if (cur !== undefined && !cur.closed && !cur.destroyed) return cur;
    const s = http2.connect(this.endpoint, {
      peerMaxConcurrentStreams: 1 << 16,
      settings: { initialWindowSize: streamWindowBytes, enablePush: false },
    });
    s.on('connect', () => {
      try {
        s.setLocalWindowSize(connectionWindowBytes);
      } catch {
        // the session went away already
      }
    });
    const drop = (): void => {
      if (this.session === s) this.session = undefined;
    };
    s.on('error', drop);
    s.on('close', drop);
    s.on('goaway', drop);
    this.session = s;
    return s;
  }

  /** Opens the connection and waits until it is up (the HTTP/2 preface is exchanged). */
  async connect(timeoutMs = 5000): Promise<void> {
    const s = this.getSession();
    if (s.connecting === false && !s.destroyed) return;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        cleanup();
        reject(new Error(`connect ${this.endpoint}: timeout after ${timeoutMs} ms`));
      }, timeoutMs);
      const onConnect = (): void => {
        cleanup();
        resolve();
      };
      const onError = (e: Error): void => {
        cleanup();
        reject(e);
      };
      const cleanup = (): void => {
        clearTimeout(t);
        s.off('connect', onConnect);
        s.off('error', onError);
      };
      s.once('connect', onConnect);
      s.once('error', onError);
    });
  }

  /**
   * One unary call. Resolves with the answer's message (without the frame header);
   * rejects with GrpcCallError (DEADLINE_EXCEEDED after timeoutMs, UNAVAILABLE when the
   * connection fails).
   */
  unary(path: string, requestFrame: Buffer, timeoutMs = 0): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.getSession().request(this.headers(path));
      } catch (e) {
        reject(new GrpcCallError(grpcStatus.UNAVAILABLE, (e as Error).message));
        return;
      }
      const chunks: Buffer[] = [];
      let status: number | undefined;
      let details = '';
      let failure: string | undefined;
      let timer: NodeJS.Timeout | undefined;
      let timedOut = false;
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          timedOut = true;
          stream.close(http2.constants.NGHTTP2_CANCEL);
        }, timeoutMs);
      }
      stream.on('response', (h) => {
        const s = statusOf(h);
        if (s !== undefined) {
          status = s;
          details = messageOf(h);
        } else if (h[':status'] !== 200) failure = `HTTP status ${h[':status']}`;
      });
      stream.on('trailers', (t) => {
        status = statusOf(t);
        details = messageOf(t);
      });
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', (e: Error) => {
        failure = e.message;
      });
      stream.on('close', () => {
        if (timer !== undefined) clearTimeout(timer);
        if (timedOut) return reject(new GrpcCallError(grpcStatus.DEADLINE_EXCEEDED, `deadline of ${timeoutMs} ms exceeded`));
        if (status === undefined) return reject(new GrpcCallError(grpcStatus.UNAVAILABLE, failure ?? 'stream closed without grpc-status'));
        if (status !== grpcStatus.OK) return reject(new GrpcCallError(status, details));
        try {
          resolve(singleMessage(chunks));
        } catch (e) {
          reject(e);
        }
      });
      stream.end(requestFrame);
    });
  }

  /** Opens a bidirectional streaming call (Watch). */
  stream(path: string, handlers: StreamHandlers): BidiStream {
    const stream = this.getSession().request(this.headers(path));
    const splitter = new FrameSplitter(handlers.onMessage);
    let status: number | undefined;
    let details = '';
    let failure: string | undefined;
    stream.on('response', (h) => {
      const s = statusOf(h);
      if (s !== undefined) {
        status = s;
        details = messageOf(h);
      }
    });
    stream.on('trailers', (t) => {
      status = statusOf(t);
      details = messageOf(t);
    });
    stream.on('data', (c: Buffer) => splitter.push(c));
    stream.on('error', (e: Error) => {
      failure = e.message;
    });
    stream.on('close', () => {
      if (status === grpcStatus.OK) handlers.onClose(undefined);
      else if (status !== undefined) handlers.onClose(new GrpcCallError(status, details));
      else handlers.onClose(new GrpcCallError(grpcStatus.CANCELLED, failure ?? 'stream closed'));
    });
    return {
      write: (frame) => {
        stream.write(frame);
      },
      cancel: () => {
        if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
      },
    };
  }

  close(): void {
    const s = this.session;
    this.session = undefined;
    if (s !== undefined && !s.destroyed) s.destroy();
  }
}

/**
 * Connections spread over the endpoints the way etcd's benchmark tool does: connection i
 * goes to endpoints[i % endpoints.length], and client j uses connection j % connections.
 */
export class ConnectionPool {
  readonly conns: Connection[];

  constructor(endpoints: readonly string[], connections: number) {
    if (endpoints.length === 0) throw new Error('no endpoints');
    if (connections < 1) throw new Error('connections must be >= 1');
    this.conns = [];
    for (let i = 0; i < connections; i++) this.conns.push(new Connection(endpoints[i % endpoints.length]));
  }

  forClient(client: number): Connection {
    return this.conns[client % this.conns.length];
  }

  async connectAll(): Promise<void> {
    await Promise.all(this.conns.map((c) => c.connect()));
  }

  close(): void {
    for (const c of this.conns) c.close();
  }
}
