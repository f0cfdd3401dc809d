// DiskStorage's index of its log: every entry's term and type, and where its data are: in a
// block, which is the buffer of one write to the write-ahead log (or a whole segment file,
// for entries found when the log was opened). Recent blocks keep their buffer, up to a
// budget of bytes; older ones are read back from their segment file when asked for, which
// happens only for a follower far behind, or entries applied after a restart.
//
// Why: the log is kept from one snapshot to the next (--snapshot-count entries: 100k in the
// benchmark), and holding every entry's data in memory cost as much as the key-value data
// themselves. Here an entry costs about 40 bytes of array slots; its data are on disk
// (the page cache serves them back).
//
// Buffers are never written to once made, so an entry handed out stays valid.

import { assert } from './errors';
import { Entry, EntryType } from './types';

/** Bytes of block buffers kept in memory by default. */
export const cachedBlockBytesDefault = 8 * 1024 * 1024;

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

/** Reads `len` bytes at `offset` of segment `seq`. */
export type SegmentReader = (seq: number, offset: number, len: number) => Buffer;

export class LogEntries {
  /** Index of the first entry held; entries are [first, first + length). */
  private first: number;
  private terms: number[] = [];
  private types: EntryType[] = [];
  private blockIds: number[] = [];
  private offsets: number[] = [];
  private lengths: number[] = [];
  /** Blocks by id; ids grow in the order blocks are made (Map keeps that order). */
  private blocks = new Map<number, Block>();
  private nextBlockId = 0;
  private cachedBytes = 0;

  constructor(
    firstIndex: number,
    private readonly read: SegmentReader,
    private readonly cacheBytesMax = cachedBlockBytesDefault,
  ) {
    this.first = firstIndex;
  }

  get length(): number {
    return this.terms.length;
  }

  get firstIndex(): number {
    return this.first;
  }

  get lastIndex(): number {
    return this.first + this.terms.length - 1;
  }

  /** Bytes of block buffers held in memory (for tests and metrics). */
  get cachedBlockBytes(): number {
    return this.cachedBytes;
  }

  term(index: number): number {
    return this.terms[index - this.first];
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
    assert(index === this.first + this.terms.length, `entry ${index} appended after ${this.lastIndex}`);
    this.terms.push(term);
    this.types.push(type);
    this.blockIds.push(blockId);
    this.offsets.push(offset);
    this.lengths.push(length);
  }

  /** Drops the entries from `index` on (a conflicting suffix). Their blocks stay until compaction. */
  truncateFrom(index: number): void {
    const n = index - this.first;
    assert(n >= 0 && n <= this.terms.length, `truncate at ${index} outside [${this.first}, ${this.lastIndex + 1}]`);
    this.terms.length = n;
    this.types.length = n;
    this.blockIds.length = n;
    this.offsets.length = n;
    this.lengths.length = n;
  }

  /** Drops every entry before `index` (which may be lastIndex + 1: all), and the blocks only they used. */
  dropBefore(index: number): void {
    const n = index - this.first;
    assert(n >= 0 && n <= this.terms.length, `drop before ${index} outside [${this.first}, ${this.lastIndex + 1}]`);
    if (n === 0) return;
    this.terms = this.terms.slice(n);
    this.types = this.types.slice(n);
    this.blockIds = this.blockIds.slice(n);
    this.offsets = this.offsets.slice(n);
    this.lengths = this.lengths.slice(n);
    this.first = index;
    // Block ids grow with the index of the entries written in them (a block written later
    // can hold lower indexes, after a truncation, but never lower than one still held).
    const keepFrom = this.blockIds.length > 0 ? this.blockIds[0] : this.nextBlockId;
    this.dropBlocksBefore(keepFrom);
  }

  /** Drops everything and restarts at `firstIndex`. */
  reset(firstIndex: number): void {
    this.first = firstIndex;
    this.terms = [];
    this.types = [];
    this.blockIds = [];
    this.offsets = [];
    this.lengths = [];
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
    let end = lo;
    let size = 0;
    for (; end < hi; end++) {
      size += this.lengths[end - this.first] + 16;
      if (end > lo && size > maxBytes) break;
    }
    const out: Entry[] = new Array(end - lo);
    let i = lo;
    while (i < end) {
      const k = i - this.first;
      const block = this.blocks.get(this.blockIds[k])!;
      // The run of entries in the same block.
      let j = i + 1;
      while (j < end && this.blockIds[j - this.first] === this.blockIds[k]) j++;
      let buf: Buffer;
      let base: number;
      if (block.buf !== undefined) {
        buf = block.buf;
        base = 0;
      } else {
        let from = Infinity;
        let to = 0;
        for (let x = k; x < j - this.first; x++) {
          if (this.lengths[x] === 0) continue;
          from = Math.min(from, this.offsets[x]);
          to = Math.max(to, this.offsets[x] + this.lengths[x]);
        }
        base = from === Infinity ? 0 : from;
        buf = from === Infinity ? Buffer.alloc(0) : this.read(block.seq, block.fileOffset + from, to - from);
      }
      for (let x = i; x < j; x++) {
        const y = x - this.first;
        const len = this.lengths[y];
        const data = len === 0 ? new Uint8Array(0) : buf.subarray(this.offsets[y] - base, this.offsets[y] - base + len);
        out[x - lo] = { term: this.terms[y], index: x, type: this.types[y], data };
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

  /** Lets the oldest durable buffers go while over budget. */
  private evict(): void {
    if (this.cachedBytes <= this.cacheBytesMax) return;
    for (const b of this.blocks.values()) {
      if (this.cachedBytes <= this.cacheBytesMax) break;
      if (b.buf === undefined || !b.durable) continue;
      b.buf = undefined;
      this.cachedBytes -= b.bytes;
    }
  }
}
