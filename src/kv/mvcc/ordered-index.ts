// The key index's container: a hash map for the point lookups every put and single-key read
// makes (~25 ns), and the keys in order for walks (ranges, prefixes).
//
// The order is kept as a sorted array and a log of keys added since, merged into the array
// in one pass when the log has grown to a fraction of it. A B+ tree, inserting each new key
// at once, walked cold nodes from the root down for every random new key: under put load in
// a 3-member cluster on 2 cores that cost ~14% of a member's CPU per put, mostly cache
// misses that also slowed what ran after them. Here a new key costs a push. The merge copies
// pointers and compares each logged key with a few of its neighbours only (1M keys: a few
// ms, once per 65536 new keys). A walk never merges: it sorts the log if keys came since,
// binary searches both parts and interleaves them as it goes.
//
// Deleting a key removes it from the map only; the arrays keep it until the next merge, and
// walks skip keys the map no longer holds. A key deleted and added again before the merge
// may be in both parts: walks and the merge take it once.

/** When the log (keys added plus deletions) is merged into the sorted array. */
export interface MergeLimits {
  /** Never later than at this many... */
  max: number;
  /** ...nor than at 1/share of the sorted array's length, but not before `min`. */
  share: number;
  min: number;
}

const DEFAULT_LIMITS: MergeLimits = { max: 65536, share: 16, min: 1024 };

export class OrderedIndex<V> {
  private readonly map = new Map<string, V>();
  /** Sorted, no repeats; may hold keys deleted since the last merge. */
  private sorted: string[] = [];
  /** Keys added since the last merge, in arrival order until a walk sorts them. */
  private log: string[] = [];
  private logSorted = true;
  /** Deletions since the last merge. */
  private deleted = 0;

  constructor(private readonly limits: MergeLimits = DEFAULT_LIMITS) {}

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  set(key: string, value: V): void {
    const had = this.map.size;
    this.map.set(key, value);
    if (this.map.size === had) return; // a new value for a key already placed
    if (this.logSorted && this.log.length > 0 && key <= this.log[this.log.length - 1]) this.logSorted = false;
    this.log.push(key);
    this.mergeIfDue();
  }

  delete(key: string): void {
    if (!this.map.delete(key)) return;
    this.deleted++;
    this.mergeIfDue();
  }

  maxKey(): string | undefined {
    const a = this.lastLive(this.sorted);
    const b = this.lastLive(this.sortedLog());
    return a === undefined || (b !== undefined && b > a) ? b : a;
  }

  /** Calls `f` for the keys in [low, high] (high included when `includeHigh`), in order. */
  forRange(low: string, high: string, includeHigh: boolean, f: (key: string, value: V) => void): void {
    this.walk(low, (k) => k < high || (includeHigh && k === high), f);
  }

  /** Calls `f` for every key, in order. */
  forEach(f: (value: V, key: string) => void): void {
    this.walk('', () => true, (k, v) => f(v, k));
  }

  private walk(low: string, inRange: (key: string) => boolean, f: (key: string, value: V) => void): void {
    // Taken now: keys `f` adds, and a merge they cause, do not change this walk.
    const a = this.sorted;
    const b = this.sortedLog();
    const an = a.length;
    const bn = b.length;
    let i = lowerBound(a, low);
    let j = lowerBound(b, low);
    while (i < an || j < bn) {
      let k: string;
      if (j >= bn || (i < an && a[i] < b[j])) k = a[i++];
      else if (i >= an || b[j] < a[i]) k = b[j++];
      else {
        k = a[i++];
        j++;
      }
      if (!inRange(k)) return;
      const v = this.map.get(k);
      if (v !== undefined) f(k, v);
    }
  }

  private lastLive(keys: readonly string[]): string | undefined {
    let best: string | undefined;
    for (let i = keys.length - 1; i >= 0; i--) {
      if (this.map.has(keys[i])) {
        best = keys[i];
        break;
      }
    }
    return best;
  }

  /**
   * The log, sorted without repeats. Sorting makes a new array: a walk in progress keeps the
   * one it took (keys added meanwhile only go past its end).
   */
  private sortedLog(): string[] {
    if (!this.logSorted) {
      // The default sort compares UTF-16 code units: byte order for keys.ts's strings.
      const log = this.log.slice().sort();
      let n = 0;
      for (let i = 0; i < log.length; i++) if (n === 0 || log[i] !== log[n - 1]) log[n++] = log[i];
      log.length = n;
      this.log = log;
      this.logSorted = true;
    }
    return this.log;
  }

  private mergeIfDue(): void {
    const { max, share, min } = this.limits;
    const due = Math.min(max, Math.max(min, this.sorted.length / share));
    if (this.log.length + this.deleted >= due) this.merge();
  }

  /** One sorted array again: the log merged in, deleted keys dropped. */
  private merge(): void {
    const a = this.sorted;
    const b = this.sortedLog();
    const out: string[] = [];
    const live = this.deleted === 0 ? undefined : this.map;
    const copy = (from: number, to: number): void => {
      if (live === undefined) for (let x = from; x < to; x++) out.push(a[x]);
      else for (let x = from; x < to; x++) if (live.has(a[x])) out.push(a[x]);
    };
    let i = 0;
    for (const k of b) {
      const j = gallop(a, k, i);
      copy(i, j);
      i = j;
      if (i < a.length && a[i] === k) i++; // in both parts: the copy below keeps one
      if (live === undefined || live.has(k)) out.push(k);
    }
    copy(i, a.length);
    this.sorted = out;
    this.log = [];
    this.logSorted = true;
    this.deleted = 0;
  }
}

/** The first index in [lo, hi) whose key is >= `key` (keys sorted), or hi. */
function lowerBound(keys: readonly string[], key: string, lo = 0, hi = keys.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** lowerBound from `from` for a key expected a little after it: steps 1, 2, 4... then bisects. */
function gallop(keys: readonly string[], key: string, from: number): number {
  let lo = from;
  let hi = from;
  let step = 1;
  while (hi < keys.length && keys[hi] < key) {
    lo = hi + 1;
    hi = lo + step;
    step *= 2;
  }
  return lowerBound(keys, key, lo, Math.min(hi, keys.length));
}
