// etcd's gRPC errors: the exact status code and message of each, because etcd clients
// (clientv3's rpctypes.Error, the npm etcd3 client, kubectl through the API server) match
// on them. Codes and texts are those of etcd 3.4 (rpctypes/error.go); the few added in
// 3.5/3.6 are marked. Where 3.6 changed a code, the 3.4 code is kept (noted below).
//
// How a skiff handler answers with one:
//   unary:   callback(ErrGRPCCompacted)            (an EtcdError is a grpc-js ServerErrorResponse)
//   streams: call.emit('error', ErrGRPCNoLeader)   or  call.destroy(...)  — see toServiceError
// Anything that is not an EtcdError is sent as UNKNOWN with its message, as etcd's
// togRPCError does for errors it has no mapping for.
//
// Request size, as etcd 3.4 reports it (checked against etcd 3.4.23):
//   * etcd's gRPC server accepts messages up to --max-request-bytes + 512 KiB (grpc
//     overhead allowance; --max-request-bytes defaults to 1.5 MiB). A bigger message is
//     refused by grpc itself before etcd sees it: RESOURCE_EXHAUSTED
//     "grpc: received message larger than max (<got> vs. <limit>)" (grpc-go's text, which
//     skiff's own gRPC server, src/grpc, sends too).
//   * A message that got through but whose raft proposal is larger than
//     --max-request-bytes is refused by etcd: ErrGRPCRequestTooLarge,
//     INVALID_ARGUMENT "etcdserver: request is too large". Nothing is stored.
//   * clientv3 (etcdctl) refuses to send more than 2 MiB by default, client-side:
//     RESOURCE_EXHAUSTED "trying to send message larger than max (<got> vs. 2097152)".
// So skiff's gRPC server takes messages up to requestBytesMax + GRPC_OVERHEAD_BYTES
// and checks each write request's size itself for ErrGRPCRequestTooLarge.

import * as grpc from '@grpc/grpc-js';

const { status } = grpc;

/** Headroom etcd grants above --max-request-bytes for gRPC's own receive limit. */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;

/** etcd's default --max-request-bytes. */
export const REQUEST_BYTES_MAX_DEFAULT = 1.5 * 1024 * 1024;

