// The Storage interface the core reads from, and an in-memory implementation.
//
// Storage holds what is durable: the core never writes to it. The application appends the
// entries and hard state of each Ready to it (after making them durable) and calls advance().

import { assert, RaftError } from './errors';
import { encodeConfChange } from './confchange';
import { ConfChangeSingle, ConfState, emptyConfState, emptyHardState, Entry, EntryType, HardState, NodeId, Snapshot } from './types';
import { entriesLimitedBySize } from './util';

export interface InitialState {
  hardState: HardState;
  confState: ConfState;
}

export interface Storage {
  initialState(): InitialState;
  /** Entries in [lo, hi), at least one entry even past maxBytes. Throws ERR_COMPACTED / ERR_UNAVAILABLE. */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of entry i, for i in [firstIndex()-1, lastIndex()]. Throws ERR_COMPACTED / ERR_UNAVAILABLE. */
  term(i: number): number;
  lastIndex(): number;
  /** Index of the first entry still available (the one after the latest snapshot). */
  firstIndex(): number;
  /** The most recent snapshot. Throws ERR_SNAPSHOT_TEMPORARILY_UNAVAILABLE if not ready yet. */
  snapshot(): Snapshot;
}

/**
 * Storage in memory. ents[0] is a dummy entry standing for the snapshot's index and term.
 * invariant: ents[i].index === ents[0].index + i
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = { ...emptyHardState };
  private snap: Snapshot = { data: new Uint8Array(0), metadata: { index: 0, term: 0, confState: emptyConfState() } };
  private ents: Entry[] = [{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }];

  /**
   * A storage for a member of a new cluster. As in etcd, the initial configuration is written
   * to the log as committed ConfChange entries of term 1 (one per member), so that a member
   * added later learns the whole membership history by replaying the log from index 1.
   * An empty configuration gives an empty storage (a member that will join a cluster).
   * `contexts` gives each node's entry its ConfChange context (the application's
   * description of the member, as etcd puts it there).
   */
  static bootstrap(confState: ConfState, contexts?: ReadonlyMap<NodeId, string>): MemoryStorage {
    const s = new MemoryStorage();
    const changes: ConfChangeSingle[] = [
      ...confState.voters.map((nodeId): ConfChangeSingle => ({ type: 'addNode', nodeId })),
      ...confState.learners.map((nodeId): ConfChangeSingle => ({ type: 'addLearner', nodeId })),
    ];
    assert(confState.votersOutgoing.length === 0, 'cannot bootstrap a joint configuration');
    if (changes.length === 0) return s;
    s.append(
      changes.map((c, i) => ({
        term: 1,
        index: i + 1,
        type: EntryType.ConfChange,
        data: encodeConfChange({ transition: 'auto', changes: [c], context: contexts?.get(c.nodeId) }),
      })),
    );
    s.setHardState({ term: 1, vote: 0, commit: changes.length });
    return s;
  }

  initialState(): InitialState {
    return { hardState: { ...this.hardState }, confState: cloneConfState(this.snap.metadata.confState) };
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  hardStateNow(): HardState {
    return { ...this.hardState };
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.ents[0].index;
    if (lo <= offset) throw new RaftError('ERR_COMPACTED');
    if (hi > this.lastIndex() + 1) throw new RaftError('ERR_UNAVAILABLE', `entries' hi(${hi}) is out of bound lastindex(${this.lastIndex()})`);
    if (this.ents.length === 1) throw new RaftError('ERR_UNAVAILABLE');
    return entriesLimitedBySize(this.ents.slice(lo - offset, hi - offset), maxBytes);
  }

  term(i: number): number {
    const offset = this.ents[0].index;
    if (i < offset) throw new RaftError('ERR_COMPACTED');
    if (i - offset >= this.ents.length) throw new RaftError('ERR_UNAVAILABLE');
    return this.ents[i - offset].term;
  }

  lastIndex(): number {
    return this.ents[0].index + this.ents.length - 1;
  }

  firstIndex(): number {
    return this.ents[0].index + 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces the contents with a snapshot received from the leader. */
  applySnapshot(snap: Snapshot): void {
    if (this.snap.metadata.index >= snap.metadata.index) throw new RaftError('ERR_SNAP_OUT_OF_DATE');
    this.snap = snap;
    this.ents = [{ term: snap.metadata.term, index: snap.metadata.index, type: EntryType.Normal, data: new Uint8Array(0) }];
  }

  /** Makes a snapshot at applied index i (i <= lastIndex) holding the state machine's data. */
  createSnapshot(i: number, confState: ConfState | undefined, data: Uint8Array): Snapshot {
    if (i <= this.snap.metadata.index) throw new RaftError('ERR_SNAP_OUT_OF_DATE');
    const offset = this.ents[0].index;
    assert(i <= this.lastIndex(), `snapshot ${i} is out of bound lastindex(${this.lastIndex()})`);
    this.snap = {
      data,
      metadata: {
        index: i,
        term: this.ents[i - offset].term,
        confState: confState ? cloneConfState(confState) : this.snap.metadata.confState,
      },
    };
    return this.snap;
  }

  /** Discards entries up to and including compactIndex (which must be <= the applied index). */
  compact(compactIndex: number): void {
    const offset = this.ents[0].index;
    if (compactIndex <= offset) throw new RaftError('ERR_COMPACTED');
    assert(compactIndex <= this.lastIndex(), `compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`);
    const i = compactIndex - offset;
    const head = this.ents[i];
    this.ents = [{ term: head.term, index: head.index, type: EntryType.Normal, data: new Uint8Array(0) }, ...this.ents.slice(i + 1)];
  }

  /** Appends entries, truncating any existing suffix they conflict with. */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    if (last < first) return; // entirely compacted already
    if (first > entries[0].index) entries = entries.slice(first - entries[0].index);
    const offset = entries[0].index - this.ents[0].index;
    assert(offset <= this.ents.length, `missing log entry [last: ${this.lastIndex()}, append at: ${entries[0].index}]`);
    if (offset < this.ents.length) this.ents.length = offset;
    for (const e of entries) this.ents.push(e);
  }
}

export function cloneConfState(cs: ConfState): ConfState {
  return {
    voters: [...cs.voters],
    learners: [...cs.learners],
    votersOutgoing: [...cs.votersOutgoing],
    learnersNext: [...cs.learnersNext],
    autoLeave: cs.autoLeave,
  };
}
