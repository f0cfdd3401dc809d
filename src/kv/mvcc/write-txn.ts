// A write transaction: every change in it gets the same main revision (the store's current
// revision + 1) and sub revisions 0, 1, 2... in order. Reads inside it see its own earlier
// writes (etcd's storeTxnWrite). Nothing is visible to other readers until end().

import type { MvccCore } from './core';
import { assert } from './errors';
import { KeyIndex, RevEntry } from './key-index';
import { keySpan, keyString } from './keys';
import { KeyValue, RangeOptions, RangeResult } from './types';

export class WriteTxn {
  private readonly changes: RevEntry[] = [];
  private ended = false;

  /** @internal Created by MvccCore.write(). */
  constructor(
    private readonly core: MvccCore,
    /** The store's revision when the transaction began; its changes get beginRevision + 1. */
    readonly beginRevision: number,
  ) {}

  /**
   * The revision reads in this transaction see and the response header carries:
   * beginRevision + 1 once something changed, else beginRevision (as etcd).
   */
  get revision(): number {
    return this.changes.length > 0 ? this.beginRevision + 1 : this.beginRevision;
  }

  /** Number of changes so far. */
  get changeCount(): number {
    return this.changes.length;
  }

  /**
   * Puts `value` under `key` with `lease` (0: none). An existing live key keeps its create
   * revision and its version grows by one; a new or deleted key starts a generation at
   * version 1. Returns the key's previous state (seeing this transaction's earlier writes)
   * as the store's entry: its `kv` copies the key and value out, only when asked for.
   * The store keeps the key and value bytes: do not change them afterwards.
   */
  put(key: Uint8Array, value: Uint8Array, lease = 0): RevEntry | undefined {
    return this.putKeyString(keyString(key), value, lease);
  }

  /** put() with the key as its index string (keys.ts: one latin1 char per byte). */
  putKeyString(keyStr: string, value: Uint8Array, lease = 0): RevEntry | undefined {
    this.checkOpen();
    const index = this.core.index;
    let ki = index.get(keyStr);
    if (ki === undefined) {
      ki = new KeyIndex(keyStr);
      index.set(keyStr, ki);
    }
    const prev = ki.latestEntry();
    const rev = this.beginRevision + 1;
    const en = new RevEntry(
      ki,
      rev,
      this.changes.length,
      false,
      prev === undefined ? rev : prev.createRevision,
      prev === undefined ? 1 : prev.version + 1,
      lease,
    );
    this.core.values.hold(en, value);
    ki.append(en);
    this.changes.push(en);
    return prev;
  }

  /**
   * Deletes every live key in the range (same key/rangeEnd meaning as range) and returns
   * their previous states, in key order. Deleting nothing changes nothing.
   */
  deleteRange(key: Uint8Array, rangeEnd?: Uint8Array): KeyValue[] {
    this.checkOpen();
    const index = this.core.index;
    const rev = this.beginRevision + 1;
    const deleted: KeyValue[] = [];
    const visit = (ki: KeyIndex): void => {
      const prev = ki.latest();
      if (prev === undefined) return;
      deleted.push(prev);
      const en = new RevEntry(ki, rev, this.changes.length, true, 0, 0, 0);
      ki.append(en);
      this.changes.push(en);
    };
    // Appending to a key's entries does not change the tree, so it is safe inside forRange.
    const span = keySpan(key, rangeEnd);
    switch (span.kind) {
      case 'single': {
        const ki = index.get(span.low);
        if (ki !== undefined) visit(ki);
        break;
      }
      case 'from': {
        const high = index.maxKey();
        if (high !== undefined && high >= span.low) index.forRange(span.low, high, true, (_k, ki) => visit(ki));
        break;
      }
      case 'between':
        if (span.high > span.low) index.forRange(span.low, span.high, false, (_k, ki) => visit(ki));
        break;
    }
    return deleted;
  }

  /** Range at this transaction's revision (see `revision`), seeing its own writes. */
  range(opts: RangeOptions): RangeResult {
    this.checkOpen();
    return this.core.rangeAtRevision(opts, this.revision);
  }

  /** The key's state in this transaction (seeing its own writes), or undefined. */
  get(key: Uint8Array): KeyValue | undefined {
    this.checkOpen();
    return this.core.index.get(keyString(key))?.latest();
  }

  /**
   * Commits: if anything changed, the store's revision becomes beginRevision + 1, the changes
   * are recorded in history and queued for the next flush, and listeners are notified.
   * Returns the revision for the response header (see `revision`).
   */
  end(): number {
    this.checkOpen();
    this.ended = true;
    const rev = this.revision;
    this.core.endWrite(this, this.changes);
    return rev;
  }

  private checkOpen(): void {
    assert(!this.ended, 'write txn used after end()');
  }
}
