// The lease checker.
//
// Expiry: a lease granted with TTL t must be gone (and its key with it) at most t plus a
// bound after the grant was acknowledged. A new leader gives every lease its full TTL again
// (etcd 3.4 does; skiff follows it), so each rise of the Raft term before the deadline
// moves the deadline to that time + t + bound; a leader that cannot act (killed, paused,
// cut off from a majority) revokes nothing, so the end of such a fault, when it began
// before the deadline, moves it likewise; so does the end of a stretch in which no write
// was acknowledged at all (no quorum: a revoke is a write, and cannot commit either, whoever
// leads). The bound is the election timeout plus the check
// interval and slack: bound = electionMs + slackMs. A read that began after the deadline
// and still saw the key is a violation.
//
// Keep-alive: a keep-alive sent at s and answered with TTL > 0 renewed the lease at some
// point after s, so the lease lives at least until s + TTL (and was alive at every earlier
// time since the grant). A read that began after the key's put was acknowledged and ended
// before that time, and did not see the key, is a violation; so is a keep-alive answered
// "gone" before that time.

import type { LeaseObservation, LeaseRecord } from './history';

export interface LeaseProblem {
  lease: number;
  key: string;
  kind: 'outlived' | 'expired early';
  detail: string;
}

export interface LeaseReport {
  ok: boolean;
  expiring: number;
  keptAlive: number;
  observations: number;
  /** Expiring leases whose deadline passed before the last observation (the ones checked for expiry). */
  expiryChecked: number;
  problems: LeaseProblem[];
}

export interface LeaseCheckInput {
  leases: readonly LeaseRecord[];
  observations: readonly LeaseObservation[];
  /** Times the Raft term rose (new elections). */
  termRises: readonly number[];
  /** Times the leader could not act. */
  disruptions?: readonly LeaderDisruption[];
  electionMs: number;
  /** Check interval, commit latency and scheduling slack on a busy machine. */
  slackMs: number;
  originMs?: number;
}

/**
 * Stretches longer than `minGapMs` between consecutive acknowledged writes (and from `fromMs`
 * to the first one): the cluster committed nothing then, so no lease could be revoked.
 */
export function writeOutages(ackTimesMs: readonly number[], minGapMs: number, fromMs?: number): LeaderDisruption[] {
  const times = [...ackTimesMs].sort((a, b) => a - b);
  const out: LeaderDisruption[] = [];
  let prev = fromMs ?? times[0];
  for (const t of times) {
    if (prev !== undefined && t - prev > minGapMs) out.push({ startMs: prev, endMs: t });
    prev = t;
  }
  return out;
}

/** A time the leader could not act: killed, paused, or cut off from a majority. */
export interface LeaderDisruption {
  startMs: number;
  endMs: number;
}

/**
 * The time by which an expiring lease must be gone: TTL + bound after its grant, after any
 * rise of the term before that (a new leader), or after the end of any leader disruption
 * that began before it (a paused or cut-off leader revokes nothing, and the leader after it
 * gives the lease its TTL again).
 */
export function expiryDeadlineMs(lease: LeaseRecord, termRises: readonly number[], boundMs: number, disruptions: readonly LeaderDisruption[] = []): number {
  const ttlMs = lease.ttlSec * 1000;
  let deadline = lease.grantAckMs + ttlMs + boundMs;
  for (let changed = true; changed; ) {
    changed = false;
    let next = deadline;
    for (const t of termRises) if (t > lease.grantInvokeMs && t <= deadline) next = Math.max(next, t + ttlMs + boundMs);
    for (const d of disruptions) if (d.endMs > lease.grantInvokeMs && d.startMs <= deadline) next = Math.max(next, d.endMs + ttlMs + boundMs);
    if (next > deadline) {
      deadline = next;
      changed = true;
    }
  }
  return deadline;
}

/** The time until which a kept-alive lease is certainly alive. */
export function aliveUntilMs(lease: LeaseRecord): number {
  let until = lease.grantInvokeMs + lease.ttlSec * 1000;
  for (const k of lease.keepAlives) until = Math.max(until, k.ackMs, k.sentMs + k.ttlSec * 1000);
  return until;
}

export function checkLeases(input: LeaseCheckInput): LeaseReport {
  const bound = input.electionMs + input.slackMs;
  const origin = input.originMs ?? 0;
  const t = (ms: number): string => `${((ms - origin) / 1000).toFixed(3)}s`;
  const obs = [...input.observations].sort((a, b) => a.invokeMs - b.invokeMs);
  const lastObsMs = obs.length > 0 ? obs[obs.length - 1].invokeMs : -Infinity;
  const report: LeaseReport = { ok: true, expiring: 0, keptAlive: 0, observations: obs.length, expiryChecked: 0, problems: [] };
  for (const lease of input.leases) {
    if (!lease.keepAlive) {
      report.expiring++;
      const deadline = expiryDeadlineMs(lease, input.termRises, bound, input.disruptions ?? []);
      if (deadline < lastObsMs) report.expiryChecked++;
      const late = obs.find((o) => o.invokeMs > deadline && o.keys.has(lease.key));
      if (late !== undefined) {
        report.problems.push({
          lease: lease.id,
          key: lease.key,
          kind: 'outlived',
          detail: `TTL ${lease.ttlSec}s granted by ${t(lease.grantAckMs)}, must be gone by ${t(deadline)} (TTL + ${bound} ms after the grant, a new term, or the end of a leader fault), still read at ${t(late.invokeMs)}`,
        });
      }
      continue;
    }
    report.keptAlive++;
    const until = aliveUntilMs(lease);
    if (lease.lost !== undefined && lease.lost.ackMs <= until) {
      report.problems.push({ lease: lease.id, key: lease.key, kind: 'expired early', detail: `a keep-alive sent at ${t(lease.lost.sentMs)} (member ${lease.lost.member}) found it gone by ${t(lease.lost.ackMs)}, though it was renewed to live until ${t(until)}` });
    }
    if (lease.putAckMs === undefined) continue;
    const putAck = lease.putAckMs;
    const missing = obs.find((o) => o.invokeMs >= putAck && o.completeMs <= until && !o.keys.has(lease.key));
    if (missing !== undefined) {
      report.problems.push({ lease: lease.id, key: lease.key, kind: 'expired early', detail: `kept alive until at least ${t(until)}, key absent in a read over [${t(missing.invokeMs)}, ${t(missing.completeMs)}] from member ${missing.member}` });
    }
  }
  report.ok = report.problems.length === 0;
  return report;
}
