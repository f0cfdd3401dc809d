// MvccStore: the in-memory engine (MvccCore) made durable in classic-level.
//
// Durability model: every committed write transaction and every compaction is queued in
// memory; flush(meta) writes everything queued since the last flush, plus a metadata record
// holding the server's opaque `meta` (e.g. the Raft consistent index), in ONE batch with
// sync: false. The Raft log is the write-ahead log: after a crash the server replays the
// entries after the saved meta, and since applying is deterministic it reaches the same state.
// Disk writes happen strictly in call order (one chain); the first failure fails the store.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ClassicLevel } from 'classic-level';
import { MvccCore, MvccCoreOptions } from './core';
import {
  FORMAT_VERSION,
  META_KEY,
  REV_RANGE_GTE,
  REV_RANGE_LT,
  decodeMeta,
  REV_KEY_BYTES,
  decodeRevision,
  encodeMeta,
  parseRevKey,
  revisionRecordBytesMaxOf,
  writePut,
  writeRevKey,
  writeTombstone,
} from './encoding';
import { MvccError, assert, isMvccError } from './errors';
import { KeyIndex, RevEntry } from './key-index';
import { keyString } from './keys';
import { valueView } from './value-arena';
import { dbWriteBufferBytes, defragReaderWaitMsMax, readBatchRecordsMax, restoreBatchBytesMax } from './limits';
import { DbRecord, decodeSnapshot, encodeSnapshot } from './snapshot-format';

type Db = ClassicLevel<Buffer, Buffer>;

const DB_OPTIONS = { keyEncoding: 'buffer', valueEncoding: 'buffer', writeBufferSize: dbWriteBufferBytes } as const;

export class MvccStore<M = unknown> extends MvccCore {
  private pendingChanges: RevEntry[][] = [];
  private pendingGone: RevEntry[] = [];
  private diskChain: Promise<void> = Promise.resolve();
  private diskError: unknown;
  private closed = false;
  private savedMetaValue: M | undefined;
  /** The meta record as last written (or read on open); the header of snapshots. */
  private savedMetaRecord: Buffer;
  private dbSizeCache: number | undefined;
  /** Snapshot streams reading the db (a defragment waits for them before replacing it). */
  private snapshotReaders = 0;

  private constructor(
    private db: Db,
    /** The store's directory. */
    readonly dir: string,
    opts: MvccCoreOptions,
  ) {
    super(opts);
    this.savedMetaRecord = encodeMeta<M>({ format: FORMAT_VERSION, compactRevision: 0, currentRevision: 1, meta: undefined });
  }

  /**
   * Opens (creating if needed) the store in `dir` and rebuilds its in-memory state from disk:
   * the state of the last flush. `savedMeta` is the meta passed to that flush.
   */
  static async open<M = unknown>(dir: string, opts: MvccCoreOptions = {}): Promise<MvccStore<M>> {
    await finishDefragment(dir);
    await fs.promises.mkdir(dir, { recursive: true });
    const db: Db = new ClassicLevel<Buffer, Buffer>(dir, DB_OPTIONS);
    await db.open();
    const store = new MvccStore<M>(db, dir, opts);
    try {
      await store.load();
    } catch (e) {
      await db.close();
      throw e;
    }
    return store;
  }

  /** The meta of the last completed flush (or as read by open), undefined if none. */
  get savedMeta(): M | undefined {
    return this.savedMetaValue;
  }

  private async load(): Promise<void> {
    const metaBytes = await this.db.get(META_KEY);
    if (metaBytes === undefined) {
      const any = await this.db.keys({ gte: REV_RANGE_GTE, lt: REV_RANGE_LT, limit: 1 }).all();
      if (any.length > 0) throw new MvccError('ERR_STORE_CORRUPT', 'revision records without a meta record');
      return;
    }
    const rec = decodeMeta<M>(metaBytes);
    this.savedMetaRecord = metaBytes;
    this.savedMetaValue = rec.meta;
    this.currentRev = rec.currentRevision;
    this.compactRev = rec.compactRevision;
    if (this.compactRev > this.currentRev) throw new MvccError('ERR_STORE_CORRUPT', 'compacted past the current revision');
    this.historyFirstRev = Math.max(this.compactRev, 1);
    this.history = [];

    const it = this.db.iterator({ gte: REV_RANGE_GTE, lt: REV_RANGE_LT });
    try {
      for (;;) {
        const batch = await it.nextv(readBatchRecordsMax);
        if (batch.length === 0) break;
        for (const [k, v] of batch) this.replay(k, v);
      }
    } finally {
      await it.close();
    }
    // Bring the index to the compacted state (drops only what was kept for the history).
    const empty: string[] = [];
    this.index.forEach((ki, keyStr) => {
      ki.compact(this.compactRev, (en) => {
        if (en.main < this.compactRev) this.entryGone(en); // not expected; heals on next flush
      });
      if (ki.isEmpty()) empty.push(keyStr);
    });
    for (const k of empty) this.index.delete(k);
    // Every revision after the compacted one has a record.
    let want = Math.max(this.compactRev + 1, 2);
    for (let i = this.historyIndexOf(want); i < this.history.length; i++) {
      const main = this.history[i].main;
      if (main === want) want++;
      else if (main > want) break;
    }
    if (want <= this.currentRev) throw new MvccError('ERR_STORE_CORRUPT', `no record of revision ${want}`);
    this.checkHistory();
  }

