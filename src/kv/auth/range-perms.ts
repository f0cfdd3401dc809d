// A user's key permissions, merged over all its roles, as etcd 3.4's range_perm_cache.go
// computes them: one set of intervals for reading and one for writing.
//
//   * A permission with an empty range_end is the single key: the interval [key, key\0).
//   * range_end "\0" means "every key from key on": the interval [key, +inf).
//   * A request for a single key needs a permission interval that contains the key
//     (etcd's checkKeyPoint: Intersects). A request for a range needs the union of the
//     permission intervals to cover the whole range (etcd's checkKeyInterval: Contains).
//
// Intervals are kept merged (sorted, disjoint and not touching), so that a covered range
// lies inside exactly one of them.

import type { PermissionType } from '../proto';

/** End of an interval: exclusive; null is +infinity. */
type End = Uint8Array | null;

interface Interval {
  begin: Uint8Array;
  end: End;
}

/** The smallest key above `key` (key followed by a zero byte). */
function successor(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key);
  return out;
}

function cmp(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** a < b for interval ends (null is +infinity). */
function endLess(a: End, b: End): boolean {
  if (a === null) return false;
  if (b === null) return true;
  return cmp(a, b) < 0;
}

function isOpenEnd(rangeEnd: Uint8Array): boolean {
  return rangeEnd.length === 1 && rangeEnd[0] === 0;
}

/** The interval a permission (or a request) names; undefined when it is empty. */
export function intervalOf(key: Uint8Array, rangeEnd: Uint8Array): Interval | undefined {
  if (rangeEnd.length === 0) return { begin: key, end: successor(key) };
  if (isOpenEnd(rangeEnd)) return { begin: key, end: null };
  if (cmp(rangeEnd, key) <= 0) return undefined;
  return { begin: key, end: rangeEnd };
}

function merge(intervals: Interval[]): Interval[] {
  const sorted = [...intervals].sort((a, b) => cmp(a.begin, b.begin));
  const out: Interval[] = [];
  for (const ivl of sorted) {
    const last = out[out.length - 1];
    // Overlapping or touching (last.end >= ivl.begin): extend the last one.
    if (last && (last.end === null || cmp(last.end, ivl.begin) >= 0)) {
      if (endLess(last.end, ivl.end)) last.end = ivl.end;
    } else {
      out.push({ begin: ivl.begin, end: ivl.end });
    }
  }
  return out;
}

/** The last merged interval that begins at or before key (binary search), or undefined. */
function floor(merged: readonly Interval[], key: Uint8Array): Interval | undefined {
  let lo = 0;
  let hi = merged.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmp(merged[mid].begin, key) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo === 0 ? undefined : merged[lo - 1];
}

function containsPoint(merged: readonly Interval[], key: Uint8Array): boolean {
  const ivl = floor(merged, key);
  return ivl !== undefined && (ivl.end === null || cmp(key, ivl.end) < 0);
}

function covers(merged: readonly Interval[], want: Interval): boolean {
  const ivl = floor(merged, want.begin);
  return ivl !== undefined && !endLess(ivl.end, want.end);
}

export interface KeyPermission {
  permType: PermissionType;
  key: Uint8Array;
  rangeEnd: Uint8Array;
}

/** The merged read and write permissions of one user. */
export class RangePermissions {
  private readonly read: Interval[];
  private readonly write: Interval[];

  constructor(perms: Iterable<KeyPermission>) {
    const read: Interval[] = [];
    const write: Interval[] = [];
    for (const p of perms) {
      const ivl = intervalOf(p.key, p.rangeEnd);
      if (!ivl) continue;
      if (p.permType === 'READ' || p.permType === 'READWRITE') read.push(ivl);
      if (p.permType === 'WRITE' || p.permType === 'READWRITE') write.push(ivl);
    }
    this.read = merge(read);
    this.write = merge(write);
  }

  /** Whether the user may read (READ) or write (WRITE) the key, or every key of [key, rangeEnd). */
  permits(permType: 'READ' | 'WRITE', key: Uint8Array, rangeEnd: Uint8Array): boolean {
    const merged = permType === 'READ' ? this.read : this.write;
    if (rangeEnd.length === 0) return containsPoint(merged, key);
    const want = intervalOf(key, rangeEnd);
    // An empty range (range_end <= key) selects nothing; etcd still asks for the key itself.
    if (!want) return containsPoint(merged, key);
    return covers(merged, want);
  }
}
