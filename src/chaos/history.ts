// What the clients record. Times are performance.now() milliseconds (monotonic) of the
// harness process: invokeMs just before the request goes out, completeMs when its answer
// (or failure) arrived. An operation whose request may have gone out but whose answer never
// came (a deadline, a connection lost, UNAVAILABLE) is 'unknown': it may have been applied.

import { performance } from 'node:perf_hooks';

export const nowMs = (): number => performance.now();

export type OpStatus = 'ok' | 'unknown';

/** One operation on a key used as a register (also the per-key projection of an append txn). */
export interface RegisterOp {
  client: number;
  member: number;
  key: string;
  f: 'read' | 'write' | 'cas';
  invokeMs: number;
  completeMs: number;
  status: OpStatus;
  /** write and cas: the value written (unique in the run). */
  value?: string;
  /** cas: the value the key must hold (null: absent), and the mod_revision compared. */
  expected?: string | null;
  expectedRev?: number;
  /** read, and a failed cas whose failure branch read the key: what it read. */
  readValue?: string | null;
  readModRev?: number;
  /** cas: whether the compare held. */
  casOk?: boolean;
  /** Acknowledged write: the revision it was written at. */
  rev?: number;
  error?: string;
}

/** An acknowledged write: it must be in the final history and never lost. */
export interface AckedWrite {
  key: string;
  /** null for a delete. */
  value: string | null;
  rev: number;
  ackMs: number;
  source: string;
}

/** One event of a key-space history (a watch's or the final one). */
export interface HistoryEvent {
  rev: number;
  key: string;
  type: 'PUT' | 'DELETE';
  /** PUT: the value; DELETE: null. */
  value: string | null;
}

/** An append txn: elem appended to every key, atomically. */
export interface AppendOp {
  client: number;
  keys: string[];
  elem: string;
  invokeMs: number;
  completeMs: number;
  /** ok with committed: the txn's compares held; ok without: they did not (nothing written). */
  status: OpStatus;
  committed?: boolean;
  rev?: number;
}

/** The separator between the elements of an append key's value. */
export const APPEND_SEPARATOR = ' ';

export function parseList(value: string | null | undefined): string[] {
  return value === null || value === undefined || value === '' ? [] : value.split(APPEND_SEPARATOR);
}

/** A watch stream from one connection: from its start revision until it broke or was stopped. */
export interface WatchSegment {
  member: number;
  startRev: number;
  openedMs: number;
  closedMs: number;
  events: HistoryEvent[];
  /** Why it ended (error text, 'canceled: reason', 'stalled', 'stopped'). */
  end: string;
}

export interface WatcherRecord {
  watcher: number;
  prefix: string;
  segments: WatchSegment[];
}

export interface LeaseRecord {
  id: number;
  key: string;
  ttlSec: number;
  grantInvokeMs: number;
  grantAckMs: number;
  /** undefined when the put of the key never got an answer. */
  putAckMs?: number;
  putStatus: OpStatus;
  /** Kept alive: the acknowledged keep-alives. */
  keepAlive: boolean;
  keepAlives: { sentMs: number; ackMs: number; ttlSec: number; member: number }[];
  /** A keep-alive answered TTL <= 0 (the lease is gone): when it was sent and answered. */
  lost?: { sentMs: number; ackMs: number; member: number };
  /** When the harness stopped keeping it alive (end of run). */
  keptUntilMs?: number;
}

/** A read of every lease key: which existed. */
export interface LeaseObservation {
  member: number;
  invokeMs: number;
  completeMs: number;
  keys: Set<string>;
}

/** Everything the clients and the fault schedule record during a run. */
export class Recorder {
  readonly registerOps: RegisterOp[] = [];
  readonly appendOps: AppendOp[] = [];
  readonly acked: AckedWrite[] = [];
  readonly watchers: WatcherRecord[] = [];
  readonly leases: LeaseRecord[] = [];
  readonly leaseObservations: LeaseObservation[] = [];
  /** Every acknowledged write: when it was sent and answered (failover times). */
  readonly writeAcks: { invokeMs: number; ackMs: number }[] = [];
  /** The highest revision of an acknowledged write under the watched prefix. */
  latestWatchedRev = 0;
  /** Times the highest Raft term in any response header rose. */
  readonly termRises: number[] = [];
  private maxTerm = 0;

  /** Notes the raft_term of a response header. */
  noteTerm(term: number | undefined): void {
    if (term === undefined || term <= this.maxTerm) return;
    if (this.maxTerm > 0) this.termRises.push(nowMs());
    this.maxTerm = term;
  }

  ack(w: AckedWrite, invokeMs: number): void {
    this.acked.push(w);
    this.writeAcks.push({ invokeMs, ackMs: w.ackMs });
  }
}
