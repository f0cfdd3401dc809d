// An append-only write-ahead log in segment files: where DiskStorage keeps the Raft log.
//
// Files: <dir>/<seq>-<firstIndex>.wal (both 16 hex digits), read in seq order. A segment is
// made at its full size and filled with zeros before it is used (in the background, as the
// next segment, while the current one fills), so that a write into it allocates nothing and
// its fdatasync has only data to flush, no journal commit (measured in place, 1 client: the
// members' log writes 0.52/0.39 ms p50 sparse, 0.50/0.36 zero-filled, p90 0.89 -> 0.72). A
// segment needed before its spare is ready is filled on the spot. A record is
//   [u32 LE payload length][u32 LE CRC-32 of the payload][payload]
// and a length of 0 ends a segment's records: the unwritten rest of a file reads as zeros.
// What the payloads mean is DiskStorage's business; the first record of every segment is
// expected to restate whatever older segments said that is still needed, so that segments
// before it can be deleted.
//
// Why not LevelDB (the log was kept there before): a synced LevelDB write crosses to a
// thread-pool thread and back, and with three members and a client on two cores each
// crossing costs about 0.1 ms. Measured with three processes syncing 400-byte writes at
// once: LevelDB 0.39 ms p50; write + fdatasync on the main thread into a preallocated segment
// 0.17 ms. Writes are therefore made on the main thread by default ('inline'): the event
// loop waits for the disk, which is what the caller (a Raft Ready) waits for anyway. In
// 'background' mode, appends made while a write is in flight are written together after
// it, with one fdatasync.
//
// A torn write can leave a record whose CRC fails, followed by bytes of records written in
// the same write. Replay stops at the first bad record of the last segment, and opening the
// log zeroes the file from there on, so that later records are never read past garbage. A
// bad record in any other segment is corruption: the open fails.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 } from '../kv/mvcc/crc32';

export const walSegmentBytesDefault = 16 * 1024 * 1024;
const headerBytes = 8;
const segmentName = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;
/** The next segment while it is being filled with zeros. */
const spareName = 'next.wal.tmp';

export type WalWriteMode = 'inline' | 'background';

export interface WalOptions {
  segmentBytes?: number;
  /** inline: write and fdatasync on the calling thread; background: through libuv's thread pool. */
  mode?: WalWriteMode;
}

interface Segment {
  seq: number;
  /** The index of the first entry expected in it (the log's last index + 1 when it was made). */
  firstIndex: number;
  file: string;
}

export class WalCorruptError extends Error {
  constructor(file: string, offset: number, what: string) {
    super(`raft log file ${file} is corrupt at offset ${offset}: ${what}`);
  }
}

function hex16(n: number): string {
  return n.toString(16).padStart(16, '0');
}

/** Bytes a record takes besides its payload. */
export const walRecordHeaderBytes = headerBytes;

/**
 * Seals the record whose payload (`len` bytes) was written at buf[at + walRecordHeaderBytes]:
 * writes its length and checksum in front of it. Returns where the next record goes.
 */
export function sealRecord(buf: Buffer, at: number, len: number): number {
  const end = at + headerBytes + len;
  buf.writeUInt32LE(len, at);
  buf.writeUInt32LE(crc32(buf.subarray(at + headerBytes, end)), at + 4);
  return end;
}

/**
 * Reads the records of one segment file; returns where the valid records end. A record that
 * does not check out ends the segment (tail) or fails the open (not the tail).
 */
function readSegment(file: string, seq: number, isTail: boolean, onRecord: RecordHandler): number {
  const buf = fs.readFileSync(file);
  let at = 0;
  while (at + headerBytes <= buf.length) {
    const len = buf.readUInt32LE(at);
    if (len === 0) break;
    const end = at + headerBytes + len;
    const bad = end > buf.length ? 'record runs past the end of the file' : crc32(buf.subarray(at + headerBytes, end)) !== buf.readUInt32LE(at + 4) ? 'checksum mismatch' : undefined;
    if (bad !== undefined) {
      if (isTail) break;
      throw new WalCorruptError(file, at, bad);
    }
    // A view: the caller copies what it keeps.
    onRecord(buf.subarray(at + headerBytes, end), seq, at + headerBytes);
    at = end;
  }
  return at;
}

