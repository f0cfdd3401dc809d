// The watch hub's view of the store: whichever MvccStore is current (restoring a snapshot
// replaces it), with its revision events passed on.

import type { MvccStore, RevisionEvents } from '../mvcc';
import type { WatchSource } from '../watch';
import type { StoreMeta } from './applier';

/** A WatchSource over whichever MvccStore is current (a snapshot restore replaces it). */
export class StoreSource implements WatchSource {
  /** Replaced, never changed in place: a listener that unsubscribes while called changes nothing for this round. */
  private listeners: ReadonlyArray<(re: RevisionEvents) => void> = [];
  private sub: { dispose(): void };

  constructor(private store: MvccStore<StoreMeta>) {
    this.sub = store.onRevision((re) => this.fire(re));
  }

  private fire(re: RevisionEvents): void {
    const ls = this.listeners;
    for (let i = 0; i < ls.length; i++) ls[i](re);
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
    this.listeners = [...this.listeners, listener];
    return {
      dispose: () => {
        this.listeners = this.listeners.filter((l) => l !== listener);
      },
    };
  }
}
