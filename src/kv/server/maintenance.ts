// The Maintenance service's operations beyond status and hashes: Snapshot (a consistent
// point-in-time copy of the store, streamed), Defragment, MoveLeader, and the space quota
// with its NOSPACE alarm (etcd's quota check in front of every write).

import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import type { Logger, RaftNode } from '../../raft';
import { None } from '../../raft';
import * as errors from '../errors';
import type * as pb from '../proto';
import type { ApplyResult, KvStateMachine } from './applier';
import type { ServerConfig } from './config';
import { idToHex } from './ids';
import type { InternalRequest } from './requests';

export const maintenanceLimits = Object.freeze({
  /** etcd's kvOverhead: the estimated cost of a key's metadata in the backend. */
  kvOverheadBytes: 256,
  /** etcd's leaseOverhead. */
  leaseOverheadBytes: 64,
  /** The db size used by the quota check is read at most this often (it lists the db's files). */
  dbSizeCacheMs: 100,
  /** Polling period while waiting for a leader transfer to finish. */
  transferPollMs: 20,
  /** Bytes of the sha256 at the end of a snapshot file (as etcd appends the db's). */
  snapshotChecksumBytes: 32,
  /** The data before the checksum is a multiple of this (etcdctl 3.4 checks: size % 512 == 32). */
  snapshotAlignBytes: 512,
});

/**
 * A snapshot file, as Maintenance.Snapshot streams it and `etcdctl snapshot save` writes it:
 *
 *   store snapshot stream   (MvccStore.writeSnapshot: self-describing, checksummed)
 *   zero padding            so that everything before the checksum is a multiple of 512
 *   footer                  "SKFSNAP" 0x01, stream length (u64 BE)          16 bytes
 *   sha256                  of all the bytes before it                      32 bytes
 */
const SNAPSHOT_FOOTER_MAGIC = Buffer.from('SKFSNAP\x01', 'latin1');
export const snapshotFooterBytes = 16;

/** Padding and footer that follow a store snapshot stream of streamBytes bytes. */
export function snapshotTrailer(streamBytes: number): Buffer {
  const align = maintenanceLimits.snapshotAlignBytes;
  const padBytes = (align - ((streamBytes + snapshotFooterBytes) % align)) % align;
  const out = Buffer.alloc(padBytes + snapshotFooterBytes);
  SNAPSHOT_FOOTER_MAGIC.copy(out, padBytes);
  out.writeBigUInt64BE(BigInt(streamBytes), padBytes + SNAPSHOT_FOOTER_MAGIC.length);
  return out;
}

/** The length of the store snapshot stream in a snapshot file, from its footer. */
export function snapshotStreamBytes(fileBytes: number, footer: Buffer): number {
  const checksum = maintenanceLimits.snapshotChecksumBytes;
  if (fileBytes < snapshotFooterBytes + checksum || footer.length !== snapshotFooterBytes || !footer.subarray(0, SNAPSHOT_FOOTER_MAGIC.length).equals(SNAPSHOT_FOOTER_MAGIC)) {
    throw new Error('not a skiff snapshot file (no snapshot footer)');
  }
  const stream = Number(footer.readBigUInt64BE(SNAPSHOT_FOOTER_MAGIC.length));
  if (stream > fileBytes - snapshotFooterBytes - checksum) throw new Error('snapshot file is truncated');
  return stream;
}

/** etcd's ErrTimeoutLeaderTransfer, which etcd 3.4 sends with no mapped gRPC code (UNKNOWN). */
export const errTimeoutLeaderTransfer = Object.freeze(
  Object.assign(new Error('etcdserver: request timed out, leader transfer took too long'), {
    code: grpc.status.UNKNOWN,
    details: 'etcdserver: request timed out, leader transfer took too long',
  }),
);

export interface MaintenanceHost {
  readonly memberId: number;
  readonly config: ServerConfig;
  readonly raft: RaftNode;
  readonly sm: KvStateMachine;
  readonly log: Logger;
  header(revision?: number): pb.ResponseHeader;
  propose(r: InternalRequest): Promise<Extract<ApplyResult, { ok: true }>>;
  requestTimeoutMs(): number;
}

/** etcd's backend quota cost of a write. */
export function putCost(r: pb.PutRequest): number {
  return maintenanceLimits.kvOverheadBytes + r.key.length + r.value.length;
}

export function txnCost(r: pb.TxnRequest): number {
  const side = (ops: pb.RequestOp[]): number => ops.reduce((n, op) => n + (op.request === 'request_put' ? putCost(op.request_put) : 0), 0);
  return Math.max(side(r.success), side(r.failure));
}

export function leaseGrantCost(): number {
  return maintenanceLimits.leaseOverheadBytes;
}

export class Maintenance {
  private dbSize = { bytes: 0, atMs: 0 };

  constructor(private readonly s: MaintenanceHost) {}