  private replay(k: Buffer, v: Buffer): void {
    const { main, sub } = parseRevKey(k);
    if (main > this.currentRev || main < 2) throw new MvccError('ERR_STORE_CORRUPT', `revision ${main} out of range`);
    const s = decodeRevision(v);
    const keyStr = keyString(s.key);
    let ki = this.index.get(keyStr);
    if (ki === undefined) {
      ki = new KeyIndex(keyStr);
      this.index.set(keyStr, ki);
    }
    const en = s.tombstone ? new RevEntry(ki, main, sub, true, 0, 0, 0) : new RevEntry(ki, main, sub, false, s.createRevision, s.version, s.lease);
    if (!s.tombstone) this.values.hold(en, s.value);
    const last = ki.last();
    if (last !== undefined && last.tombstone && en.tombstone) throw new MvccError('ERR_STORE_CORRUPT', 'two deletions in a row');
    ki.append(en, true);
    if (main >= this.historyFirstRev) {
      // Records come in (main, sub) order: a revision's subs are 0, 1, 2...
      const prev = this.history.length > 0 ? this.history[this.history.length - 1] : undefined;
      if (sub !== (prev !== undefined && prev.main === main ? prev.sub + 1 : 0)) throw new MvccError('ERR_STORE_CORRUPT', `revision ${main} misses sub revisions`);
      this.history.push(en);
    }
  }

  protected override committed(changes: RevEntry[]): void {
    this.pendingChanges.push(changes);
  }

  protected override recordGone(en: RevEntry): void {
    this.pendingGone.push(en);
  }

  protected override checkWritable(): void {
    assert(!this.closed, 'store is open');
  }

  /** Number of write transactions and dropped revisions queued for the next flush. */
  get pendingCount(): number {
    return this.pendingChanges.length + this.pendingGone.length;
  }

  /**
   * Writes everything queued since the last flush (write transactions, compaction) and `meta`
   * in one batch (sync: false). What it writes is taken now, so later writes go to the next flush;
   * flushes reach the disk in call order. Resolves when written.
   */
  flush(meta: M): Promise<void> {
    if (this.closed) return Promise.reject(new MvccError('ERR_STORE_FAILED', 'store is closed'));
    const changes = this.pendingChanges;
    const gone = this.pendingGone;
    this.pendingChanges = [];
    this.pendingGone = [];
    const metaRecord = encodeMeta<M>({
      format: FORMAT_VERSION,
      compactRevision: this.compactRev,
      currentRevision: this.currentRev,
      meta,
    });
    return this.onDisk(async () => {
      // The batch is made when its turn comes, on the db open then: a defragment queued
      // before it swaps the db, and closing the old one closes every batch made on it.
      const batch = this.db.batch();
      // Every key and record of the batch goes into one buffer (the batch copies them).
      let bytes = gone.length * REV_KEY_BYTES;
      for (const record of changes) {
        for (const en of record) bytes += revisionRecordBytesMaxOf(en.ki.keyStr.length, en.tombstone ? undefined : en.vLen);
      }
      const buf = Buffer.allocUnsafe(bytes);
      let off = 0;
      for (const record of changes) {
        for (const en of record) {
          const key = en.ki.keyStr;
          const k = off;
          off = writeRevKey(buf, off, en.main, en.sub);
          const v = off;
          off = en.tombstone ? writeTombstone(buf, off, key) : writePut(buf, off, key, valueView(en), en.lease, en.createRevision, en.version);
          batch.put(buf.subarray(k, v), buf.subarray(v, off));
        }
      }
      for (const en of gone) {
        const k = off;
        off = writeRevKey(buf, off, en.main, en.sub);
        batch.del(buf.subarray(k, off));
      }
      assert(off <= bytes, 'flush buffer holds the batch');
      batch.put(META_KEY, metaRecord);
      try {
        await batch.write({ sync: false });
      } catch (e) {
        await batch.close().catch(() => undefined);
        throw e;
      }
      this.savedMetaValue = meta;
      this.savedMetaRecord = metaRecord;
      this.dbSizeCache = undefined;
    });
  }

