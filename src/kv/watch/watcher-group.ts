// The synced watchers, indexed for matching events: single-key watchers by key, range and
// from-key watchers in a list checked per event.

import { keyString, rangeContains } from './key-range';
import { Watcher } from './watcher';

export class WatcherGroup {
  private readonly byKey = new Map<string, Set<Watcher>>();
  private readonly ranged = new Set<Watcher>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(w: Watcher): void {
    if (w.range.kind === 'single') {
      let set = this.byKey.get(w.range.keyStr);
      if (set === undefined) {
        set = new Set();
        this.byKey.set(w.range.keyStr, set);
      }
      if (set.has(w)) return;
      set.add(w);
    } else {
      if (this.ranged.has(w)) return;
      this.ranged.add(w);
    }
    this.count++;
  }

  delete(w: Watcher): boolean {
    if (w.range.kind === 'single') {
      const set = this.byKey.get(w.range.keyStr);
      if (set === undefined || !set.delete(w)) return false;
      if (set.size === 0) this.byKey.delete(w.range.keyStr);
    } else if (!this.ranged.delete(w)) {
      return false;
    }
    this.count--;
    return true;
  }

  /** Appends to `out` every watcher whose range holds key. */
  collectMatches(key: Uint8Array, out: Watcher[]): void {
    const single = this.byKey.size > 0 ? this.byKey.get(keyString(key)) : undefined;
    if (single !== undefined) for (const w of single) out.push(w);
    for (const w of this.ranged) if (rangeContains(w.range, key)) out.push(w);
  }

  *[Symbol.iterator](): IterableIterator<Watcher> {
    for (const set of this.byKey.values()) yield* set;
    yield* this.ranged;
  }
}
