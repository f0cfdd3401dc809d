// The etcd v3 wire contract for skiff: loads proto/etcd/*.proto and proto/grpc/health.proto
// once, and gives typed service definitions, server implementation types, client
// constructors and the message shapes as grpc-js hands them to us.
//
// Import it as a namespace, `import * as pb from './proto'`, so that `pb.KeyValue` and
// `pb.Event` (etcd's names, kept on purpose) do not clash with the store's own types.
//
// Decoding options (fixed here, for every service, the codec in grpc-codec.ts included):
//   keepCase  field names exactly as in the .proto (snake_case, plus etcd's TTL, ID,
//             peerURLs, dbSize, ...), so the objects match etcd's documentation.
//   longs     Number. int64/uint64 arrive as JS numbers, exact up to 2^53 - 1.
//             Revisions, versions, counts, TTLs and sizes never get near that. Lease ids,
//             member ids and the cluster id are 64-bit random numbers in etcd; skiff
//             generates all of them itself and keeps them in [1, 2^53 - 1] (see
//             ID_MAX), so every id it hands out survives the round trip. An id that a
//             client sends above that (a LeaseGrant with a chosen ID, say) decodes to an
//             inexact number: check it with isWireSafeId() and refuse it.
//             (String or Long would be exact but would put a conversion at every use.)
//   bytes     Buffer. Decoded buffers may share memory with the received message.
//             When encoding, always pass Buffer/Uint8Array: a string given for a bytes
//             field is read as base64 by protobufjs, not as text.
//   enums     String: enum values are their names ('PUT', 'DESCEND', ...).
//   defaults  true: every scalar and repeated field is present on decoded objects; an
//             absent message field is null.
//   oneofs    true: a oneof's name holds the name of the member that is set
//             (RequestOp.request === 'request_put'); unset members are absent.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

// ---------------------------------------------------------------------------
// Locating and loading the .proto files
// ---------------------------------------------------------------------------

/** The .proto files loaded for the client API, relative to protoDir(). */
export const ETCD_PROTO_FILES: readonly string[] = ['etcd/rpc.proto', 'grpc/health.proto'];

export const PROTO_LOADER_OPTIONS: Readonly<protoLoader.Options> = Object.freeze({
  keepCase: true,
  longs: Number,
  bytes: Buffer,
  enums: String,
  defaults: true,
  oneofs: true,
});

/** Largest id (lease, member, cluster) skiff generates: the last exact JS integer. */
export const ID_MAX = Number.MAX_SAFE_INTEGER;

let protoDirCached: string | undefined;

/**
 * The repository's proto/ directory. Found by walking up from this file to the directory
 * holding package.json, so it works from src/kv (ts-jest) and from dist/src/kv (compiled).
 */
