// Durable Raft storage on classic-level: entries, hard state and snapshot metadata.
//
// The log from the last snapshot on is also kept in memory, because the core reads Storage
// synchronously; --snapshot-count bounds its length. The state machine keeps its own data
// (the snapshot here is metadata only: it marks where the log was compacted).

import { ClassicLevel } from 'classic-level';
import { Packr } from 'msgpackr';
import { assert, RaftError } from './errors';
import { InitialState, MemoryStorage, Storage } from './storage';
import { ConfState, emptyConfState, emptyHardState, Entry, HardState, NodeId, Snapshot, SnapshotMetadata } from './types';
import { EntryArena } from './entry-arena';

const packr = new Packr({ useRecords: false, moreTypes: false });

const keyHardState = Buffer.from('h');
const keySnapshot = Buffer.from('s');
const entryPrefix = 0x65; // 'e'

function entryKey(index: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b[0] = entryPrefix;
  b.writeBigUInt64BE(BigInt(index), 1);
  return b;
}

interface StoredEntry {
  t: number; // term
  y: number; // type
  d: Uint8Array; // data
}

export interface SaveRequest {
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  /** fsync before resolving (a changed term, vote, entries or snapshot). */
  sync: boolean;
}

export class DiskStorage implements Storage {
  private hardState: HardState = { ...emptyHardState };
  private snapMeta: SnapshotMetadata = { index: 0, term: 0, confState: emptyConfState() };
  // invariant: ents.firstIndex === snapMeta.index + 1
  private ents = new EntryArena(1);
  private startConfState: ConfState | undefined;
  /** The hard state in memory has a commit index not written yet (see save). */
  private hardStateUnwritten = false;
  /** Writes are chained so that they reach the disk in call order. */
  private writing: Promise<void> = Promise.resolve();

  private constructor(private readonly db: ClassicLevel<Buffer, Buffer>) {}

  static async open(dir: string): Promise<DiskStorage> {
    const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    const s = new DiskStorage(db);
    const hs = await db.get(keyHardState);
    if (hs) s.hardState = packr.unpack(hs) as HardState;
    const sm = await db.get(keySnapshot);
    if (sm) s.snapMeta = packr.unpack(sm) as SnapshotMetadata;
    s.ents.reset(s.snapMeta.index + 1);
    let expected = s.snapMeta.index + 1;
    for await (const [k, v] of db.iterator({ gte: entryKey(expected), lt: Buffer.from([entryPrefix + 1]) })) {
      const index = Number(k.readBigUInt64BE(1));
      if (index !== expected) break; // a gap can only follow a torn truncation: the rest is garbage
      const e = packr.unpack(v) as StoredEntry;
      s.ents.push({ term: e.t, index, type: e.y, data: e.d });
      expected++;
    }
    // The commit index can never be past what is stored (it is persisted with or after the entries).
    if (s.hardState.commit > s.lastIndex()) s.hardState = { ...s.hardState, commit: s.lastIndex() };
    return s;
  }

  /**
   * Writes the initial configuration of a new cluster (the same entries on every founding
   * member, as MemoryStorage.bootstrap makes them). Only on an empty storage.
   */
  async bootstrap(confState: ConfState, contexts?: ReadonlyMap<NodeId, string>): Promise<void> {
    assert(this.isEmpty(), 'bootstrap of a storage that is not empty');
    const boot = MemoryStorage.bootstrap(confState, contexts);
    const last = boot.lastIndex();
    await this.save({ entries: last > 0 ? boot.entries(1, last + 1, Infinity) : [], hardState: boot.hardStateNow(), sync: true });
  }

  /** Whether anything was ever stored (a member restarting rather than starting). */
  isEmpty(): boolean {
    return this.hardState.term === 0 && this.ents.length === 0 && this.snapMeta.index === 0;
  }

  /**
   * The configuration and commit index to start from are the state machine's: it persists
   * the configuration as of its applied index, and everything it applied was committed.
   */
  startFrom(applied: { index: number; term: number; confState: ConfState | undefined }): void {
    if (applied.confState) this.startConfState = cloneCs(applied.confState);
    if (applied.index > this.lastIndex() && applied.confState) {
      // The state machine restored a snapshot and we stopped before recording it here: the
      // log restarts after it.
      void this.save({ snapshot: { data: new Uint8Array(0), metadata: { index: applied.index, term: applied.term, confState: applied.confState } }, entries: [], sync: true });
    }
    if (applied.index > this.hardState.commit) this.hardState = { ...this.hardState, commit: Math.min(applied.index, this.lastIndex()) };
  }

  initialState(): InitialState {
    return { hardState: { ...this.hardState }, confState: cloneCs(this.startConfState ?? this.snapMeta.confState) };
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.snapMeta.index + 1;
    if (lo < offset) throw new RaftError('ERR_COMPACTED');
    if (hi > this.lastIndex() + 1) throw new RaftError('ERR_UNAVAILABLE', `entries' hi(${hi}) is out of bound lastindex(${this.lastIndex()})`);
    return this.ents.slice(lo, hi, maxBytes);
  }

