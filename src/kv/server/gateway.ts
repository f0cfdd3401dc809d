// etcd's gRPC gateway: the v3 API as JSON over HTTP/1.1 on the client port
// (`curl -X POST http://127.0.0.1:2379/v3/kv/put -d '{"key":"Zm9v","value":"YmFy"}'`).
//
// As in etcd 3.4 (grpc-gateway v1 with the JSONPb marshaler, OrigName): every method is a
// POST to the path its google.api.http option names, under /v3/ (and the older /v3beta/);
// the body is the request as proto3 JSON (proto or lowerCamelCase field names, 64-bit
// integers as strings or numbers, bytes as base64, enums by name or number); the answer is
// the response with proto field names, 64-bit integers as strings and default values left
// out. Errors are {"error","message","code"} with the HTTP status grpc-gateway maps the gRPC
// code to. Streaming methods (Watch, LeaseKeepAlive, Snapshot) take a stream of JSON
// objects and answer with one {"result": ...} line per message.
//
// Each request runs as a call of the gRPC server (the same handlers, auth and errors):
// the adapter below stands in for the HTTP/2 stream.

import type * as http from 'node:http';
import type * as net from 'node:net';
import * as protobuf from 'protobufjs';
import type { HeaderList } from '../../grpc/hpack';
import { ErrorCode } from '../../grpc/http2';
import { type CallSink, type CallStream, type GrpcServer, Status } from '../../grpc/server';
import { etcdProtoRoot } from '../grpc-codec';

interface Route {
  grpcPath: string;
  request: protobuf.Type;
  response: protobuf.Type;
  requestStream: boolean;
  responseStream: boolean;
}

/** google.api.http paths of etcd 3.4's rpc.proto (after /v3/), by service and method. */
const PATHS: Record<string, Record<string, string[]>> = {
  KV: { Range: ['kv/range'], Put: ['kv/put'], DeleteRange: ['kv/deleterange'], Txn: ['kv/txn'], Compact: ['kv/compaction'] },
  Watch: { Watch: ['watch'] },
  Lease: {
    LeaseGrant: ['lease/grant'],
    LeaseRevoke: ['lease/revoke', 'kv/lease/revoke'],
    LeaseKeepAlive: ['lease/keepalive'],
    LeaseTimeToLive: ['lease/timetolive', 'kv/lease/timetolive'],
    LeaseLeases: ['lease/leases', 'kv/lease/leases'],
  },
  Cluster: {
    MemberAdd: ['cluster/member/add'],
    MemberRemove: ['cluster/member/remove'],
    MemberUpdate: ['cluster/member/update'],
    MemberList: ['cluster/member/list'],
    MemberPromote: ['cluster/member/promote'],
  },
  Maintenance: {
    Alarm: ['maintenance/alarm'],
    Status: ['maintenance/status'],
    Defragment: ['maintenance/defragment'],
    // etcd 3.4 has no HashKV path (its rpc.proto gives HashKV Hash's path; Hash wins).
    Hash: ['maintenance/hash'],
    Snapshot: ['maintenance/snapshot'],
    MoveLeader: ['maintenance/transfer-leadership'],
  },
  Auth: {
    AuthEnable: ['auth/enable'],
    AuthDisable: ['auth/disable'],
    Authenticate: ['auth/authenticate'],
    UserAdd: ['auth/user/add'],
    UserGet: ['auth/user/get'],
    UserList: ['auth/user/list'],
    UserDelete: ['auth/user/delete'],
    UserChangePassword: ['auth/user/changepw'],
    UserGrantRole: ['auth/user/grant'],
    UserRevokeRole: ['auth/user/revoke'],
    RoleAdd: ['auth/role/add'],
    RoleGet: ['auth/role/get'],
    RoleList: ['auth/role/list'],
    RoleDelete: ['auth/role/delete'],
    RoleGrantPermission: ['auth/role/grant'],
    RoleRevokePermission: ['auth/role/revoke'],
  },
};

/** The URL prefixes etcd 3.4 serves the gateway under. */
const PREFIXES = ['/v3/', '/v3beta/'];

