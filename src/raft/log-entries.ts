// DiskStorage's index of its log: every entry's term and type, and where its data are: in a
// block, which is the buffer of one write to the write-ahead log (or a whole segment file,
// for entries found when the log was opened). Recent blocks keep their buffer, up to a
// budget of bytes; older ones are read back from their segment file when asked for, which
// happens only for a follower far behind, or entries applied after a restart.
//
// Why: the log is kept from one snapshot to the next (--snapshot-count entries: 100k in the
// benchmark), and holding every entry's data in memory cost as much as the key-value data
// themselves. Here an entry costs 25 bytes in typed-array columns (EntryColumns); its data
// are on disk (the page cache serves them back). The columns are fixed-size chunks outside
// the JS heap: growing the log never copies it, and dropping its head frees whole chunks
// (five JS arrays cost 40 bytes an entry, plus the garbage of every regrowth, in V8's
// large-object space: 10-15 MiB per member after 100k puts).
//
// Buffers are never written to once made, so an entry handed out stays valid.

import { assert } from './errors';
import { Entry, EntryType } from './types';

/**
 * Bytes of block buffers kept in memory by default. Entries are read back soon after they
 * are written (the leader's appends to its followers, every member's applies): 2 MiB is
 * about a second of writes at 8k puts/s of 256-byte values, and put at 1 and 128 clients
 * read nothing back from the files with it. 8 MiB held 6 MiB more per member.
 */
export const cachedBlockBytesDefault = 2 * 1024 * 1024;

interface Block {
  /** The bytes written, while cached (the data of its entries are at their offsets in it). */
  buf: Buffer | undefined;
  /** The segment the block was written to and where in it. */
  seq: number;
  fileOffset: number;
  bytes: number;
  /** Written to the file: its buffer may go (until then, reading it back would find zeros). */
  durable: boolean;
}

/** Entries per chunk of EntryColumns (a power of two). */
const chunkShift = 12;
const chunkEntries = 1 << chunkShift;
const chunkMask = chunkEntries - 1;

class ColumnChunk {
  readonly terms = new Float64Array(chunkEntries);
  readonly blockIds = new Float64Array(chunkEntries);
  readonly offsets = new Uint32Array(chunkEntries);
  readonly lengths = new Uint32Array(chunkEntries);
  readonly types = new Uint8Array(chunkEntries);
}

/**
 * Per-entry fields by position [0, length): a list of fixed-size chunks of typed arrays.
 * Positions start at `head` in the first chunk; dropping a prefix moves `head` and frees the
 * chunks left behind.
 */
export class EntryColumns {
  private chunks: ColumnChunk[] = [];
  private head = 0;
  private n = 0;

  get length(): number {
    return this.n;
  }

  private chunk(k: number): ColumnChunk {
    return this.chunks[(this.head + k) >>> chunkShift];
  }

  term(k: number): number {
    return this.chunk(k).terms[(this.head + k) & chunkMask];
  }

  type(k: number): EntryType {
    return this.chunk(k).types[(this.head + k) & chunkMask] as EntryType;
  }

  blockId(k: number): number {
    return this.chunk(k).blockIds[(this.head + k) & chunkMask];
  }

  offset(k: number): number {
    return this.chunk(k).offsets[(this.head + k) & chunkMask];
  }

  dataLength(k: number): number {
    return this.chunk(k).lengths[(this.head + k) & chunkMask];
  }

  push(term: number, type: EntryType, blockId: number, offset: number, length: number): void {
    assert(offset >= 0 && offset <= 0xffffffff && length >= 0 && length <= 0xffffffff, `entry data at ${offset}+${length} out of range`);
    const p = this.head + this.n;
    if (p >>> chunkShift === this.chunks.length) this.chunks.push(new ColumnChunk());
    const c = this.chunks[p >>> chunkShift];
    const i = p & chunkMask;
    c.terms[i] = term;
    c.types[i] = type;
    c.blockIds[i] = blockId;
    c.offsets[i] = offset;
    c.lengths[i] = length;
    this.n++;
  }

  /** Keeps the first `n` positions. */
  truncate(n: number): void {
    assert(n >= 0 && n <= this.n, `truncate to ${n} of ${this.n}`);
    this.n = n;
    if (n === 0) {
      this.clear();
      return;
    }
    this.chunks.length = ((this.head + n - 1) >>> chunkShift) + 1;
  }

  /** Drops the first `k` positions. */
  dropFront(k: number): void {
    assert(k >= 0 && k <= this.n, `drop ${k} of ${this.n}`);
    if (k === this.n) {
      this.clear();
      return;
    }
    this.head += k;
    this.n -= k;
    const whole = this.head >>> chunkShift;
    if (whole > 0) {
      this.chunks.splice(0, whole);
      this.head &= chunkMask;
    }
  }

  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.n = 0;
  }
}

/** Reads `len` bytes at `offset` of segment `seq`. */
export type SegmentReader = (seq: number, offset: number, len: number) => Buffer;

export class LogEntries {
  /** Index of the first entry held; entries are [first, first + length). */
  private first: number;
  private readonly cols = new EntryColumns();
  /** Blocks by id; ids grow in the order blocks are made (Map keeps that order). */
  private blocks = new Map<number, Block>();
  private nextBlockId = 0;
  private cachedBytes = 0;
  /** Blocks before this id hold no buffer. */
  private evictFrom = 0;

  constructor(
    firstIndex: number,
    private readonly read: SegmentReader,
    private readonly cacheBytesMax = cachedBlockBytesDefault,
  ) {
    this.first = firstIndex;
  }

