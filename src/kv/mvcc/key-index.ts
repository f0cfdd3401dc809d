// The per-key index of revisions, etcd's keyIndex flattened: one array of the key's revisions
// in order, where a tombstone ends a generation. Reading at a revision is a binary search;
// compaction drops a prefix. The same semantics as etcd's generations:
//
//   put(2) put(3) del(5) put(7)      entries: 2 3 5(t) 7      generations: {2,3,5t} {7}
//   at(4) = rev 3, at(5) = at(6) = absent, at(8) = rev 7
//   compact(4): drops 2 (keeps 3, the latest <= 4)            entries: 3 5(t) 7
//   compact(6): the latest <= 6 is the tombstone 5: drops it  entries: 7
//                and everything before it

import { assert } from './errors';
import { EMPTY_BYTES, keyBytes } from './keys';
import { KeyValue } from './types';
import { ValueHolder, ValueSlab, valueCopy } from './value-arena';

/**
 * One revision of one key: a put or a tombstone (a delete). It holds the fields of the key's
 * state and makes the KeyValue on demand (`kv`): an object per revision kept, and the key and
 * value as Uint8Arrays with buffers of their own, cost ~450 bytes per revision more than
 * these fields. The value's bytes are in the store's ValueArena, outside V8's heap.
 */
export class RevEntry implements ValueHolder {
  /** The value's place in the store's arena (set by ValueArena.hold; none for a tombstone). */
  slab: ValueSlab | undefined = undefined;
  vOff = 0;
  vLen = 0;
  /** False once compaction removed the entry from its key's index (history may still hold it). */
  inIndex = true;
  constructor(
    readonly ki: KeyIndex,
    /** The revision's main part: the write transaction's revision. */
    readonly main: number,
    /** Position of this change inside its write transaction. */
    readonly sub: number,
    readonly tombstone: boolean,
    /** Revision of the key's creation (0 for a tombstone). */
    readonly createRevision: number,
    /** The key's version (0 for a tombstone). */
    readonly version: number,
    /** The attached lease (0: none). */
    readonly lease: number,
  ) {}

  /** The value's bytes (a new Buffer on each call). */
  get value(): Uint8Array {
    return this.vLen === 0 ? EMPTY_BYTES : valueCopy(this);
  }

  /**
   * Put: the key's state. Tombstone: the DELETE event's kv (key and modRevision set, the
   * rest zero), as etcd records it. A new object on each call.
   */
  get kv(): KeyValue {
    return { key: this.ki.key, createRevision: this.createRevision, modRevision: this.main, version: this.version, value: this.value, lease: this.lease };
  }

  /** The kv without its value (keysOnly). */
  kvWithoutValue(): KeyValue {
    return { key: this.ki.key, createRevision: this.createRevision, modRevision: this.main, version: this.version, value: EMPTY_BYTES, lease: this.lease };
  }
}

export class KeyIndex {
  /**
   * The key's revisions: one entry alone (most keys: no array, ~56 bytes less per key) or an
   * array of two or more. Empty: undefined.
   * invariant: ordered by (main, sub), strictly increasing.
   * invariant: a tombstone follows a put (never first, never after a tombstone).
   */
  private e: RevEntry | RevEntry[] | undefined = undefined;

  constructor(
    /** The index key: latin1 string of the key's bytes. */
    readonly keyStr: string,
  ) {}

  /** The key's bytes (a new Buffer on each call). */
  get key(): Uint8Array {
    return keyBytes(this.keyStr);
  }

  /** The key's revisions in order (a new array when there is one). */
  get entries(): readonly RevEntry[] {
    const e = this.e;
    return e === undefined ? [] : e instanceof RevEntry ? [e] : e;
  }

  forEachEntry(fn: (en: RevEntry) => void): void {
    const e = this.e;
    if (e === undefined) return;
    if (e instanceof RevEntry) fn(e);
    else for (const en of e) fn(en);
  }

  /** Index of the last entry with main <= rev, or -1. */
  lastAtOrBefore(rev: number): number {
    const e = this.e;
    if (e === undefined) return -1;
    if (e instanceof RevEntry) return e.main <= rev ? 0 : -1;
    let hi = e.length - 1;
    if (e[hi].main <= rev) return hi; // the common case: reading the latest
    let lo = 0;
    if (e[0].main > rev) return -1;
    // invariant: e[lo].main <= rev < e[hi].main
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (e[mid].main <= rev) lo = mid;
      else hi = mid;
    }
    return lo;
  }

  /** The key's state at revision `rev`, or undefined if it did not exist then. */
  at(rev: number): KeyValue | undefined {
    return this.entryAt(rev)?.kv;
  }

  /** The put that is the key's state at revision `rev`, or undefined if it did not exist then. */
  entryAt(rev: number): RevEntry | undefined {
    const i = this.lastAtOrBefore(rev);
    if (i < 0) return undefined;
    const e = this.e!;
    const en = e instanceof RevEntry ? e : e[i];
    return en.tombstone ? undefined : en;
  }

  /** The key's latest state (including changes of a write txn in progress). */
  latest(): KeyValue | undefined {
    return this.latestEntry()?.kv;
  }

  /** The put that is the key's latest state, or undefined. */
  latestEntry(): RevEntry | undefined {
    const last = this.last();
    return last === undefined || last.tombstone ? undefined : last;
  }

  /** The key's last revision (put or tombstone), or undefined. */
  last(): RevEntry | undefined {
    const e = this.e;
    return e === undefined || e instanceof RevEntry ? e : e[e.length - 1];
  }

  /**
   * Appends a new revision. `replaying`: rebuilding from disk, where the first entry may be a
   * tombstone at the compacted revision that compaction will drop again (kept for history).
   */
  append(en: RevEntry, replaying = false): void {
    const e = this.e;
    const last = this.last();
    if (last !== undefined) {
      assert(en.main > last.main || (en.main === last.main && en.sub > last.sub), 'revisions of a key increase');
      assert(!(en.tombstone && last.tombstone), 'a tombstone follows a put');
    } else {
      assert(replaying || !en.tombstone, 'a tombstone follows a put');
    }
    if (e === undefined) this.e = en;
    // A literal: push() onto a short array reserves 17 slots (~130 bytes more per key).
    else if (e instanceof RevEntry) this.e = [e, en];
    else e.push(en);
  }

  /**
   * etcd's keyIndex.compact(rev): removes the revisions <= rev except the latest one, and that
   * one too if it is a tombstone. Calls `dropped` for each removed entry, in order.
   */
  compact(rev: number, dropped: (en: RevEntry) => void): void {
    const i = this.lastAtOrBefore(rev);
    if (i < 0) return;
    const entries = this.entries;
    const n = entries[i].tombstone ? i + 1 : i;
    if (n === 0) return;
    for (let j = 0; j < n; j++) {
      const en = entries[j];
      en.inIndex = false;
      dropped(en);
    }
    const rest = entries.length - n;
    this.e = rest === 0 ? undefined : rest === 1 ? entries[n] : entries.slice(n);
  }

  isEmpty(): boolean {
    return this.e === undefined;
  }
}