/** grpc-gateway v1's HTTP status for a gRPC code. */
const HTTP_STATUS: Record<number, number> = {
  [Status.OK]: 200,
  [Status.CANCELLED]: 408,
  [Status.UNKNOWN]: 500,
  [Status.INVALID_ARGUMENT]: 400,
  [Status.DEADLINE_EXCEEDED]: 504,
  [Status.NOT_FOUND]: 404,
  [Status.ALREADY_EXISTS]: 409,
  [Status.PERMISSION_DENIED]: 403,
  [Status.UNAUTHENTICATED]: 401,
  [Status.RESOURCE_EXHAUSTED]: 429,
  [Status.FAILED_PRECONDITION]: 412,
  [Status.ABORTED]: 409,
  [Status.OUT_OF_RANGE]: 400,
  [Status.UNIMPLEMENTED]: 501,
  [Status.INTERNAL]: 500,
  [Status.UNAVAILABLE]: 503,
  [Status.DATA_LOSS]: 500,
};

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  409: 'Conflict',
  412: 'Precondition Failed',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

class JsonError extends Error {}

export class Gateway {
  private readonly routes = new Map<string, Route>();

  constructor(
    private readonly server: GrpcServer,
    private readonly maxBodyBytes: number,
  ) {
    const root = etcdProtoRoot();
    for (const [service, methods] of Object.entries(PATHS)) {
      const svc = root.lookupService(`etcdserverpb.${service}`);
      for (const [name, paths] of Object.entries(methods)) {
        const m = svc.methods[name]!;
        const route: Route = {
          grpcPath: `/etcdserverpb.${service}/${name}`,
          request: m.resolvedRequestType!,
          response: m.resolvedResponseType!,
          requestStream: m.requestStream === true,
          responseStream: m.responseStream === true,
        };
        for (const prefix of PREFIXES) for (const p of paths) this.routes.set(prefix + p, route);
      }
    }
  }

  /** Serves a request if it is for the gateway; false otherwise (the caller answers it). */
  handle(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const path = (req.url ?? '').split('?')[0]!;
    const route = this.routes.get(path);
    if (route === undefined) {
      if (!PREFIXES.some((p) => path.startsWith(p))) return false;
      // grpc-gateway's own 404 for a path under its prefixes.
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('Not Found\n');
      return true;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('Method Not Allowed\n');
      return true;
    }
    new GatewayCall(this.server, route, req, res, this.maxBodyBytes).start();
    return true;
  }
}

/** One HTTP request run as a gRPC call. */
class GatewayCall implements CallStream {
  sink: CallSink | undefined;
  headersSent = false;
  private done = false;
  private unary: Buffer | undefined;
  private streaming = false;

  constructor(
    private readonly server: GrpcServer,
    private readonly route: Route,
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly maxBodyBytes: number,
  ) {}

  start(): void {
    const headers: HeaderList = [
      [':method', 'POST'],
      [':scheme', 'http'],
      [':path', this.route.grpcPath],
      ['content-type', 'application/grpc'],
    ];
    // grpc-gateway passes Authorization on, and Grpc-Metadata-* headers without the prefix.
    const auth = this.req.headers.authorization;
    if (auth !== undefined) headers.push(['authorization', auth]);
    for (const [name, value] of Object.entries(this.req.headers)) {
      if (name.startsWith('grpc-metadata-') && typeof value === 'string') headers.push([name.slice('grpc-metadata-'.length), value]);
    }
    this.res.on('close', () => {
      if (!this.done) {
        this.done = true;
        this.sink?.streamAbort(ErrorCode.CANCEL);
      }
    });
    this.res.on('drain', () => this.sink?.streamDrain());
    this.server.handleStream(this.req.socket as net.Socket, this, headers, false);
    if (this.route.requestStream) this.readStream();
    else this.readWhole();
  }

