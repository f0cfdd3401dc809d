// Durable Raft storage: entries, hard state and the compaction point, in a write-ahead log
// of segment files (wal.ts).
//
// The core reads Storage synchronously, so every entry's term and place are kept in memory
// from the last snapshot on (--snapshot-count bounds how many), and the data of the most
// recent writes; older entries' data are read back from the log files (log-entries.ts). The
// state machine keeps its own data (the snapshot here is metadata only: it marks where the
// log was compacted).
//
// Records (the first byte of a payload says which):
//   entries    [1][f64 index of the first][u32 count] then per entry [f64 term][u8 type][u32 length][data]
//              — entries from that index on replace whatever the log held there and after
//   hard state [2][f64 term][f64 vote][f64 commit]
//   snapshot   [3][msgpack SnapshotMetadata] — the log restarts after it (a snapshot installed)
//   state      [4][msgpack { snap, hs }] — every segment's first record: the compaction point
//              and hard state as they were, so that older segments can be deleted
//   compact    [5][msgpack SnapshotMetadata] — entries up to it are gone (log compaction)

import { Packr } from 'msgpackr';
import { assert, RaftError } from './errors';
import { InitialState, MemoryStorage, Storage } from './storage';
import { ConfState, emptyConfState, emptyHardState, Entry, HardState, NodeId, Snapshot, SnapshotMetadata } from './types';
import { LogEntries } from './log-entries';
import { sealRecord, Wal, WalOptions, walRecordHeaderBytes } from './wal';

const packr = new Packr({ useRecords: false, moreTypes: false });

const enum Rec {
  Entries = 1,
  HardState = 2,
  Snapshot = 3,
  State = 4,
  Compact = 5,
}

const entriesHeadBytes = 1 + 8 + 4;
const entryHeadBytes = 8 + 1 + 4;
const hardStateBytes = 1 + 8 * 3;

export interface SaveRequest {
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  /** fsync before resolving (a changed term, vote, entries or snapshot). */
  sync: boolean;
}

export interface DiskStorageOptions extends WalOptions {
  /** Bytes of recent writes kept in memory; older entries are read back from the log files. */
  cacheBytes?: number;
}

export class DiskStorage implements Storage {
  private hardState: HardState = { ...emptyHardState };
  private snapMeta: SnapshotMetadata = { index: 0, term: 0, confState: emptyConfState() };
  // invariant: ents.firstIndex === snapMeta.index + 1
  private ents!: LogEntries;
  private startConfState: ConfState | undefined;
  /** The hard state in memory has a commit index not written yet (see save). */
  private hardStateUnwritten = false;
  /** The hard state as last written (what a new segment restates). */
  private writtenHardState: HardState = { ...emptyHardState };
  /** The last write's promise: later writes reach the disk after it. */
  private writing: Promise<void> = Promise.resolve();
  private wal!: Wal;

  private constructor() {}

  static async open(dir: string, opts: DiskStorageOptions = {}): Promise<DiskStorage> {
    const s = new DiskStorage();
    /** Set when replay found entries after a gap: a later compact record must cover it. */
    let gapBefore = 0;
    s.ents = new LogEntries(1, (seq, offset, len) => s.wal.read(seq, offset, len), opts.cacheBytes);
    // Entries found on opening stay on disk: one block per segment, read back when asked for.
    let segSeq = -1;
    let segBlock = -1;
    s.wal = Wal.open(dir, opts, (p, seq, payloadAt) => {
      switch (p[0] as Rec) {
        case Rec.Entries: {
          let first = p.readDoubleLE(1);
          const count = p.readUInt32LE(9);
          let at = entriesHeadBytes;
          // Entries all before the compaction point (a segment restating an older one) are gone.
          if (first + count - 1 < s.ents.firstIndex) break;
          if (first > s.lastIndex() + 1) {
            // Entries after a gap: the older segments were deleted by a compaction that a
            // later record states.
            gapBefore = first;
            s.snapMeta = { ...s.snapMeta, index: first - 1, term: 0 };
            s.ents.reset(first);
          } else if (first <= s.lastIndex()) {
            s.ents.truncateFrom(Math.max(first, s.ents.firstIndex));
          }
          if (seq !== segSeq || !s.ents.hasBlock(segBlock)) {
            segSeq = seq;
            segBlock = s.ents.addBlock(seq, 0, 0, undefined);
          }
          for (let i = 0; i < count; i++, first++) {
            const term = p.readDoubleLE(at);
            const type = p[at + 8];
            const len = p.readUInt32LE(at + 9);
            at += entryHeadBytes;
            if (first >= s.ents.firstIndex) s.ents.push(first, term, type, segBlock, payloadAt + at, len);
            at += len;
          }
          break;
        }
        case Rec.HardState:
          s.hardState = { term: p.readDoubleLE(1), vote: p.readDoubleLE(9), commit: p.readDoubleLE(17) };
          break;
        case Rec.Snapshot: {
          const m = packr.unpack(p.subarray(1)) as SnapshotMetadata;
          s.snapMeta = m;
          s.ents.reset(m.index + 1);
          gapBefore = 0;
          break;
        }
        case Rec.State: {
          const st = packr.unpack(p.subarray(1)) as { snap: SnapshotMetadata; hs: HardState };
          s.hardState = st.hs;
          if (gapBefore === 0 || st.snap.index + 1 >= gapBefore) s.replayCompact(st.snap);
          if (st.snap.index + 1 >= gapBefore) gapBefore = 0;
          break;
        }
        case Rec.Compact: {
          const m = packr.unpack(p.subarray(1)) as SnapshotMetadata;
          if (gapBefore === 0 || m.index + 1 >= gapBefore) s.replayCompact(m);
          if (m.index + 1 >= gapBefore) gapBefore = 0;
          break;
        }
        default:
          throw new Error(`raft log in ${dir}: unknown record type ${p[0]}`);
      }
    });
    if (gapBefore !== 0) throw new Error(`raft log in ${dir} is missing the entries before ${gapBefore}`);
    s.writtenHardState = { ...s.hardState };
    // The commit index can never be past what is stored (it is persisted with or after the entries).
    if (s.hardState.commit > s.lastIndex()) s.hardState = { ...s.hardState, commit: s.lastIndex() };
    return s;
  }

