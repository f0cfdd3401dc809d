// Request semantics shared by the applier (writes through Raft) and the read path
// (read-only txns served locally): compares, ranges, puts, deletes, nested txns, as etcd
// v3.4's applierV3backend does them.

import * as pb from '../proto';
import * as errors from '../errors';
import { isMvccError, KeyValue, MvccCore, RangeOptions, RangeResult, WriteTxn } from '../mvcc';

/** The lease operations a write needs (the lessor provides them). */
export interface LeaseAttachments {
  exists(id: number): boolean;
  attach(id: number, key: Uint8Array): void;
  detach(id: number, key: Uint8Array): void;
}

/** A read view: the store itself (current revision) or an open write transaction (sees its own writes). */
type ReadView = Pick<MvccCore, 'range'> | Pick<WriteTxn, 'range'>;

export function toPbKv(kv: KeyValue): pb.KeyValue {
  return {
    key: Buffer.from(kv.key.buffer, kv.key.byteOffset, kv.key.byteLength),
    create_revision: kv.createRevision,
    mod_revision: kv.modRevision,
    version: kv.version,
    value: Buffer.from(kv.value.buffer, kv.value.byteOffset, kv.value.byteLength),
    lease: kv.lease,
  };
}

/** An empty byte string in a request means "absent" (proto3 has no null bytes). */
function rangeEnd(b: Buffer | null | undefined): Uint8Array | undefined {
  return b && b.length > 0 ? b : undefined;
}

export function rangeOptions(r: pb.RangeRequest): RangeOptions {
  return {
    key: r.key,
    rangeEnd: rangeEnd(r.range_end),
    limit: r.limit,
    revision: r.revision,
    sortOrder: r.sort_order,
    sortTarget: r.sort_target,
    keysOnly: r.keys_only,
    countOnly: r.count_only,
    minModRevision: r.min_mod_revision,
    maxModRevision: r.max_mod_revision,
    minCreateRevision: r.min_create_revision,
    maxCreateRevision: r.max_create_revision,
  };
}

/** MVCC errors as the gRPC errors etcd sends. */
export function mapMvccError(e: unknown): unknown {
  if (isMvccError(e, 'ERR_COMPACTED')) return errors.ErrGRPCCompacted;
  if (isMvccError(e, 'ERR_FUTURE_REV')) return errors.ErrGRPCFutureRev;
  return e;
}

export function rangeResponse(res: RangeResult, header: pb.ResponseHeader | null): pb.RangeResponse {
  return { header, kvs: res.kvs.map(toPbKv), more: res.more, count: res.count };
}

export function doRange(view: ReadView, r: pb.RangeRequest, header: pb.ResponseHeader | null): pb.RangeResponse {
  try {
    return rangeResponse(view.range(rangeOptions(r)), header);
  } catch (e) {
    throw mapMvccError(e);
  }
}

function compareTargetValue(c: pb.Compare): number | Buffer {
  const u = c as unknown as Record<string, unknown>;
  switch (c.target) {
    case 'VALUE':
      return (u.value as Buffer | undefined) ?? Buffer.alloc(0);
    case 'CREATE':
      return (u.create_revision as number | undefined) ?? 0;
    case 'MOD':
      return (u.mod_revision as number | undefined) ?? 0;
    case 'VERSION':
      return (u.version as number | undefined) ?? 0;
    case 'LEASE':
      return (u.lease as number | undefined) ?? 0;
  }
}

function compareKv(c: pb.Compare, kv: KeyValue | undefined): boolean {
  const want = compareTargetValue(c);
  let result: number;
  if (c.target === 'VALUE') {
    result = Buffer.compare(Buffer.from(kv?.value ?? new Uint8Array(0)), want as Buffer);
  } else {
    const have = kv === undefined ? 0 : c.target === 'CREATE' ? kv.createRevision : c.target === 'MOD' ? kv.modRevision : c.target === 'VERSION' ? kv.version : kv.lease;
    result = have === want ? 0 : have < (want as number) ? -1 : 1;
  }
  switch (c.result) {
    case 'EQUAL':
      return result === 0;
    case 'NOT_EQUAL':
      return result !== 0;
    case 'GREATER':
      return result > 0;
    case 'LESS':
      return result < 0;
  }
}

/** etcd's applyCompare: every key in the compare's range must satisfy it. */
export function evalCompare(view: ReadView, c: pb.Compare): boolean {
  const rr = view.range({ key: c.key, rangeEnd: rangeEnd(c.range_end) });
  if (rr.kvs.length === 0) {
    // A missing key has no value to compare (nil and "" are the same on the wire): fail.
    if (c.target === 'VALUE') return false;
    return compareKv(c, undefined);
  }
  return rr.kvs.every((kv) => compareKv(c, kv));
}

export function evalCompares(view: ReadView, t: pb.TxnRequest): boolean {
  return t.compare.every((c) => evalCompare(view, c));
}

