// The Raft log: durable entries in Storage, followed by unstable entries not yet persisted.

import { assert, isRaftError, RaftError } from './errors';
import { Storage } from './storage';
import { Entry, Snapshot } from './types';
import { entriesLimitedBySize } from './util';

/**
 * Entries (and possibly a snapshot) received but not yet written to Storage.
 * invariant: entries[i].index === offset + i
 * invariant: snapshot === undefined || snapshot.metadata.index === offset - 1 (right after restore)
 * invariant: offset <= offsetInProgress <= offset + entries.length
 */
export class Unstable {
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];
  offset: number;
  /**
   * Entries before it were handed out to be written and are not known durable yet (with
   * asynchronous storage writes a Ready can be taken while the write of the last one is in
   * flight; they stay here, readable, until stableTo).
   */
  offsetInProgress: number;

  constructor(offset: number) {
    this.offset = offset;
    this.offsetInProgress = offset;
  }

  /** Entries not yet handed out to be written (a copy: `entries` grows in place). */
  entriesToPersist(): Entry[] {
    return this.entries.slice(this.offsetInProgress - this.offset);
  }

  hasEntriesToPersist(): boolean {
    return this.offsetInProgress < this.offset + this.entries.length;
  }

  /** The entries up to the end were handed out to be written. */
  acceptInProgress(): void {
    this.offsetInProgress = this.offset + this.entries.length;
  }

  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.metadata.index + 1 : undefined;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.metadata.index : undefined;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset].term;
  }

  /** Entries up to (i, t) are now durable. Ignored if the log changed under them since. */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined || gt !== t || i < this.offset) return;
    this.entries = this.entries.slice(i + 1 - this.offset);
    this.offset = i + 1;
    if (this.offsetInProgress < this.offset) this.offsetInProgress = this.offset;
  }

  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.metadata.index === i) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.offsetInProgress = this.offset;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: Entry[]): void {
    const after = ents[0].index;
    if (after === this.offset + this.entries.length) {
      // In place: a leader appends each proposal of a turn here, and copying the whole
      // array each time made the turn quadratic in its proposals. Nothing outside holds
      // this array (entriesToPersist and slice copy).
      for (let i = 0; i < ents.length; i++) this.entries.push(ents[i]);
    } else if (after <= this.offset) {
      // Replace the unstable entries entirely; Storage's conflicting suffix is replaced on persist.
      this.offset = after;
      this.offsetInProgress = after;
      this.entries = ents.slice();
    } else {
      // A write in flight of the replaced suffix is not the log any more: the new entries
      // are written after it, and its stableTo finds other terms there and is ignored.
      this.entries = this.entries.slice(0, after - this.offset).concat(ents);
      if (this.offsetInProgress > after) this.offsetInProgress = after;
    }
  }

  slice(lo: number, hi: number): Entry[] {
    assert(lo >= this.offset && hi <= this.offset + this.entries.length, `unstable.slice[${lo},${hi}) out of bound [${this.offset},${this.offset + this.entries.length}]`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

export class RaftLog {
  readonly unstable: Unstable;
  // invariant: applied <= committed <= lastIndex()
  committed: number;
  applied: number;

  constructor(
    readonly storage: Storage,
    /** Bytes of committed entries handed out per Ready. */
    readonly committedBytesPerReadyMax: number,
    /**
     * Committed entries not yet durable here may be handed out to be applied (the caller
     * persists a Ready's entries before it applies its committed ones). False with
     * asynchronous storage writes: only what is durable here is applied.
     */
    readonly applyUnstable = true,
  ) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  toString(): string {
    return `committed=${this.committed}, applied=${this.applied}, unstable.offset=${this.unstable.offset}, len(unstable.entries)=${this.unstable.entries.length}`;
  }

  /**
   * Appends entries sent by a leader whose previous entry is (index, logTerm). Returns the
   * index of the last new entry, or undefined if the logs do not match at index.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      assert(ci > this.committed, `entry ${ci} conflict with committed entry [committed(${this.committed})]`);
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    assert(ents[0].index - 1 >= this.committed, `after(${ents[0].index - 1}) is out of range [committed(${this.committed})]`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** The index of the first entry that conflicts with (or is missing from) the log; 0 if none. */
  findConflict(ents: Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= index whose term is <= term, and that term: where the logs may
   * match, used for fast back-off of nextIndex (thesis 5.3 optimisation).
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (; index > 0; index--) {
      const t = this.termOrUndefined(index);
      if (t === undefined) return { index, term: 0 };
      if (t <= term) return { index, term: t };
    }
    return { index: 0, term: 0 };
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  /** Committed entries not yet applied. None while a snapshot waits to be applied. */
  nextCommittedEnts(): Entry[] {
    if (this.hasNextOrInProgressSnapshot()) return [];
    const off = Math.max(this.applied + 1, this.firstIndex());
    const hi = this.maxAppliable() + 1;
    if (hi > off) return this.slice(off, hi, this.committedBytesPerReadyMax);
    return [];
  }

  hasNextCommittedEnts(): boolean {
    if (this.hasNextOrInProgressSnapshot()) return false;
    const off = Math.max(this.applied + 1, this.firstIndex());
    return this.maxAppliable() + 1 > off;
  }

  /** The last index that may be applied: committed, and durable here unless applyUnstable. */
  private maxAppliable(): number {
    return this.applyUnstable ? this.committed : Math.min(this.committed, this.stableLastIndex());
  }

  hasNextOrInProgressSnapshot(): boolean {
    return this.unstable.snapshot !== undefined;
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** The last index known durable in Storage and still part of this log. */
  stableLastIndex(): number {
    return Math.min(this.storage.lastIndex(), this.unstable.offset - 1);
  }

  commitTo(toCommit: number): void {
    if (this.committed < toCommit) {
      assert(this.lastIndex() >= toCommit, `tocommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]. Was the raft log corrupted, truncated, or lost?`);
      this.committed = toCommit;
    }
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    assert(this.committed >= i && i >= this.applied, `applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`);
    this.applied = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** Term of entry i. Throws ERR_COMPACTED or ERR_UNAVAILABLE. */
  term(i: number): number {
    const dummy = this.firstIndex() - 1;
    if (i < dummy) throw new RaftError('ERR_COMPACTED');
    if (i > this.lastIndex()) throw new RaftError('ERR_UNAVAILABLE');
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    return this.storage.term(i);
  }

  termOrUndefined(i: number): number | undefined {
    // Bounds first: this is on the hot path (every appended entry is matched), and a thrown
    // error costs a stack trace.
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return undefined;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (isRaftError(e, 'ERR_COMPACTED') || isRaftError(e, 'ERR_UNAVAILABLE')) return undefined;
      throw e;
    }
  }

  zeroTermOnOutOfBounds(i: number): number {
    return this.termOrUndefined(i) ?? 0;
  }

  matchTerm(i: number, t: number): boolean {
    const ours = this.termOrUndefined(i);
    return ours !== undefined && ours === t;
  }

  /** Whether a candidate whose last entry is (lastIndex, term) is at least as up to date (5.4.1). */
  isUpToDate(lastIndex: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Commits up to maxIndex only if that entry is of the current term (5.4.2). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.zeroTermOnOutOfBounds(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  /** Entries from i to the end, within maxBytes (at least one). Throws ERR_COMPACTED. */
  entries(i: number, maxBytes: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxBytes);
  }

  allEntries(): Entry[] {
    return this.entries(this.firstIndex(), Infinity);
  }

  /** Entries in [lo, hi) within maxBytes. Throws ERR_COMPACTED if lo was compacted. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    this.mustCheckOutOfBounds(lo, hi);
    if (lo === hi) return [];
    let ents: Entry[] = [];
    if (lo < this.unstable.offset) {
      const stored = this.storage.entries(lo, Math.min(hi, this.unstable.offset), maxBytes);
      // Storage returned fewer than asked: the size limit was reached.
      if (stored.length < Math.min(hi, this.unstable.offset) - lo) return stored;
      ents = stored;
    }
    if (hi > this.unstable.offset) {
      const uns = this.unstable.slice(Math.max(lo, this.unstable.offset), hi);
      ents = ents.length > 0 ? ents.concat(uns) : uns;
    }
    return entriesLimitedBySize(ents, maxBytes);
  }

  private mustCheckOutOfBounds(lo: number, hi: number): void {
    assert(lo <= hi, `invalid slice ${lo} > ${hi}`);
    const fi = this.firstIndex();
    if (lo < fi) throw new RaftError('ERR_COMPACTED');
    const length = this.lastIndex() + 1 - fi;
    assert(hi <= fi + length, `slice[${lo},${hi}) out of bound [${fi},${this.lastIndex()}]`);
  }
}