  /** Replays a compaction point: entries up to it go (all of them if it is past the last). */
  private replayCompact(m: SnapshotMetadata): void {
    if (m.index <= this.snapMeta.index && this.snapMeta.term !== 0) return;
    if (m.index > this.lastIndex()) this.ents.reset(m.index + 1);
    else if (m.index >= this.ents.firstIndex) this.ents.dropBefore(m.index + 1);
    this.snapMeta = { index: m.index, term: m.term, confState: cloneCs(m.confState) };
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

  /** Writes are made on the calling thread: a save is durable when it returns (wal.ts, mode 'inline'). */
  get writesInline(): boolean {
    return this.wal.mode === 'inline';
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
   * Persists one Ready in one write (snapshot, then entries replacing any conflicting
   * suffix, then hard state). The in-memory view changes at once; the promise resolves when
   * the write is on disk (fdatasynced when req.sync).
   */
  save(req: SaveRequest): Promise<void> {
    const segmentState = { snap: this.snapMeta, hs: this.writtenHardState };
    let snapshot: SnapshotMetadata | undefined;
    if (req.snapshot && req.snapshot.metadata.index > this.snapMeta.index) {
      const m = req.snapshot.metadata;
      this.snapMeta = { index: m.index, term: m.term, confState: cloneCs(m.confState) };
      this.ents.reset(m.index + 1);
      snapshot = this.snapMeta;
    }
    let entries = req.entries;
    if (entries.length > 0) {
      const first = this.firstIndex();
      if (entries[entries.length - 1].index < first) entries = [];
      else if (entries[0].index < first) entries = entries.slice(first - entries[0].index);
    }
    if (entries.length > 0) {
      const at = entries[0].index - this.firstIndex();
      assert(at <= this.ents.length, `missing log entry [last: ${this.lastIndex()}, append at: ${entries[0].index}]`);
      // Appending at the end is the common case: nothing to truncate.
      if (at < this.ents.length) this.ents.truncateFrom(entries[0].index);
    }
    if (req.hardState) this.hardState = { ...req.hardState };
    let hardState = false;
    if (req.hardState || this.hardStateUnwritten) {
      if (!snapshot && entries.length === 0 && !req.sync) {
        // Only the commit index changed (a changed term or vote always syncs): it can be
        // learned again after a restart, so it waits for the next write instead of costing
        // one of its own (followers learn a commit in an append of its own after every write).
        this.hardStateUnwritten = true;
        return this.writing;
      }
      this.hardStateUnwritten = false;
      hardState = true;
    }
    if (!snapshot && entries.length === 0 && !hardState) return this.writing;
    if (hardState) this.writtenHardState = { ...this.hardState };
    const startsAt = entries.length > 0 ? entries[0].index : this.lastIndex() + 1;
    const rec = new RecordWriter();
    if (snapshot) rec.packed(Rec.Snapshot, snapshot);
    if (entries.length > 0) rec.entries(entries);
    if (hardState) rec.hardState(this.hardState);
    return this.write(segmentState, startsAt, rec, req.sync);
  }

  /**
   * Writes the records, in a new segment (starting with `segmentState`) when they do not fit
   * in the current one; `startsAt` is the index of the first entry written. The entries
   * written join the log, their data in the written buffer (a block of the log's index).
   */
  private write(segmentState: { snap: SnapshotMetadata; hs: HardState }, startsAt: number, rec: RecordWriter, sync: boolean): Promise<void> {
    let cut: Promise<void> | undefined;
    if (!this.wal.fits(rec.bytes)) {
      cut = this.wal.cut(startsAt);
      rec.packedFirst(Rec.State, segmentState);
    }
    const buf = rec.finish();
    const where = this.wal.position();
    const es = rec.entriesWritten;
    let block = -1;
    if (es !== undefined) {
      block = this.ents.addBlock(where.seq, where.offset, buf.length, buf);
      for (let i = 0; i < es.length; i++) this.ents.push(es[i].index, es[i].term, es[i].type, block, rec.entryDataAt[i], es[i].data.byteLength);
    }
    let written = this.wal.append(buf, sync);
    if (cut) written = Promise.all([cut, written]).then(() => undefined);
    if (block >= 0) {
      const id = block;
      written = written.then(() => this.ents.blockDurable(id));
    }
    this.writing = written;
    return written;
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
    const segmentState = { snap: this.snapMeta, hs: this.writtenHardState };
    // The log now starts after compactIndex: the snapshot point recorded is the compaction
    // point with its term; the confState is the one at meta.index, which is at least as new.
    const term = this.term(compactIndex);
    this.ents.dropBefore(compactIndex + 1);
    this.snapMeta = { index: compactIndex, term, confState: cloneCs(meta.confState) };
    const point = this.snapMeta;
    const rec = new RecordWriter();
    rec.packed(Rec.Compact, point);
    const written = this.write(segmentState, this.lastIndex() + 1, rec, true);
    // Segments holding only compacted entries go once the record saying so is durable.
    this.writing = written.then(() => this.wal.releaseThrough(compactIndex));
    return this.writing;
  }

  /** Resolves when every write made so far is on disk. */
  flushed(): Promise<void> {
    return this.writing;
  }

  /** Bytes of recent writes held in memory (for tests). */
  cachedBlockBytes(): number {
    return this.ents.cachedBlockBytes;
  }

  /** Segment files of the log (for tests). */
  walFiles(): string[] {
    return this.wal.files();
  }

  async close(): Promise<void> {
    if (this.hardStateUnwritten) void this.save({ entries: [], sync: true }).catch(() => undefined);
    await this.writing.catch(() => undefined);
    await this.wal.close();
  }
}

function cloneCs(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners], votersOutgoing: [...cs.votersOutgoing], learnersNext: [...cs.learnersNext], autoLeave: cs.autoLeave };
}

