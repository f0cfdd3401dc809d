// One watcher: a key range on one stream, its options, and where it is in the history.

import { KeyRange } from './key-range';
import type { MvccEvent } from './types';
import type { WatchStream } from './watch-stream';

/**
 * new:       created, not yet registered with the hub.
 * synced:    gets each new revision as it is committed (in the hub's synced group).
 * unsynced:  behind the store: created with a past start revision, or its stream's backlog
 *            was full; caught up from history by the hub, then synced again.
 * compacted: the history it needed is gone; it got its compact_revision response and only
 *            waits for the client to cancel it (etcd keeps its id taken until then).
 * canceled:  removed from the hub; no response will mention it again.
 */
export type WatcherState = 'new' | 'synced' | 'unsynced' | 'compacted' | 'canceled';

export interface WatcherOptions {
  noPut: boolean;
  noDelete: boolean;
  prevKv: boolean;
  progressNotify: boolean;
  fragment: boolean;
}

export class Watcher {
  state: WatcherState = 'new';
  /**
   * The first revision this watcher has not seen yet. Events below it are never sent to it.
   * invariant (unsynced): minRevision <= the hub's last revision + 1
   * A synced watcher may be ahead (a start revision in the future).
   */
  minRevision: number;
  /** etcd's progress[id]: true when no event response was queued since the last tick. */
  progressIdle = true;
  /**
   * Live events held for the end of the hub's current batch (WatchHub.batch), oldest first,
   * of revisions heldFrom..heldTo; undefined when nothing is held. While it holds one
   * revision (heldFrom === heldTo) it may be the store's own event list: never changed then.
   */
  held: MvccEvent[] | undefined;
  heldFrom = 0;
  heldTo = 0;
  /** Keys and values of the held events, in bytes. */
  heldBytes = 0;

  constructor(
    readonly id: number,
    readonly stream: WatchStream,
    readonly range: KeyRange,
    readonly options: Readonly<WatcherOptions>,
    /** As requested (0: none); progress notifications wait until the store reaches it. */
    readonly startRevision: number,
    minRevision: number,
  ) {
    this.minRevision = minRevision;
  }

  /**
   * The events this watcher gets out of `events` (already known to be in its range): filters
   * applied, prevKv dropped unless asked for. Returns the input array when nothing changes.
   */
  project(events: readonly MvccEvent[]): MvccEvent[] {
    const { noPut, noDelete, prevKv } = this.options;
    let out: MvccEvent[] | undefined;
    for (let i = 0; i < events.length; i++) {
      const ev = events[i];
      const filtered = (noPut && ev.type === 'PUT') || (noDelete && ev.type === 'DELETE');
      const strip = !prevKv && ev.prevKv !== undefined;
      if (out === undefined) {
        if (!filtered && !strip) continue;
        out = events.slice(0, i);
      }
      if (filtered) continue;
      out.push(strip ? { type: ev.type, kv: ev.kv } : ev);
    }
    return out ?? (events as MvccEvent[]);
  }
}
