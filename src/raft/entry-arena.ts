// The in-memory copy of DiskStorage's log, packed: every entry's data is copied into large
// shared chunks, and term, type and position are kept in flat arrays. Entry objects are made
// on demand by slice(), as views into the chunks.
//
// Why: the entries handed to save() are views into whatever buffer they came in (a follower's
// received gRPC message, a slab of the proposer's encoder), and such a view pins its whole
// buffer. Kept in the log until the next snapshot, 100k entries of ~300 bytes pinned ~1.6 KB
// each (plus an Entry object, a view and what decoders attach to views). Here an entry costs
// its bytes plus about 40 bytes of array slots.
//
// Chunks are only appended to, never rewritten (a view handed out earlier stays valid, even
// after its entry was truncated away), and are dropped once compaction passed every entry in
// them.

import { assert } from './errors';
import { Entry, EntryType } from './types';

/** Size of the chunks entries' data are copied into. */
export const arenaChunkBytes = 64 * 1024;
/** Data larger than this get a buffer of their own (a chunk would waste too much at its end). */
export const arenaOwnBufferBytesMin = arenaChunkBytes / 4;

const noData = -1;
const ownData = -2;

export class EntryArena {
  /** Index of the first entry held; entries are [first, first + length). */
  private first: number;
  private terms: number[] = [];
  private types: EntryType[] = [];
  /** Chunk number (absolute: chunks[n - chunkBase]) of each entry's data. */
  private chunkNos: number[] = [];
  private offsets: number[] = [];
  private lengths: number[] = [];
  private chunks: Buffer[] = [];
  private chunkBase = 0;
  /** Write position in the last chunk (chunk number chunkBase + chunks.length - 1). */
  private pos = arenaChunkBytes;
  /** Data of at least arenaOwnBufferBytesMin, by entry index. */
  private own = new Map<number, Buffer>();

  constructor(firstIndex: number) {
    this.first = firstIndex;
  }

  get length(): number {
    return this.terms.length;
  }

  /** Index of the first entry held (the one after the snapshot). */
  get firstIndex(): number {
    return this.first;
  }

  get lastIndex(): number {
    return this.first + this.terms.length - 1;
  }

  /** Bytes of the chunks held (for tests and metrics). */
  get chunkBytes(): number {
    let n = 0;
    for (const c of this.chunks) n += c.byteLength;
    for (const b of this.own.values()) n += b.byteLength;
    return n;
  }

  term(index: number): number {
    return this.terms[index - this.first];
  }

  /** Appends an entry (its index must be lastIndex + 1); its data are copied. */
  push(e: Entry): void {
    assert(e.index === this.first + this.terms.length, `entry ${e.index} appended after ${this.lastIndex}`);
    const len = e.data.byteLength;
    let chunkNo: number;
    let off = 0;
    if (len === 0) {
      chunkNo = noData;
    } else if (len >= arenaOwnBufferBytesMin) {
      const own = Buffer.allocUnsafeSlow(len);
      own.set(e.data);
      this.own.set(e.index, own);
      chunkNo = ownData;
    } else {
      if (this.pos + len > arenaChunkBytes) {
        this.chunks.push(Buffer.allocUnsafeSlow(arenaChunkBytes));
        this.pos = 0;
      }
      this.chunks[this.chunks.length - 1].set(e.data, this.pos);
      chunkNo = this.chunkBase + this.chunks.length - 1;
      off = this.pos;
      this.pos += len;
    }
    this.terms.push(e.term);
    this.types.push(e.type);
    this.chunkNos.push(chunkNo);
    this.offsets.push(off);
    this.lengths.push(len);
  }

  /** Drops the entries from `index` on (a conflicting suffix). Their bytes in chunks stay until compaction. */
  truncateFrom(index: number): void {
    const n = index - this.first;
    assert(n >= 0 && n <= this.terms.length, `truncate at ${index} outside [${this.first}, ${this.lastIndex + 1}]`);
    for (const i of [...this.own.keys()]) if (i >= index) this.own.delete(i);
    this.terms.length = n;
    this.types.length = n;
    this.chunkNos.length = n;
    this.offsets.length = n;
    this.lengths.length = n;
  }

  /** Drops every entry before `index` (which may be lastIndex + 1: all), and the chunks only they used. */
  dropBefore(index: number): void {
    const n = index - this.first;
    assert(n >= 0 && n <= this.terms.length, `drop before ${index} outside [${this.first}, ${this.lastIndex + 1}]`);
    if (n === 0) return;
    for (const i of [...this.own.keys()]) if (i < index) this.own.delete(i);
    this.terms = this.terms.slice(n);
    this.types = this.types.slice(n);
    this.chunkNos = this.chunkNos.slice(n);
    this.offsets = this.offsets.slice(n);
    this.lengths = this.lengths.slice(n);
    this.first = index;
    // Chunk numbers grow with the index: the first entry in a chunk gives the lowest one
    // still used. The chunk being filled is always kept.
    let keepFrom = this.chunkBase + this.chunks.length - 1;
    for (const c of this.chunkNos) {
      if (c >= 0) {
        keepFrom = Math.min(keepFrom, c);
        break;
      }
    }
    const drop = keepFrom - this.chunkBase;
    if (drop > 0) {
      this.chunks = this.chunks.slice(drop);
      this.chunkBase = keepFrom;
    }
  }

  /** Drops everything and restarts at `firstIndex`. */
  reset(firstIndex: number): void {
    this.first = firstIndex;
    this.terms = [];
    this.types = [];
    this.chunkNos = [];
    this.offsets = [];
    this.lengths = [];
    this.chunkBase += this.chunks.length;
    this.chunks = [];
    this.own.clear();
    this.pos = arenaChunkBytes;
  }

  /** The entry at `index`, its data a view into the arena (never write to it). */
  entry(index: number): Entry {
    const i = index - this.first;
    const c = this.chunkNos[i];
    let data: Uint8Array;
    if (c >= 0) data = this.chunks[c - this.chunkBase].subarray(this.offsets[i], this.offsets[i] + this.lengths[i]);
    else if (c === ownData) data = this.own.get(index)!;
    else data = new Uint8Array(0);
    return { term: this.terms[i], index, type: this.types[i], data };
  }

  /**
   * Entries in [lo, hi) (inside what is held), stopping once their size (as entrySizeBytes
   * counts it) passes maxBytes, but at least one.
   */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    const out: Entry[] = [];
    let size = 0;
    for (let index = lo; index < hi; index++) {
      size += this.lengths[index - this.first] + 16;
      if (out.length > 0 && size > maxBytes) break;
      out.push(this.entry(index));
    }
    return out;
  }
}