  /** Runs `op` after every disk operation queued before it; the first failure is sticky. */
  private onDisk<T>(op: () => Promise<T>): Promise<T> {
    const p = this.diskChain.then(() => {
      if (this.diskError !== undefined) throw new MvccError('ERR_STORE_FAILED', String(this.diskError));
      return op();
    });
    this.diskChain = p.then(
      () => undefined,
      (e: unknown) => {
        if (this.diskError === undefined && !isMvccError(e, 'ERR_STORE_FAILED')) this.diskError = e;
      },
    );
    return p;
  }

  /**
   * A snapshot of the full state (compacted and current revision, meta, every revision record)
   * as a stream of chunks of at most snapshotChunkBytesMax, for restoreSnapshot. The point in
   * time is fixed by this call: with `meta`, everything applied so far is flushed with it
   * first; without, it is the state of the last flush (with that flush's meta). Writes and
   * flushes go on while the stream is read (it reads a LevelDB snapshot).
   */
  writeSnapshot(meta?: M): AsyncIterable<Uint8Array> {
    if (meta !== undefined) this.flush(meta).catch(() => undefined); // a failure fails the snapshot below
    const opened = this.onDisk(async () => ({
      // LevelDB fixes an iterator's view when it is created: right after the flushes before it.
      iterator: this.db.iterator({ gte: REV_RANGE_GTE, lt: REV_RANGE_LT }),
      header: this.savedMetaRecord,
    }));
    opened.catch(() => undefined); // reported when the stream is read
    const readers = { enter: () => this.snapshotReaders++, leave: () => this.snapshotReaders-- };
    return {
      [Symbol.asyncIterator]: async function* () {
        readers.enter();
        try {
          const { iterator, header } = await opened;
          try {
            yield* encodeSnapshot(header, batches(iterator));
          } finally {
            await iterator.close();
          }
        } finally {
          readers.leave();
        }
      },
    };
  }

  /**
   * Replaces the store in `dir` (which must not be open) with the state of a snapshot stream
   * and opens it. The stream is verified completely (format, order, count, checksum) in a
   * temporary directory before it replaces anything; on failure `dir` is left untouched and
   * the error is MvccError ERR_SNAPSHOT_INVALID (or the I/O error).
   */
  static async restoreSnapshot<M = unknown>(dir: string, chunks: AsyncIterable<Uint8Array>): Promise<MvccStore<M>> {
    const tmp = `${path.resolve(dir)}.restoring`;
    await fs.promises.rm(tmp, { recursive: true, force: true });
    await fs.promises.mkdir(tmp, { recursive: true });
    const db: Db = new ClassicLevel<Buffer, Buffer>(tmp, DB_OPTIONS);
    await db.open();
    try {
      let sawHeader = false;
      let batch = db.batch();
      let batchBytes = 0;
      for await (const part of decodeSnapshot(chunks)) {
        if (part.kind === 'header') {
          try {
            decodeMeta<M>(part.header);
          } catch (e) {
            throw new MvccError('ERR_SNAPSHOT_INVALID', (e as Error).message);
          }
          batch.put(META_KEY, Buffer.from(part.header));
          sawHeader = true;
          continue;
        }
        for (const [k, v] of part.records) {
          batch.put(Buffer.from(k.buffer, k.byteOffset, k.byteLength), Buffer.from(v.buffer, v.byteOffset, v.byteLength));
          batchBytes += k.length + v.length;
        }
        if (batchBytes >= restoreBatchBytesMax) {
          await batch.write({ sync: false });
          batch = db.batch();
          batchBytes = 0;
        }
      }
      assert(sawHeader, 'a verified snapshot has a header');
      await batch.write({ sync: true });
      await db.close();
    } catch (e) {
      await db.close().catch(() => undefined);
      await fs.promises.rm(tmp, { recursive: true, force: true });
      throw e;
    }
    await fs.promises.rm(dir, { recursive: true, force: true });
    await fs.promises.rename(tmp, dir);
    return MvccStore.open<M>(dir);
  }

