// Errors of the lessor, with stable codes. Messages are etcd 3.4's lease package errors;
// the service maps them to etcd's gRPC errors (ErrGRPCLeaseNotFound, ...).

export type LeaseErrorCode =
  | 'ERR_LEASE_NOT_FOUND' // no lease with that id (also: grant of id 0, as etcd)
  | 'ERR_LEASE_EXIST' // grant of an id already in use
  | 'ERR_LEASE_TTL_TOO_LARGE' // grant with TTL > leaseTtlSecondsMax
  | 'ERR_NOT_PRIMARY' // renew on a member that is not the leader: forward it
  | 'ERR_LEASE_EXPIRED'; // renew of an expired lease whose revoke is pending: wait (see Lessor.renew)

const messages: Record<LeaseErrorCode, string> = {
  ERR_LEASE_NOT_FOUND: 'lease not found',
  ERR_LEASE_EXIST: 'lease already exists',
  ERR_LEASE_TTL_TOO_LARGE: 'too large lease TTL',
  ERR_NOT_PRIMARY: 'not a primary lessor',
  ERR_LEASE_EXPIRED: 'lease expired: revoke pending',
};

export class LeaseError extends Error {
  constructor(readonly code: LeaseErrorCode) {
    super(messages[code]);
    this.name = 'LeaseError';
  }
}

export function isLeaseError(e: unknown, code?: LeaseErrorCode): e is LeaseError {
  return e instanceof LeaseError && (code === undefined || e.code === code);
}

// One assertion helper for the whole project: a broken invariant is a bug (crash, never catch).
export { AssertionFailure, assert } from '../../raft';