export function isTxnReadOnly(t: pb.TxnRequest): boolean {
  const ro = (ops: pb.RequestOp[]): boolean => ops.every((op) => op.request === 'request_range' || (op.request === 'request_txn' && isTxnReadOnly(op.request_txn)));
  return ro(t.success) && ro(t.failure);
}

/** A read-only txn on a read view (no Raft round needed beyond the read index). */
export function readOnlyTxn(view: ReadView, t: pb.TxnRequest, header: pb.ResponseHeader, innerHeader: pb.ResponseHeader): pb.TxnResponse {
  const succeeded = evalCompares(view, t);
  const ops = succeeded ? t.success : t.failure;
  const responses: pb.ResponseOp[] = ops.map((op) => {
    if (op.request === 'request_range') return { response: 'response_range', response_range: doRange(view, op.request_range, innerHeader) };
    // A nested txn's own header stays empty, as in etcd's newTxnResp.
    if (op.request === 'request_txn') return { response: 'response_txn', response_txn: readOnlyTxn(view, op.request_txn, opHeader(0), innerHeader) };
    throw new Error('assertion failed: write op in a read-only txn');
  });
  return { header, succeeded, responses };
}

/** Checks a put's preconditions (etcd's checkPut) before anything is written. */
function checkPut(view: ReadView, p: pb.PutRequest, leases: LeaseAttachments): void {
  if (p.ignore_value || p.ignore_lease) {
    const prev = view.range({ key: p.key }).kvs[0];
    if (!prev) throw errors.ErrGRPCKeyNotFound;
  }
  if (!p.ignore_lease && p.lease !== 0 && !leases.exists(p.lease)) throw errors.ErrGRPCLeaseNotFound;
}

function checkRange(view: ReadView, r: pb.RangeRequest): void {
  // A range at a compacted or future revision fails the whole txn, as in etcd.
  if (r.revision > 0) doRange(view, { ...r, count_only: true }, null);
}

/** Validates the ops of the branch that will run, recursively, before executing any. */
function checkOps(tw: WriteTxn, t: pb.TxnRequest, leases: LeaseAttachments): void {
  const ops = evalCompares(tw, t) ? t.success : t.failure;
  for (const op of ops) {
    if (op.request === 'request_put') checkPut(tw, op.request_put, leases);
    else if (op.request === 'request_range') checkRange(tw, op.request_range);
    else if (op.request === 'request_txn') checkOps(tw, op.request_txn, leases);
  }
}

export function applyPut(tw: WriteTxn, p: pb.PutRequest, leases: LeaseAttachments, header: pb.ResponseHeader | null): pb.PutResponse {
  let value: Uint8Array = p.value;
  let lease = p.lease;
  if (p.ignore_value || p.ignore_lease) {
    const prev = tw.get(p.key);
    if (!prev) throw errors.ErrGRPCKeyNotFound;
    if (p.ignore_value) value = prev.value;
    if (p.ignore_lease) lease = prev.lease;
  }
  if (lease !== 0 && !leases.exists(lease)) throw errors.ErrGRPCLeaseNotFound;
  const prev = tw.put(p.key, value, lease);
  if (prev && prev.lease !== 0 && prev.lease !== lease) leases.detach(prev.lease, p.key);
  if (lease !== 0 && (!prev || prev.lease !== lease)) leases.attach(lease, p.key);
  return { header, prev_kv: p.prev_kv && prev ? toPbKv(prev.kv) : null };
}

export function applyDeleteRange(tw: WriteTxn, d: pb.DeleteRangeRequest, leases: LeaseAttachments, header: pb.ResponseHeader | null): pb.DeleteRangeResponse {
  const deleted = tw.deleteRange(d.key, rangeEnd(d.range_end));
  for (const kv of deleted) if (kv.lease !== 0) leases.detach(kv.lease, kv.key);
  return { header, deleted: deleted.length, prev_kvs: d.prev_kv ? deleted.map(toPbKv) : [] };
}

/** A header with only a revision, as etcd puts on the responses inside a txn. */
function opHeader(revision: number): pb.ResponseHeader {
  return { cluster_id: 0, member_id: 0, revision, raft_term: 0 };
}

/**
 * Runs a txn inside a write transaction: compares, then the chosen branch's ops in order
 * (each seeing the earlier ones). Preconditions are checked first, so a failing txn
 * writes nothing. Each inner response's header carries only the revision the write
 * transaction was at right after that op, as etcd's storeTxnWrite reports it: the begin
 * revision until something changed, then the begin revision + 1 (so a range or a no-op
 * delete before the first write says the begin revision). A nested txn's own header stays
 * empty (revision 0), as etcd's newTxnResp leaves it. The caller sets the top-level header.
 */