/** Builds records (framed) into one buffer. */
class RecordWriter {
  private parts: { kind: Rec; value: unknown }[] = [];
  bytes = 0;
  /** The entries of the entries record, and where each one's data are in the finished buffer. */
  entriesWritten: readonly Entry[] | undefined;
  entryDataAt: number[] = [];

  entries(es: readonly Entry[]): void {
    let n = entriesHeadBytes;
    for (const e of es) n += entryHeadBytes + e.data.byteLength;
    this.parts.push({ kind: Rec.Entries, value: es });
    this.entriesWritten = es;
    this.bytes += walRecordHeaderBytes + n;
  }

  hardState(hs: HardState): void {
    this.parts.push({ kind: Rec.HardState, value: hs });
    this.bytes += walRecordHeaderBytes + hardStateBytes;
  }

  packed(kind: Rec.Snapshot | Rec.State | Rec.Compact, value: unknown): void {
    const b = packr.pack(value);
    this.parts.push({ kind, value: b });
    this.bytes += walRecordHeaderBytes + 1 + b.length;
  }

  /** A packed record before all the others. */
  packedFirst(kind: Rec.State, value: unknown): void {
    this.packed(kind, value);
    this.parts.unshift(this.parts.pop()!);
  }

  finish(): Buffer {
    // Not from Node's shared pool: the buffer may be kept (as the entries' data), and a
    // pooled one would keep its whole pool slab alive.
    const out = Buffer.allocUnsafeSlow(this.bytes);
    let at = 0;
    for (const { kind, value } of this.parts) {
      let p = at + walRecordHeaderBytes;
      out[p] = kind;
      p++;
      if (kind === Rec.Entries) {
        const es = value as Entry[];
        out.writeDoubleLE(es[0].index, p);
        out.writeUInt32LE(es.length, p + 8);
        p += 12;
        for (const e of es) {
          out.writeDoubleLE(e.term, p);
          out[p + 8] = e.type;
          out.writeUInt32LE(e.data.byteLength, p + 9);
          p += entryHeadBytes;
          this.entryDataAt.push(p);
          out.set(e.data, p);
          p += e.data.byteLength;
        }
      } else if (kind === Rec.HardState) {
        const hs = value as HardState;
        out.writeDoubleLE(hs.term, p);
        out.writeDoubleLE(hs.vote, p + 8);
        out.writeDoubleLE(hs.commit, p + 16);
        p += 24;
      } else {
        const b = value as Buffer;
        out.set(b, p);
        p += b.length;
      }
      at = sealRecord(out, at, p - at - walRecordHeaderBytes);
    }
    assert(at === this.bytes, 'raft log record sizes');
    return out;
  }
}