  /** Unary and server-streaming: the body is one JSON object (empty: {}). */
  private readWhole(): void {
    const chunks: Buffer[] = [];
    let size = 0;
    this.req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > this.maxBodyBytes) {
        this.fail(Status.RESOURCE_EXHAUSTED, `grpc: received message larger than max (${size} vs. ${this.maxBodyBytes})`);
        this.req.destroy();
        return;
      }
      chunks.push(c);
    });
    this.req.on('end', () => {
      if (this.done) return;
      const text = Buffer.concat(chunks).toString('utf8').trim();
      try {
        this.send(text === '' ? {} : (JSON.parse(text) as unknown));
      } catch (e) {
        this.fail(Status.INVALID_ARGUMENT, (e as Error).message);
        return;
      }
      this.sink?.streamEnd();
    });
  }

  /** Client- and bidi-streaming: the body is a stream of JSON objects, each a request. */
  private readStream(): void {
    const splitter = new JsonObjectSplitter();
    this.req.on('data', (c: Buffer) => {
      if (this.done) return;
      try {
        for (const text of splitter.push(c.toString('utf8'))) this.send(JSON.parse(text) as unknown);
      } catch (e) {
        this.fail(Status.INVALID_ARGUMENT, (e as Error).message);
      }
    });
    this.req.on('end', () => {
      if (!this.done) this.sink?.streamEnd();
    });
  }

  /** One request message, from JSON to protobuf, into the call. */
  private send(json: unknown): void {
    const type = this.route.request;
    const message = type.fromObject(fromJson(type, json));
    const bytes = type.encode(message).finish();
    const framed = Buffer.allocUnsafe(5 + bytes.length);
    framed[0] = 0;
    framed.writeUInt32BE(bytes.length, 1);
    framed.set(bytes, 5);
    this.sink?.streamData(framed);
  }

  // ---- CallStream: what the call writes ----

  sendHeaders(headers: HeaderList, end = false): void {
    this.headersSent = true;
    if (end) this.finish(headers);
  }

  sendData(data: Buffer): boolean {
    if (this.done) return false;
    const message = this.route.response.decode(data.subarray(5));
    const json = toJson(this.route.response, message);
    if (!this.route.responseStream) {
      this.unary = Buffer.from(JSON.stringify(json));
      return true;
    }
    if (!this.streaming) {
      this.streaming = true;
      this.res.writeHead(200, { 'Content-Type': 'application/json' });
    }
    return this.res.write(`${JSON.stringify({ result: json })}\n`);
  }

  sendTrailers(trailers: HeaderList): void {
    this.finish(trailers);
  }

  reset(): void {
    this.done = true;
    this.res.destroy();
  }

  setPaused(paused: boolean): void {
    if (paused) this.req.pause();
    else this.req.resume();
  }

  private finish(trailers: HeaderList): void {
    let code: number = Status.UNKNOWN;
    let message = '';
    for (const [name, value] of trailers) {
      if (name === 'grpc-status') code = Number(value);
      else if (name === 'grpc-message') message = decodeURIComponentSafe(value);
    }
    if (code === Status.OK) {
      if (this.done) return;
      this.done = true;
      if (this.streaming) {
        this.res.end();
        return;
      }
      const body = this.unary ?? Buffer.from('{}');
      this.res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
      this.res.end(body);
      return;
    }
    this.fail(code, message);
  }

  /** Ends the request with an error body (grpc-gateway's shapes). */
  private fail(code: number, message: string): void {
    if (this.done) return;
    this.done = true;
    const httpStatus = HTTP_STATUS[code] ?? 500;
    if (this.streaming) {
      const error = { grpc_code: code, http_code: httpStatus, message, http_status: STATUS_TEXT[httpStatus] ?? '' };
      this.res.end(`${JSON.stringify({ error })}\n`);
      return;
    }
    const body = Buffer.from(JSON.stringify({ error: message, message, code }));
    this.res.writeHead(httpStatus, { 'Content-Type': 'application/json', 'Content-Length': body.length });
    this.res.end(body);
    // The call may still be running (a JSON error in a stream): end it.
    this.sink?.streamAbort(ErrorCode.CANCEL);
  }
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/**
 * proto3 JSON into the object protobufjs's fromObject takes: field names by proto name or
 * lowerCamelCase JSON name; unknown fields are ignored (as by etcd's gateway).
 */
