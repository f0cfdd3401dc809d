// One gRPC Watch stream: its watch ids, its requests, and the ordered queue of responses on
// their way to the sink.
//
// Every response of the stream goes through one queue, so each watcher sees its responses
// in order (created first, then events by revision, then canceled). The queue is flushed to
// the sink synchronously for as long as the sink accepts; when the sink asks to slow down,
// responses wait in the queue until its drain callback:
//   * event responses wait only within watchBacklogEventsMax; a watcher whose next response
//     does not fit becomes unsynced and is caught up from history later (never dropped);
//   * control responses always wait (a client cannot get ahead of them by more than
//     watchControlBacklogMax requests: `request()` tells the service to stop reading);
//   * periodic progress notifications are skipped while the sink is slow (etcd drops them
//     when its channel is full: the watcher is receiving events anyway).
//
// The `revision` of each response (what etcd puts in the header):
//   created, canceled, errors (watch_id -1), progress:  the store's current revision
//   live events:                                        the revision of the events
//   catch-up events:                                    the current revision at catch-up
//   canceled by compaction:                             0 (etcd sends no revision there)

import { assert } from './assert';
import { normalizeKeyRange } from './key-range';
import type { WatchLimits } from './limits';
import { fragmentResponse } from './response-size';
import type { Scheduler } from './scheduler';
import type { Disposable, MvccEvent, WatchCreateRequest, WatchRequest, WatchResponse, WatchSink } from './types';
import { Watcher } from './watcher';

/** The cancel reasons etcd 3.4 sends, verbatim (clients match on them). */
export const watchCancelReasons = Object.freeze({
  /** mvcc.ErrWatcherDuplicateID */
  duplicateId: 'mvcc: duplicate watch ID provided on the WatchStream',
  /** mvcc.ErrEmptyWatcherRange */
  emptyRange: 'mvcc: watcher range is empty',
  /** rpctypes.ErrCompacted, for a negative start revision (etcd 3.5+; 3.4 has no check). */
  compacted: 'etcdserver: mvcc: required revision has been compacted',
});

/** The watch id of responses that belong to no watcher (clientv3.InvalidWatchID). */
export const invalidWatchId = -1;

/** What a stream needs from its hub. */
export interface StreamHost {
  readonly limits: Readonly<WatchLimits>;
  readonly responseBytesMax: number;
  readonly scheduler: Scheduler;
  readonly progressNotifyIntervalMs: number;
  currentRevision(): number;
  /** Adds a new watcher to the synced or unsynced group. */
  register(w: Watcher): void;
  /** Removes a watcher from whatever group holds it. */
  unregister(w: Watcher): void;
  /** The stream's sink accepts again and its backlog is empty. */
  streamWritable(stream: WatchStream): void;
  /** The stream has a progress request waiting for its watchers to be synced. */
  progressDeferred(stream: WatchStream): void;
  streamClosed(stream: WatchStream): void;
  responseSent(response: WatchResponse): void;
  sinkFailed(stream: WatchStream, error: unknown): void;
}

type QueuedKind = 'events' | 'control' | 'progress';

interface Queued {
  response: WatchResponse;
  kind: QueuedKind;
}

export function watchResponse(fields: Partial<WatchResponse> & Pick<WatchResponse, 'watch_id' | 'revision'>): WatchResponse {
  return {
    created: false,
    canceled: false,
    compact_revision: 0,
    cancel_reason: '',
    fragment: false,
    events: [],
    ...fields,
  };
}

/** An event response of the live path: watchResponse's fields, in its order, without the spread. */
export function liveResponse(watchId: number, events: MvccEvent[], revision: number): WatchResponse {
  return { created: false, canceled: false, compact_revision: 0, cancel_reason: '', fragment: false, events, watch_id: watchId, revision };
}

export class WatchStream {
  private readonly watchers = new Map<number, Watcher>();
  private nextAutoId = 0;
  /** Responses not yet handed to the sink, oldest first (queue[queueHead] is next). */
  private queue: Queued[] = [];
  private queueHead = 0;
  /** invariant: backlogEvents === sum of events of queued 'events' responses */
  private backlogEventsCount = 0;
  /** invariant: controlBacklog === number of queued 'control' responses */
  private controlBacklog = 0;
  /** invariant: writable && !flushing implies the queue is empty */
  private writableFlag = true;
  private flushing = false;
  private closedFlag = false;
  private deferredProgress = false;
  private readonly drainSubscription: Disposable;
  private progressTimer: Disposable | undefined;
  private readonly progressIntervalMs: number;
  /** Watchers of this stream in the hub's unsynced set (kept by the hub). */
  unsyncedCount = 0;