  /** The db size for the quota, read from disk at most every dbSizeCacheMs. */
  private dbSizeBytes(): number {
    const now = Date.now();
    if (now - this.dbSize.atMs >= maintenanceLimits.dbSizeCacheMs) this.dbSize = { bytes: this.s.sm.store.dbSizeBytes(), atMs: now };
    return this.dbSize.bytes;
  }

  /**
   * etcd's quota check before proposing a write of `costBytes`: past --quota-backend-bytes
   * the NOSPACE alarm is raised through Raft (every member then refuses writes until it is
   * disarmed) and the write is refused with "etcdserver: mvcc: database space exceeded".
   */
  /** Whether a write of `costBytes` fits the backend quota (checkQuota's common case, without a promise). */
  withinQuota(costBytes: number): boolean {
    return this.dbSizeBytes() + costBytes < this.s.config.quotaBackendBytes;
  }

  async checkQuota(costBytes: number): Promise<void> {
    if (this.withinQuota(costBytes)) return;
    const raised = this.s.sm.alarms.some((a) => a.memberId === this.s.memberId && a.alarm === 'NOSPACE');
    if (!raised) {
      this.s.log.warn({ quotaBytes: this.s.config.quotaBackendBytes, dbSizeBytes: this.dbSize.bytes }, 'database space exceeded; raising the NOSPACE alarm');
      try {
        await this.s.propose({ op: 'alarm', req: { action: 'ACTIVATE', memberID: this.s.memberId, alarm: 'NOSPACE' } });
      } catch (e) {
        this.s.log.warn({ err: String(e) }, 'raising the NOSPACE alarm failed');
      }
    }
    throw errors.ErrGRPCNoSpace;
  }

  /**
   * Streams a consistent snapshot of the store (the state applied on this member when the
   * call arrived) in the snapshot file format above: its last 32 bytes are a sha256, as
   * etcd appends the sha256 of its db. The format is skiff's (skiff snapshot restore reads
   * it), not bbolt. remaining_bytes is 0 on the last message only: the length is not known
   * up front.
   */
  async snapshot(write: (resp: pb.SnapshotResponse) => Promise<void>): Promise<void> {
    const src = await this.s.sm.openSnapshot();
    const sha = createHash('sha256');
    let held: Buffer | undefined;
    let sentBytes = 0;
    try {
      let streamBytes = 0;
      for await (const chunk of src.chunks()) {
        sha.update(chunk);
        streamBytes += chunk.length;
        if (held) {
          sentBytes += held.length;
          await write({ header: this.s.header(), remaining_bytes: 1, blob: held, version: '' });
        }
        held = Buffer.from(chunk);
      }
      const trailer = snapshotTrailer(streamBytes);
      sha.update(trailer);
      const last = Buffer.concat([held ?? Buffer.alloc(0), trailer, sha.digest()]);
      sentBytes += last.length;
      await write({ header: this.s.header(), remaining_bytes: 0, blob: last, version: '' });
      this.s.log.info({ bytes: sentBytes, index: src.metadata.index }, 'sent database snapshot to client');
    } finally {
      src.close();
    }
  }

  /** Rewrites this member's db on disk (etcd defragments the member the client called). */
  async defragment(): Promise<pb.DefragmentResponse> {
    const before = this.s.sm.store.dbSizeBytes();
    const t0 = Date.now();
    await this.s.sm.store.defragment();
    this.dbSize.atMs = 0;
    this.s.log.info({ beforeBytes: before, afterBytes: this.s.sm.store.dbSizeBytes(), tookMs: Date.now() - t0 }, 'defragmented the database');
    return { header: this.s.header() };
  }

  /**
   * Hands leadership to a voter and waits until it leads (etcd's MoveLeader): only on the
   * leader. A transfer Raft abandons (after an election timeout) is asked for again until
   * the request times out.
   */
  async moveLeader(req: pb.MoveLeaderRequest): Promise<pb.MoveLeaderResponse> {
    if (!this.s.raft.isLeader()) throw errors.ErrGRPCNotLeader;
    const target = this.s.sm.membership.get(req.targetID);
    if (!target || target.isLearner) throw errors.ErrGRPCBadLeaderTransferee;
    const t0 = Date.now();
    const deadline = t0 + this.s.requestTimeoutMs();
    this.s.log.info({ from: idToHex(this.s.memberId), to: idToHex(req.targetID) }, 'leadership transfer starting');
    while (this.s.raft.leader !== req.targetID) {
      if (Date.now() > deadline) throw errTimeoutLeaderTransfer;
      if (this.s.raft.isLeader() && this.s.raft.rn.raft.leadTransferee === None) this.s.raft.transferLeader(req.targetID);
      await new Promise((r) => setTimeout(r, maintenanceLimits.transferPollMs));
    }
    this.s.log.info({ to: idToHex(req.targetID), tookMs: Date.now() - t0 }, 'leadership transfer finished');
    return { header: this.s.header() };
  }
}
