// The watch checker: every watcher saw every change of its prefix exactly once, in
// revision order, with no gap where it reconnected, and the same change as the store's
// history holds (so every watcher saw the same sequence). The reference is the key space's
// history read back at the end (a watch from revision 1 on every member, all equal).

import type { HistoryEvent, WatcherRecord } from './history';

export interface WatchProblem {
  watcher: number;
  kind: 'duplicate' | 'reordered' | 'gap' | 'gap across reconnect' | 'phantom' | 'mismatch' | 'before start' | 'not caught up' | 'restart revision' | 'canceled';
  detail: string;
}

export interface WatchReport {
  ok: boolean;
  watchers: { watcher: number; events: number; segments: number; coveredRev: number }[];
  problems: WatchProblem[];
}

export interface WatchCheckInput {
  watchers: readonly WatcherRecord[];
  /** Per watcher (same order): the revision up to which the store said it had sent every event. */
  coveredRevs: readonly number[];
  /** The reference history (any keys; filtered by each watcher's prefix). */
  history: readonly HistoryEvent[];
}

const problemsPerWatcherMax = 20;

function describe(e: HistoryEvent): string {
  return `rev ${e.rev} ${e.type} ${e.key}${e.value !== null ? `=${e.value}` : ''}`;
}

function same(a: HistoryEvent, b: HistoryEvent): boolean {
  return a.rev === b.rev && a.key === b.key && a.type === b.type && a.value === b.value;
}

export function checkWatchers(input: WatchCheckInput): WatchReport {
  const report: WatchReport = { ok: true, watchers: [], problems: [] };
  input.watchers.forEach((w, wi) => {
    const problems: WatchProblem[] = [];
    const add = (kind: WatchProblem['kind'], detail: string): void => {
      if (problems.length < problemsPerWatcherMax) problems.push({ watcher: w.watcher, kind, detail });
    };
    const reference = input.history.filter((e) => e.key.startsWith(w.prefix));
    // Where each event came from (segment index), for telling gaps at reconnects apart.
    const seen: (HistoryEvent & { segment: number })[] = [];
    let lastRev = 0;
    const seenKeys = new Set<string>();
    w.segments.forEach((seg, si) => {
      if (si > 0) {
        const prev = w.segments[si - 1];
        const prevLast = prev.events.length > 0 ? prev.events[prev.events.length - 1].rev : prev.startRev - 1;
        if (seg.startRev !== prevLast + 1 && seg.startRev !== lastRev + 1) add('restart revision', `segment ${si} restarted at ${seg.startRev} after the last event at ${lastRev}`);
      }
      // Nothing is compacted during a run: a watch cancelled for compaction lost events.
      if (seg.end.includes('compacted')) add('canceled', `segment ${si} on member ${seg.member}: ${seg.end}`);
      for (const e of seg.events) {
        if (e.rev < seg.startRev) add('before start', `segment ${si} (from ${seg.startRev}) got ${describe(e)}`);
        const k = `${e.rev}\u0000${e.key}`;
        if (seenKeys.has(k)) add('duplicate', `${describe(e)} delivered again (segment ${si}, member ${seg.member})`);
        else if (e.rev < lastRev) add('reordered', `${describe(e)} after an event at rev ${lastRev} (segment ${si}, member ${seg.member})`);
        seenKeys.add(k);
        lastRev = Math.max(lastRev, e.rev);
        seen.push({ ...e, segment: si });
      }
    });
    const covered = Math.max(input.coveredRevs[wi] ?? 0, lastRev);
    const firstStart = w.segments.length > 0 ? w.segments[0].startRev : 1;
    // Walk the reference (within what this watcher covered) against what it saw, by (rev, key).
    const byKey = new Map<string, HistoryEvent & { segment: number }>();
    for (const e of seen) byKey.set(`${e.rev}\u0000${e.key}`, e);
    const refKeys = new Set<string>();
    for (const r of reference) {
      if (r.rev < firstStart || r.rev > covered) continue;
      const k = `${r.rev}\u0000${r.key}`;
      refKeys.add(k);
      const got = byKey.get(k);
      if (got === undefined) {
        // Which segments surround the missing revision?
        const before = [...seen].reverse().find((e) => e.rev < r.rev);
        const after = seen.find((e) => e.rev > r.rev);
        if (before !== undefined && after !== undefined && before.segment !== after.segment) {
          add('gap across reconnect', `missing ${describe(r)}: segment ${before.segment} ended at rev ${before.rev} (${w.segments[before.segment].end}), segment ${after.segment} (member ${w.segments[after.segment].member}, from rev ${w.segments[after.segment].startRev}) began at rev ${after.rev}`);
        } else add('gap', `missing ${describe(r)}`);
      } else if (!same(got, r)) add('mismatch', `saw rev ${got.rev} ${got.type} ${got.key}=${got.value}, the history has ${describe(r)}`);
    }
    for (const e of seen) if (!refKeys.has(`${e.rev}\u0000${e.key}`) && e.rev <= covered) add('phantom', `${describe(e)} is not in the history`);
    const lastRef = reference.length > 0 ? reference[reference.length - 1].rev : 0;
    if (covered < lastRef) add('not caught up', `covered up to rev ${covered}; the history's last change of ${w.prefix} is at rev ${lastRef}`);
    report.watchers.push({ watcher: w.watcher, events: seen.length, segments: w.segments.length, coveredRev: covered });
    report.problems.push(...problems);
  });
  report.ok = report.problems.length === 0;
  return report;
}

/** Compares one member's history, event by event as it arrives, with a reference one (nothing stored). */
export class HistoryComparer {
  private i = 0;
  private difference: string | undefined;

  constructor(
    private readonly reference: { member: string; events: readonly HistoryEvent[] },
    private readonly member: string,
  ) {}

  push(e: HistoryEvent): void {
    const r = this.reference.events[this.i];
    if (this.difference === undefined && (r === undefined || !same(r, e))) {
      this.difference = `${this.reference.member} and ${this.member} differ at event ${this.i}: ${r ? describe(r) : 'nothing'} vs ${describe(e)}`;
    }
    this.i++;
  }

  /** The first difference, if any. */
  result(): string | undefined {
    if (this.difference === undefined && this.i !== this.reference.events.length) {
      const r = this.reference.events[this.i];
      return `${this.reference.member} and ${this.member} differ at event ${this.i}: ${r ? describe(r) : 'nothing'} vs nothing (${this.reference.events.length} vs ${this.i} events)`;
    }
    return this.difference;
  }
}

/** Whether every member's history is the same; the differences if not. */
export function compareHistories(histories: readonly { member: string; events: readonly HistoryEvent[] }[]): string[] {
  const out: string[] = [];
  for (const h of histories.slice(1)) {
    const c = new HistoryComparer(histories[0], h.member);
    for (const e of h.events) c.push(e);
    const d = c.result();
    if (d !== undefined) out.push(d);
  }
  return out;
}