  constructor(
    private readonly host: StreamHost,
    private readonly sink: WatchSink,
    /** For logs and tests only. */
    readonly streamId: number,
    progressJitterMs: number,
  ) {
    this.drainSubscription = sink.onDrain(() => this.drained());
    this.progressIntervalMs = host.progressNotifyIntervalMs + progressJitterMs;
    this.armProgressTimer();
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** False while the sink asks to slow down. */
  get writable(): boolean {
    return this.writableFlag;
  }

  /** Events waiting in the backlog for the sink. */
  get backlogEvents(): number {
    return this.backlogEventsCount;
  }

  /** Number of watch ids in use (compacted watchers included until canceled). */
  get watcherCount(): number {
    return this.watchers.size;
  }

  /**
   * False when control responses are piling up behind a slow sink: the service should stop
   * reading requests (pause the call) until the sink drains.
   */
  get acceptsRequests(): boolean {
    return this.controlBacklog < this.host.limits.watchControlBacklogMax;
  }

  /** Handles one request of the stream. Returns acceptsRequests. */
  request(req: WatchRequest): boolean {
    switch (req.request_union) {
      case 'create_request':
        if (req.create_request) this.create(req.create_request);
        break;
      case 'cancel_request':
        if (req.cancel_request) this.cancel(req.cancel_request.watch_id);
        break;
      case 'progress_request':
        if (req.progress_request) this.requestProgress();
        break;
      case undefined:
        break; // an empty request: etcd ignores it
    }
    return this.acceptsRequests;
  }

  /**
   * Creates a watcher and queues its created response (or the created+canceled error
   * response with watch_id -1). Returns the watch id, or -1 on error.
   */
  create(req: WatchCreateRequest): number {
    if (this.closedFlag) return invalidWatchId;
    const current = this.host.currentRevision();
    const startRevision = req.start_revision ?? 0;
    if (startRevision < 0) return this.refuseCreate(watchCancelReasons.compacted, current);
    const range = normalizeKeyRange(req.key, req.range_end);
    if (range === undefined) return this.refuseCreate(watchCancelReasons.emptyRange, current);

    let id = req.watch_id ?? 0;
    if (id === 0) {
      while (this.watchers.has(this.nextAutoId)) this.nextAutoId++;
      id = this.nextAutoId++;
    } else if (this.watchers.has(id)) {
      return this.refuseCreate(watchCancelReasons.duplicateId, current);
    }
    assert(Number.isSafeInteger(id), 'watch ids are safe integers');

    const filters = req.filters ?? [];
    const w = new Watcher(
      id,
      this,
      range,
      {
        noPut: filters.includes('NOPUT'),
        noDelete: filters.includes('NODELETE'),
        prevKv: req.prev_kv ?? false,
        progressNotify: req.progress_notify ?? false,
        fragment: req.fragment ?? false,
      },
      startRevision,
      startRevision,
    );
    this.watchers.set(id, w);
    // The created response is queued before the watcher can get anything else.
    this.enqueueControl(watchResponse({ watch_id: id, created: true, revision: current }));
    if (w.state === 'new') this.host.register(w); // unless the sink closed the stream meanwhile
    return id;
  }

  /** Cancels a watcher of this stream; unknown ids are ignored, as etcd does. */
  cancel(watchId: number): boolean {
    const w = this.watchers.get(watchId);
    if (w === undefined || this.closedFlag) return false;
    this.host.unregister(w);
    this.watchers.delete(watchId);
    this.enqueueControl(watchResponse({ watch_id: watchId, canceled: true, revision: this.host.currentRevision() }));
    // Canceling the last unsynced watcher may release a deferred progress response.
    this.retryDeferredProgress();
    return true;
  }

  /**
   * A progress request (etcd 3.4.25+): answered with watch_id -1 and the current revision
   * once every watcher of the stream is synced and has reached its start revision, so that
   * the answer never overtakes events of earlier revisions. Until then it is deferred; one
   * deferred request stands for any number of them. A stream without watchers gets nothing.
   */
  requestProgress(): void {
    if (this.closedFlag || this.deferredProgress) return;
    if (!this.tryProgressAll()) {
      this.deferredProgress = true;
      this.host.progressDeferred(this);
    }
  }

  /** @internal Called by the hub when the stream's watchers may have become synced. */
  retryDeferredProgress(): boolean {
    if (!this.deferredProgress || this.closedFlag) return true;
    if (!this.tryProgressAll()) return false;
    this.deferredProgress = false;
    return true;
  }

  /** Closes the stream: cancels every watcher; nothing more is sent. */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const w of this.watchers.values()) this.host.unregister(w);
    this.watchers.clear();
    this.queue = [];
    this.queueHead = 0;
    this.backlogEventsCount = 0;
    this.controlBacklog = 0;
    this.drainSubscription.dispose();
    this.progressTimer?.dispose();
    this.progressTimer = undefined;
    this.host.streamClosed(this);
  }

  // -------------------------------------------------------------------------------------
  // Used by the hub
  // -------------------------------------------------------------------------------------

  /** @internal True when `count` more events may be queued now. */
  canTakeEvents(count: number): boolean {
    return this.backlogEventsCount === 0 || this.backlogEventsCount + count <= this.host.limits.watchBacklogEventsMax;
  }

  /**
   * @internal Queues an event response of w (split into fragments if w asked for it) if
   * the backlog has room. Returns false, queuing nothing, when it has not.
   */
  offerEvents(w: Watcher, response: WatchResponse): boolean {
    assert(w.stream === this, 'a watcher sends on its own stream');
    assert(response.events.length > 0, 'an event response has events');
    if (this.closedFlag) return true; // nowhere to send; the watcher is being removed
    if (!this.canTakeEvents(response.events.length)) return false;
    w.progressIdle = false;
    if (!w.options.fragment && this.writableFlag && !this.flushing && this.queueHead === this.queue.length) {
      // Nothing waits and the sink takes more: straight to it, without a queue entry.
      this.sendDirect(response);
      return true;
    }
    const parts = w.options.fragment ? fragmentResponse(response, this.host.responseBytesMax) : [response];
    for (const r of parts) this.queue.push({ response: r, kind: 'events' });
    this.backlogEventsCount += response.events.length;
    this.flush();
    return true;
  }

  /** flush() for one response while the queue is empty and the sink writable. */
  private sendDirect(response: WatchResponse): void {
    this.flushing = true;
    let open: boolean;
    try {
      open = this.sendOne(response);
    } finally {
      this.flushing = false;
    }
    // A send that called back into us queued what it sent meanwhile.
    if (open && this.queueHead < this.queue.length) this.flush();
  }

  /**
   * Hands one response to the sink and notes whether it takes more. A sink that throws
   * closes the stream: false then.
   */
  private sendOne(response: WatchResponse): boolean {
    let more: boolean;
    try {
      more = this.sink.send(response);
    } catch (e) {
      this.host.sinkFailed(this, e);
      this.close();
      return false;
    }
    this.host.responseSent(response);
    if (!more) this.writableFlag = false;
    return true;
  }

  /** @internal Queues a response that must not be dropped (created, canceled, compacted, progress request). */
  enqueueControl(response: WatchResponse): void {
    if (this.closedFlag) return;
    this.queue.push({ response, kind: 'control' });
    this.controlBacklog++;
    this.flush();
  }

  // -------------------------------------------------------------------------------------
  // Internals
  // -------------------------------------------------------------------------------------

  private refuseCreate(reason: string, current: number): number {
    this.enqueueControl(
      watchResponse({ watch_id: invalidWatchId, created: true, canceled: true, cancel_reason: reason, revision: current }),
    );
    return invalidWatchId;
  }

  private tryProgressAll(): boolean {
    const current = this.host.currentRevision();
    for (const w of this.watchers.values()) {
      if (w.state !== 'synced' || w.held !== undefined || current < w.startRevision) return false;
    }
    if (this.watchers.size > 0) this.enqueueControl(watchResponse({ watch_id: invalidWatchId, revision: current }));
    return true;
  }

  private flush(): void {
    if (this.flushing) return; // a send called back into us; the outer loop goes on
    this.flushing = true;
    try {
      while (this.writableFlag && !this.closedFlag && this.queueHead < this.queue.length) {
        const item = this.queue[this.queueHead];
        this.queue[this.queueHead] = undefined as unknown as Queued;
        this.queueHead++;
        if (item.kind === 'events') this.backlogEventsCount -= item.response.events.length;
        else if (item.kind === 'control') this.controlBacklog--;
        if (!this.sendOne(item.response)) return;
      }
      if (this.queueHead === this.queue.length) {
        this.queue = [];
        this.queueHead = 0;
      } else if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.queueHead);
        this.queueHead = 0;
      }
    } finally {
      this.flushing = false;
    }
    assert(!this.writableFlag || this.closedFlag || this.queueHead === this.queue.length, 'a writable stream has an empty queue');
    assert(this.backlogEventsCount >= 0 && this.controlBacklog >= 0, 'backlog counts are never negative');
  }

  private drained(): void {
    if (this.closedFlag) return;
    this.writableFlag = true;
    this.flush();
    if (this.writableFlag && !this.closedFlag) this.host.streamWritable(this);
  }

  private armProgressTimer(): void {
    this.progressTimer = this.host.scheduler.after(this.progressIntervalMs, () => this.progressTick());
  }

  /**
   * etcd's progress ticker: a progress_notify watcher that got no event response since the
   * last tick gets an empty response with the current revision, if it is synced and the
   * store has reached its start revision. Skipped while the sink is slow.
   */
  private progressTick(): void {
    if (this.closedFlag) return;
    const current = this.host.currentRevision();
    for (const w of this.watchers.values()) {
      if (!w.options.progressNotify) continue;
      if (w.progressIdle && w.state === 'synced' && w.held === undefined && current >= w.startRevision && this.writableFlag) {
        this.queue.push({ response: watchResponse({ watch_id: w.id, revision: current }), kind: 'progress' });
        this.flush();
        if (this.closedFlag) return;
      }
      w.progressIdle = true;
    }
    this.armProgressTimer();
  }
}