  /**
   * Rewrites the db on disk (etcd's defrag, which copies bbolt into a new file): every live
   * record is copied into a fresh db in `<dir>.defrag`, which then replaces `dir`, so the
   * space of deleted and compacted records is given back (LevelDB's own compactRange leaves
   * a memtable flushed past level 0 as it is). Runs after the disk writes queued before it
   * and holds later ones back; waits for snapshot streams still reading the old db. The
   * data is unchanged. A crash midway leaves the old or the new db, never neither (open()
   * finishes the swap).
   */
  defragment(): Promise<void> {
    if (this.closed) return Promise.reject(new MvccError('ERR_STORE_FAILED', 'store is closed'));
    return this.onDisk(async () => {
      const { tmp, done, old } = defragPaths(this.dir);
      await fs.promises.rm(tmp, { recursive: true, force: true });
      await fs.promises.rm(done, { recursive: true, force: true });
      const fresh: Db = new ClassicLevel<Buffer, Buffer>(tmp, DB_OPTIONS);
      await fresh.open();
      try {
        const it = this.db.iterator();
        try {
          for (;;) {
            const records = await it.nextv(readBatchRecordsMax);
            if (records.length === 0) break;
            await fresh.batch(records.map(([key, value]) => ({ type: 'put' as const, key, value })));
          }
        } finally {
          await it.close();
        }
        // Everything into sorted tables now, so that the size shows right away.
        await fresh.compactRange(Buffer.from([0x00]), Buffer.alloc(REV_KEY_BYTES + 1, 0xff));
        await fresh.close();
      } catch (e) {
        await fresh.close().catch(() => undefined);
        await fs.promises.rm(tmp, { recursive: true, force: true });
        throw e;
      }
      await fs.promises.rename(tmp, done);
      // Streams still reading the old db get a little time to finish; later ones fail (and are retried).
      for (let waitedMs = 0; this.snapshotReaders > 0 && waitedMs < defragReaderWaitMsMax; waitedMs += 10) await new Promise((r) => setTimeout(r, 10));
      await this.db.close();
      await fs.promises.rename(this.dir, old);
      await fs.promises.rename(done, this.dir);
      this.db = new ClassicLevel<Buffer, Buffer>(this.dir, DB_OPTIONS);
      await this.db.open();
      await fs.promises.rm(old, { recursive: true, force: true });
      this.dbSizeCache = undefined;
    });
  }

  /** Approximate size of the db on disk in bytes (the files in its directory), for Status. */
  dbSizeBytes(): number {
    if (this.dbSizeCache !== undefined) return this.dbSizeCache;
    let total = 0;
    for (const name of fs.readdirSync(this.dir)) {
      try {
        const st = fs.statSync(path.join(this.dir, name));
        if (st.isFile()) total += st.size;
      } catch {
        // A file LevelDB removed while we listed: not part of the size.
      }
    }
    this.dbSizeCache = total;
    return total;
  }

  /**
   * Waits for queued disk writes, then closes the db. Changes not flushed are lost (the Raft
   * log replays them on the next start).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.diskChain;
    await this.db.close();
  }
}

function defragPaths(dir: string): { tmp: string; done: string; old: string } {
  const d = path.resolve(dir);
  return { tmp: `${d}.defrag`, done: `${d}.defragged`, old: `${d}.predefrag` };
}

/** Completes (or undoes) a defragment that stopped midway; see MvccStore.defragment. */
async function finishDefragment(dir: string): Promise<void> {
  const { tmp, done, old } = defragPaths(dir);
  if (!fs.existsSync(dir)) {
    if (fs.existsSync(done)) await fs.promises.rename(done, dir);
    else if (fs.existsSync(old)) await fs.promises.rename(old, dir);
  }
  for (const p of [tmp, done, old]) await fs.promises.rm(p, { recursive: true, force: true });
}

async function* batches(it: { nextv(size: number): Promise<Array<[Buffer, Buffer]>> }): AsyncGenerator<DbRecord[]> {
  for (;;) {
    const batch = await it.nextv(readBatchRecordsMax);
    if (batch.length === 0) return;
    yield batch;
  }
}
