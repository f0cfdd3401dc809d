// Watches who leads: polls Maintenance.Status on every member that is up, and notes each
// time the highest Raft term seen rises (a new election, successful or not). Lease bounds
// restart at those times (a new leader gives every lease its TTL again).
//
// Member ids arrive as JS numbers (inexact for etcd's 64-bit ids, but inexact the same way
// in the header and the leader field, so they still compare equal).

import { callUnary } from '../kv/proto';
import type { ClientPool } from './clients';
import { deadline } from './clients';
import type { ChaosCluster } from './cluster';
import { nowMs } from './history';

export interface StatusView {
  member: number;
  selfId: number;
  leaderId: number;
  term: number;
}

/**
 * Stretches of time in which members answered Status but none named a leader. etcd reports
 * in Status (and in response headers) the term of its last applied entry, so elections that
 * elect nobody do not show as term rises; with no leader nobody revokes an expired lease,
 * and the next leader gives every lease its TTL again (a leader fault, for the lease bounds).
 */
export class LeaderlessTracker {
  readonly stretches: { startMs: number; endMs: number; what: string }[] = [];
  private since: number | undefined;

  /** One poll's answers, at atMs; a poll nobody answered tells nothing. */
  note(views: readonly StatusView[], atMs: number): void {
    if (views.length === 0) return;
    const led = views.some((v) => v.leaderId !== 0);
    if (!led && this.since === undefined) this.since = atMs;
    else if (led && this.since !== undefined) {
      this.stretches.push({ startMs: this.since, endMs: atMs, what: 'no leader' });
      this.since = undefined;
    }
  }

  /** Closes a stretch still open at atMs. */
  close(atMs: number): void {
    if (this.since === undefined) return;
    this.stretches.push({ startMs: this.since, endMs: atMs, what: 'no leader' });
    this.since = undefined;
  }
}

export class LeaderMonitor {
  /** Times the highest term seen rose. */
  readonly termRises: number[] = [];
  /** Times no answering member named a leader. */
  readonly leaderless = new LeaderlessTracker();
  private maxTerm = 0;
  private readonly selfIds = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly pool: ClientPool,
    private readonly intervalMs = 200,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.poll(), this.intervalMs);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.leaderless.close(nowMs());
  }

  /** Status of every member that is up (those that answer within timeoutMs). */
  async statuses(timeoutMs = 500): Promise<StatusView[]> {
    const out: StatusView[] = [];
    await Promise.all(
      this.cluster.members.map(async (_, i) => {
        if (!this.cluster.isUp(i)) return;
        try {
          const s = await callUnary(this.pool.members[i].maintenance, 'Status', {}, { deadline: deadline(timeoutMs) });
          const selfId = s.header?.member_id ?? 0;
          this.selfIds.set(i, selfId);
          out.push({ member: i, selfId, leaderId: s.leader, term: s.raftTerm });
        } catch {
          // down, paused, or slow: no view
        }
      }),
    );
    this.noteTerms(out);
    this.leaderless.note(out, nowMs());
    return out;
  }

  private noteTerms(views: readonly StatusView[]): void {
    const t = Math.max(0, ...views.map((v) => v.term));
    if (t > this.maxTerm) {
      if (this.maxTerm > 0) this.termRises.push(nowMs());
      this.maxTerm = t;
    }
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      await this.statuses(Math.max(100, this.intervalMs * 2));
    } finally {
      this.polling = false;
    }
  }

  /** The member that leads in the highest term any member reports, if one does and it is up. */
  async findLeader(timeoutMs = 500): Promise<number | undefined> {
    const views = await this.statuses(timeoutMs);
    let best: StatusView | undefined;
    for (const v of views) if (v.leaderId !== 0 && (best === undefined || v.term > best.term)) best = v;
    if (best === undefined) return undefined;
    for (const [i, id] of this.selfIds) if (id === best.leaderId && this.cluster.isUp(i)) return i;
    return undefined;
  }

  /** Forget a member's id (it is about to join again with a new one). */
  forget(member: number): void {
    this.selfIds.delete(member);
  }
}
