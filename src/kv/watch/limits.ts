// Every bound of the watch hub, named and kept together (STYLE #4), with the relations
// between them asserted when a hub is built.

import { assert } from './assert';

export interface WatchLimits {
  /**
   * Events one stream may hold for a sink that asked to slow down. A watcher whose next
   * response does not fit falls back to history (it becomes unsynced) instead of growing the
   * backlog. One response taken into an empty backlog may exceed it (one revision's events,
   * or one catch-up chunk), so a single large revision never stalls a watcher.
   */
  watchBacklogEventsMax: number;
  /**
   * Control responses (created, canceled, compacted, progress) one stream may hold before it
   * asks the service to stop reading requests (etcd's ctrlStreamBufLen, which blocks its
   * receive loop). They are never dropped.
   */
  watchControlBacklogMax: number;
  /** Unsynced watchers served by one catch-up run (etcd's maxWatchersPerSync). */
  syncWatchersPerRunMax: number;
  /** Historic events read by one catch-up run; a run is one turn of the event loop. */
  syncEventsPerRunMax: number;
  /**
   * Bytes (keys and values) of one watcher's events combined into one response in a batch
   * (WatchHub.batch). Past it, what is held goes out and a new response starts: a batch
   * of large writes never makes a response bigger than a client takes (gRPC clients
   * refuse messages over 4 MiB unless told otherwise).
   */
  batchResponseBytesMax: number;
}

export const watchLimitsDefault: Readonly<WatchLimits> = Object.freeze({
  watchBacklogEventsMax: 16 * 1024,
  watchControlBacklogMax: 128,
  syncWatchersPerRunMax: 512,
  syncEventsPerRunMax: 4 * 1024,
  batchResponseBytesMax: 256 * 1024,
});

/** etcd's default progress notification interval (--experimental-watch-progress-notify-interval). */
export const progressNotifyIntervalMsDefault = 10 * 60 * 1000;

/** etcd adds up to a tenth of the interval, per stream, so that streams do not tick together. */
export const progressNotifyJitterRatio = 0.1;

/** Headroom etcd's watch server adds to --max-request-bytes before fragmenting (grpcOverheadBytes). */
export const grpcOverheadBytes = 512 * 1024;

/** etcd's default --max-request-bytes. */
export const maxRequestBytesDefault = 1.5 * 1024 * 1024;

/** The fragment threshold etcd uses for a given --max-request-bytes. */
export function watchResponseBytesMaxFor(maxRequestBytes: number): number {
  return maxRequestBytes + grpcOverheadBytes;
}

export function assertWatchLimits(limits: WatchLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    assert(Number.isSafeInteger(value), `${name} is an integer`);
    assert(value >= 1, `${name} is at least 1`);
  }
  assert(
    limits.syncEventsPerRunMax <= limits.watchBacklogEventsMax,
    'one catch-up chunk fits in a stream backlog',
  );
  assert(limits.watchControlBacklogMax >= 2, 'a create request can always queue its created and canceled responses');
}
