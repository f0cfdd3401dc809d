// A lean gRPC client: unary calls and one bidirectional stream kind (Watch), standard gRPC
// framing over HTTP/2 (h2-connection.ts), no compression, no retries, no name resolution.
// It exists because @grpc/grpc-js spends about four times and node:http2 about twice the
// client CPU per call, and the client shares the machine's cores with the members it
// measures: the less it takes, the more the figures say about the servers.
//
// A unary call is one HTTP/2 stream: HEADERS (:method POST, :path /etcdserverpb.KV/Put,
// content-type application/grpc, te trailers), one DATA frame with the length-prefixed
// message and END_STREAM; the answer is HEADERS, DATA, and trailers carrying grpc-status
// (or a trailers-only answer with grpc-status in the HEADERS).

import type { HeaderList } from '../src/grpc/hpack';
import { ErrorCode } from '../src/grpc/h2-frames';
import { H2Connection, staticHeaderBlock } from './h2-connection';
import { FrameSplitter } from './wire';

/** gRPC status codes used here (grpc-js `constants.ts` names). */
export const grpcStatus = Object.freeze({
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  UNAVAILABLE: 14,
});

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

/** Concatenates the DATA of a unary answer and returns its one message. */
function singleMessage(chunks: Buffer[]): Buffer {
  const buf = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
  if (buf.length < 5) throw new GrpcCallError(grpcStatus.UNKNOWN, `answer of ${buf.length} bytes has no message`);
  if (buf[0] !== 0) throw new GrpcCallError(grpcStatus.UNKNOWN, 'compressed answers are not supported');
  const len = buf.readUInt32BE(1);
  if (buf.length !== 5 + len) throw new GrpcCallError(grpcStatus.UNKNOWN, `answer of ${buf.length} bytes, message length ${len}`);
  return buf.subarray(5);
}

/**
 * What a call learns from its header blocks: the gRPC status and message once a block
 * carries grpc-status, and an HTTP failure when the response is not :status 200.
 */
class CallStatus {
  code: number | undefined;
  details = '';
  failure: string | undefined;

  headers(h: HeaderList): void {
    for (const [name, value] of h) {
      if (name === 'grpc-status') this.code = Number(value);
      else if (name === 'grpc-message') this.details = percentDecoded(value);
      else if (name === ':status' && value !== '200') this.failure = `HTTP status ${value}`;
    }
  }

  /** The error of a finished call, or undefined when it ended with OK. */
  error(): GrpcCallError | undefined {
    if (this.code === undefined) return new GrpcCallError(grpcStatus.UNAVAILABLE, this.failure ?? 'stream closed without grpc-status');
    if (this.code !== grpcStatus.OK) return new GrpcCallError(this.code, this.details);
    return undefined;
  }
}

function percentDecoded(text: string): string {
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
  private conn: H2Connection | undefined;
  private readonly blocks = new Map<string, Buffer>();
  private readonly host: string;
  private readonly port: number;

  constructor(readonly endpoint: string) {
    const u = new URL(endpoint);
    if (u.protocol !== 'http:') throw new Error(`${endpoint}: only http:// endpoints are supported`);
    this.host = u.hostname;
    this.port = Number(u.port || 80);
  }

  private block(path: string): Buffer {
    let b = this.blocks.get(path);
    if (b === undefined) {
      b = staticHeaderBlock([
        [':method', 'POST'],
        [':scheme', 'http'],
        [':path', path],
        [':authority', `${this.host}:${this.port}`],
        ['content-type', 'application/grpc'],
        ['te', 'trailers'],
        ['user-agent', 'skiff-bench'],
      ]);
      this.blocks.set(path, b);
    }
    return b;
  }

  private connection(): H2Connection {
    const cur = this.conn;
    if (cur !== undefined && cur.usable) return cur;
    cur?.close();
    this.conn = new H2Connection(this.host, this.port);
    return this.conn;
  }

  /** Opens the connection and waits until it is up (the HTTP/2 preface is exchanged). */
  async connect(timeoutMs = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.connection().whenReady(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`connect ${this.endpoint}: timeout after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * One unary call. Resolves with the answer's message (without the frame header);
   * rejects with GrpcCallError (DEADLINE_EXCEEDED after timeoutMs, UNAVAILABLE when the
   * connection fails).
   */
  unary(path: string, requestFrame: Buffer, timeoutMs = 0): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      let conn: H2Connection;
      let id: number;
      const status = new CallStatus();
      const chunks: Buffer[] = [];
      let timer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        const err = status.error();
        if (err !== undefined) return reject(err);
        try {
          resolve(singleMessage(chunks));
        } catch (e) {
          reject(e);
        }
      };
      try {
        conn = this.connection();
        id = conn.open(this.block(path), {
          onHeaders: (h, end) => {
            status.headers(h);
            if (end) finish();
          },
          onData: (data, end) => {
            chunks.push(data);
            if (end) finish();
          },
          onAbort: (reason, code) => {
            if (timer !== undefined) clearTimeout(timer);
            reject(new GrpcCallError(code === ErrorCode.CANCEL ? grpcStatus.CANCELLED : grpcStatus.UNAVAILABLE, reason));
          },
        });
      } catch (e) {
        reject(new GrpcCallError(grpcStatus.UNAVAILABLE, (e as Error).message));
        return;
      }
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          conn.reset(id, ErrorCode.CANCEL);
          reject(new GrpcCallError(grpcStatus.DEADLINE_EXCEEDED, `deadline of ${timeoutMs} ms exceeded`));
        }, timeoutMs);
      }
      conn.send(id, requestFrame, true);
    });
  }

  /** Opens a bidirectional streaming call (Watch). */
  stream(path: string, handlers: StreamHandlers): BidiStream {
    const conn = this.connection();
    const splitter = new FrameSplitter(handlers.onMessage);
    const status = new CallStatus();
    let open = true;
    const id = conn.open(this.block(path), {
      onHeaders: (h, end) => {
        status.headers(h);
        if (end) {
          open = false;
          handlers.onClose(status.error());
        }
      },
      onData: (data, end) => {
        splitter.push(data);
        if (end) {
          open = false;
          handlers.onClose(status.error());
        }
      },
      onAbort: (reason) => {
        open = false;
        handlers.onClose(new GrpcCallError(grpcStatus.CANCELLED, reason));
      },
    });
    return {
      write: (frame) => conn.send(id, frame, false),
      cancel: () => {
        if (!open) return;
        open = false;
        conn.reset(id, ErrorCode.CANCEL);
        handlers.onClose(new GrpcCallError(grpcStatus.CANCELLED, 'cancelled by the client'));
      },
    };
  }

  close(): void {
    const c = this.conn;
    this.conn = undefined;
    c?.close();
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