function fromJson(type: protobuf.Type, json: unknown): Record<string, unknown> {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new JsonError(`json: cannot unmarshal ${Array.isArray(json) ? 'array' : typeof json} into Go value of type ${type.fullName.slice(1)}`);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    const field = type.fields[key] ?? type.fieldsArray.find((f) => camel(f.name) === key);
    if (field === undefined) continue; // unknown fields are ignored, as etcd's gateway does
    if (value === null) continue;
    const sub = field.resolvedType;
    if (sub instanceof protobuf.Type) {
      out[field.name] = field.repeated ? (value as unknown[]).map((v) => fromJson(sub, v)) : fromJson(sub, value);
    } else {
      out[field.name] = value;
    }
  }
  return out;
}

const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

/** A decoded message as proto3 JSON: proto names, defaults left out, 64-bit integers as strings. */
function toJson(type: protobuf.Type, message: protobuf.Message): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const m = message as unknown as Record<string, unknown>;
  for (const field of type.fieldsArray) {
    // Only fields on the wire (decoded messages inherit defaults from their prototype).
    if (!Object.prototype.hasOwnProperty.call(m, field.name)) continue;
    const value = m[field.name];
    if (value === undefined || value === null) continue;
    if (field.repeated) {
      const list = value as unknown[];
      if (list.length === 0) continue;
      out[field.name] = list.map((v) => scalarOrMessage(field, v));
      continue;
    }
    if (!(field.resolvedType instanceof protobuf.Type) && isDefault(field, value)) continue;
    out[field.name] = scalarOrMessage(field, value);
  }
  return out;
}

function isDefault(field: protobuf.Field, value: unknown): boolean {
  if (typeof value === 'number') return value === 0;
  if (typeof value === 'boolean') return !value;
  if (typeof value === 'string') return value === '';
  if (value instanceof Uint8Array || Array.isArray(value)) return value.length === 0;
  if (typeof value === 'object' && value !== null && 'low' in value && 'high' in value) {
    const l = value as { low: number; high: number };
    return l.low === 0 && l.high === 0;
  }
  return field.resolvedType instanceof protobuf.Enum && value === 0;
}

function scalarOrMessage(field: protobuf.Field, value: unknown): unknown {
  const sub = field.resolvedType;
  if (sub instanceof protobuf.Type) return toJson(sub, value as protobuf.Message);
  if (sub instanceof protobuf.Enum) return sub.valuesById[value as number] ?? value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (LONG_TYPES.has(field.type)) {
    if (typeof value === 'object' && value !== null && 'low' in value) {
      const l = value as { low: number; high: number; unsigned?: boolean };
      const big = (BigInt(l.high >>> 0) << 32n) | BigInt(l.low >>> 0);
      return (field.type === 'uint64' || field.type === 'fixed64' ? big : BigInt.asIntN(64, big)).toString();
    }
    return String(value);
  }
  return value;
}

/** Splits a stream of concatenated JSON objects (whitespace between them) into their texts. */
export class JsonObjectSplitter {
  private buf = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private start = -1;
  private scanned = 0;

  push(text: string): string[] {
    this.buf += text;
    const out: string[] = [];
    for (let i = this.scanned; i < this.buf.length; i++) {
      const c = this.buf[i]!;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
        continue;
      }
      if (c === '"') {
        this.inString = true;
      } else if (c === '{' || c === '[') {
        if (this.depth === 0) this.start = i;
        this.depth++;
      } else if (c === '}' || c === ']') {
        this.depth--;
        if (this.depth < 0) throw new JsonError('invalid character in the request stream');
        if (this.depth === 0) {
          out.push(this.buf.slice(this.start, i + 1));
          this.buf = this.buf.slice(i + 1);
          i = -1;
          this.start = -1;
        }
      } else if (this.depth === 0 && !/\s/.test(c)) {
        throw new JsonError(`invalid character '${c}' looking for beginning of value`);
      }
    }
    this.scanned = this.buf.length;
    return out;
  }
}