/** Every etcd gRPC error, by its rpctypes name: code and message as sent on the wire. */
export const ETCD_ERRORS = {
  ErrGRPCEmptyKey: { code: status.INVALID_ARGUMENT, details: 'etcdserver: key is not provided' },
  ErrGRPCKeyNotFound: { code: status.INVALID_ARGUMENT, details: 'etcdserver: key not found' },
  ErrGRPCValueProvided: { code: status.INVALID_ARGUMENT, details: 'etcdserver: value is provided' },
  ErrGRPCLeaseProvided: { code: status.INVALID_ARGUMENT, details: 'etcdserver: lease is provided' },
  ErrGRPCTooManyOps: { code: status.INVALID_ARGUMENT, details: 'etcdserver: too many operations in txn request' },
  ErrGRPCDuplicateKey: { code: status.INVALID_ARGUMENT, details: 'etcdserver: duplicate key given in txn request' },
  /** etcd 3.5+. */
  ErrGRPCInvalidClientAPIVersion: { code: status.INVALID_ARGUMENT, details: 'etcdserver: invalid client api version' },
  /** etcd 3.5+. */
  ErrGRPCInvalidSortOption: { code: status.INVALID_ARGUMENT, details: 'etcdserver: invalid sort option' },
  ErrGRPCCompacted: { code: status.OUT_OF_RANGE, details: 'etcdserver: mvcc: required revision has been compacted' },
  ErrGRPCFutureRev: { code: status.OUT_OF_RANGE, details: 'etcdserver: mvcc: required revision is a future revision' },
  ErrGRPCNoSpace: { code: status.RESOURCE_EXHAUSTED, details: 'etcdserver: mvcc: database space exceeded' },

  ErrGRPCLeaseNotFound: { code: status.NOT_FOUND, details: 'etcdserver: requested lease not found' },
  ErrGRPCLeaseExist: { code: status.FAILED_PRECONDITION, details: 'etcdserver: lease already exists' },
  ErrGRPCLeaseTTLTooLarge: { code: status.OUT_OF_RANGE, details: 'etcdserver: too large lease TTL' },

  ErrGRPCWatchCanceled: { code: status.CANCELLED, details: 'etcdserver: watch canceled' },

  ErrGRPCMemberExist: { code: status.FAILED_PRECONDITION, details: 'etcdserver: member ID already exist' },
  ErrGRPCPeerURLExist: { code: status.FAILED_PRECONDITION, details: 'etcdserver: Peer URLs already exists' },
  /**
   * etcd 3.4 maps this failure to the client-side rpctypes value, which grpc-go then sends
   * as UNKNOWN with this same message; clients map it back by message. skiff sends the
   * nominal code.
   */
  ErrGRPCMemberNotEnoughStarted: {
    code: status.FAILED_PRECONDITION,
    details: 'etcdserver: re-configuration failed due to not enough started members',
  },
  ErrGRPCMemberBadURLs: { code: status.INVALID_ARGUMENT, details: 'etcdserver: given member URLs are invalid' },
  ErrGRPCMemberNotFound: { code: status.NOT_FOUND, details: 'etcdserver: member not found' },
  ErrGRPCMemberNotLearner: { code: status.FAILED_PRECONDITION, details: 'etcdserver: can only promote a learner member' },
  ErrGRPCLearnerNotReady: {
    code: status.FAILED_PRECONDITION,
    details: 'etcdserver: can only promote a learner member which is in sync with leader',
  },
  ErrGRPCTooManyLearners: { code: status.FAILED_PRECONDITION, details: 'etcdserver: too many learner members in cluster' },
  /** etcd 3.5+. */
  ErrGRPCClusterIDMismatch: { code: status.FAILED_PRECONDITION, details: 'etcdserver: cluster ID mismatch' },

  ErrGRPCRequestTooLarge: { code: status.INVALID_ARGUMENT, details: 'etcdserver: request is too large' },
  /** Same remark as ErrGRPCMemberNotEnoughStarted: etcd 3.4 puts UNKNOWN on the wire. */
  ErrGRPCRequestTooManyRequests: { code: status.RESOURCE_EXHAUSTED, details: 'etcdserver: too many requests' },

  ErrGRPCRootUserNotExist: { code: status.FAILED_PRECONDITION, details: 'etcdserver: root user does not exist' },
  ErrGRPCRootRoleNotExist: { code: status.FAILED_PRECONDITION, details: 'etcdserver: root user does not have root role' },
  ErrGRPCUserAlreadyExist: { code: status.FAILED_PRECONDITION, details: 'etcdserver: user name already exists' },
  ErrGRPCUserEmpty: { code: status.INVALID_ARGUMENT, details: 'etcdserver: user name is empty' },
  ErrGRPCUserNotFound: { code: status.FAILED_PRECONDITION, details: 'etcdserver: user name not found' },
  ErrGRPCRoleAlreadyExist: { code: status.FAILED_PRECONDITION, details: 'etcdserver: role name already exists' },
  ErrGRPCRoleNotFound: { code: status.FAILED_PRECONDITION, details: 'etcdserver: role name not found' },
  ErrGRPCRoleEmpty: { code: status.INVALID_ARGUMENT, details: 'etcdserver: role name is empty' },
  ErrGRPCAuthFailed: {
    code: status.INVALID_ARGUMENT,
    details: 'etcdserver: authentication failed, invalid user ID or password',
  },
  /** etcd 3.5+. */
  ErrGRPCPermissionNotGiven: { code: status.INVALID_ARGUMENT, details: 'etcdserver: permission not given' },
  ErrGRPCPermissionDenied: { code: status.PERMISSION_DENIED, details: 'etcdserver: permission denied' },
  ErrGRPCRoleNotGranted: { code: status.FAILED_PRECONDITION, details: 'etcdserver: role is not granted to the user' },
  ErrGRPCPermissionNotGranted: {
    code: status.FAILED_PRECONDITION,
    details: 'etcdserver: permission is not granted to the role',
  },
  ErrGRPCAuthNotEnabled: { code: status.FAILED_PRECONDITION, details: 'etcdserver: authentication is not enabled' },
  ErrGRPCInvalidAuthToken: { code: status.UNAUTHENTICATED, details: 'etcdserver: invalid auth token' },
  ErrGRPCInvalidAuthMgmt: { code: status.INVALID_ARGUMENT, details: 'etcdserver: invalid auth management' },
  ErrGRPCAuthOldRevision: { code: status.INVALID_ARGUMENT, details: 'etcdserver: revision of auth store is old' },

  ErrGRPCNoLeader: { code: status.UNAVAILABLE, details: 'etcdserver: no leader' },
  ErrGRPCNotLeader: { code: status.FAILED_PRECONDITION, details: 'etcdserver: not leader' },
  ErrGRPCLeaderChanged: { code: status.UNAVAILABLE, details: 'etcdserver: leader changed' },
  /** UNAVAILABLE in etcd 3.4 and 3.5; 3.6 made it FAILED_PRECONDITION. */
  ErrGRPCNotCapable: { code: status.UNAVAILABLE, details: 'etcdserver: not capable' },
  ErrGRPCStopped: { code: status.UNAVAILABLE, details: 'etcdserver: server stopped' },
  ErrGRPCTimeout: { code: status.UNAVAILABLE, details: 'etcdserver: request timed out' },
  ErrGRPCTimeoutDueToLeaderFail: {
    code: status.UNAVAILABLE,
    details: 'etcdserver: request timed out, possibly due to previous leader failure',
  },
  ErrGRPCTimeoutDueToConnectionLost: {
    code: status.UNAVAILABLE,
    details: 'etcdserver: request timed out, possibly due to connection lost',
  },
  ErrGRPCTimeoutWaitAppliedIndex: {
    code: status.UNAVAILABLE,
    details: 'etcdserver: request timed out, waiting for the applied index took too long',
  },
  ErrGRPCUnhealthy: { code: status.UNAVAILABLE, details: 'etcdserver: unhealthy cluster' },
  ErrGRPCCorrupt: { code: status.DATA_LOSS, details: 'etcdserver: corrupt cluster' },
  /** UNAVAILABLE in etcd 3.4 and 3.5; 3.6 made it FAILED_PRECONDITION. (etcd spells it ErrGPRC...) */
  ErrGRPCNotSupportedForLearner: { code: status.UNAVAILABLE, details: 'etcdserver: rpc not supported for learner' },
  ErrGRPCBadLeaderTransferee: { code: status.FAILED_PRECONDITION, details: 'etcdserver: bad leader transferee' },

  /** etcd 3.5+ (downgrade); code as in 3.5. */
  ErrGRPCClusterVersionUnavailable: {
    code: status.UNAVAILABLE,
    details: 'etcdserver: cluster version not found during downgrade',
  },
  /** etcd 3.5+. */
  ErrGRPCWrongDowngradeVersionFormat: {
    code: status.INVALID_ARGUMENT,
    details: 'etcdserver: wrong downgrade target version format',
  },
  /** etcd 3.5+. */
  ErrGRPCInvalidDowngradeTargetVersion: {
    code: status.INVALID_ARGUMENT,
    details: 'etcdserver: invalid downgrade target version',
  },
  /** etcd 3.5+. */
  ErrGRPCDowngradeInProcess: {
    code: status.FAILED_PRECONDITION,
    details: 'etcdserver: cluster has a downgrade job in progress',
  },
  /** etcd 3.5+. */
  ErrGRPCNoInflightDowngrade: { code: status.FAILED_PRECONDITION, details: 'etcdserver: no inflight downgrade job' },

  /** etcd 3.6+; older servers let grpc report a cancelled context itself. */
  ErrGRPCCanceled: { code: status.CANCELLED, details: 'etcdserver: request canceled' },
  /** etcd 3.6+. */
  ErrGRPCDeadlineExceeded: { code: status.DEADLINE_EXCEEDED, details: 'etcdserver: context deadline exceeded' },
} as const satisfies Record<string, { code: grpc.status; details: string }>;

