// A gRPC server on our own HTTP/2 (./http2.ts): the gRPC framing of messages, metadata,
// statuses and deadlines, and call objects shaped like @grpc/grpc-js's server calls (the
// subset the etcd services use), so handlers written for grpc-js run unchanged.
//
// One listening port also answers HTTP/1.1 (etcd serves /health, /version and /metrics on
// its client port): a connection whose first bytes are not the HTTP/2 preface is handed to
// an http.Server. Over TLS, ALPN picks.

import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as zlib from 'node:zlib';
import type { HeaderList } from './hpack';
import { ErrorCode, Http2ServerConnection, PREFACE, type StreamSink } from './http2';

/** What a call's stream tells it: the call itself (no closures per call). */
export type CallSink = StreamSink;

/**
 * What a call reads from and writes to: an HTTP/2 stream (http2.ts's ServerStream), or
 * the JSON gateway's adapter. The server sets the sink; response bytes are gRPC-framed
 * messages.
 */
export interface CallStream {
  sink: CallSink | undefined;
  readonly headersSent: boolean;
  sendHeaders(headers: HeaderList, end?: boolean): void;
  sendData(data: Buffer, end?: boolean): boolean;
  sendTrailers(trailers: HeaderList): void;
  reset(code?: ErrorCode): void;
  setPaused(paused: boolean): void;
}

/** gRPC status codes (the numbers are the wire contract). */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** One method as a grpc-js ServiceDefinition describes it. */
export interface MethodDefinition {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestDeserialize(data: Buffer): unknown;
  responseSerialize(value: never): Buffer;
}

/** An error a handler ends a call with: grpc-js's ServerErrorResponse shape. */
export interface StatusError {
  code?: number;
  details?: string;
  message?: string;
}

type Handler = (call: ServerCall, callback?: (error: StatusError | null, value?: unknown) => void) => void;

interface Route {
  method: MethodDefinition;
  handler: Handler;
}

/** A call's metadata: the request's non-reserved headers; `-bin` values decoded. */
export class CallMetadata {
  constructor(private readonly headers: HeaderList) {}

  /** Whether an entry named `key` (lower case) is present. */
  has(key: string): boolean {
    for (let i = 0; i < this.headers.length; i++) if (this.headers[i]![0] === key) return true;
    return false;
  }

  get(key: string): Array<string | Buffer> {
    const k = key.toLowerCase();
    const out: Array<string | Buffer> = [];
    // Indexed loops, here and in handleStream: a request's headers are read on every call,
    // and destructuring an array's iterator makes objects per entry.
    for (let i = 0; i < this.headers.length; i++) {
      const h = this.headers[i]!;
      const name = h[0];
      const value = h[1];
      if (name !== k) continue;
      if (k.endsWith('-bin')) {
        for (const part of value.split(',')) out.push(Buffer.from(part.trim(), 'base64'));
      } else {
        out.push(Buffer.from(value, 'latin1').toString('utf8'));
      }
    }
    return out;
  }

  /** Every non-reserved entry (pseudo-headers and gRPC's own headers left out). */
  getMap(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, value] of this.headers) {
      if (name.startsWith(':') || RESERVED.has(name) || name in out) continue;
      out[name] = value;
    }
    return out;
  }
}

