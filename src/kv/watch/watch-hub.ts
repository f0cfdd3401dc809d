// The watch hub of one member: every watcher of every stream, fed by the store's committed
// revisions, as etcd 3.4's watchableStore.
//
// Two groups:
//   synced    watchers up to date with the store. Each committed revision is matched against
//             them synchronously and their responses queued on their streams; that work is
//             proportional to the watchers the revision concerns, and never reads history.
//   unsynced  watchers behind the store: a start revision in the past, or a stream backlog
//             that could not take their next response (etcd's unsynced watchers and
//             victims). Catch-up runs, each on its own turn of the event loop, read bounded
//             chunks of history and queue them; a watcher that reaches the current revision
//             joins the synced group with no gap and no duplicate (all of this is
//             single-threaded: nothing is committed between a run's read and its queuing).
//             A watcher whose next revision was compacted gets canceled with compact_revision.
//
// Revisions committed together (one apply of several Raft entries, under holdEvents()) reach
// each synced watcher as one response holding all of its events, in revision order, with
// the last revision in the header: etcd's guarantee is that a response holds whole
// revisions, which its catch-up responses also combine. Anything that could overtake held
// events waits for the release: progress responses, and the catch-up of a resync.
//
// Catch-up only serves watchers whose stream is writable; a slow stream's watchers wait for
// its drain. So a slow client costs a bounded backlog and, later, history reads, and never
// holds up writes or other watchers.

import { assert } from './assert';
import {
  assertWatchLimits,
  progressNotifyIntervalMsDefault,
  progressNotifyJitterRatio,
  watchLimitsDefault,
  WatchLimits,
  watchResponseBytesMaxFor,
  maxRequestBytesDefault,
} from './limits';
import { eventLoopScheduler, Scheduler } from './scheduler';
import type {
  Disposable,
  MvccEvent,
  RevisionEvents,
  WatchHistory,
  WatchMetrics,
  WatchResponse,
  WatchSink,
  WatchSource,
} from './types';
import { liveResponse, StreamHost, watchResponse, WatchStream } from './watch-stream';
import { rangeContains } from './key-range';
import { Watcher } from './watcher';
import { WatcherGroup } from './watcher-group';

export interface WatchHubOptions {
  source: WatchSource;
  limits?: Partial<WatchLimits>;
  /** Progress notification interval (etcd: 10 minutes, plus up to 10% jitter per stream). */
  progressNotifyIntervalMs?: number;
  /**
   * Fragment threshold for watchers created with fragment=true. etcd uses
   * --max-request-bytes + 512 KiB: pass watchResponseBytesMaxFor(maxRequestBytes).
   */
  responseBytesMax?: number;
  scheduler?: Scheduler;
  /** Random numbers in [0, 1) for the progress jitter. */
  random?: () => number;
  /** A sink threw: the stream has been closed. */
  onSinkError?: (streamId: number, error: unknown) => void;
}

export class WatchHub implements StreamHost {
  readonly limits: Readonly<WatchLimits>;
  readonly responseBytesMax: number;
  readonly scheduler: Scheduler;
  readonly progressNotifyIntervalMs: number;
  private readonly source: WatchSource;
  private readonly random: () => number;
  private readonly onSinkError: ((streamId: number, error: unknown) => void) | undefined;

  private readonly synced = new WatcherGroup();
  /** Insertion-ordered: catch-up serves the longest waiting first. */
  private readonly unsynced = new Set<Watcher>();
  private readonly streams = new Set<WatchStream>();
  private readonly deferredProgressStreams = new Set<WatchStream>();
  /** invariant: the revision of the last onRevision call (or the store's at start) */
  private lastRevision: number;
  private syncTask: Disposable | undefined;
  private readonly subscription: Disposable;
  private nextStreamId = 1;
  private closedFlag = false;
  /** Holds not yet released (holdEvents); live events are held while it is above 0. */
  private batchDepth = 0;
  /** Watchers with held events (Watcher.held), in the order they got their first. */
  private holding: Watcher[] = [];

