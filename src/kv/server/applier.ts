// The store's Raft state machine: applies committed requests to the MVCC store, the lessor
// and the membership, in log order, identically on every member; hands each result to the
// client waiting on the member that proposed it; persists with every applied batch the
// consistent index (the last applied Raft index) so that a restart resumes right after it.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Applied, ConfChangeV2, ConfState, Logger, SnapshotMetadata, SnapshotSource, StateMachine } from '../../raft';
import { Emitter } from '../../raft';
import { applyDenied, AuthInfo, AuthResult, AuthState, AuthStore } from '../auth';
import * as errors from '../errors';
import { MvccStore } from '../mvcc';
import type { RevEntry } from '../mvcc/key-index';
import { keyBytes } from '../mvcc/keys';
import type * as pb from '../proto';
import { isLeaseError, Lessor, LessorState } from '../lease';
import { confChangeError, memberUpdateError } from './members';
import { Membership, MembershipState } from './membership';
import { decodeConfContext, decodeEnvelope, InternalRequest, PlainPut, readPlainPut } from './requests';
import { applyDeleteRange, applyPut, applyTxn, LeaseAttachments, mapMvccError } from './txn';
import { Wait } from './wait';

/** Lessor errors as etcd's gRPC errors. */
export function mapLeaseError(e: unknown): unknown {
  if (isLeaseError(e, 'ERR_LEASE_NOT_FOUND')) return errors.ErrGRPCLeaseNotFound;
  if (isLeaseError(e, 'ERR_LEASE_EXIST')) return errors.ErrGRPCLeaseExist;
  if (isLeaseError(e, 'ERR_LEASE_TTL_TOO_LARGE')) return errors.ErrGRPCLeaseTTLTooLarge;
  return e;
}

function attachments(lessor: Lessor): LeaseAttachments {
  return {
    exists: (id) => lessor.lookup(id) !== undefined,
    attach: (id, key) => lessor.attach(id, key),
    detach: (id, key) => lessor.detach(id, key),
  };
}

export const applierLimits = Object.freeze({
  /** A backend write at most this long after the first applied entry it carries (etcd's batch interval). */
  flushDelayMs: 100,
  /** ...or as soon as this many entries were applied since the last one (etcd's batch limit). */
  flushEntriesMax: 10_000,
});

export interface AlarmRecord {
  memberId: number;
  alarm: pb.AlarmType;
}

/** Saved with every flush of the store. */
export interface StoreMeta {
  consistentIndex: number;
  term: number;
  confState: ConfState | undefined;
  membership: MembershipState;
  leases: LessorState;
  alarms: AlarmRecord[];
  /** Users, roles, permissions, whether auth is on, the auth revision (absent in stores from before auth). */
  auth?: AuthState;
}

export type ApplyResult = { ok: true; revision: number; resp: ApplyResponse } | { ok: false; error: Error };

export type ApplyResponse =
  | { op: 'put'; resp: pb.PutResponse }
  | { op: 'deleteRange'; resp: pb.DeleteRangeResponse }
  | { op: 'txn'; resp: pb.TxnResponse }
  | { op: 'compaction'; resp: pb.CompactionResponse }
  | { op: 'leaseGrant'; id: number; ttl: number }
  | { op: 'leaseRevoke' }
  | { op: 'alarm'; alarms: AlarmRecord[] }
  | { op: 'memberAttributes' }
  | { op: 'confChange'; confState: ConfState | undefined; members: Membership }
  | { op: 'auth'; result: AuthResult };

export interface ApplierOptions {
  dir: string;
  memberId: number;
  lessor: Lessor;
  logger: Logger;
  /** The membership of a new cluster (used only when the store is empty). */
  initialMembership: MembershipState;
  /** The auth store (a fresh one when absent); its state is saved with the meta. */
  auth?: AuthStore;
}