/** Gets each record's payload, the segment it is in and the payload's offset in that file. */
interface WriteGroup {
  fd: number;
  at: number;
  bufs: Buffer[];
  bytes: number;
  sync: boolean;
  done: Promise<void>;
}

export type RecordHandler = (payload: Buffer, seq: number, offset: number) => void;

export class Wal {
  private segments: Segment[] = [];
  private fd = -1;
  /** Write position in the last segment. */
  private pos = 0;
  private readonly segmentBytes: number;
  readonly mode: WalWriteMode;
  /** Background writes are chained so that they reach the file in call order. */
  private writing: Promise<void> = Promise.resolve();
  /** The background write waiting for the one in flight; later appends join it. */
  private group: WriteGroup | undefined;
  private failed: Error | undefined;
  /** A zero-filled file ready to become the next segment. */
  private spare: number | undefined;
  private spareMaking: Promise<void> | undefined;
  private closed = false;
  /** Segments made from a spare (for tests). */
  segmentsFromSpare = 0;
  /** Descriptors of older segments opened for reading back entries. */
  private readonly readFds = new Map<number, number>();

  private constructor(
    private readonly dir: string,
    opts: WalOptions,
  ) {
    this.segmentBytes = opts.segmentBytes ?? walSegmentBytesDefault;
    this.mode = opts.mode ?? 'inline';
  }

  /**
   * Opens (making it if needed) the log in `dir` and hands every record to `onRecord`, in
   * order. The payloads are views into buffers read from disk.
   */
  static open(dir: string, opts: WalOptions, onRecord: RecordHandler): Wal {
    fs.mkdirSync(dir, { recursive: true });
    const w = new Wal(dir, opts);
    const names = fs.readdirSync(dir);
    fs.rmSync(path.join(dir, spareName), { force: true });
    if (names.includes('CURRENT')) throw new Error(`${dir} holds a Raft log in an older format (LevelDB); this version cannot read it`);
    for (const name of names) {
      const m = segmentName.exec(name);
      if (m) w.segments.push({ seq: parseInt(m[1], 16), firstIndex: parseInt(m[2], 16), file: path.join(dir, name) });
    }
    w.segments.sort((a, b) => a.seq - b.seq);
    for (let i = 1; i < w.segments.length; i++) {
      if (w.segments[i].seq !== w.segments[i - 1].seq + 1) throw new Error(`raft log in ${dir} is missing segment ${w.segments[i - 1].seq + 1}`);
    }
    for (let i = 0; i < w.segments.length; i++) {
      const isTail = i === w.segments.length - 1;
      const end = readSegment(w.segments[i].file, w.segments[i].seq, isTail, onRecord);
      if (isTail) {
        w.fd = fs.openSync(w.segments[i].file, fs.constants.O_RDWR);
        w.pos = end;
        // Zero whatever follows the last good record (a torn write's remains), so that no
        // record written later is ever followed by old bytes that happen to check out.
        const size = fs.fstatSync(w.fd).size;
        const upTo = Math.max(size, w.segmentBytes);
        if (upTo > end) {
          writeZeros(w.fd, end, upTo);
          fs.fsyncSync(w.fd);
        }
      }
    }
    w.makeSpare();
    return w;
  }

  /** Resolves once the spare being made (if any) is ready or given up (for tests). */
  spareSettled(): Promise<void> {
    return this.spareMaking ?? Promise.resolve();
  }

  /** Fills a file with zeros in the background, to be the next segment. */
  private makeSpare(): void {
    if (this.closed || this.spare !== undefined || this.spareMaking !== undefined) return;
    const file = path.join(this.dir, spareName);
    let fd = -1;
    this.spareMaking = (async () => {
      fd = await new Promise<number>((res, rej) => fs.open(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o600, (e, f) => (e ? rej(e) : res(f))));
      const zeros = Buffer.alloc(Math.min(zeroChunkBytes, this.segmentBytes));
      for (let at = 0; at < this.segmentBytes && !this.closed; at += zeros.length) {
        await writevFullyAsync(fd, [zeros.subarray(0, Math.min(zeros.length, this.segmentBytes - at))], at);
      }
      await fdatasyncAsync(fd);
      if (this.closed) throw new Error('closed');
      this.spare = fd;
    })()
      .catch(() => {
        // No spare: the next segment is filled when it is needed.
        // Synchronously: a log opened next in this directory makes a spare of the same name.
        if (fd >= 0) fs.closeSync(fd);
        fs.rmSync(file, { force: true });
      })
      .finally(() => {
        this.spareMaking = undefined;
      });
  }

