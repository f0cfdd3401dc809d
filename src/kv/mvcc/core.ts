// The in-memory MVCC engine: key index, revisions, history, compaction, hash. Deterministic
// and synchronous. MvccStore adds durability (classic-level) on top of it.

import { crc32 } from './crc32';
import { MvccError, assert } from './errors';
import { KeyIndex, RevEntry } from './key-index';
import { keySpan, spanContains } from './keys';
import { valueSlabBytes } from './limits';
import { OrderedIndex } from './ordered-index';
import { rangeAt } from './range';
import {
  Disposable,
  HashKVResult,
  HistoryQuery,
  HistoryResult,
  KeyValue,
  MvccEvent,
  RangeOptions,
  RangeResult,
  RevisionEvents,
} from './types';
import { ValueArena, ValueArenaStats } from './value-arena';
import { WriteTxn } from './write-txn';

export type RevisionListener = (events: RevisionEvents) => void;

/** etcd's initial revision: an empty store is at revision 1. */
export const INITIAL_REVISION = 1;

export interface MvccCoreOptions {
  /** Size of the slabs values are kept in (tests make it small). */
  valueSlabBytes?: number;
}

export class MvccCore {
  /** @internal The ordered key index, keyed by latin1 key strings. */
  readonly index = new OrderedIndex<KeyIndex>();
  /** invariant: compactRev <= currentRev; currentRev >= 1 */
  protected currentRev = INITIAL_REVISION;
  /** 0: never compacted. */
  protected compactRev = 0;
  /**
   * The changes of every revision in [historyFirstRev, currentRev], in (main, sub) order, in
   * one flat array (an array per revision cost ~56 bytes more per revision); kept for
   * watchers catching up. Holds entries compaction removed from the index only at
   * historyFirstRev = compactRev (so that a watch from the compacted revision is complete).
   * Every revision >= 2 in the range has at least one change.
   * invariant: historyFirstRev === max(compactRev, 1)
   * invariant: history is empty or its last entry is of currentRev
   */
  protected history: RevEntry[] = [];
  protected historyFirstRev = INITIAL_REVISION;
  private openTxn: WriteTxn | undefined;
  private listeners: RevisionListener[] = [];
  /** @internal The bytes of every value held by an entry of the index or the history. */
  readonly values: ValueArena;

  constructor(opts: MvccCoreOptions = {}) {
    this.values = new ValueArena(opts.valueSlabBytes ?? valueSlabBytes);
  }

  /** The current revision: that of the last write transaction that changed something. */
  get revision(): number {
    return this.currentRev;
  }

  /** The revision of the last compaction, 0 if none. Reads below it fail with ERR_COMPACTED. */
  get compactRevision(): number {
    return this.compactRev;
  }

  /** Number of keys in the index, live or deleted-but-not-compacted. */
  get indexedKeyCount(): number {
    return this.index.size;
  }

  /**
   * Range read (etcd's Range with its v3.4 server-side filtering, sorting and limit).
   * revision 0: current; above current: ERR_FUTURE_REV; below the compacted: ERR_COMPACTED.
   * Returned KeyValues are made for the caller (the store keeps its own packed copy).
   */
  range(opts: RangeOptions): RangeResult {
    return this.rangeAtRevision(opts, this.currentRev);
  }

  /** One key's state at `revision` (0: current), or undefined. Same errors as range. */
  get(key: Uint8Array, revision = 0): KeyValue | undefined {
    const r = this.range({ key, revision });
    return r.kvs.length > 0 ? r.kvs[0] : undefined;
  }

  /** @internal Range as seen at `curRev` (a write txn sees one revision ahead). */
  rangeAtRevision(opts: RangeOptions, curRev: number): RangeResult {
    const rev = this.readRevision(opts.revision ?? 0, curRev);
    return rangeAt(this.index, opts, rev);
  }

  /**
   * Starts the write transaction of the next revision. One at a time: end() it before the
   * next write() or compact().
   */
  write(): WriteTxn {
    assert(this.openTxn === undefined, 'one write txn at a time');
    this.checkWritable();
    const tw = new WriteTxn(this, this.currentRev);
    this.openTxn = tw;
    return tw;
  }

  /** A one-put write transaction. Returns the header revision and the key's previous state. */
  put(key: Uint8Array, value: Uint8Array, lease = 0): { revision: number; prevKv: KeyValue | undefined } {
    const tw = this.write();
    const prevKv = tw.put(key, value, lease)?.kv;
    return { revision: tw.end(), prevKv };
  }

  /** A one-delete write transaction. Returns the header revision and the deleted keys' previous states. */
  deleteRange(key: Uint8Array, rangeEnd?: Uint8Array): { revision: number; deleted: KeyValue[] } {
    const tw = this.write();
    const deleted = tw.deleteRange(key, rangeEnd);
    return { revision: tw.end(), deleted };
  }