const RESERVED = new Set(['content-type', 'te', 'grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'user-agent', 'content-length']);

const RESPONSE_HEADERS: HeaderList = [
  [':status', '200'],
  ['content-type', 'application/grpc'],
];

/**
 * One call. Unary and server-streaming handlers find the request in `request`;
 * client- and bidi-streaming ones get 'data' events, then 'end'. Streaming handlers answer
 * with write()/end(), or end the call with a status by `emit('error', statusError)`.
 * 'cancelled' is emitted when the client goes away or the deadline passes.
 *
 * Events as grpc-js's calls have them (on, once, off, emit), from an EventEmitter made when
 * the first listener comes: a unary call, the most frequent kind, never makes one.
 */
export class ServerCall implements CallSink {
  request: unknown = undefined;
  cancelled = false;
  private finished = false;
  private paused = false;
  private backlog: unknown[] = [];
  private endPending = false;
  private inbuf: Buffer | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private events: EventEmitter | undefined;
  /** Unary and server-streaming: the request message, and how many came. */
  private received: Buffer | undefined;
  private receivedCount = 0;
  /** Set once the request side ended (client half-closed). */
  readEnded = false;

  constructor(
    private readonly server: GrpcServer,
    private readonly stream: CallStream,
    private readonly route: Route,
    readonly metadata: CallMetadata,
    private readonly socket: net.Socket,
    private readonly encoding: string | undefined,
  ) {}

  get method(): MethodDefinition {
    return this.route.method;
  }

  on(event: string, listener: (...args: any[]) => void): this {
    (this.events ??= new EventEmitter()).on(event, listener);
    return this;
  }

  once(event: string, listener: (...args: any[]) => void): this {
    (this.events ??= new EventEmitter()).once(event, listener);
    return this;
  }

  off(event: string, listener: (...args: any[]) => void): this {
    this.events?.off(event, listener);
    return this;
  }

  removeListener(event: string, listener: (...args: any[]) => void): this {
    return this.off(event, listener);
  }

  removeAllListeners(event?: string): this {
    if (event === undefined) this.events?.removeAllListeners();
    else this.events?.removeAllListeners(event);
    return this;
  }

  listenerCount(event: string): number {
    return this.events?.listenerCount(event) ?? 0;
  }

  /** 'error' ends the call with the error's status (as with grpc-js), then reaches any listeners. */
  emit(event: string, ...args: unknown[]): boolean {
    if (event === 'error') {
      const e = (args[0] ?? {}) as StatusError;
      this.sendStatus(e.code ?? Status.UNKNOWN, e.details ?? e.message ?? '');
      if (this.listenerCount('error') === 0) return true;
    }
    return this.events?.emit(event, ...args) ?? false;
  }

  getPeer(): string {
    return `${this.socket.remoteAddress ?? ''}:${this.socket.remotePort ?? 0}`;
  }

  /** The TLS peer's certificate (what grpc-js's getAuthContext reports). */
  getAuthContext(): { sslPeerCertificate?: tls.PeerCertificate } | null {
    const s = this.socket;
    if (!(s instanceof tls.TLSSocket) || !s.authorized) return null;
    const cert = s.getPeerCertificate();
    return cert && Object.keys(cert).length > 0 ? { sslPeerCertificate: cert } : null;
  }

  /** One response message; false when the client is slow (wait for 'drain'). */
  write(message: unknown): boolean {
    if (this.finished) return false;
    let payload: Buffer;
    try {
      payload = this.method.responseSerialize(message as never);
    } catch (e) {
      this.sendStatus(Status.INTERNAL, `grpc: error while marshaling: ${(e as Error).message}`);
      return false;
    }
    return this.writeEncoded(payload);
  }

  /** One response message already serialized. */
  writeEncoded(payload: Uint8Array): boolean {
    if (this.finished) return false;
    const framed = Buffer.allocUnsafe(5 + payload.length);
    framed[0] = 0;
    framed.writeUInt32BE(payload.length, 1);
    framed.set(payload, 5);
    return this.writeFramed(framed);
  }

  /** One response message already serialized with its 5-byte gRPC prefix (ProtoWriter.finishFramed). */
  writeFramed(framed: Buffer): boolean {
    if (this.finished) return false;
    this.ensureHeaders();
    return this.stream.sendData(framed);
  }

  /** Ends a streaming call with OK. */
  end(): void {
    this.sendStatus(Status.OK, '');
  }

  pause(): void {
    this.paused = true;
    this.stream.setPaused(true);
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.stream.setPaused(false);
    while (!this.paused && this.backlog.length > 0) this.emit('data', this.backlog.shift());
    if (!this.paused && this.endPending) {
      this.endPending = false;
      this.emit('end');
    }
  }

  /** Ends the call with a status (trailers; or trailers only when nothing was sent). */
  sendStatus(code: number, details: string): void {
    if (this.finished) return;
    this.finished = true;
    this.clearDeadline();
    const trailers: HeaderList = [['grpc-status', String(code)]];
    if (details !== '') trailers.push(['grpc-message', encodeGrpcMessage(details)]);
    if (this.stream.headersSent) {
      this.stream.sendTrailers(trailers);
    } else {
      this.stream.sendHeaders([...RESPONSE_HEADERS, ...trailers], true);
    }
    this.server.callEnded();
  }

  private ensureHeaders(): void {
    if (!this.stream.headersSent) this.stream.sendHeaders(RESPONSE_HEADERS);
  }

  setDeadline(ms: number): void {
    this.deadlineTimer = setTimeout(() => {
      if (this.finished) return;
      this.sendStatus(Status.DEADLINE_EXCEEDED, 'context deadline exceeded');
      this.cancel();
    }, ms);
  }

  private clearDeadline(): void {
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
  }

  /** The client went away (RST_STREAM, connection closed) or the deadline passed. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.clearDeadline();
    if (!this.finished) {
      this.finished = true;
      this.server.callEnded();
    }
    this.emit('cancelled');
  }

  /**
   * Runs the handler: a streaming-request one at once (messages come as 'data' events); a
   * unary or server-streaming one once its request message is in (streamEnd).
   */
  start(): void {
    if (this.method.requestStream) this.invoke();
  }

  private invoke(): void {
    const callback = this.method.responseStream ? undefined : unaryCallback(this);
    try {
      this.route.handler(this, callback);
    } catch (e) {
      this.sendStatus(Status.UNKNOWN, (e as Error).message);
    }
  }

  /** CallSink: request bytes from DATA frames, split into messages by their 5-byte prefix. */
  streamData(chunk: Buffer): void {
    const buf = this.inbuf === undefined ? chunk : Buffer.concat([this.inbuf, chunk]);
    let at = 0;
    while (buf.length - at >= 5) {
      const compressed = buf[at]!;
      const length = buf.readUInt32BE(at + 1);
      const max = this.server.maxReceiveMessageLength;
      if (length > max) {
        this.sendStatus(Status.RESOURCE_EXHAUSTED, `grpc: received message larger than max (${length} vs. ${max})`);
        this.stream.reset(ErrorCode.NO_ERROR);
        this.cancel();
        return;
      }
      if (buf.length - at < 5 + length) break;
      let message = buf.subarray(at + 5, at + 5 + length);
      at += 5 + length;
      if (compressed === 1) {
        const inflated = this.decompress(message);
        if (inflated === undefined) return;
        message = inflated;
      } else if (compressed !== 0) {
        this.sendStatus(Status.INTERNAL, 'grpc: invalid message compression flag');
        return;
      }
      if (this.method.requestStream) {
        const req = this.decode(message);
        if (req === NO_MESSAGE) return;
        this.deliver(req);
      } else {
        this.received ??= message;
        this.receivedCount++;
      }
    }
    this.inbuf = at < buf.length ? Buffer.from(buf.subarray(at)) : undefined;
  }

  /** CallSink: the client half-closed. */
  streamEnd(): void {
    if (this.finished) return;
    if (this.method.requestStream) {
      if (this.inbuf !== undefined) {
        this.sendStatus(Status.INTERNAL, 'grpc: request ended inside a message');
        return;
      }
      this.readEnded = true;
      if (this.paused || this.backlog.length > 0) this.endPending = true;
      else this.emit('end');
      return;
    }
    // Unary and server-streaming: exactly one request message, then the handler runs.
    if (this.receivedCount !== 1 || this.inbuf !== undefined) {
      this.sendStatus(Status.INTERNAL, this.receivedCount > 1 ? 'grpc: too many request messages for a unary call' : 'grpc: no request message received');
      return;
    }
    const req = this.decode(this.received!);
    this.received = undefined;
    if (req === NO_MESSAGE) return;
    this.request = req;
    this.readEnded = true;
    this.invoke();
  }

  /** CallSink: whatever the code, the client is gone. */
  streamAbort(_code: ErrorCode): void {
    this.cancel();
  }

  /** CallSink */
  streamDrain(): void {
    this.emit('drain');
  }

  private decode(message: Buffer): unknown {
    try {
      return this.method.requestDeserialize(message);
    } catch (e) {
      this.sendStatus(Status.INTERNAL, `grpc: error unmarshalling request: ${(e as Error).message}`);
      return NO_MESSAGE;
    }
  }

  private decompress(message: Buffer): Buffer | undefined {
    try {
      if (this.encoding === 'gzip') return zlib.gunzipSync(message);
      if (this.encoding === 'deflate') return zlib.inflateSync(message);
    } catch (e) {
      this.sendStatus(Status.INTERNAL, `grpc: failed to decompress the received message: ${(e as Error).message}`);
      return undefined;
    }
    this.sendStatus(Status.UNIMPLEMENTED, `grpc: Decompressor is not installed for grpc-encoding "${this.encoding ?? ''}"`);
    return undefined;
  }

  /** Delivers a request message to a streaming handler, holding it while paused. */
  private deliver(message: unknown): void {
    if (this.paused) this.backlog.push(message);
    else this.emit('data', message);
  }

  get isFinished(): boolean {
    return this.finished;
  }
}

/** grpc-message is percent-encoded: bytes outside printable ASCII, and '%'. */
export function encodeGrpcMessage(s: string): string {
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return s;
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    out += byte < 0x20 || byte > 0x7e || byte === 0x25 ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte);
  }
  return out;
}

