// The watch hub's view of the store: whichever MvccStore is current (restoring a snapshot
// replaces it), with its revision events passed on.

import type { MvccStore, RevisionEvents } from '../mvcc';
import type { WatchSource } from '../watch';
import type { StoreMeta } from './applier';

/** A WatchSource over whichever MvccStore is current (a snapshot restore replaces it). */
export class StoreSource implements WatchSource {
  private listeners = new Set<(re: RevisionEvents) => void>();
  private sub: { dispose(): void };

  constructor(private store: MvccStore<StoreMeta>) {
    this.sub = store.onRevision((re) => this.fire(re));
  }

  private fire(re: RevisionEvents): void {
    for (const l of this.listeners) l(re);
  }

  swap(store: MvccStore<StoreMeta>): void {
    this.sub.dispose();
    this.store = store;
    this.sub = store.onRevision((re) => this.fire(re));
  }

  currentRevision(): number {
    return this.store.revision;
  }

  compactedRevision(): number {
    return this.store.compactRevision;
  }

  eventsBetween(fromRevision: number, toRevision: number, limitEvents: number) {
    return this.store.eventsBetween({ fromRevision, toRevision, eventsMax: limitEvents });
  }

  onRevision(listener: (re: RevisionEvents) => void) {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }
}