export type EtcdErrorKind = keyof typeof ETCD_ERRORS;

/**
 * One of etcd's gRPC errors. `kind` is the stable identity to match on; `code` and
 * `details` are what goes on the wire. Being an Error with numeric `code` and string
 * `details`, it is a grpc-js ServerErrorResponse and can be passed to callbacks as is.
 */
export class EtcdError extends Error implements grpc.ServerErrorResponse {
  readonly code: grpc.status;
  readonly details: string;

  constructor(readonly kind: EtcdErrorKind) {
    const entry = ETCD_ERRORS[kind];
    super(entry.details);
    this.name = 'EtcdError';
    this.code = entry.code;
    this.details = entry.details;
  }
}

export function isEtcdError(e: unknown, kind?: EtcdErrorKind): e is EtcdError {
  return e instanceof EtcdError && (kind === undefined || e.kind === kind);
}

function make(kind: EtcdErrorKind): EtcdError {
  return Object.freeze(new EtcdError(kind));
}

// One shared, frozen instance per error, named as in etcd, for `callback(ErrGRPCX)` and
// `throw ErrGRPCX`. Use `new EtcdError(kind)` where a fresh stack trace helps.
export const ErrGRPCEmptyKey = make('ErrGRPCEmptyKey');
export const ErrGRPCKeyNotFound = make('ErrGRPCKeyNotFound');
export const ErrGRPCValueProvided = make('ErrGRPCValueProvided');
export const ErrGRPCLeaseProvided = make('ErrGRPCLeaseProvided');
export const ErrGRPCTooManyOps = make('ErrGRPCTooManyOps');
export const ErrGRPCDuplicateKey = make('ErrGRPCDuplicateKey');
export const ErrGRPCInvalidClientAPIVersion = make('ErrGRPCInvalidClientAPIVersion');
export const ErrGRPCInvalidSortOption = make('ErrGRPCInvalidSortOption');
export const ErrGRPCCompacted = make('ErrGRPCCompacted');
export const ErrGRPCFutureRev = make('ErrGRPCFutureRev');
export const ErrGRPCNoSpace = make('ErrGRPCNoSpace');
export const ErrGRPCLeaseNotFound = make('ErrGRPCLeaseNotFound');
export const ErrGRPCLeaseExist = make('ErrGRPCLeaseExist');
export const ErrGRPCLeaseTTLTooLarge = make('ErrGRPCLeaseTTLTooLarge');
export const ErrGRPCWatchCanceled = make('ErrGRPCWatchCanceled');
export const ErrGRPCMemberExist = make('ErrGRPCMemberExist');
export const ErrGRPCPeerURLExist = make('ErrGRPCPeerURLExist');
export const ErrGRPCMemberNotEnoughStarted = make('ErrGRPCMemberNotEnoughStarted');
export const ErrGRPCMemberBadURLs = make('ErrGRPCMemberBadURLs');
export const ErrGRPCMemberNotFound = make('ErrGRPCMemberNotFound');
export const ErrGRPCMemberNotLearner = make('ErrGRPCMemberNotLearner');
export const ErrGRPCLearnerNotReady = make('ErrGRPCLearnerNotReady');
export const ErrGRPCTooManyLearners = make('ErrGRPCTooManyLearners');
export const ErrGRPCClusterIDMismatch = make('ErrGRPCClusterIDMismatch');
export const ErrGRPCRequestTooLarge = make('ErrGRPCRequestTooLarge');
export const ErrGRPCRequestTooManyRequests = make('ErrGRPCRequestTooManyRequests');
export const ErrGRPCRootUserNotExist = make('ErrGRPCRootUserNotExist');
export const ErrGRPCRootRoleNotExist = make('ErrGRPCRootRoleNotExist');
export const ErrGRPCUserAlreadyExist = make('ErrGRPCUserAlreadyExist');
export const ErrGRPCUserEmpty = make('ErrGRPCUserEmpty');
export const ErrGRPCUserNotFound = make('ErrGRPCUserNotFound');
export const ErrGRPCRoleAlreadyExist = make('ErrGRPCRoleAlreadyExist');
export const ErrGRPCRoleNotFound = make('ErrGRPCRoleNotFound');
export const ErrGRPCRoleEmpty = make('ErrGRPCRoleEmpty');
export const ErrGRPCAuthFailed = make('ErrGRPCAuthFailed');
export const ErrGRPCPermissionNotGiven = make('ErrGRPCPermissionNotGiven');
export const ErrGRPCPermissionDenied = make('ErrGRPCPermissionDenied');
export const ErrGRPCRoleNotGranted = make('ErrGRPCRoleNotGranted');
export const ErrGRPCPermissionNotGranted = make('ErrGRPCPermissionNotGranted');
export const ErrGRPCAuthNotEnabled = make('ErrGRPCAuthNotEnabled');
export const ErrGRPCInvalidAuthToken = make('ErrGRPCInvalidAuthToken');
export const ErrGRPCInvalidAuthMgmt = make('ErrGRPCInvalidAuthMgmt');
export const ErrGRPCAuthOldRevision = make('ErrGRPCAuthOldRevision');
export const ErrGRPCNoLeader = make('ErrGRPCNoLeader');
export const ErrGRPCNotLeader = make('ErrGRPCNotLeader');
export const ErrGRPCLeaderChanged = make('ErrGRPCLeaderChanged');
export const ErrGRPCNotCapable = make('ErrGRPCNotCapable');
export const ErrGRPCStopped = make('ErrGRPCStopped');
export const ErrGRPCTimeout = make('ErrGRPCTimeout');
export const ErrGRPCTimeoutDueToLeaderFail = make('ErrGRPCTimeoutDueToLeaderFail');
export const ErrGRPCTimeoutDueToConnectionLost = make('ErrGRPCTimeoutDueToConnectionLost');
export const ErrGRPCTimeoutWaitAppliedIndex = make('ErrGRPCTimeoutWaitAppliedIndex');
export const ErrGRPCUnhealthy = make('ErrGRPCUnhealthy');
export const ErrGRPCCorrupt = make('ErrGRPCCorrupt');
export const ErrGRPCNotSupportedForLearner = make('ErrGRPCNotSupportedForLearner');
export const ErrGRPCBadLeaderTransferee = make('ErrGRPCBadLeaderTransferee');
export const ErrGRPCClusterVersionUnavailable = make('ErrGRPCClusterVersionUnavailable');
export const ErrGRPCWrongDowngradeVersionFormat = make('ErrGRPCWrongDowngradeVersionFormat');
export const ErrGRPCInvalidDowngradeTargetVersion = make('ErrGRPCInvalidDowngradeTargetVersion');
export const ErrGRPCDowngradeInProcess = make('ErrGRPCDowngradeInProcess');
export const ErrGRPCNoInflightDowngrade = make('ErrGRPCNoInflightDowngrade');
export const ErrGRPCCanceled = make('ErrGRPCCanceled');
export const ErrGRPCDeadlineExceeded = make('ErrGRPCDeadlineExceeded');