  private eventsSentTotal = 0;
  private responsesSentTotal = 0;
  private compactCancelsTotal = 0;

  constructor(options: WatchHubOptions) {
    this.limits = Object.freeze({ ...watchLimitsDefault, ...options.limits });
    assertWatchLimits(this.limits);
    this.responseBytesMax = options.responseBytesMax ?? watchResponseBytesMaxFor(maxRequestBytesDefault);
    assert(this.responseBytesMax > 0, 'responseBytesMax is positive');
    this.progressNotifyIntervalMs = options.progressNotifyIntervalMs ?? progressNotifyIntervalMsDefault;
    assert(this.progressNotifyIntervalMs > 0, 'progressNotifyIntervalMs is positive');
    this.scheduler = options.scheduler ?? eventLoopScheduler;
    this.random = options.random ?? Math.random;
    this.onSinkError = options.onSinkError;
    this.source = options.source;
    this.lastRevision = this.source.currentRevision();
    this.subscription = this.source.onRevision((re) => this.onRevision(re));
  }

  /** A new stream for one gRPC Watch call. */
  newStream(sink: WatchSink): WatchStream {
    assert(!this.closedFlag, 'no streams on a closed hub');
    const jitterMs = Math.floor(this.random() * this.progressNotifyIntervalMs * progressNotifyJitterRatio);
    const stream = new WatchStream(this, sink, this.nextStreamId++, jitterMs);
    this.streams.add(stream);
    return stream;
  }

  metrics(): WatchMetrics {
    let pendingEvents = 0;
    for (const s of this.streams) pendingEvents += s.backlogEvents;
    return {
      streams: this.streams.size,
      watchers: this.synced.size + this.unsynced.size,
      slowWatchers: this.unsynced.size,
      pendingEvents,
      eventsSentTotal: this.eventsSentTotal,
      responsesSentTotal: this.responsesSentTotal,
      compactCancelsTotal: this.compactCancelsTotal,
    };
  }