export class KvStateMachine implements StateMachine {
  readonly wait = new Wait<ApplyResult>();
  /** Fired after the store was replaced by a snapshot from the leader. */
  readonly onRestore = new Emitter<MvccStore<StoreMeta>>();
  /** Fired for every applied configuration change. */
  readonly onConfChange = new Emitter<{ index: number; confState: ConfState | undefined }>();
  /** Fired after each write of applied state to the backend, with its duration in seconds. */
  readonly onBackendCommit = new Emitter<number>();
  membership: Membership;
  alarms: AlarmRecord[] = [];
  private index = 0;
  private term = 0;
  /** The term of the entry being applied. */
  private entryTerm = 0;
  private confState: ConfState | undefined;
  private flushing: Promise<void> = Promise.resolve();
  /** The reused record of readPlainPut. */
  private readonly plainPut: PlainPut = { m: 0, n: 0, keyStr: '', buf: Buffer.alloc(0), valueStart: 0 };
  /** What applied requests use of the lessor (made once: every put would otherwise make its closures). */
  private leaseAttachments: LeaseAttachments | undefined;
  /** Entries applied since the last flush, and the timer of the next one (see flushNow). */
  private unflushedEntries = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private stagedMeta: SnapshotMetadata | undefined;
  private leaseStateCache: LessorState | undefined;
  /** Users, roles and permissions (replicated), and this member's simple tokens. */
  readonly auth: AuthStore;

  private constructor(
    private readonly opts: ApplierOptions,
    public store: MvccStore<StoreMeta>,
  ) {
    const meta = store.savedMeta;
    this.membership = new Membership(meta?.membership ?? opts.initialMembership);
    this.auth = opts.auth ?? new AuthStore();
    this.loadMeta(meta);
  }

  static async open(opts: ApplierOptions): Promise<KvStateMachine> {
    const kvDir = path.join(opts.dir, 'kv');
    const staged = `${kvDir}.staged`;
    // A restore that stopped between removing the old store and renaming the new one.
    if (!fs.existsSync(kvDir) && fs.existsSync(staged)) await fs.promises.rename(staged, kvDir);
    const store = await MvccStore.open<StoreMeta>(kvDir);
    return new KvStateMachine(opts, store);
  }