export function applyTxn(tw: WriteTxn, t: pb.TxnRequest, leases: LeaseAttachments, top = true): pb.TxnResponse {
  if (top) checkOps(tw, t, leases);
  const succeeded = evalCompares(tw, t);
  const ops = succeeded ? t.success : t.failure;
  const responses: pb.ResponseOp[] = ops.map((op): pb.ResponseOp => {
    switch (op.request) {
      case 'request_range':
        return { response: 'response_range', response_range: doRange(tw, op.request_range, opHeader(tw.revision)) };
      case 'request_put': {
        const resp = applyPut(tw, op.request_put, leases, null);
        return { response: 'response_put', response_put: { ...resp, header: opHeader(tw.revision) } };
      }
      case 'request_delete_range': {
        const resp = applyDeleteRange(tw, op.request_delete_range, leases, null);
        return { response: 'response_delete_range', response_delete_range: { ...resp, header: opHeader(tw.revision) } };
      }
      case 'request_txn':
        return { response: 'response_txn', response_txn: applyTxn(tw, op.request_txn, leases, false) };
    }
  });
  return { header: opHeader(0), succeeded, responses };
}

/**
 * etcd's checkTxnReqs / checkIntervals, before proposing: at most maxTxnOps ops per level,
 * and no key written twice (put/put or put/delete overlapping) in one branch path.
 */
export function checkTxnRequest(t: pb.TxnRequest, maxTxnOps: number): void {
  const opc = Math.max(t.compare.length, t.success.length, t.failure.length);
  if (opc > maxTxnOps) throw errors.ErrGRPCTooManyOps;
  for (const c of t.compare) if (c.key.length === 0) throw errors.ErrGRPCEmptyKey;
  for (const ops of [t.success, t.failure]) {
    for (const op of ops) checkOp(op, maxTxnOps);
    checkIntervals(ops);
  }
}

function checkOp(op: pb.RequestOp, maxTxnOps: number): void {
  switch (op.request) {
    case 'request_range':
      checkRangeRequest(op.request_range);
      return;
    case 'request_put':
      checkPutRequest(op.request_put);
      return;
    case 'request_delete_range':
      if (op.request_delete_range.key.length === 0) throw errors.ErrGRPCEmptyKey;
      return;
    case 'request_txn':
      checkTxnRequest(op.request_txn, maxTxnOps);
      return;
  }
}

export function checkPutRequest(p: pb.PutRequest): void {
  if (p.key.length === 0) throw errors.ErrGRPCEmptyKey;
  if (p.ignore_value && p.value.length !== 0) throw errors.ErrGRPCValueProvided;
  if (p.ignore_lease && p.lease !== 0) throw errors.ErrGRPCLeaseProvided;
}

export function checkRangeRequest(r: pb.RangeRequest): void {
  if (r.key.length === 0) throw errors.ErrGRPCEmptyKey;
}

interface Interval {
  key: Buffer;
  end: Buffer | undefined;
}

function intersects(dels: Interval[], key: Buffer): boolean {
  return dels.some((d) => inRange(key, d.key, d.end));
}

/**
 * Puts and deletes of one branch (with nested txns' branches) must not overlap (etcd's
 * checkIntervals and ErrDuplicateKey); a key put in both branches of one nested txn is
 * fine, since only one of them runs.
 */
function checkIntervals(ops: pb.RequestOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const op of ops) {
    if (op.request === 'request_delete_range') dels.push({ key: op.request_delete_range.key, end: rangeEnd(op.request_delete_range.range_end) as Buffer | undefined });
  }
  const puts = new Set<string>();
  for (const op of ops) {
    if (op.request !== 'request_txn') continue;
    const then = checkIntervals(op.request_txn.success);
    const otherwise = checkIntervals(op.request_txn.failure);
    for (const k of then.puts) {
      if (puts.has(k) || intersects(dels, Buffer.from(k, 'latin1'))) throw errors.ErrGRPCDuplicateKey;
      puts.add(k);
    }
    for (const k of otherwise.puts) {
      if (puts.has(k) && !then.puts.has(k)) throw errors.ErrGRPCDuplicateKey;
      if (intersects(dels, Buffer.from(k, 'latin1'))) throw errors.ErrGRPCDuplicateKey;
      puts.add(k);
    }
    dels.push(...then.dels, ...otherwise.dels);
  }
  for (const op of ops) {
    if (op.request !== 'request_put') continue;
    const k = op.request_put.key.toString('latin1');
    if (puts.has(k) || intersects(dels, op.request_put.key)) throw errors.ErrGRPCDuplicateKey;
    puts.add(k);
  }
  return { puts, dels };
}

function inRange(key: Buffer, start: Buffer, end: Buffer | undefined): boolean {
  if (!end) return key.equals(start);
  if (end.length === 1 && end[0] === 0) return Buffer.compare(key, start) >= 0;
  return Buffer.compare(key, start) >= 0 && Buffer.compare(key, end) < 0;
}
