// Which key permissions a KV or lease request needs (etcd 3.4's apply_auth.go and
// checkTxnAuth), checked against an AuthStore:
//
//   Range                     READ on [key, range_end)
//   Put                       WRITE on key; READ on key with prev_kv; with a lease, WRITE on
//                             every key already attached to it (the user must be able to
//                             revoke what it attaches to)
//   DeleteRange               WRITE on [key, range_end); READ too with prev_kv
//   Txn                       READ on every compare's range, and every op of both branches
//                             as above, nested txns included
//   LeaseRevoke               WRITE on every key attached to the lease
//
// Writes are checked when applied (with the auth revision the proposer saw), reads on the
// member serving them, as etcd does.

import type * as pb from '../proto';
import type { InternalRequest } from '../server/requests';
import type { AuthStore } from './store';
import type { AuthInfo } from './types';

/** The keys attached to a lease (none for an unknown lease). */
export type LeaseKeys = (leaseId: number) => Uint8Array[];

function checkLeaseKeys(as: AuthStore, ai: AuthInfo | undefined, leaseId: number, leaseKeys: LeaseKeys): void {
  if (leaseId === 0) return;
  for (const k of leaseKeys(leaseId)) as.checkPut(ai, k);
}

export function checkPutRequest(as: AuthStore, ai: AuthInfo | undefined, r: pb.PutRequest, leaseKeys: LeaseKeys): void {
  as.checkPut(ai, r.key);
  checkLeaseKeys(as, ai, r.lease, leaseKeys);
  if (r.prev_kv) as.checkRange(ai, r.key, new Uint8Array(0));
}

export function checkDeleteRangeRequest(as: AuthStore, ai: AuthInfo | undefined, r: pb.DeleteRangeRequest): void {
  as.checkDeleteRange(ai, r.key, r.range_end);
  if (r.prev_kv) as.checkRange(ai, r.key, r.range_end);
}

function checkOps(as: AuthStore, ai: AuthInfo | undefined, ops: pb.RequestOp[], leaseKeys: LeaseKeys): void {
  for (const op of ops) {
    switch (op.request) {
      case 'request_range':
        as.checkRange(ai, op.request_range.key, op.request_range.range_end);
        break;
      case 'request_put':
        checkPutRequest(as, ai, op.request_put, leaseKeys);
        break;
      case 'request_delete_range':
        checkDeleteRangeRequest(as, ai, op.request_delete_range);
        break;
      case 'request_txn':
        checkTxnRequest(as, ai, op.request_txn, leaseKeys);
        break;
    }
  }
}

export function checkTxnRequest(as: AuthStore, ai: AuthInfo | undefined, r: pb.TxnRequest, leaseKeys: LeaseKeys): void {
  for (const c of r.compare) as.checkRange(ai, c.key, c.range_end);
  checkOps(as, ai, r.success, leaseKeys);
  checkOps(as, ai, r.failure, leaseKeys);
}

/**
 * The error a request proposed by `ai` gets when applied, or undefined when it may go on.
 * Requests without permission rules (compaction, lease grant, alarms, membership) pass.
 */
export function applyDenied(as: AuthStore, r: InternalRequest, ai: AuthInfo, leaseKeys: LeaseKeys): Error | undefined {
  if (!as.isEnabled) return undefined;
  try {
    switch (r.op) {
      case 'put':
        checkPutRequest(as, ai, r.req, leaseKeys);
        break;
      case 'deleteRange':
        checkDeleteRangeRequest(as, ai, r.req);
        break;
      case 'txn':
        checkTxnRequest(as, ai, r.req, leaseKeys);
        break;
      case 'leaseRevoke':
        checkLeaseKeys(as, ai, r.req.ID, leaseKeys);
        break;
      default:
        break;
    }
  } catch (e) {
    if (e instanceof Error) return e;
    throw e;
  }
  return undefined;
}