  /** Whether any segment exists (nothing was ever written otherwise). */
  get empty(): boolean {
    return this.segments.length === 0;
  }

  /** Where the next append goes: its segment and offset. */
  position(): { seq: number; offset: number } {
    return { seq: this.segments[this.segments.length - 1].seq, offset: this.pos };
  }

  /** Reads back `len` bytes at `offset` of segment `seq` (written earlier by append). */
  read(seq: number, offset: number, len: number): Buffer {
    const last = this.segments[this.segments.length - 1];
    let fd: number;
    if (last !== undefined && last.seq === seq && this.fd >= 0) {
      fd = this.fd;
    } else {
      fd = this.readFds.get(seq) ?? -1;
      if (fd < 0) {
        const s = this.segments.find((x) => x.seq === seq);
        if (s === undefined) throw new Error(`raft log segment ${seq} is gone`);
        fd = fs.openSync(s.file, 'r');
        this.readFds.set(seq, fd);
      }
    }
    const b = Buffer.allocUnsafeSlow(len);
    let done = 0;
    while (done < len) {
      const n = fs.readSync(fd, b, done, len - done, offset + done);
      if (n === 0) throw new Error(`raft log segment ${seq} ends before offset ${offset + len}`);
      done += n;
    }
    return b;
  }

  /** Whether `bytes` more of records (framed) fit in the current segment. */
  fits(bytes: number): boolean {
    return this.fd >= 0 && (this.pos + bytes <= this.segmentBytes || this.pos === 0);
  }

  /**
   * Starts a new segment whose entries begin at `firstIndex`. The caller writes the new
   * segment's first record (its restated state) next.
   */
  cut(firstIndex: number): Promise<void> {
    if (this.failed) return Promise.reject(new Error(`raft log write failed earlier: ${this.failed.message}`));
    const seq = this.segments.length > 0 ? this.segments[this.segments.length - 1].seq + 1 : 1;
    const file = path.join(this.dir, `${hex16(seq)}-${hex16(firstIndex)}.wal`);
    let fd: number;
    if (this.spare !== undefined) {
      fd = this.spare;
      this.spare = undefined;
      fs.renameSync(path.join(this.dir, spareName), file);
      this.segmentsFromSpare++;
    } else {
      // The first segment, or a spare not ready yet: filled here (16 MiB: some milliseconds).
      fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      writeZeros(fd, 0, this.segmentBytes);
      fs.fsyncSync(fd);
    }
    syncDir(this.dir);
    this.makeSpare();
    const old = this.fd;
    this.segments.push({ seq, firstIndex, file });
    this.fd = fd;
    this.pos = 0;
    // The old segment is made durable before anything written after this call (writes are
    // ordered): a later segment's records never stand on an older one's missing ones.
    return this.run(() => {
      if (old >= 0) {
        fs.fdatasyncSync(old);
        fs.closeSync(old);
      }
    });
  }

  /** Appends records (made with sealRecord) to the current segment; fdatasync when `sync`. */
  append(records: Buffer, sync: boolean): Promise<void> {
    const at = this.pos;
    this.pos += records.length;
    if (this.mode === 'inline') {
      return this.run(() => {
        writeFully(this.fd, records, at);
        if (sync) fs.fdatasyncSync(this.fd);
      });
    }
    // Appends made while a write is in flight go out together after it: one write and one
    // fdatasync for all of them (group commit below the caller's own batching).
    const g = this.group;
    if (g && g.fd === this.fd && g.at + g.bytes === at) {
      g.bufs.push(records);
      g.bytes += records.length;
      g.sync ||= sync;
      return g.done;
    }
    const ng: WriteGroup = { fd: this.fd, at, bufs: [records], bytes: records.length, sync, done: Promise.resolve() };
    ng.done = this.writing.then(async () => {
      if (this.group === ng) this.group = undefined;
      this.throwIfFailed();
      try {
        await writevFullyAsync(ng.fd, ng.bufs, ng.at);
        if (ng.sync) await fdatasyncAsync(ng.fd);
      } catch (e) {
        this.failed = e instanceof Error ? e : new Error(String(e));
        throw e;
      }
    });
    this.group = ng;
    this.writing = ng.done;
    return ng.done;
  }

