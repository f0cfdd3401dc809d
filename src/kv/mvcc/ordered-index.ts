// The key index's container: a B+ tree for ordered walks (ranges, prefixes) and a hash map
// beside it for the point lookups every put and single-key read makes. With 100k keys a
// tree lookup is ~17 string comparisons through cold nodes (~250 ns, and the largest single
// item in a member's CPU profile under put load); the map answers in ~25 ns, for about
// 30 bytes per key.

import BTree, { simpleComparator } from 'sorted-btree';

export class OrderedIndex<V> {
  // Keys are strings only: `<` on them is byte order (keys.ts), without the default
  // comparator's checks for numbers and mixed types (about a third of an insert's time).
  private readonly tree = new BTree<string, V>(undefined, simpleComparator);
  private readonly map = new Map<string, V>();

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  set(key: string, value: V): void {
    this.map.set(key, value);
    this.tree.set(key, value);
  }

  delete(key: string): void {
    if (this.map.delete(key)) this.tree.delete(key);
  }

  maxKey(): string | undefined {
    return this.tree.maxKey();
  }

  /** Calls `f` for the keys in [low, high] (high included when `includeHigh`), in order. */
  forRange(low: string, high: string, includeHigh: boolean, f: (key: string, value: V) => void): void {
    this.tree.forRange(low, high, includeHigh, f);
  }

  /** Calls `f` for every key, in order. */
  forEach(f: (value: V, key: string) => void): void {
    this.tree.forEach(f);
  }
}