/** The status a handler should end with for any thrown value (etcd's togRPCError). */
export function toServiceError(e: unknown): grpc.ServerErrorResponse {
  if (e instanceof EtcdError) return e;
  if (e instanceof Error) {
    const code = (e as Partial<grpc.ServerErrorResponse>).code;
    if (typeof code === 'number' && Number.isInteger(code)) return e as grpc.ServerErrorResponse;
    return Object.assign(new Error(e.message), { code: status.UNKNOWN, details: e.message });
  }
  const details = String(e);
  return Object.assign(new Error(details), { code: status.UNKNOWN, details });
}

/** The status object grpc-js puts on the wire for toServiceError(e). */
export function toStatusObject(e: unknown): { code: grpc.status; details: string; metadata: grpc.Metadata } {
  const error = toServiceError(e);
  return {
    code: error.code ?? status.UNKNOWN,
    details: error.details ?? error.message,
    metadata: error.metadata ?? new grpc.Metadata(),
  };
}

const kindByDetails: ReadonlyMap<string, EtcdErrorKind> = new Map(
  (Object.keys(ETCD_ERRORS) as EtcdErrorKind[]).map((kind) => [ETCD_ERRORS[kind].details, kind]),
);

/**
 * Client side: the EtcdError a received status stands for, matched by message as
 * clientv3's rpctypes.Error does (so a 3.4 server's UNKNOWN "etcdserver: too many
 * requests" maps too); undefined for anything else.
 */
export function fromServiceError(
  e: { code?: number; details?: string; message?: string } | null | undefined,
): EtcdError | undefined {
  if (e === null || e === undefined) return undefined;
  const details = e.details ?? e.message;
  if (details === undefined) return undefined;
  const kind = kindByDetails.get(details);
  return kind === undefined ? undefined : new EtcdError(kind);
}