  private loadMeta(meta: StoreMeta | undefined): void {
    this.index = meta?.consistentIndex ?? 0;
    this.term = meta?.term ?? 0;
    this.confState = meta?.confState;
    this.alarms = meta?.alarms ?? [];
    this.auth.restore(meta?.auth);
    if (meta) this.membership = new Membership(meta.membership);
    this.opts.lessor.restoreState(meta?.leases ?? { leases: [] });
    this.leaseStateCache = undefined;
    // Attachments are not stored: rebuild them from the keys.
    const all = this.store.range({ key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) });
    for (const kv of all.kvs) if (kv.lease !== 0) this.opts.lessor.attach(kv.lease, kv.key);
  }

  /** The lessor's applied state, recomputed only after a grant or revoke (meta goes out with every flush). */
  private leaseState(): LessorState {
    this.leaseStateCache ??= this.opts.lessor.snapshotState();
    return this.leaseStateCache;
  }

  meta(): StoreMeta {
    return {
      consistentIndex: this.index,
      term: this.term,
      confState: this.confState,
      membership: this.membership.state(),
      leases: this.leaseState(),
      alarms: this.alarms,
      auth: this.auth.state(),
    };
  }

  applied(): { index: number; term: number; confState: ConfState | undefined } {
    return { index: this.index, term: this.term, confState: this.confState };
  }

  /**
   * StateMachine.holdNotifications: the server passes its watch hub's holdEvents(). Each
   * apply holds them too, so that the revisions one apply commits reach each watcher as one
   * response.
   */
  holdNotifications: () => () => void = () => () => {};

  /** StateMachine.awaitsApply: a request proposed on this member waits for its entry. */
  awaitsApply(): boolean {
    return this.wait.size > 0;
  }

  apply(batch: Applied[]): void {
    const release = this.holdNotifications();
    try {
      this.applyEntries(batch);
    } finally {
      release();
    }
    this.unflushedEntries += batch.length;
    if (this.unflushedEntries >= applierLimits.flushEntriesMax) this.flushNow();
    else if (this.flushTimer === undefined) {
      this.flushTimer = setTimeout(() => this.flushNow(), applierLimits.flushDelayMs);
      this.flushTimer.unref?.();
    }
  }

  private applyEntries(batch: Applied[]): void {
    for (const a of batch) {
      const e = a.entry;
      if (a.confChange) {
        this.applyConfChange(a);
      } else if (e.data.length > 0) {
        this.entryTerm = e.term;
        const pp = this.plainPut;
        if (!this.auth.isEnabled && readPlainPut(e.data, pp)) {
          // The most frequent entry, applied without a request object (see readPlainPut).
          const failure = this.applyPlainPut(pp);
          if (pp.m === this.opts.memberId && this.wait.has(pp.n)) {
            this.wait.trigger(pp.n, failure ?? { ok: true, revision: this.store.revision, resp: { op: 'put', resp: { header: null, prev_kv: null } } });
          }
        } else {
          const env = decodeEnvelope(e.data);
          const result = this.applyRequest(env.r, env.a, e.index);
          if (env.m === this.opts.memberId) this.wait.trigger(env.n, result);
        }
      }
      this.index = e.index;
      this.term = e.term;
    }
  }

  /**
   * Writes everything applied so far to the backend (no fsync). Applied batches are written
   * together, at most flushDelayMs after the first of them (etcd's backend batch interval):
   * the Raft log is the write-ahead log, and a restart replays it from the last flush.
   */
  private flushNow(): void {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.unflushedEntries = 0;
    const t0 = performance.now();
    const f = this.store.flush(this.meta()).then(() => this.onBackendCommit.fire((performance.now() - t0) / 1000));
    this.flushing = f.catch((err: unknown) => {
      this.opts.logger.error({ err: String(err) }, 'store flush failed');
    });
  }

  /** etcd's ValidateConfigurationChange, before Raft applies the change (see members.ts). */
  refuseConfChange(change: ConfChangeV2): string | undefined {
    return confChangeError(this.membership, change)?.message;
  }

  private applyConfChange(a: Applied): void {
    const cc = a.confChange!;
    if (cc.confState) this.confState = cc.confState;
    const ctx = decodeConfContext(cc.change.context);
    if (cc.confState) {
      for (const ch of cc.change.changes) {
        if (ch.type === 'removeNode') this.membership.remove(ch.nodeId);
        else if (this.membership.get(ch.nodeId)) {
          if (ch.type === 'addNode') this.membership.promote(ch.nodeId);
        } else if (ctx?.member) {
          this.membership.add({ ...ctx.member, id: ch.nodeId, isLearner: ch.type === 'addLearner' });
        }
      }
    }
    // Refused: by the membership checks (the same verdict as refuseConfChange, on the same state) or by Raft.
    const refusal = cc.confState ? undefined : (confChangeError(this.membership, cc.change) ?? new Error('configuration change refused'));
    const result: ApplyResult = refusal
      ? { ok: false, error: refusal }
      : { ok: true, revision: this.store.revision, resp: { op: 'confChange', confState: cc.confState, members: this.membership } };
    if (ctx && ctx.m === this.opts.memberId) this.wait.trigger(ctx.n, result);
    this.onConfChange.fire({ index: a.entry.index, confState: cc.confState });
  }

  /** applyOne's put for a PlainPut; the failure, if it failed (nothing written then). */
  private applyPlainPut(pp: PlainPut): ApplyResult | undefined {
    try {
      if (this.noSpace()) throw errors.ErrGRPCNoSpace;
      const tw = this.store.write();
      let prev: RevEntry | undefined;
      try {
        prev = tw.putKeyString(pp.keyStr, pp.buf.subarray(pp.valueStart), 0);
      } finally {
        tw.end();
      }
      if (prev !== undefined && prev.lease !== 0) this.opts.lessor.detach(prev.lease, keyBytes(pp.keyStr));
      return undefined;
    } catch (e) {
      return this.failure(e);
    }
  }

  /** Applies one request; `auth` is who proposed it (absent for the server's own requests), `index` its entry's. */
  private applyRequest(r: InternalRequest, auth: AuthInfo | undefined, index: number): ApplyResult {
    if (auth) {
      const denied = applyDenied(this.auth, r, auth, (id) => this.leaseKeys(id));
      if (denied) return { ok: false, error: denied };
    }
    try {
      return this.applyOne(r, auth, index);
    } catch (e) {
      return this.failure(e);
    }
  }

  /** What a request that threw gets: an etcd error as its result; anything else is rethrown. */
  private failure(e: unknown): ApplyResult {
    const err = mapLeaseError(mapMvccError(e));
    if (err instanceof Error && ('code' in err || err instanceof errors.EtcdError)) return { ok: false, error: err };
    // An unexpected failure here would make members diverge: it is a bug.
    throw e;
  }

  private noSpace(): boolean {
    for (const a of this.alarms) if (a.alarm === 'NOSPACE') return true;
    return false;
  }

  private leaseKeys(id: number): Uint8Array[] {
    try {
      return this.opts.lessor.timeToLive(id, true).keys;
    } catch (e) {
      if (isLeaseError(e, 'ERR_LEASE_NOT_FOUND')) return [];
      throw e;
    }
  }

  private applyOne(r: InternalRequest, auth: AuthInfo | undefined, index: number): ApplyResult {
    const store = this.store;
    const lessor = (this.leaseAttachments ??= attachments(this.opts.lessor));
    switch (r.op) {
      case 'put': {
        if (this.noSpace()) throw errors.ErrGRPCNoSpace;
        const tw = store.write();
        try {
          const resp = applyPut(tw, r.req, lessor, null);
          const revision = tw.end();
          return { ok: true, revision, resp: { op: 'put', resp } };
        } catch (e) {
          tw.end();
          throw e;
        }
      }
      case 'deleteRange': {
        const tw = store.write();
        const resp = applyDeleteRange(tw, r.req, lessor, null);
        const revision = tw.end();
        return { ok: true, revision, resp: { op: 'deleteRange', resp } };
      }
      case 'txn': {
        const tw = store.write();
        let resp: pb.TxnResponse;
        try {
          if (this.noSpace() && hasPut(r.req)) throw errors.ErrGRPCNoSpace;
          resp = applyTxn(tw, r.req, lessor);
        } catch (e) {
          tw.end();
          throw e;
        }
        const revision = tw.end();
        return { ok: true, revision, resp: { op: 'txn', resp } };
      }
      case 'compaction': {
        store.compact(r.req.revision);
        return { ok: true, revision: store.revision, resp: { op: 'compaction', resp: { header: null } } };
      }
      case 'leaseGrant': {
        if (this.noSpace()) throw errors.ErrGRPCNoSpace;
        const ttl = this.opts.lessor.grant(r.req.ID, r.req.TTL);
        this.leaseStateCache = undefined;
        return { ok: true, revision: store.revision, resp: { op: 'leaseGrant', id: r.req.ID, ttl } };
      }
      case 'leaseRevoke': {
        if (r.leaderTerm !== undefined && r.leaderTerm !== this.entryTerm) {
          return { ok: false, error: new Error(`revoke of expired lease ${r.req.ID} from the leader of term ${r.leaderTerm} in an entry of term ${this.entryTerm}: ignored`) };
        }
        const keys = this.opts.lessor.revoke(r.req.ID);
        this.leaseStateCache = undefined;
        if (keys.length > 0) {
          const tw = store.write();
          for (const k of keys) tw.deleteRange(k);
          tw.end();
        }
        return { ok: true, revision: store.revision, resp: { op: 'leaseRevoke' } };
      }
      case 'alarm': {
        const req = r.req;
        if (req.action === 'ACTIVATE' && req.alarm !== 'NONE') {
          if (!this.alarms.some((a) => a.memberId === req.memberID && a.alarm === req.alarm)) this.alarms = [...this.alarms, { memberId: req.memberID, alarm: req.alarm }];
          return { ok: true, revision: store.revision, resp: { op: 'alarm', alarms: this.alarms.filter((a) => a.memberId === req.memberID && a.alarm === req.alarm) } };
        }
        if (req.action === 'DEACTIVATE') {
          const removed = this.alarms.filter((a) => a.memberId === req.memberID && (req.alarm === 'NONE' || a.alarm === req.alarm));
          this.alarms = this.alarms.filter((a) => !removed.includes(a));
          return { ok: true, revision: store.revision, resp: { op: 'alarm', alarms: removed } };
        }
        return { ok: true, revision: store.revision, resp: { op: 'alarm', alarms: this.alarms } };
      }
      case 'auth':
        return { ok: true, revision: store.revision, resp: { op: 'auth', result: this.auth.apply(r.req, auth, index) } };
      case 'memberAttributes': {
        this.membership.setAttributes(r.memberId, { name: r.name, clientUrls: r.clientUrls });
        return { ok: true, revision: store.revision, resp: { op: 'memberAttributes' } };
      }
      case 'memberUpdate': {
        const refused = memberUpdateError(this.membership, r.memberId, r.peerUrls);
        if (refused) throw refused;
        this.membership.setPeerUrls(r.memberId, r.peerUrls);
        this.onConfChange.fire({ index: this.index, confState: this.confState });
        return { ok: true, revision: store.revision, resp: { op: 'memberAttributes' } };
      }
    }
  }

  async sync(): Promise<void> {
    this.flushNow();
    await this.flushing;
  }

  async openSnapshot(): Promise<SnapshotSource> {
    const metadata: SnapshotMetadata = { index: this.index, term: this.term, confState: this.confState! };
    const stream = this.store.writeSnapshot(this.meta());
    return {
      metadata,
      chunks: () => stream,
      close: () => undefined,
    };
  }

  private kvDir(): string {
    return path.join(this.opts.dir, 'kv');
  }

  async stageSnapshot(metadata: SnapshotMetadata, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const staged = `${this.kvDir()}.staged`;
    await fs.promises.rm(staged, { recursive: true, force: true });
    const s = await MvccStore.restoreSnapshot<StoreMeta>(staged, chunks);
    const meta = s.savedMeta;
    await s.close();
    if (!meta || meta.consistentIndex !== metadata.index) {
      throw new Error(`snapshot does not match its metadata: consistent index ${meta?.consistentIndex} != ${metadata.index}`);
    }
    this.stagedMeta = metadata;
  }

  async restoreStaged(metadata: SnapshotMetadata): Promise<void> {
    if (!this.stagedMeta || this.stagedMeta.index !== metadata.index) throw new Error(`no staged snapshot at index ${metadata.index}`);
    // What was applied but not flushed is replaced by the snapshot.
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.unflushedEntries = 0;
    await this.flushing;
    await this.store.close();
    const dir = this.kvDir();
    await fs.promises.rm(dir, { recursive: true, force: true });
    await fs.promises.rename(`${dir}.staged`, dir);
    this.store = await MvccStore.open<StoreMeta>(dir);
    this.loadMeta(this.store.savedMeta);
    this.stagedMeta = undefined;
    this.opts.logger.info({ index: this.index, revision: this.store.revision }, 'restored the store from a snapshot');
    this.onRestore.fire(this.store);
  }

  async close(): Promise<void> {
    if (this.flushTimer !== undefined) this.flushNow();
    await this.flushing;
    await this.store.close();
  }
}

function hasPut(t: pb.TxnRequest): boolean {
  return [...t.success, ...t.failure].some((op) => op.request === 'request_put' || (op.request === 'request_txn' && hasPut(op.request_txn)));
}