  /** @internal Called by WriteTxn.end(). */
  endWrite(tw: WriteTxn, changes: RevEntry[]): void {
    assert(this.openTxn === tw, 'the open write txn ends');
    this.openTxn = undefined;
    if (changes.length === 0) return;
    const rev = this.currentRev + 1;
    assert(changes[0].main === rev, 'a write txn writes the next revision');
    this.currentRev = rev;
    for (const en of changes) this.history.push(en);
    this.committed(changes);
    if (this.listeners.length === 0) return;
    // The events (each with its key, value and previous state copied out) are made only when
    // a listener reads them: the watch hub does when some watcher is synced, and most
    // revisions of a busy store are watched by nobody.
    this.notify(new CommittedRevision(rev, changes));
  }

  /**
   * Subscribes to every committed write transaction, called synchronously inside end() with
   * its events (prevKv set when the key existed before the transaction). Read `events` inside
   * the call: they are made on first reading, and a compaction after it could drop the
   * previous states. Event objects are shared between listeners: never mutate them.
   */
  onRevision(listener: RevisionListener): Disposable {
    this.listeners = [...this.listeners, listener];
    return {
      dispose: () => {
        this.listeners = this.listeners.filter((l) => l !== listener);
      },
    };
  }

  private notify(ev: RevisionEvents): void {
    let failure: unknown;
    for (const l of this.listeners) {
      try {
        l(ev);
      } catch (e) {
        failure ??= e;
      }
    }
    // Every listener got the event; a throwing one is a bug that must not go unnoticed.
    if (failure !== undefined) throw failure;
  }

  /**
   * etcd's Compact(rev): removes every revision <= rev that is superseded at rev, keeping
   * each key's latest revision <= rev unless it is a deletion. rev <= the compacted
   * revision: ERR_COMPACTED; above current: ERR_FUTURE_REV. Does not change the revision.
   */
  compact(rev: number): void {
    assert(this.openTxn === undefined, 'no compaction inside a write txn');
    this.checkWritable();
    if (rev <= this.compactRev) throw new MvccError('ERR_COMPACTED');
    if (rev > this.currentRev) throw new MvccError('ERR_FUTURE_REV');
    const h = this.history;
    const drop = this.historyIndexOf(rev); // the changes of revisions [historyFirstRev, rev) leave
    // Entries compaction removed from the index earlier were kept only for these records.
    for (let i = 0; i < drop; i++) if (!h[i].inIndex) this.entryGone(h[i]);
    // Only keys written after the last compaction can have anything left to compact.
    const touched = new Set<KeyIndex>();
    for (let i = this.historyIndexOf(this.compactRev + 1); i < h.length && h[i].main <= rev; i++) touched.add(h[i].ki);
    const gone = (en: RevEntry): void => {
      // Entries of revision `rev` itself stay in history, so their records stay too.
      if (en.main < rev) this.entryGone(en);
    };
    for (const ki of touched) {
      ki.compact(rev, gone);
      if (ki.isEmpty() && this.index.get(ki.keyStr) === ki) this.index.delete(ki.keyStr);
    }
    this.history = h.slice(drop);
    this.historyFirstRev = rev;
    this.compactRev = rev;
    this.checkHistory();
    if (this.values.wasteful()) this.values.evacuate((relocate) => this.forEachHeld(relocate));
  }

  /** Bytes of values held, and of the slabs holding them. */
  valueStats(): ValueArenaStats {
    return this.values.stats();
  }

  /** @internal Calls `fn` on every entry the store holds: in the index, in history or both (then twice). */
  forEachHeld(fn: (en: RevEntry) => void): void {
    this.index.forEach((ki) => ki.forEachEntry(fn));
    for (const en of this.history) fn(en);
  }

  /** An entry left both the index and the history: its value is released, its record deleted. */
  protected entryGone(en: RevEntry): void {
    this.values.release(en);
    this.recordGone(en);
  }

  /**
   * Historical events of revisions in [fromRevision, toRevision], grouped by revision, for
   * watchers catching up. fromRevision below the compacted revision: ERR_COMPACTED (etcd's
   * watch rule); events of the compacted revision itself are all still there. prevKv is set
   * when the key's previous state is still readable (not for events at the compacted revision).
   */
  eventsBetween(q: HistoryQuery): HistoryResult {
    if (q.fromRevision < this.compactRev) throw new MvccError('ERR_COMPACTED');
    const from = Math.max(q.fromRevision, this.historyFirstRev);
    const to = q.toRevision === undefined || q.toRevision <= 0 ? this.currentRev : Math.min(q.toRevision, this.currentRev);
    const span = q.key === undefined ? undefined : keySpan(q.key, q.rangeEnd);
    const eventsMax = q.eventsMax ?? 0;
    const revisions: RevisionEvents[] = [];
    let n = 0;
    const h = this.history;
    for (let i = this.historyIndexOf(from); i < h.length && h[i].main <= to; ) {
      const r = h[i].main;
      let events: MvccEvent[] | undefined;
      for (; i < h.length && h[i].main === r; i++) {
        const en = h[i];
        if (span !== undefined && !spanContains(span, en.ki.keyStr)) continue;
        (events ??= []).push(eventOf(en));
      }
      if (events === undefined) continue;
      revisions.push({ revision: r, events });
      n += events.length;
      if (eventsMax > 0 && n >= eventsMax) return { revisions, nextRevision: r + 1 };
    }
    return { revisions, nextRevision: Math.max(to + 1, from) };
  }