/** A grpc-timeout header in milliseconds (undefined when absent or malformed). */
export function parseTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (m === null) return undefined;
  const n = Number(m[1]);
  const unit = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 }[m[2] as 'H'];
  return n * unit;
}

export interface GrpcServerOptions {
  /** The largest request message accepted (RESOURCE_EXHAUSTED above it, as grpc-go does). */
  maxReceiveMessageLength: number;
  /** Answers HTTP/1.1 requests on the same port (404 for everything when absent). */
  http1?: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  /** An unexpected exception in the server (its connection was closed); for the log. */
  onError?: (e: unknown) => void;
  /**
   * Another protocol on the same port, told apart by its first bytes (the peer port's Raft
   * streams): `accept` gets the socket and the bytes read so far, preface included.
   */
  raw?: { preface: Buffer; accept(socket: net.Socket, head: Buffer): void };
}

export class GrpcServer {
  private readonly routes = new Map<string, Route>();
  private readonly services = new Set<string>();
  private readonly listeners: net.Server[] = [];
  private readonly connections = new Set<Http2ServerConnection>();
  /** Connections with frames not yet sent (see flushPending). */
  private readonly unflushed = new Set<Http2ServerConnection>();
  private readonly rawSockets = new Set<net.Socket>();
  private readonly http1: http.Server;
  private activeCalls = 0;
  private onIdle: (() => void) | undefined;
  readonly maxReceiveMessageLength: number;

