// The watch hub's contracts: what it reads (WatchSource), what it writes to (WatchSink), and
// the requests and responses of one gRPC Watch stream. Requests and responses mirror
// etcdserverpb (snake_case field names), so the gRPC service passes decoded requests
// straight in and only adds the header to each response.

import type { KeyValue, MvccEvent, RevisionEvents } from '../mvcc/types';

export type { KeyValue, MvccEvent, RevisionEvents };

export interface Disposable {
  dispose(): void;
}

/** What one history read returned. */
export interface WatchHistory {
  /** Revisions in [fromRevision, nextRevision) that have events, ascending, each whole. */
  revisions: RevisionEvents[];
  /** The first revision not yet read: every revision below it is covered by `revisions`. */
  nextRevision: number;
}

/**
 * The store as the hub sees it. The hub never writes; it never depends on the MVCC
 * implementation beyond this.
 */
export interface WatchSource {
  /** The revision of the last committed write. */
  currentRevision(): number;
  /** The revision of the last compaction, 0 if none. */
  compactedRevision(): number;
  /**
   * Historic events of revisions in [fromRevision, toRevision], in revision order, each
   * event with prevKv when the key's previous state is still readable. Stops after the
   * revision at which `limitEvents` events were collected (a revision is never split, so
   * the last one may overshoot); `nextRevision` says where it stopped.
   * Throws an error with `code === 'ERR_COMPACTED'` when fromRevision < compactedRevision()
   * (etcd's rule: the compacted revision itself can still be watched).
   */
  eventsBetween(fromRevision: number, toRevision: number, limitEvents: number): WatchHistory;
  /**
   * Called synchronously after each committed write, in revision order, with everything
   * that write changed (prevKv set when the key existed before). Events are shared: never
   * mutate them.
   */
  onRevision(listener: (revisionEvents: RevisionEvents) => void): Disposable;
}

/**
 * Where one stream's responses go (the gRPC call). Same contract as a Node writable:
 * send() always takes the response; false asks the stream to stop sending until the drain
 * listener is called.
 */
export interface WatchSink {
  send(response: WatchResponse): boolean;
  onDrain(listener: () => void): Disposable;
}

export type WatchFilterType = 'NOPUT' | 'NODELETE';

/** etcdserverpb.WatchCreateRequest. Absent fields take the protobuf defaults. */
export interface WatchCreateRequest {
  key?: Uint8Array;
  /** Empty: the single key. [0x00]: every key >= key. Otherwise [key, range_end). */
  range_end?: Uint8Array;
  /** 0: from the next revision. In the past: replay history from it, then live. */
  start_revision?: number;
  progress_notify?: boolean;
  filters?: WatchFilterType[];
  prev_kv?: boolean;
  /** 0: the stream picks the next free id. */
  watch_id?: number;
  fragment?: boolean;
}

export interface WatchCancelRequest {
  watch_id: number;
}

/** etcdserverpb.WatchRequest as decoded with `oneofs: true`. An empty request is ignored. */
export type WatchRequest =
  | { request_union?: undefined }
  | { request_union: 'create_request'; create_request: WatchCreateRequest | null }
  | { request_union: 'cancel_request'; cancel_request: WatchCancelRequest | null }
  | { request_union: 'progress_request'; progress_request: Record<string, never> | null };

/**
 * etcdserverpb.WatchResponse without the header. `revision` is what etcd puts in the
 * header's revision for this response (see the table in watch-stream.ts); events are the
 * store's own type and are converted to mvccpb by the service.
 */
export interface WatchResponse {
  watch_id: number;
  created: boolean;
  canceled: boolean;
  compact_revision: number;
  cancel_reason: string;
  fragment: boolean;
  events: MvccEvent[];
  revision: number;
}

/** Plain numbers for the metrics endpoint (etcd's etcd_debugging_mvcc_* names in comments). */
export interface WatchMetrics {
  /** watch_stream_total */
  streams: number;
  /** watcher_total: live watchers (synced or catching up). */
  watchers: number;
  /** slow_watcher_total: watchers catching up from history. */
  slowWatchers: number;
  /** pending_events_total: events held in stream backlogs for slow sinks. */
  pendingEvents: number;
  /** events_total: events handed to sinks. */
  eventsSentTotal: number;
  /** Responses handed to sinks (control responses and fragments included). */
  responsesSentTotal: number;
  /** Watchers canceled because the history they needed was compacted. */
  compactCancelsTotal: number;
}