  term(i: number): number {
    if (i === this.snapMeta.index) return this.snapMeta.term;
    if (i < this.snapMeta.index) throw new RaftError('ERR_COMPACTED');
    if (i > this.lastIndex()) throw new RaftError('ERR_UNAVAILABLE');
    return this.ents.term(i);
  }

  firstIndex(): number {
    return this.snapMeta.index + 1;
  }

  lastIndex(): number {
    return this.snapMeta.index + this.ents.length;
  }

  snapshot(): Snapshot {
    return { data: new Uint8Array(0), metadata: this.snapMeta };
  }

  hardStateNow(): HardState {
    return { ...this.hardState };
  }

  /**
   * Persists one Ready in one batch (snapshot, then entries replacing any conflicting
   * suffix, then hard state). The in-memory view changes at once; the promise resolves when
   * the batch is on disk (fsynced when req.sync).
   */
  save(req: SaveRequest): Promise<void> {
    // A chained batch: LevelDB's array form costs several times the CPU per operation.
    const batch = this.db.batch();
    if (req.snapshot && req.snapshot.metadata.index > this.snapMeta.index) {
      const m = req.snapshot.metadata;
      for (let i = this.ents.firstIndex; i <= this.ents.lastIndex; i++) batch.del(entryKey(i));
      this.snapMeta = { index: m.index, term: m.term, confState: cloneCs(m.confState) };
      this.ents.reset(m.index + 1);
      batch.put(keySnapshot, packr.pack(this.snapMeta));
    }
    if (req.entries.length > 0) {
      let entries = req.entries;
      const first = this.firstIndex();
      if (entries[entries.length - 1].index >= first) {
        if (entries[0].index < first) entries = entries.slice(first - entries[0].index);
        const at = entries[0].index - first;
        assert(at <= this.ents.length, `missing log entry [last: ${this.lastIndex()}, append at: ${entries[0].index}]`);
        // Entries past the new ones are a conflicting suffix: delete them on disk too.
        const newLast = entries[entries.length - 1].index;
        for (let i = newLast + 1; i <= this.lastIndex(); i++) batch.del(entryKey(i));
        // Appending at the end is the common case: nothing to truncate.
        if (at < this.ents.length) this.ents.truncateFrom(entries[0].index);
        for (const e of entries) this.ents.push(e);
        for (const e of entries) {
          const stored: StoredEntry = { t: e.term, y: e.type, d: e.data };
          batch.put(entryKey(e.index), packr.pack(stored));
        }
      }
    }
    if (req.hardState) this.hardState = { ...req.hardState };
    if (req.hardState || this.hardStateUnwritten) {
      if (batch.length === 0 && !req.sync) {
        // Only the commit index changed (a changed term or vote always syncs): it can be
        // learned again after a restart, so it waits for the next write instead of costing
        // one of its own (followers learn a commit in an append of its own after every write).
        this.hardStateUnwritten = true;
        void batch.close();
        return this.writing;
      }
      this.hardStateUnwritten = false;
      batch.put(keyHardState, packr.pack(this.hardState));
    }
    if (batch.length === 0) {
      void batch.close();
      return this.writing;
    }
    this.writing = this.writeBatch(batch, req.sync);
    return this.writing;
  }

  /** Writes `batch` after every write before it (closing it if that failed). */
  private writeBatch(batch: ReturnType<DiskStorage['db']['batch']>, sync: boolean): Promise<void> {
    return this.writing.then(
      () => batch.write({ sync }),
      async (e: unknown) => {
        await batch.close();
        throw e;
      },
    );
  }

  /**
   * Records a snapshot point at `index` (applied and durable in the state machine) and
   * drops the log up to `compactIndex` (<= index), keeping some entries for followers that
   * are only a little behind.
   */
  compact(meta: SnapshotMetadata, compactIndex: number): Promise<void> {
    assert(compactIndex <= meta.index, 'compact index past the snapshot index');
    if (compactIndex <= this.snapMeta.index) return this.writing;
    assert(compactIndex <= this.lastIndex(), `compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`);
    const batch = this.db.batch();
    const dropCount = compactIndex - this.snapMeta.index;
    for (let i = 0; i < dropCount; i++) batch.del(entryKey(this.snapMeta.index + 1 + i));
    // The log now starts after compactIndex: the snapshot point recorded is the compaction
    // point with its term; the confState is the one at meta.index, which is at least as new.
    const term = this.term(compactIndex);
    this.ents.dropBefore(compactIndex + 1);
    this.snapMeta = { index: compactIndex, term, confState: cloneCs(meta.confState) };
    batch.put(keySnapshot, packr.pack(this.snapMeta));
    this.writing = this.writeBatch(batch, true);
    return this.writing;
  }

  async close(): Promise<void> {
    if (this.hardStateUnwritten) void this.save({ entries: [], sync: true }).catch(() => undefined);
    await this.writing.catch(() => undefined);
    await this.db.close();
  }
}

function cloneCs(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners], votersOutgoing: [...cs.votersOutgoing], learnersNext: [...cs.learnersNext], autoLeave: cs.autoLeave };
}