  /** Position in history of the first change of revision `rev` or later (history.length if none). */
  protected historyIndexOf(rev: number): number {
    const h = this.history;
    let lo = 0;
    let hi = h.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (h[mid].main < rev) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * A deterministic CRC-32 of the key index up to `revision` (0: current): every revision
   * entry (key, revisions, version, lease, value, deletion) in key then revision order. Members
   * with the same history (writes and compactions) agree. revision <= compacted:
   * ERR_COMPACTED; above current: ERR_FUTURE_REV.
   */
  hashKV(revision = 0): HashKVResult {
    if (revision > 0 && revision <= this.compactRev) throw new MvccError('ERR_COMPACTED');
    if (revision > this.currentRev) throw new MvccError('ERR_FUTURE_REV');
    const rev = revision > 0 ? revision : this.currentRev;
    const scratch = Buffer.alloc(HASH_SCRATCH_BYTES);
    let h = 0;
    this.index.forEach((ki) => {
      const key = ki.key;
      for (const en of ki.entries) {
        if (en.main > rev) break;
        const kv = { key, value: en.value };
        writeUint53(scratch, 0, en.main);
        scratch.writeUInt32BE(en.sub, 8);
        writeUint53(scratch, 12, en.createRevision);
        writeUint53(scratch, 20, en.version);
        writeInt53(scratch, 28, en.lease);
        scratch[36] = en.tombstone ? 1 : 0;
        scratch.writeUInt32BE(kv.key.length, 37);
        scratch.writeUInt32BE(kv.value.length, 41);
        h = crc32(scratch, h);
        h = crc32(kv.key, h);
        h = crc32(kv.value, h);
      }
    });
    return { hash: h, hashRevision: rev, compactRevision: this.compactRev, revision: this.currentRev };
  }

  /** Hook: a write transaction committed these changes (MvccStore queues them to disk). */
  protected committed(_changes: RevEntry[]): void {}

  /** Hook: an entry left both the index and the history (MvccStore deletes its record). */
  protected recordGone(_en: RevEntry): void {}

  /** Hook: refuse writes (MvccStore, once closed or failed). */
  protected checkWritable(): void {}

  /** The revision a read at `rev` (0: current) sees, as etcd's rangeKeys checks it. */
  private readRevision(rev: number, curRev: number): number {
    if (rev > curRev) throw new MvccError('ERR_FUTURE_REV');
    if (rev <= 0) return curRev;
    if (rev < this.compactRev) throw new MvccError('ERR_COMPACTED');
    return rev;
  }

  protected checkHistory(): void {
    assert(this.historyFirstRev === Math.max(this.compactRev, 1), 'history starts at the compacted revision');
    const h = this.history;
    assert(h.length === 0 ? this.currentRev === 1 || this.currentRev === this.compactRev : h[h.length - 1].main === this.currentRev, 'history ends at the current revision');
    assert(h.length === 0 || h[0].main >= this.historyFirstRev, 'history starts at the compacted revision');
  }
}

/** The event of one change; prevKv is the key's state just before the change's revision. */
function eventOf(en: RevEntry): MvccEvent {
  return { type: en.tombstone ? 'DELETE' : 'PUT', kv: en.kv, prevKv: en.ki.at(en.main - 1) };
}

const HASH_SCRATCH_BYTES = 45;

function writeUint53(b: Buffer, off: number, n: number): void {
  b.writeUInt32BE(Math.floor(n / 0x1_0000_0000) >>> 0, off);
  b.writeUInt32BE(n >>> 0, off + 4);
}

function writeInt53(b: Buffer, off: number, n: number): void {
  // Two's complement over 64 bits, for negative lease ids.
  const hi = Math.floor(n / 0x1_0000_0000);
  b.writeInt32BE(hi | 0, off);
  b.writeUInt32BE((n - hi * 0x1_0000_0000) >>> 0, off + 4);
}

/** What listeners get for one committed write transaction: its events are made on first reading. */
class CommittedRevision implements RevisionEvents {
  private made: MvccEvent[] | undefined = undefined;

  constructor(
    readonly revision: number,
    private readonly changes: readonly RevEntry[],
  ) {}

  get events(): MvccEvent[] {
    return (this.made ??= this.changes.map(eventOf));
  }
}