  /**
   * Holds the live events of the revisions committed from now until the returned function
   * is first called (holds nest; the outermost release delivers): each synced watcher then
   * gets all of its events of those revisions in one response (per the stream's fragment
   * rule). Cuts per-response work in proportion to the revisions per apply; the node holds
   * them across the write that follows an apply ahead of it.
   */
  holdEvents(): () => void {
    this.batchDepth++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.batchDepth === 0) {
        this.deliverHeld();
        this.retryDeferredProgress();
      }
    };
  }

  /**
   * The store was replaced (restored from a snapshot): every synced watcher catches up from
   * history from where it was (etcd's watchableStore.Restore); watchers whose history is
   * gone are canceled with compact_revision.
   */
  restored(): void {
    this.resyncAll(this.source.currentRevision());
  }

  /** Stops listening to the store and closes every stream. */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.subscription.dispose();
    for (const s of [...this.streams]) s.close();
    for (const w of this.holding) w.held = undefined;
    this.holding = [];
    this.syncTask?.dispose();
    this.syncTask = undefined;
  }

  // -------------------------------------------------------------------------------------
  // StreamHost
  // -------------------------------------------------------------------------------------

  currentRevision(): number {
    return this.source.currentRevision();
  }

  register(w: Watcher): void {
    assert(w.state === 'new', 'a watcher is registered once');
    const current = this.source.currentRevision();
    if (w.startRevision === 0 || w.startRevision > current) {
      w.minRevision = Math.max(current + 1, w.startRevision);
      w.state = 'synced';
      this.synced.add(w);
    } else {
      w.minRevision = w.startRevision;
      this.toUnsynced(w);
    }
  }

  unregister(w: Watcher): void {
    switch (w.state) {
      case 'synced':
        assert(this.synced.delete(w), 'a synced watcher is in the synced group');
        break;
      case 'unsynced':
        this.leaveUnsynced(w);
        break;
      case 'new':
      case 'compacted':
      case 'canceled':
        break;
    }
    w.state = 'canceled';
  }

  streamWritable(stream: WatchStream): void {
    if (stream.unsyncedCount > 0) this.scheduleSync();
  }

  progressDeferred(stream: WatchStream): void {
    this.deferredProgressStreams.add(stream);
  }

  streamClosed(stream: WatchStream): void {
    this.streams.delete(stream);
    this.deferredProgressStreams.delete(stream);
  }

  responseSent(response: WatchResponse): void {
    this.responsesSentTotal++;
    this.eventsSentTotal += response.events.length;
  }

  sinkFailed(stream: WatchStream, error: unknown): void {
    this.onSinkError?.(stream.streamId, error);
  }

  // -------------------------------------------------------------------------------------
  // Live path
  // -------------------------------------------------------------------------------------

  private onRevision(re: RevisionEvents): void {
    if (this.closedFlag) return;
    assert(re.revision > this.lastRevision, 'revisions are notified in increasing order');
    if (re.revision !== this.lastRevision + 1) {
      // Revisions we were not told about (the store was restored under us): everyone
      // catches up from history, this revision included.
      this.resyncAll(re.revision);
      return;
    }
    this.lastRevision = re.revision;
    if (this.synced.size > 0 && re.events.length === 1) {
      // One event (a put or a single-key delete, most revisions): every watcher it concerns
      // gets the same one-event list (lists are never changed downstream), no grouping.
      const events = re.events;
      const matched: Watcher[] = [];
      this.synced.collectMatches(events[0].kv.key, matched);
      for (const w of matched) {
        // A sink callback may have closed the stream of a later watcher meanwhile.
        if (w.state === 'synced' && re.revision >= w.minRevision) this.deliverLive(w, re.revision, events);
      }
    } else if (this.synced.size > 0 && re.events.length > 0) {
      const batches = new Map<Watcher, MvccEvent[]>();
      const matched: Watcher[] = [];
      for (const ev of re.events) {
        matched.length = 0;
        this.synced.collectMatches(ev.kv.key, matched);
        for (const w of matched) {
          if (re.revision < w.minRevision) continue; // start revision still ahead
          const batch = batches.get(w);
          if (batch === undefined) batches.set(w, [ev]);
          else batch.push(ev);
        }
      }
      for (const [w, events] of batches) {
        // A sink callback may have closed the stream of a later watcher meanwhile.
        if (w.state === 'synced') this.deliverLive(w, re.revision, events);
      }
    }
    if (this.batchDepth === 0) this.retryDeferredProgress();
  }

  private deliverLive(w: Watcher, revision: number, matched: MvccEvent[]): void {
    const events = w.project(matched);
    w.minRevision = revision + 1;
    if (events.length === 0) return;
    if (this.batchDepth > 0) this.hold(w, revision, events);
    else this.offerLive(w, revision, revision, events);
  }

  private hold(w: Watcher, revision: number, events: MvccEvent[]): void {
    const bytes = eventsDataBytes(events);
    if (w.held !== undefined && w.heldBytes + bytes > this.limits.batchResponseBytesMax) {
      // Full: what is held goes out now, and this revision starts the next response.
      const full = w.held;
      w.held = undefined;
      this.offerLive(w, w.heldFrom, w.heldTo, full);
      if (w.state !== 'synced') return; // behind now (caught up from heldFrom), or closed
    }
    if (w.held === undefined) {
      // (A watcher whose full response went out above is listed twice; harmless: see deliverHeld.)
      this.holding.push(w);
      w.held = events;
      w.heldFrom = revision;
      w.heldBytes = bytes;
    } else {
      if (w.heldFrom === w.heldTo) w.held = w.held.slice(); // from here on, the watcher's own list
      for (let i = 0; i < events.length; i++) w.held.push(events[i]);
      w.heldBytes += bytes;
    }
    w.heldTo = revision;
  }

  /** Offers every watcher its held events, in the order the watchers got their first. */
  private deliverHeld(): void {
    if (this.holding.length === 0) return;
    const ws = this.holding;
    this.holding = [];
    for (const w of ws) {
      const events = w.held;
      if (events === undefined) continue; // delivered already
      w.held = undefined;
      // A sink callback may have closed the stream of a later watcher meanwhile.
      if (w.state === 'synced') this.offerLive(w, w.heldFrom, w.heldTo, events);
    }
  }

  /** Queues the live events of revisions from..to (minRevision is already past them). */
  private offerLive(w: Watcher, from: number, to: number, events: MvccEvent[]): void {
    if (w.stream.offerEvents(w, liveResponse(w.id, events, to))) return;
    // The stream's backlog is full: these revisions and the following ones come from history.
    assert(this.synced.delete(w), 'a synced watcher is in the synced group');
    w.minRevision = from;
    this.toUnsynced(w);
  }

  // -------------------------------------------------------------------------------------
  // Catch-up path
  // -------------------------------------------------------------------------------------

  private toUnsynced(w: Watcher): void {
    w.state = 'unsynced';
    this.unsynced.add(w);
    w.stream.unsyncedCount++;
    if (w.stream.writable) this.scheduleSync();
  }

  private leaveUnsynced(w: Watcher): void {
    assert(this.unsynced.delete(w), 'an unsynced watcher is in the unsynced set');
    w.stream.unsyncedCount--;
    assert(w.stream.unsyncedCount >= 0, 'unsynced counts are never negative');
  }

  private toSynced(w: Watcher): void {
    this.leaveUnsynced(w);
    w.state = 'synced';
    this.synced.add(w);
  }

  private resyncAll(revision: number): void {
    this.deliverHeld(); // held events are of revisions before `from`
    const from = this.lastRevision + 1;
    this.lastRevision = revision;
    for (const w of [...this.synced]) {
      assert(this.synced.delete(w), 'a synced watcher is in the synced group');
      w.minRevision = Math.max(w.minRevision, from);
      this.toUnsynced(w);
    }
    this.scheduleSync();
  }

  private scheduleSync(): void {
    if (this.syncTask !== undefined || this.closedFlag || this.unsynced.size === 0) return;
    this.syncTask = this.scheduler.soon(() => {
      this.syncTask = undefined;
      this.syncRun();
    });
  }

  /**
   * One catch-up run (etcd's syncWatchers): up to syncWatchersPerRunMax unsynced watchers of
   * writable streams, one history read of at most syncEventsPerRunMax events from the
   * smallest revision they need.
   */
  private syncRun(): void {
    if (this.closedFlag) return;
    const current = this.source.currentRevision();
    const compacted = this.source.compactedRevision();
    const chosen: Watcher[] = [];
    for (const w of this.unsynced) {
      if (chosen.length >= this.limits.syncWatchersPerRunMax) break;
      if (!w.stream.writable) continue;
      chosen.push(w);
    }
    // A sink may close its stream while taking a response: re-check each watcher's state.
    for (const w of chosen) if (w.state === 'unsynced' && w.minRevision < compacted) this.cancelCompacted(w, compacted);
    const ready = chosen.filter((w) => w.state === 'unsynced');
    if (ready.length > 0) {
      let from = Number.MAX_SAFE_INTEGER;
      for (const w of ready) from = Math.min(from, w.minRevision);
      const history = this.readHistory(from, current, ready);
      if (history !== undefined) {
        for (const w of ready) {
          if (w.state === 'unsynced') this.deliverHistory(w, history, current);
        }
      }
    }
    this.retryDeferredProgress();
    for (const w of this.unsynced) {
      if (w.stream.writable) {
        this.scheduleSync();
        break;
      }
    }
  }

  private readHistory(from: number, current: number, ready: Watcher[]): WatchHistory | undefined {
    if (from > current) return { revisions: [], nextRevision: from };
    try {
      const history = this.source.eventsBetween(from, current, this.limits.syncEventsPerRunMax);
      assert(history.nextRevision > from || history.nextRevision > current, 'a history read makes progress');
      return history;
    } catch (e) {
      if ((e as { code?: unknown } | null)?.code !== 'ERR_COMPACTED') throw e;
      // A source stricter than etcd's rule (or a compaction we were not told about): the
      // watchers that need revisions up to the compacted one are canceled, the others retry.
      const compacted = this.source.compactedRevision();
      let canceled = 0;
      for (const w of ready) {
        if (w.state === 'unsynced' && w.minRevision <= compacted) {
          this.cancelCompacted(w, compacted);
          canceled++;
        }
      }
      assert(canceled > 0, 'ERR_COMPACTED concerns a revision at or below the compacted one');
      return undefined;
    }
  }

  /**
   * Queues what w gets out of one history read, as one response (etcd: the events of
   * several revisions in one response, with the current revision), as much of it as the
   * stream's backlog takes, whole revisions only.
   */
  private deliverHistory(w: Watcher, history: WatchHistory, current: number): void {
    if (w.minRevision > current) {
      this.toSynced(w); // a future start revision (after a restore)
      return;
    }
    const coveredTo = history.nextRevision - 1;
    if (w.minRevision > coveredTo) return; // this read ended before w's revisions
    const parts: { revision: number; events: MvccEvent[] }[] = [];
    for (const re of history.revisions) {
      if (re.revision < w.minRevision) continue;
      if (re.revision > coveredTo) break;
      const inRange = re.events.filter((ev) => rangeContains(w.range, ev.kv.key));
      const events = inRange.length === 0 ? inRange : w.project(inRange);
      if (events.length > 0) parts.push({ revision: re.revision, events });
    }
    let taken = 0;
    let takenEvents = 0;
    while (taken < parts.length && w.stream.canTakeEvents(takenEvents + parts[taken].events.length)) {
      takenEvents += parts[taken].events.length;
      taken++;
    }
    if (taken > 0) {
      const events = parts.slice(0, taken).flatMap((p) => p.events);
      const queued = w.stream.offerEvents(w, watchResponse({ watch_id: w.id, events, revision: current }));
      assert(queued, 'a response that fits is queued');
      if (w.state !== 'unsynced') return; // the sink closed the stream while taking it
    } else if (parts.length > 0) {
      return; // the backlog is full: wait for the sink to drain
    }
    w.minRevision = taken < parts.length ? parts[taken].revision : coveredTo + 1;
    if (w.minRevision > current) this.toSynced(w);
  }

  private cancelCompacted(w: Watcher, compacted: number): void {
    assert(w.state === 'unsynced', 'only an unsynced watcher falls behind the compaction');
    this.leaveUnsynced(w);
    w.state = 'compacted';
    this.compactCancelsTotal++;
    w.stream.enqueueControl(watchResponse({ watch_id: w.id, canceled: true, compact_revision: compacted, revision: 0 }));
  }

  private retryDeferredProgress(): void {
    if (this.deferredProgressStreams.size === 0) return;
    for (const s of [...this.deferredProgressStreams]) {
      if (s.retryDeferredProgress()) this.deferredProgressStreams.delete(s);
    }
  }
}

/** The bytes of keys and values (previous ones included) of events: the bulk of their encoding. */
function eventsDataBytes(events: readonly MvccEvent[]): number {
  let n = 0;
  for (let i = 0; i < events.length; i++) {
    const ev = events[i];
    n += ev.kv.key.length + ev.kv.value.length;
    if (ev.prevKv !== undefined) n += ev.prevKv.key.length + ev.prevKv.value.length;
  }
  return n;
}
