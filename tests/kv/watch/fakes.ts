// Test doubles for the watch hub: an in-memory store with history and compaction, a sink
// that can play slow, and a scheduler the test drives by hand.

import type {
  Disposable,
  KeyValue,
  MvccEvent,
  RevisionEvents,
  WatchHistory,
  WatchResponse,
  WatchSink,
  WatchSource,
} from '../../../src/kv/watch';
import type { Scheduler } from '../../../src/kv/watch';

export const b = (s: string): Buffer => Buffer.from(s, 'latin1');
export const str = (u: Uint8Array): string => Buffer.from(u).toString('latin1');

export type Op = { put: string; value?: string } | { del: string };

/** An MVCC store reduced to what the hub reads. Revisions start at 1, as etcd's. */
export class FakeStore implements WatchSource {
  private rev = 1;
  private compacted = 0;
  private readonly kvs = new Map<string, KeyValue>();
  /** Every revision's events, never compacted (the test's reference log). */
  readonly log: RevisionEvents[] = [];
  private readonly listeners = new Set<(re: RevisionEvents) => void>();
  historyReads = 0;

  /** strict: history from the compacted revision itself is refused too. */
  constructor(private readonly options: { strict?: boolean } = {}) {}

  currentRevision(): number {
    return this.rev;
  }

  compactedRevision(): number {
    return this.compacted;
  }

  onRevision(listener: (re: RevisionEvents) => void): Disposable {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  eventsBetween(fromRevision: number, toRevision: number, limitEvents: number): WatchHistory {
    this.historyReads++;
    if (fromRevision < this.compacted || (this.options.strict === true && fromRevision <= this.compacted)) {
      throw Object.assign(new Error('mvcc: required revision has been compacted'), { code: 'ERR_COMPACTED' });
    }
    const to = Math.min(toRevision, this.rev);
    const revisions: RevisionEvents[] = [];
    let n = 0;
    for (const re of this.log) {
      if (re.revision < fromRevision || re.revision > to) continue;
      revisions.push(re);
      n += re.events.length;
      if (n >= limitEvents) return { revisions, nextRevision: re.revision + 1 };
    }
    return { revisions, nextRevision: Math.max(to + 1, fromRevision) };
  }

  put(key: string, value = `v${this.rev + 1}`, lease = 0): number {
    return this.txn([{ put: key, value }], lease);
  }

  del(key: string): number {
    return this.txn([{ del: key }]);
  }

  /** One write transaction: one revision (unless it changes nothing). */
  txn(ops: Op[], lease = 0): number {
    const revision = this.rev + 1;
    const events: MvccEvent[] = [];
    for (const op of ops) {
      if ('put' in op) {
        const prev = this.kvs.get(op.put);
        const kv: KeyValue = {
          key: b(op.put),
          createRevision: prev ? prev.createRevision : revision,
          modRevision: revision,
          version: prev ? prev.version + 1 : 1,
          value: b(op.value ?? `v${revision}`),
          lease,
        };
        this.kvs.set(op.put, kv);
        events.push(prev ? { type: 'PUT', kv, prevKv: prev } : { type: 'PUT', kv });
      } else {
        const prev = this.kvs.get(op.del);
        if (!prev) continue;
        this.kvs.delete(op.del);
        const kv: KeyValue = { key: b(op.del), createRevision: 0, modRevision: revision, version: 0, value: b(''), lease: 0 };
        events.push({ type: 'DELETE', kv, prevKv: prev });
      }
    }
    if (events.length === 0) return this.rev;
    this.rev = revision;
    const re = { revision, events };
    this.log.push(re);
    for (const l of [...this.listeners]) l(re);
    return revision;
  }

  compact(revision: number): void {
    if (revision <= this.compacted || revision > this.rev) throw new Error(`bad compaction ${revision}`);
    this.compacted = revision;
  }

  /** Replaces the store's state as a snapshot install would, without notifying. */
  jumpTo(ops: Op[]): void {
    const listeners = [...this.listeners];
    this.listeners.clear();
    this.txn(ops);
    for (const l of listeners) this.listeners.add(l);
  }
}

/** A sink that records everything; `slow` makes send() ask to slow down. */
export class FakeSink implements WatchSink {
  readonly responses: WatchResponse[] = [];
  slow = false;
  throwOnSend: Error | undefined;
  private readonly drainListeners = new Set<() => void>();

  send(response: WatchResponse): boolean {
    if (this.throwOnSend) throw this.throwOnSend;
    this.responses.push(response);
    return !this.slow;
  }

  onDrain(listener: () => void): Disposable {
    this.drainListeners.add(listener);
    return { dispose: () => this.drainListeners.delete(listener) };
  }

  /** The transport caught up: accept again and tell the stream. */
  drain(): void {
    this.slow = false;
    for (const l of [...this.drainListeners]) l();
  }

  get listenerCount(): number {
    return this.drainListeners.size;
  }

  /** Responses for one watch id. */
  of(watchId: number): WatchResponse[] {
    return this.responses.filter((r) => r.watch_id === watchId);
  }

  /** Events received for one watch id, as "TYPE key value@rev". */
  eventsOf(watchId: number): string[] {
    return this.of(watchId).flatMap((r) => r.events.map(fmt));
  }

  clear(): void {
    this.responses.length = 0;
  }
}

export function fmt(ev: MvccEvent): string {
  return `${ev.type} ${str(ev.kv.key)}${ev.type === 'PUT' ? '=' + str(ev.kv.value) : ''}@${ev.kv.modRevision}`;
}

/** A scheduler the test drives: soon() tasks run on runSoon(), timers on advance(). */
export class ManualScheduler implements Scheduler {
  nowMs = 0;
  private soonTasks: { task: () => void; live: boolean }[] = [];
  private timers: { atMs: number; seq: number; task: () => void; live: boolean }[] = [];
  private seq = 0;

  soon(task: () => void): Disposable {
    const entry = { task, live: true };
    this.soonTasks.push(entry);
    return { dispose: () => (entry.live = false) };
  }

  after(delayMs: number, task: () => void): Disposable {
    const entry = { atMs: this.nowMs + delayMs, seq: this.seq++, task, live: true };
    this.timers.push(entry);
    return { dispose: () => (entry.live = false) };
  }

  get pendingSoon(): number {
    return this.soonTasks.filter((t) => t.live).length;
  }

  /** Runs one turn: the soon tasks queued so far. Returns how many ran. */
  step(): number {
    const tasks = this.soonTasks;
    this.soonTasks = [];
    let ran = 0;
    for (const t of tasks) {
      if (!t.live) continue;
      t.live = false;
      t.task();
      ran++;
    }
    return ran;
  }

  /** Runs soon tasks until none are left. */
  runSoon(maxTurns = 100_000): void {
    for (let i = 0; i < maxTurns; i++) if (this.step() === 0) return;
    throw new Error('scheduler did not settle');
  }

  /** Moves the clock, running due timers in time order (and soon tasks after each). */
  advance(ms: number): void {
    const end = this.nowMs + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.live && t.atMs <= end).sort((x, y) => x.atMs - y.atMs || x.seq - y.seq)[0];
      if (!due) break;
      this.nowMs = due.atMs;
      due.live = false;
      due.task();
      this.runSoon();
    }
    this.timers = this.timers.filter((t) => t.live);
    this.nowMs = end;
  }
}