  constructor(private readonly options: GrpcServerOptions) {
    this.maxReceiveMessageLength = options.maxReceiveMessageLength;
    this.http1 = http.createServer(
      options.http1 ??
        ((_req, res) => {
          res.writeHead(404, { 'Content-Type': 'text/plain' });
          res.end('404 page not found\n');
        }),
    );
  }

  /** Registers a service's handlers (a grpc-js ServiceDefinition and implementation). */
  addService(service: Record<string, MethodDefinition>, implementation: Record<string, unknown>): void {
    for (const [name, method] of Object.entries(service)) {
      const handler = implementation[name];
      if (typeof handler !== 'function') throw new Error(`no handler for ${method.path}`);
      this.routes.set(method.path, { method, handler: handler as Handler });
      this.services.add(method.path.split('/')[1]!);
    }
  }

  /**
   * Sends now what every connection has written this turn (responses, messages), instead of
   * at the end of the turn: for a caller about to block its thread (a synchronous disk write).
   */
  flushPending(): void {
    for (const conn of this.unflushed) conn.flush();
  }

  /** Listens on host:port (port 0: any); TLS when `tlsOptions` is given. Resolves to the port. */
  async listen(host: string, port: number, tlsOptions?: tls.TlsOptions): Promise<number> {
    const server =
      tlsOptions === undefined
        ? net.createServer((socket) => this.accept(socket))
        : tls.createServer({ ...tlsOptions, ALPNProtocols: ['h2', 'http/1.1'] }, (socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // A TLS handshake that fails is the client's problem, not the server's.
    server.on('tlsClientError', () => undefined);
    this.listeners.push(server);
    return (server.address() as net.AddressInfo).port;
  }

  /** Stops accepting; GOAWAY to every connection; resolves when the calls in flight are done. */
  async shutdown(graceMs: number): Promise<void> {
    for (const l of this.listeners) l.close();
    for (const c of this.connections) c.goAway();
    if (this.activeCalls > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, graceMs);
        this.onIdle = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    this.forceShutdown();
  }

  forceShutdown(): void {
    for (const l of this.listeners) l.close();
    for (const c of [...this.connections]) c.destroy();
    for (const s of this.rawSockets) s.destroy();
  }

  callEnded(): void {
    this.activeCalls--;
    if (this.activeCalls === 0 && this.onIdle !== undefined) {
      const f = this.onIdle;
      this.onIdle = undefined;
      f();
    }
  }

  /** A new connection: HTTP/2 or the raw protocol by its first bytes (or ALPN), HTTP/1.1 otherwise. */
  private accept(socket: net.Socket): void {
    this.rawSockets.add(socket);
    socket.on('close', () => this.rawSockets.delete(socket));
    socket.on('error', () => socket.destroy());
    if (socket instanceof tls.TLSSocket && socket.alpnProtocol === 'h2') {
      this.startHttp2(socket, undefined);
      return;
    }
    let head: Buffer = Buffer.alloc(0);
    const raw = this.options.raw;
    const startsWith = (p: Buffer): boolean => head.subarray(0, Math.min(head.length, p.length)).equals(p.subarray(0, Math.min(head.length, p.length)));
    const onData = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const h2 = startsWith(PREFACE);
      const other = raw !== undefined && startsWith(raw.preface);
      if ((h2 && head.length < PREFACE.length) || (other && head.length < raw.preface.length)) return; // not decided yet
      socket.off('data', onData);
      if (h2) {
        this.startHttp2(socket, head);
        return;
      }
      if (other) {
        raw.accept(socket, head);
        return;
      }
      socket.pause();
      socket.unshift(head);
      // Still tracked in rawSockets: the http.Server never listened, so it does not track it.
      this.http1.emit('connection', socket);
      socket.resume();
    };
    socket.on('data', onData);
  }

  private startHttp2(socket: net.Socket, head: Buffer | undefined): void {
    const conn = new Http2ServerConnection(
      socket,
      { onStream: (stream, headers, endStream) => this.handleStream(socket, stream, headers, endStream) },
      { onClose: () => this.connections.delete(conn), onInternalError: (e) => this.options.onError?.(e), unflushed: this.unflushed },
    );
    this.connections.add(conn);
    if (head !== undefined) conn.feed(head);
  }

  /** One request: its headers, then its data through the stream's callbacks. */
  handleStream(socket: net.Socket, stream: CallStream, headers: HeaderList, endStream: boolean): void {
    let path = '';
    let method = '';
    let contentType = '';
    let timeout: string | undefined;
    let encoding: string | undefined;
    for (let i = 0; i < headers.length; i++) {
      const h = headers[i]!;
      const name = h[0];
      const value = h[1];
      if (name === ':path') path = value;
      else if (name === ':method') method = value;
      else if (name === 'content-type') contentType = value;
      else if (name === 'grpc-timeout') timeout = value;
      else if (name === 'grpc-encoding') encoding = value;
    }
    if (method !== 'POST' || !(contentType === 'application/grpc' || contentType.startsWith('application/grpc+') || contentType.startsWith('application/grpc;'))) {
      // grpc-go answers a non-gRPC request with 415 (or 405 for a method other than POST).
      stream.sendHeaders(
        [
          [':status', method !== 'POST' ? '405' : '415'],
          ['content-type', 'text/plain; charset=utf-8'],
        ],
        true,
      );
      return;
    }
    if (encoding === 'identity') encoding = undefined;
    const route = this.routes.get(path);
    this.activeCalls++;
    const call = new ServerCall(this, stream, route ?? NO_ROUTE, new CallMetadata(headers), socket, encoding);
    stream.sink = call;
    if (route === undefined) {
      const parts = path.split('/');
      const service = parts[1] ?? '';
      call.sendStatus(Status.UNIMPLEMENTED, this.services.has(service) ? `unknown method ${parts[2] ?? ''} for service ${service}` : `unknown service ${service}`);
      return;
    }
    const ms = parseTimeout(timeout);
    if (ms !== undefined) call.setDeadline(ms);
    call.start();
    if (endStream) call.streamEnd();
  }
}

const NO_MESSAGE = Symbol('no message');

const NO_ROUTE: Route = {
  method: {
    path: '',
    requestStream: false,
    responseStream: false,
    requestDeserialize: () => undefined,
    responseSerialize: () => Buffer.alloc(0),
  },
  handler: () => undefined,
};

function unaryCallback(call: ServerCall): (error: StatusError | null, value?: unknown) => void {
  return (error, value) => {
    if (call.isFinished) return;
    if (error !== null && error !== undefined) {
      call.sendStatus(error.code ?? Status.UNKNOWN, error.details ?? error.message ?? '');
      return;
    }
    call.write(value);
    call.sendStatus(Status.OK, ''); // no-op when the answer could not be encoded (INTERNAL sent)
  };
}