  /**
   * Deletes the segments that hold only entries up to `index` (never the current one). The
   * caller has made durable a record saying the log starts after `index` first.
   */
  releaseThrough(index: number): Promise<void> {
    return this.run(() => {
      let n = 0;
      while (n + 1 < this.segments.length && this.segments[n + 1].firstIndex <= index + 1) n++;
      for (const s of this.segments.slice(0, n)) {
        const fd = this.readFds.get(s.seq);
        if (fd !== undefined) {
          fs.closeSync(fd);
          this.readFds.delete(s.seq);
        }
        fs.rmSync(s.file, { force: true });
      }
      this.segments = this.segments.slice(n);
    });
  }

  /** Segment files (for tests). */
  files(): string[] {
    return this.segments.map((s) => s.file);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.writing.catch(() => undefined);
    await this.spareMaking;
    if (this.spare !== undefined) {
      fs.closeSync(this.spare);
      this.spare = undefined;
      fs.rmSync(path.join(this.dir, spareName), { force: true });
    }
    for (const fd of this.readFds.values()) fs.closeSync(fd);
    this.readFds.clear();
    if (this.fd >= 0) {
      fs.closeSync(this.fd);
      this.fd = -1;
    }
  }

  /** Runs `f` after every write before it; inline mode runs it now. */
  private run(f: () => void): Promise<void> {
    if (this.mode === 'inline') {
      try {
        this.throwIfFailed();
        f();
        return Promise.resolve();
      } catch (e) {
        this.failed ??= e instanceof Error ? e : new Error(String(e));
        return Promise.reject(e);
      }
    }
    this.group = undefined;
    this.writing = this.writing.then(() => {
      this.throwIfFailed();
      try {
        f();
      } catch (e) {
        this.failed = e instanceof Error ? e : new Error(String(e));
        throw e;
      }
    });
    return this.writing;
  }

  /** After a failed write the file's contents are unknown: nothing more is written. */
  private throwIfFailed(): void {
    if (this.failed) throw new Error(`raft log write failed earlier: ${this.failed.message}`);
  }
}

function writeFully(fd: number, b: Buffer, at: number): void {
  let done = 0;
  while (done < b.length) done += fs.writeSync(fd, b, done, b.length - done, at + done);
}

const zeroChunkBytes = 1 << 20;

/** Writes zeros over [from, to) of the file. */
function writeZeros(fd: number, from: number, to: number): void {
  const zeros = Buffer.alloc(Math.min(zeroChunkBytes, to - from));
  for (let at = from; at < to; at += zeros.length) writeFully(fd, zeros.subarray(0, Math.min(zeros.length, to - at)), at);
}

async function writevFullyAsync(fd: number, bufs: Buffer[], at: number): Promise<void> {
  let total = 0;
  for (const b of bufs) total += b.length;
  const n = await new Promise<number>((res, rej) => fs.writev(fd, bufs, at, (e, n) => (e ? rej(e) : res(n))));
  if (n === total) return;
  // A short write (rare): the rest one buffer at a time.
  let pos = at;
  let skip = n;
  for (const b of bufs) {
    let done = Math.min(skip, b.length);
    skip -= done;
    while (done < b.length) {
      const from = done;
      done += await new Promise<number>((res, rej) => fs.write(fd, b, from, b.length - from, pos + from, (e, k) => (e ? rej(e) : res(k))));
    }
    pos += b.length;
  }
}

function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((res, rej) => fs.fdatasync(fd, (e) => (e ? rej(e) : res())));
}

function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