export function protoDir(): string {
  if (protoDirCached !== undefined) return protoDirCached;
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) {
      const candidate = path.join(dir, 'proto');
      if (!fs.existsSync(path.join(candidate, 'etcd', 'rpc.proto'))) {
        throw new Error(`proto/etcd/rpc.proto not found under the package root ${dir}`);
      }
      protoDirCached = candidate;
      return candidate;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${__dirname}`);
    dir = parent;
  }
}

let packageDefinitionCached: protoLoader.PackageDefinition | undefined;

/** The loaded etcd + health package definition (loaded on first use, then cached). */
export function etcdPackageDefinition(): protoLoader.PackageDefinition {
  if (packageDefinitionCached === undefined) {
    packageDefinitionCached = protoLoader.loadSync([...ETCD_PROTO_FILES], {
      ...PROTO_LOADER_OPTIONS,
      includeDirs: [protoDir()],
    });
  }
  return packageDefinitionCached;
}

// ---------------------------------------------------------------------------
// Common
// ---------------------------------------------------------------------------

export interface ResponseHeader {
  cluster_id: number;
  member_id: number;
  /** Store revision the request saw; 0 for calls that do not touch the key space. */
  revision: number;
  raft_term: number;
}

/**
 * The header every skiff response carries. Options object, since all four are numbers
 * that could be swapped by position.
 */
export function responseHeader(fields: {
  clusterId: number;
  memberId: number;
  revision: number;
  raftTerm: number;
}): ResponseHeader {
  assertWireInteger(fields.clusterId, 'clusterId');
  assertWireInteger(fields.memberId, 'memberId');
  assertWireInteger(fields.revision, 'revision');
  assertWireInteger(fields.raftTerm, 'raftTerm');
  return {
    cluster_id: fields.clusterId,
    member_id: fields.memberId,
    revision: fields.revision,
    raft_term: fields.raftTerm,
  };
}

/** True for an id that crossed the wire exactly: an integer in [0, ID_MAX]. */
export function isWireSafeId(id: number): boolean {
  return Number.isSafeInteger(id) && id >= 0;
}

function assertWireInteger(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`assertion failed: response header ${name} must be a safe non-negative integer, got ${value}`);
  }
}

// ---------------------------------------------------------------------------
// mvccpb
// ---------------------------------------------------------------------------

export interface KeyValue {
  key: Buffer;
  create_revision: number;
  mod_revision: number;
  version: number;
  value: Buffer;
  lease: number;
}

export type EventType = 'PUT' | 'DELETE';

export interface Event {
  type: EventType;
  kv: KeyValue | null;
  prev_kv: KeyValue | null;
}

// ---------------------------------------------------------------------------
// KV
// ---------------------------------------------------------------------------

export type SortOrder = 'NONE' | 'ASCEND' | 'DESCEND';
export type SortTarget = 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE';

export interface RangeRequest {
  key: Buffer;
  range_end: Buffer;
  limit: number;
  revision: number;
  sort_order: SortOrder;
  sort_target: SortTarget;
  serializable: boolean;
  keys_only: boolean;
  count_only: boolean;
  min_mod_revision: number;
  max_mod_revision: number;
  min_create_revision: number;
  max_create_revision: number;
}

export interface RangeResponse {
  header: ResponseHeader | null;
  kvs: KeyValue[];
  more: boolean;
  count: number;
}

export interface PutRequest {
  key: Buffer;
  value: Buffer;
  lease: number;
  prev_kv: boolean;
  ignore_value: boolean;
  ignore_lease: boolean;
}

export interface PutResponse {
  header: ResponseHeader | null;
  prev_kv: KeyValue | null;
}

export interface DeleteRangeRequest {
  key: Buffer;
  range_end: Buffer;
  prev_kv: boolean;
}

export interface DeleteRangeResponse {
  header: ResponseHeader | null;
  deleted: number;
  prev_kvs: KeyValue[];
}

export type RequestOp =
  | { request: 'request_range'; request_range: RangeRequest }
  | { request: 'request_put'; request_put: PutRequest }
  | { request: 'request_delete_range'; request_delete_range: DeleteRangeRequest }
  | { request: 'request_txn'; request_txn: TxnRequest };

export type ResponseOp =
  | { response: 'response_range'; response_range: RangeResponse }
  | { response: 'response_put'; response_put: PutResponse }
  | { response: 'response_delete_range'; response_delete_range: DeleteRangeResponse }
  | { response: 'response_txn'; response_txn: TxnResponse };

export type CompareResult = 'EQUAL' | 'GREATER' | 'LESS' | 'NOT_EQUAL';
export type CompareTarget = 'VERSION' | 'CREATE' | 'MOD' | 'VALUE' | 'LEASE';

interface CompareCommon {
  result: CompareResult;
  target: CompareTarget;
  key: Buffer;
  range_end: Buffer;
}

/**
 * target_union is absent when the client set none of its members (a compare against the
 * zero value, which proto3 does not put on the wire): read the member named by `target`
 * and treat a missing one as 0 / empty, as etcd does.
 */
export type Compare = CompareCommon &
  (
    | { target_union?: undefined }
    | { target_union: 'version'; version: number }
    | { target_union: 'create_revision'; create_revision: number }
    | { target_union: 'mod_revision'; mod_revision: number }
    | { target_union: 'value'; value: Buffer }
    | { target_union: 'lease'; lease: number }
  );

export interface TxnRequest {
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
}

export interface TxnResponse {
  header: ResponseHeader | null;
  succeeded: boolean;
  responses: ResponseOp[];
}

export interface CompactionRequest {
  revision: number;
  physical: boolean;
}

export interface CompactionResponse {
  header: ResponseHeader | null;
}

// ---------------------------------------------------------------------------
// Watch
// ---------------------------------------------------------------------------

export type WatchFilterType = 'NOPUT' | 'NODELETE';

export interface WatchCreateRequest {
  key: Buffer;
  range_end: Buffer;
  start_revision: number;
  progress_notify: boolean;
  filters: WatchFilterType[];
  prev_kv: boolean;
  watch_id: number;
  fragment: boolean;
}

export interface WatchCancelRequest {
  watch_id: number;
}

export type WatchProgressRequest = Record<string, never>;

/** request_union is absent on an empty WatchRequest (ignore it, as etcd does). */
export type WatchRequest =
  | { request_union?: undefined }
  | { request_union: 'create_request'; create_request: WatchCreateRequest }
  | { request_union: 'cancel_request'; cancel_request: WatchCancelRequest }
  | { request_union: 'progress_request'; progress_request: WatchProgressRequest };

export interface WatchResponse {
  header: ResponseHeader | null;
  watch_id: number;
  created: boolean;
  canceled: boolean;
  compact_revision: number;
  cancel_reason: string;
  fragment: boolean;
  events: Event[];
}

// ---------------------------------------------------------------------------
// Lease
// ---------------------------------------------------------------------------

export interface LeaseGrantRequest {
  TTL: number;
  ID: number;
}

export interface LeaseGrantResponse {
  header: ResponseHeader | null;
  ID: number;
  TTL: number;
  error: string;
}

export interface LeaseRevokeRequest {
  ID: number;
}

export interface LeaseRevokeResponse {
  header: ResponseHeader | null;
}

export interface LeaseCheckpoint {
  ID: number;
  remaining_TTL: number;
}

export interface LeaseCheckpointRequest {
  checkpoints: LeaseCheckpoint[];
}

export interface LeaseCheckpointResponse {
  header: ResponseHeader | null;
}

export interface LeaseKeepAliveRequest {
  ID: number;
}

export interface LeaseKeepAliveResponse {
  header: ResponseHeader | null;
  ID: number;
  /** New TTL in seconds; <= 0 tells the client the lease is gone. */
  TTL: number;
}

export interface LeaseTimeToLiveRequest {
  ID: number;
  keys: boolean;
}

export interface LeaseTimeToLiveResponse {
  header: ResponseHeader | null;
  ID: number;
  /** Remaining seconds; -1 for an expired or unknown lease. */
  TTL: number;
  grantedTTL: number;
  keys: Buffer[];
}

export type LeaseLeasesRequest = Record<string, never>;

export interface LeaseStatus {
  ID: number;
}

export interface LeaseLeasesResponse {
  header: ResponseHeader | null;
  leases: LeaseStatus[];
}

// ---------------------------------------------------------------------------
// Cluster
// ---------------------------------------------------------------------------

export interface Member {
  ID: number;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export interface MemberAddRequest {
  peerURLs: string[];
  isLearner: boolean;
}

export interface MemberAddResponse {
  header: ResponseHeader | null;
  member: Member | null;
  members: Member[];
}

export interface MemberRemoveRequest {
  ID: number;
}

export interface MemberRemoveResponse {
  header: ResponseHeader | null;
  members: Member[];
}

export interface MemberUpdateRequest {
  ID: number;
  peerURLs: string[];
}

export interface MemberUpdateResponse {
  header: ResponseHeader | null;
  members: Member[];
}

export interface MemberListRequest {
  linearizable: boolean;
}

export interface MemberListResponse {
  header: ResponseHeader | null;
  members: Member[];
}

export interface MemberPromoteRequest {
  ID: number;
}

export interface MemberPromoteResponse {
  header: ResponseHeader | null;
  members: Member[];
}

// ---------------------------------------------------------------------------
// Maintenance
// ---------------------------------------------------------------------------

export type AlarmType = 'NONE' | 'NOSPACE' | 'CORRUPT';
export type AlarmAction = 'GET' | 'ACTIVATE' | 'DEACTIVATE';

export interface AlarmRequest {
  action: AlarmAction;
  memberID: number;
  alarm: AlarmType;
}

export interface AlarmMember {
  memberID: number;
  alarm: AlarmType;
}

export interface AlarmResponse {
  header: ResponseHeader | null;
  alarms: AlarmMember[];
}

export type StatusRequest = Record<string, never>;

export interface DowngradeInfo {
  enabled: boolean;
  targetVersion: string;
}

export interface StatusResponse {
  header: ResponseHeader | null;
  version: string;
  dbSize: number;
  leader: number;
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
  errors: string[];
  dbSizeInUse: number;
  isLearner: boolean;
  storageVersion: string;
  dbSizeQuota: number;
  downgradeInfo: DowngradeInfo | null;
}

export type DefragmentRequest = Record<string, never>;

export interface DefragmentResponse {
  header: ResponseHeader | null;
}

export type HashRequest = Record<string, never>;

export interface HashResponse {
  header: ResponseHeader | null;
  hash: number;
}

export interface HashKVRequest {
  revision: number;
}

export interface HashKVResponse {
  header: ResponseHeader | null;
  hash: number;
  compact_revision: number;
  hash_revision: number;
}

export type SnapshotRequest = Record<string, never>;

export interface SnapshotResponse {
  header: ResponseHeader | null;
  remaining_bytes: number;
  blob: Buffer;
  version: string;
}

export interface MoveLeaderRequest {
  targetID: number;
}

export interface MoveLeaderResponse {
  header: ResponseHeader | null;
}

export type DowngradeAction = 'VALIDATE' | 'ENABLE' | 'CANCEL';

export interface DowngradeRequest {
  action: DowngradeAction;
  version: string;
}

export interface DowngradeResponse {
  header: ResponseHeader | null;
  version: string;
}

// ---------------------------------------------------------------------------
// Auth (authpb records and the Auth service)
// ---------------------------------------------------------------------------

export type PermissionType = 'READ' | 'WRITE' | 'READWRITE';

export interface Permission {
  permType: PermissionType;
  key: Buffer;
  range_end: Buffer;
}

export interface UserAddOptions {
  no_password: boolean;
}

/** Every Auth response that carries nothing but the header. */
export interface AuthHeaderResponse {
  header: ResponseHeader | null;
}

export type AuthEnableRequest = Record<string, never>;
export type AuthDisableRequest = Record<string, never>;
export type AuthStatusRequest = Record<string, never>;
export type AuthUserListRequest = Record<string, never>;
export type AuthRoleListRequest = Record<string, never>;

export interface AuthStatusResponse {
  header: ResponseHeader | null;
  enabled: boolean;
  authRevision: number;
}

export interface AuthenticateRequest {
  name: string;
  password: string;
}

export interface AuthenticateResponse {
  header: ResponseHeader | null;
  /** Clients send it back in the `token` metadata key. */
  token: string;
}

export interface AuthUserAddRequest {
  name: string;
  password: string;
  options: UserAddOptions | null;
  hashedPassword: string;
}

export interface AuthUserGetRequest {
  name: string;
}

export interface AuthUserGetResponse {
  header: ResponseHeader | null;
  roles: string[];
}

export interface AuthUserDeleteRequest {
  name: string;
}

export interface AuthUserChangePasswordRequest {
  name: string;
  password: string;
  hashedPassword: string;
}

export interface AuthUserGrantRoleRequest {
  user: string;
  role: string;
}

export interface AuthUserRevokeRoleRequest {
  name: string;
  role: string;
}

export interface AuthRoleAddRequest {
  name: string;
}

export interface AuthRoleGetRequest {
  role: string;
}

export interface AuthRoleGetResponse {
  header: ResponseHeader | null;
  perm: Permission[];
}

export interface AuthUserListResponse {
  header: ResponseHeader | null;
  users: string[];
}

export interface AuthRoleListResponse {
  header: ResponseHeader | null;
  roles: string[];
}

export interface AuthRoleDeleteRequest {
  role: string;
}

export interface AuthRoleGrantPermissionRequest {
  name: string;
  perm: Permission | null;
}

export interface AuthRoleRevokePermissionRequest {
  role: string;
  key: Buffer;
  range_end: Buffer;
}

// ---------------------------------------------------------------------------
// grpc.health.v1
// ---------------------------------------------------------------------------

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

export interface HealthCheckRequest {
  service: string;
}

export interface HealthCheckResponse {
  status: ServingStatus;
}

// ---------------------------------------------------------------------------
// What may be handed to the encoder
// ---------------------------------------------------------------------------

/**
 * The shape accepted when encoding a message of decoded shape T: every field optional
 * (absent = the proto3 zero value), message fields may be null, bytes any Uint8Array.
 */
export type Wire<T> = T extends Buffer
  ? Uint8Array
  : T extends readonly (infer E)[]
    ? Wire<E>[]
    : T extends object
      ? { [K in keyof T]?: Wire<T[K]> | null }
      : T;

// ---------------------------------------------------------------------------
// Services: method tables
// ---------------------------------------------------------------------------

/** Marker types: the kind of an RPC and its decoded request and response shapes. */
export interface Unary<Req, Res> {
  readonly kind: 'unary';
  readonly request: Req;
  readonly response: Res;
}
export interface ServerStreaming<Req, Res> {
  readonly kind: 'server-streaming';
  readonly request: Req;
  readonly response: Res;
}
export interface BidiStreaming<Req, Res> {
  readonly kind: 'bidi-streaming';
  readonly request: Req;
  readonly response: Res;
}
type AnyMethod = Unary<unknown, unknown> | ServerStreaming<unknown, unknown> | BidiStreaming<unknown, unknown>;

export interface KVMethods {
  Range: Unary<RangeRequest, RangeResponse>;
  Put: Unary<PutRequest, PutResponse>;
  DeleteRange: Unary<DeleteRangeRequest, DeleteRangeResponse>;
  Txn: Unary<TxnRequest, TxnResponse>;
  Compact: Unary<CompactionRequest, CompactionResponse>;
}

export interface WatchMethods {
  Watch: BidiStreaming<WatchRequest, WatchResponse>;
}

export interface LeaseMethods {
  LeaseGrant: Unary<LeaseGrantRequest, LeaseGrantResponse>;
  LeaseRevoke: Unary<LeaseRevokeRequest, LeaseRevokeResponse>;
  LeaseKeepAlive: BidiStreaming<LeaseKeepAliveRequest, LeaseKeepAliveResponse>;
  LeaseTimeToLive: Unary<LeaseTimeToLiveRequest, LeaseTimeToLiveResponse>;
  LeaseLeases: Unary<LeaseLeasesRequest, LeaseLeasesResponse>;
}

export interface ClusterMethods {
  MemberAdd: Unary<MemberAddRequest, MemberAddResponse>;
  MemberRemove: Unary<MemberRemoveRequest, MemberRemoveResponse>;
  MemberUpdate: Unary<MemberUpdateRequest, MemberUpdateResponse>;
  MemberList: Unary<MemberListRequest, MemberListResponse>;
  MemberPromote: Unary<MemberPromoteRequest, MemberPromoteResponse>;
}

export interface MaintenanceMethods {
  Alarm: Unary<AlarmRequest, AlarmResponse>;
  Status: Unary<StatusRequest, StatusResponse>;
  Defragment: Unary<DefragmentRequest, DefragmentResponse>;
  Hash: Unary<HashRequest, HashResponse>;
  HashKV: Unary<HashKVRequest, HashKVResponse>;
  Snapshot: ServerStreaming<SnapshotRequest, SnapshotResponse>;
  MoveLeader: Unary<MoveLeaderRequest, MoveLeaderResponse>;
  /** etcd 3.5+; etcd 3.4 answers UNIMPLEMENTED. */
  Downgrade: Unary<DowngradeRequest, DowngradeResponse>;
}

export interface AuthMethods {
  AuthEnable: Unary<AuthEnableRequest, AuthHeaderResponse>;
  AuthDisable: Unary<AuthDisableRequest, AuthHeaderResponse>;
  /** etcd 3.5+; etcd 3.4 answers UNIMPLEMENTED. */
  AuthStatus: Unary<AuthStatusRequest, AuthStatusResponse>;
  Authenticate: Unary<AuthenticateRequest, AuthenticateResponse>;
  UserAdd: Unary<AuthUserAddRequest, AuthHeaderResponse>;
  UserGet: Unary<AuthUserGetRequest, AuthUserGetResponse>;
  UserList: Unary<AuthUserListRequest, AuthUserListResponse>;
  UserDelete: Unary<AuthUserDeleteRequest, AuthHeaderResponse>;
  UserChangePassword: Unary<AuthUserChangePasswordRequest, AuthHeaderResponse>;
  UserGrantRole: Unary<AuthUserGrantRoleRequest, AuthHeaderResponse>;
  UserRevokeRole: Unary<AuthUserRevokeRoleRequest, AuthHeaderResponse>;
  RoleAdd: Unary<AuthRoleAddRequest, AuthHeaderResponse>;
  RoleGet: Unary<AuthRoleGetRequest, AuthRoleGetResponse>;
  RoleList: Unary<AuthRoleListRequest, AuthRoleListResponse>;
  RoleDelete: Unary<AuthRoleDeleteRequest, AuthHeaderResponse>;
  RoleGrantPermission: Unary<AuthRoleGrantPermissionRequest, AuthHeaderResponse>;
  RoleRevokePermission: Unary<AuthRoleRevokePermissionRequest, AuthHeaderResponse>;
}

export interface HealthMethods {
  Check: Unary<HealthCheckRequest, HealthCheckResponse>;
  Watch: ServerStreaming<HealthCheckRequest, HealthCheckResponse>;
}

/** Every service skiff serves on the client port, by short name. */
export interface EtcdServices {
  KV: KVMethods;
  Watch: WatchMethods;
  Lease: LeaseMethods;
  Cluster: ClusterMethods;
  Maintenance: MaintenanceMethods;
  Auth: AuthMethods;
  Health: HealthMethods;
}

export type EtcdServiceName = keyof EtcdServices;

/** Fully qualified gRPC service names (the first part of every method path). */
export const SERVICE_FULL_NAMES: { readonly [S in EtcdServiceName]: string } = {
  KV: 'etcdserverpb.KV',
  Watch: 'etcdserverpb.Watch',
  Lease: 'etcdserverpb.Lease',
  Cluster: 'etcdserverpb.Cluster',
  Maintenance: 'etcdserverpb.Maintenance',
  Auth: 'etcdserverpb.Auth',
  Health: 'grpc.health.v1.Health',
};

// ---------------------------------------------------------------------------
// Server side
// ---------------------------------------------------------------------------

type HandlerFor<M> =
  M extends Unary<infer Req, infer Res>
    ? grpc.handleUnaryCall<Req, Wire<Res>>
    : M extends ServerStreaming<infer Req, infer Res>
      ? grpc.handleServerStreamingCall<Req, Wire<Res>>
      : M extends BidiStreaming<infer Req, infer Res>
        ? grpc.handleBidiStreamingCall<Req, Wire<Res>>
        : never;

/** What a server must provide for one service: one typed handler per method. */
export type ServiceImplementation<S extends EtcdServiceName> = {
  [K in keyof EtcdServices[S]]: HandlerFor<EtcdServices[S][K]>;
};

/** The grpc-js service definition of one service (method paths, codecs, stream kinds). */
export function serviceDefinition(name: EtcdServiceName): grpc.ServiceDefinition {
  const def = etcdPackageDefinition()[SERVICE_FULL_NAMES[name]];
  if (def === undefined || !isServiceDefinition(def)) {
    throw new Error(`service ${SERVICE_FULL_NAMES[name]} missing from the loaded protos`);
  }
  return def;
}

function isServiceDefinition(
  def: protoLoader.AnyDefinition,
): def is protoLoader.ServiceDefinition {
  return !('format' in def);
}

/** A method's request decoder and response encoder, where they replace protobufjs's. */
export interface MethodCodec {
  requestDeserialize?: (bytes: Buffer) => unknown;
  responseSerialize?: (value: never) => Buffer;
}

/**
 * server.addService with the implementation checked against the method table; `codecs`
 * replace the generated codecs of some methods (hand-written ones for hot calls).
 */
export function addService<S extends EtcdServiceName>(
  server: { addService(service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void },
  name: S,
  implementation: ServiceImplementation<S>,
  codecs: Partial<Record<keyof ServiceImplementation<S>, MethodCodec>> = {},
): void {
  const def: Record<string, grpc.MethodDefinition<unknown, unknown>> = { ...serviceDefinition(name) };
  for (const [method, codec] of Object.entries(codecs) as [string, MethodCodec][]) {
    const m = def[method];
    if (m === undefined) throw new Error(`no method ${method} in service ${SERVICE_FULL_NAMES[name]}`);
    def[method] = { ...m, ...codec } as typeof m;
  }
  server.addService(def, implementation as unknown as grpc.UntypedServiceImplementation);
}

/**
 * A handler for a method skiff does not serve: answers UNIMPLEMENTED with grpc-go's text,
 * as etcd does for a method it never registered (etcd 3.4 for Downgrade and AuthStatus).
 */
export function unimplemented<H>(service: EtcdServiceName, method: string): H {
  const details = `unknown method ${method} for service ${SERVICE_FULL_NAMES[service]}`;
  const handler = (call: unknown, callback?: (error: grpc.ServerErrorResponse) => void): void => {
    const error = Object.assign(new Error(details), { code: grpc.status.UNIMPLEMENTED, details });
    if (typeof callback === 'function') {
      callback(error);
      return;
    }
    (call as { emit(event: 'error', error: grpc.ServerErrorResponse): void }).emit('error', error);
  };
  return handler as unknown as H;
}

// ---------------------------------------------------------------------------
// Client side
// ---------------------------------------------------------------------------

interface UnaryClientMethod<Req, Res> {
  (request: Wire<Req>, callback: grpc.requestCallback<Res>): grpc.ClientUnaryCall;
  (request: Wire<Req>, metadata: grpc.Metadata, callback: grpc.requestCallback<Res>): grpc.ClientUnaryCall;
  (
    request: Wire<Req>,
    metadata: grpc.Metadata,
    options: Partial<grpc.CallOptions>,
    callback: grpc.requestCallback<Res>,
  ): grpc.ClientUnaryCall;
}

type ServerStreamingClientMethod<Req, Res> = (
  request: Wire<Req>,
  metadata?: grpc.Metadata,
  options?: Partial<grpc.CallOptions>,
) => grpc.ClientReadableStream<Res>;

type BidiStreamingClientMethod<Req, Res> = (
  metadata?: grpc.Metadata,
  options?: Partial<grpc.CallOptions>,
) => grpc.ClientDuplexStream<Wire<Req>, Res>;

type ClientMethodFor<M> =
  M extends Unary<infer Req, infer Res>
    ? UnaryClientMethod<Req, Res>
    : M extends ServerStreaming<infer Req, infer Res>
      ? ServerStreamingClientMethod<Req, Res>
      : M extends BidiStreaming<infer Req, infer Res>
        ? BidiStreamingClientMethod<Req, Res>
        : never;

/** A grpc-js client of one service, with typed methods. */
export type ServiceClient<S extends EtcdServiceName> = grpc.Client & {
  [K in keyof EtcdServices[S]]: ClientMethodFor<EtcdServices[S][K]>;
};

const clientConstructors = new Map<EtcdServiceName, grpc.ServiceClientConstructor>();

/** The makeClientConstructor class of one service (made once per service). */
export function clientConstructor(name: EtcdServiceName): grpc.ServiceClientConstructor {
  let ctor = clientConstructors.get(name);
  if (ctor === undefined) {
    ctor = grpc.makeClientConstructor(serviceDefinition(name), SERVICE_FULL_NAMES[name]);
    clientConstructors.set(name, ctor);
  }
  return ctor;
}

/** A client of one service at `address` (host:port); plaintext unless credentials say otherwise. */
export function createClient<S extends EtcdServiceName>(
  name: S,
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  options?: grpc.ClientOptions,
): ServiceClient<S> {
  const Ctor = clientConstructor(name);
  return new Ctor(address, credentials, options) as unknown as ServiceClient<S>;
}

type UnaryKeys<S extends EtcdServiceName> = {
  [K in keyof EtcdServices[S]]: EtcdServices[S][K] extends Unary<unknown, unknown> ? K : never;
}[keyof EtcdServices[S]];

type RequestOf<M> = M extends AnyMethod ? M['request'] : never;
type ResponseOf<M> = M extends AnyMethod ? M['response'] : never;

/** One unary call as a promise. Rejects with the grpc-js ServiceError. */
export function callUnary<S extends EtcdServiceName, K extends UnaryKeys<S>>(
  client: ServiceClient<S>,
  method: K,
  request: Wire<RequestOf<EtcdServices[S][K]>>,
  options: { metadata?: grpc.Metadata; deadline?: grpc.Deadline } = {},
): Promise<ResponseOf<EtcdServices[S][K]>> {
  const fn = client[method] as unknown as UnaryClientMethod<unknown, ResponseOf<EtcdServices[S][K]>>;
  const callOptions: Partial<grpc.CallOptions> = {};
  if (options.deadline !== undefined) callOptions.deadline = options.deadline;
  return new Promise((resolve, reject) => {
    fn.call(client, request, options.metadata ?? new grpc.Metadata(), callOptions, (error, response) => {
      if (error !== null) reject(error);
      else if (response === undefined) reject(new Error(`${String(method)}: empty response`));
      else resolve(response);
    });
  });
}