  get length(): number {
    return this.cols.length;
  }

  get firstIndex(): number {
    return this.first;
  }

  get lastIndex(): number {
    return this.first + this.cols.length - 1;
  }

  /** Bytes of block buffers held in memory (for tests and metrics). */
  get cachedBlockBytes(): number {
    return this.cachedBytes;
  }

  term(index: number): number {
    return this.cols.term(index - this.first);
  }

  /**
   * A block: `buf` (kept while the cache has room) written at `fileOffset` of segment `seq`,
   * or, without `buf`, a stretch of a segment file read only on demand. Returns its id.
   */
  addBlock(seq: number, fileOffset: number, bytes: number, buf: Buffer | undefined): number {
    const id = this.nextBlockId++;
    this.blocks.set(id, { buf, seq, fileOffset, bytes, durable: buf === undefined });
    if (buf !== undefined) this.cachedBytes += bytes;
    return id;
  }

  hasBlock(id: number): boolean {
    return this.blocks.has(id);
  }

  /** The block's bytes are in its segment file now. */
  blockDurable(id: number): void {
    const b = this.blocks.get(id);
    if (b === undefined) return;
    b.durable = true;
    this.evict();
  }

  /** Appends an entry (its index must be lastIndex + 1) whose data are at `offset` of block `blockId`. */
  push(index: number, term: number, type: EntryType, blockId: number, offset: number, length: number): void {
    assert(index === this.first + this.cols.length, `entry ${index} appended after ${this.lastIndex}`);
    this.cols.push(term, type, blockId, offset, length);
  }

  /** Drops the entries from `index` on (a conflicting suffix). Their blocks stay until compaction. */
  truncateFrom(index: number): void {
    const n = index - this.first;
    assert(n >= 0 && n <= this.cols.length, `truncate at ${index} outside [${this.first}, ${this.lastIndex + 1}]`);
    this.cols.truncate(n);
  }

  /** Drops every entry before `index` (which may be lastIndex + 1: all), and the blocks only they used. */
  dropBefore(index: number): void {
    const n = index - this.first;
    assert(n >= 0 && n <= this.cols.length, `drop before ${index} outside [${this.first}, ${this.lastIndex + 1}]`);
    if (n === 0) return;
    this.cols.dropFront(n);
    this.first = index;
    // Block ids grow with the index of the entries written in them (a block written later
    // can hold lower indexes, after a truncation, but never lower than one still held).
    const keepFrom = this.cols.length > 0 ? this.cols.blockId(0) : this.nextBlockId;
    this.dropBlocksBefore(keepFrom);
  }

  /** Drops everything and restarts at `firstIndex`. */
  reset(firstIndex: number): void {
    this.first = firstIndex;
    this.cols.clear();
    this.dropBlocksBefore(this.nextBlockId);
  }

  /** The entry at `index`; its data are a view (never write to it). */
  entry(index: number): Entry {
    return this.slice(index, index + 1, Infinity)[0];
  }

  /**
   * Entries in [lo, hi) (inside what is held), stopping once their size (as entrySizeBytes
   * counts it) passes maxBytes, but at least one. Entries of a block not in memory are read
   * with one read per block.
   */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    const cols = this.cols;
    const first = this.first;
    let end = lo;
    let size = 0;
    for (; end < hi; end++) {
      size += cols.dataLength(end - first) + 16;
      if (end > lo && size > maxBytes) break;
    }
    const out: Entry[] = new Array(end - lo);
    let i = lo;
    while (i < end) {
      const k = i - first;
      const blockId = cols.blockId(k);
      const block = this.blocks.get(blockId)!;
      // The run of entries in the same block.
      let j = i + 1;
      while (j < end && cols.blockId(j - first) === blockId) j++;
      let buf: Buffer;
      let base: number;
      if (block.buf !== undefined) {
        buf = block.buf;
        base = 0;
      } else {
        let from = Infinity;
        let to = 0;
        for (let x = k; x < j - first; x++) {
          const len = cols.dataLength(x);
          if (len === 0) continue;
          from = Math.min(from, cols.offset(x));
          to = Math.max(to, cols.offset(x) + len);
        }
        base = from === Infinity ? 0 : from;
        buf = from === Infinity ? Buffer.alloc(0) : this.read(block.seq, block.fileOffset + from, to - from);
      }
      for (let x = i; x < j; x++) {
        const y = x - first;
        const len = cols.dataLength(y);
        const off = cols.offset(y) - base;
        const data = len === 0 ? new Uint8Array(0) : buf.subarray(off, off + len);
        out[x - lo] = { term: cols.term(y), index: x, type: cols.type(y), data };
      }
      i = j;
    }
    return out;
  }

  private dropBlocksBefore(id: number): void {
    for (const [k, b] of this.blocks) {
      if (k >= id) break;
      if (b.buf !== undefined) this.cachedBytes -= b.bytes;
      this.blocks.delete(k);
    }
  }

  /**
   * Lets the oldest durable buffers go while over budget. Blocks become durable in the order
   * they were written, so eviction moves forward from where it stopped: a walk from the first
   * block every time cost O(blocks held) per write (3-4% of the leader's time at 1 client).
   */
  private evict(): void {
    while (this.cachedBytes > this.cacheBytesMax && this.evictFrom < this.nextBlockId) {
      const b = this.blocks.get(this.evictFrom);
      if (b !== undefined) {
        if (!b.durable) break;
        if (b.buf !== undefined) {
          b.buf = undefined;
          this.cachedBytes -= b.bytes;
        }
      }
      this.evictFrom++;
    }
  }
}
