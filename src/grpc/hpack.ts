// HPACK header compression for HTTP/2 (RFC 7541): a decoder for the header blocks we receive
// and an encoder for the ones we send.
//
// Header names and values are byte strings; they are held as latin1 JS strings (one char per
// byte), so arbitrary bytes round-trip and string length equals byte length (which the table
// size rule of Section 4.1 counts). Names are passed through as sent: checking that they are
// lowercase and valid is the HTTP/2 layer's job.

import {
  huffmanDecode,
  huffmanEncode,
  huffmanEncodedLength,
  huffmanMaxDecodedLength,
} from './hpack-huffman';

/** A malformed header block. The HTTP/2 layer turns it into a COMPRESSION_ERROR. */
export class HpackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HpackError';
  }
}

export type HeaderList = Array<[name: string, value: string]>;

/** Section 4.1: an entry's size is its name and value lengths plus 32. */
const ENTRY_OVERHEAD = 32;

/** Largest integer accepted in a header block (Section 5.1 leaves the limit to us). */
const MAX_INT = 2 ** 31 - 1;

/** The static table (Appendix A); STATIC_TABLE[i - 1] is index i. */
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

const EMPTY = Buffer.alloc(0);

const STATIC_COUNT = STATIC_TABLE.length; // 61; dynamic indices start at 62

/** Static lookup for the encoder: per name, its first index and the indices of its values. */
const STATIC_BY_NAME: ReadonlyMap<string, { index: number; values: Map<string, number> }> = (() => {
  const m = new Map<string, { index: number; values: Map<string, number> }>();
  STATIC_TABLE.forEach(([name, value], i) => {
    let e = m.get(name);
    if (!e) m.set(name, (e = { index: i + 1, values: new Map() }));
    if (!e.values.has(value)) e.values.set(value, i + 1);
  });
  return m;
})();

/**
 * The dynamic table (Section 2.3.2): a FIFO of entries, newest first in index order, held in
 * a ring buffer so that adding and evicting are O(1). Every entry ever added gets a sequence
 * number (`inserted` counts them); the entry with sequence number s has dynamic index
 * inserted - 1 - s (0 = newest), which lets the encoder remember entries by number.
 */
class DynamicTable {
  private names: string[] = new Array(16);
  private values: string[] = new Array(16);
  private head = 0; // ring position of the oldest entry
  count = 0;
  size = 0;
  inserted = 0;

  constructor(
    public maxSize: number,
    /** Called for each evicted entry with its sequence number (the encoder's index upkeep). */
    private readonly onEvict?: (name: string, value: string, seq: number) => void,
  ) {}

  /** Entry by dynamic index (0 = newest); the caller checks index < count. */
  name(index: number): string {
    return this.names[(this.head + this.count - 1 - index) & (this.names.length - 1)];
  }

  value(index: number): string {
    return this.values[(this.head + this.count - 1 - index) & (this.names.length - 1)];
  }

  /** Section 4.4: evicts until the entry fits; an entry larger than the table empties it. */
  add(name: string, value: string): void {
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    if (entrySize > this.maxSize) {
      this.evictTo(0);
      return;
    }
    this.evictTo(this.maxSize - entrySize);
    if (this.count === this.names.length) this.grow();
    const pos = (this.head + this.count) & (this.names.length - 1);
    this.names[pos] = name;
    this.values[pos] = value;
    this.count++;
    this.size += entrySize;
    this.inserted++;
  }

  /** Section 4.3: a new maximum size evicts until the table fits. */
  setMaxSize(maxSize: number): void {
    this.maxSize = maxSize;
    this.evictTo(maxSize);
  }

  /** Newest first, as indexed. */
  entries(): HeaderList {
    const out: HeaderList = [];
    for (let i = 0; i < this.count; i++) out.push([this.name(i), this.value(i)]);
    return out;
  }

  private evictTo(targetSize: number): void {
    const mask = this.names.length - 1;
    while (this.size > targetSize && this.count > 0) {
      const name = this.names[this.head];
      const value = this.values[this.head];
      this.names[this.head] = this.values[this.head] = '';
      this.size -= name.length + value.length + ENTRY_OVERHEAD;
      this.onEvict?.(name, value, this.inserted - this.count);
      this.head = (this.head + 1) & mask;
      this.count--;
    }
  }

  private grow(): void {
    // Capacity stays a power of two for the index mask.
    const n = this.names.length;
    const names = new Array<string>(n * 2);
    const values = new Array<string>(n * 2);
    for (let i = 0; i < this.count; i++) {
      names[i] = this.names[(this.head + i) & (n - 1)];
      values[i] = this.values[(this.head + i) & (n - 1)];
    }
    this.names = names;
    this.values = values;
    this.head = 0;
  }
}

export interface HpackDecoderOptions {
  /** Limit on the decoded header list: sum of name + value lengths + 32 per field. */
  maxHeaderListSize?: number;
}

/** Blocks longer than this are not looked for among the known ones. */
const INDEXED_BLOCK_BYTES_MAX = 512;
/** Known blocks per decoder (the cache starts over beyond it). */
const INDEXED_BLOCKS_MAX = 64;

/**
 * A well-formed block of indexed fields and literals without indexing or never indexed
 * only: decoding it changes nothing in the decoder. Anything else, or a block cut short,
 * is false (and decoded the usual way, which finds what is wrong with it).
 */
function leavesTableUnchanged(b: Buffer): boolean {
  const end = b.length;
  if (end === 0 || end > INDEXED_BLOCK_BYTES_MAX) return false;
  scanAt = 0;
  while (scanAt < end) {
    const first = b[scanAt]!;
    if (first & 0x80) {
      if (scanInt(b, 7) <= 0) return false; // index 0 is an error
    } else if (first & 0x60) {
      return false; // literal with incremental indexing (01), or a size update (001)
    } else {
      const nameIndex = scanInt(b, 4);
      if (nameIndex < 0 || (nameIndex === 0 && !scanString(b)) || !scanString(b)) return false;
    }
  }
  return true;
}

/** leavesTableUnchanged's position in its block (module state: the scan never nests). */
let scanAt = 0;

/** The integer with an N-bit prefix at scanAt, moving past it; -1 when cut short or too long. */
function scanInt(b: Buffer, prefixBits: number): number {
  const mask = (1 << prefixBits) - 1;
  let v = b[scanAt++]! & mask;
  if (v < mask) return v;
  for (let shift = 0; shift <= 21; shift += 7) {
    if (scanAt >= b.length) return -1;
    const x = b[scanAt++]!;
    v += (x & 0x7f) * 2 ** shift;
    if ((x & 0x80) === 0) return v;
  }
  return -1;
}

/** Moves past the string literal at scanAt; false when it is cut short. */
function scanString(b: Buffer): boolean {
  if (scanAt >= b.length) return false;
  const n = scanInt(b, 7);
  if (n < 0 || n > b.length - scanAt) return false;
  scanAt += n;
  return true;
}

/** Default for HpackDecoder.maxHeaderListSize: 64 KiB. */
export const DEFAULT_MAX_HEADER_LIST_SIZE = 64 * 1024;

/**
 * Decodes the header blocks of one HTTP/2 connection direction (one decoder per
 * connection: the dynamic table carries over from block to block).
 */
export class HpackDecoder {
  /** Limit on each decoded header list (see HpackDecoderOptions); exceeding it is an HpackError. */
  maxHeaderListSize: number;

  private readonly table: DynamicTable;
  /** The SETTINGS_HEADER_TABLE_SIZE we announced: size updates above it are errors. */
  private settingsMax: number;
  /** Set when the settings limit dropped below the table's size: the next block must update. */
  private updateRequired = false;
  /** Scratch space for Huffman decoding, grown on demand. */
  private scratch = Buffer.allocUnsafe(256);
  // The block being decoded and the position in it.
  private src: Buffer = EMPTY;
  private pos = 0;
  private end = 0;
  private listSize = 0;

  constructor(maxTableSize = 4096, options: HpackDecoderOptions = {}) {
    this.settingsMax = maxTableSize;
    this.table = new DynamicTable(maxTableSize);
    this.maxHeaderListSize = options.maxHeaderListSize ?? DEFAULT_MAX_HEADER_LIST_SIZE;
  }

  /**
   * Our SETTINGS_HEADER_TABLE_SIZE, to be set once the peer has acknowledged the SETTINGS
   * frame carrying it. If it is below the table's current maximum, the peer's next header
   * block must start with a size update that brings it within the limit (Section 4.2).
   */
  set maxTableSize(n: number) {
    this.settingsMax = n;
    if (n < this.table.maxSize) this.updateRequired = true;
  }

  get maxTableSize(): number {
    return this.settingsMax;
  }

  /**
   * Decoded header lists of recent blocks that leave the dynamic table as it is (indexed
   * fields and literals not indexed), by their bytes: what a client sends for every request
   * once its headers are in the tables, or when it does not use the dynamic table at all.
   * Such a block decodes to the same list until the table changes (any change empties
   * this). The lists are shared: frozen.
   */
  private readonly indexedBlocks = new Map<string, { headers: HeaderList; size: number }>();

  /** Current dynamic table contents, newest first (for tests and debugging). */
  get dynamicTable(): HeaderList {
    return this.table.entries();
  }

  /** Current dynamic table size by the rule of Section 4.1. */
  get dynamicTableSize(): number {
    return this.table.size;
  }

  /** Decodes one complete header block (HEADERS plus any CONTINUATION fragments). */
  decode(block: Buffer | Uint8Array): HeaderList {
    this.src = Buffer.isBuffer(block) ? block : Buffer.from(block.buffer, block.byteOffset, block.byteLength);
    this.pos = 0;
    this.end = this.src.length;
    this.listSize = 0;
    try {
      if (this.updateRequired || !leavesTableUnchanged(this.src)) return this.decodeBlock();
      const key = this.src.toString('latin1', 0, this.end);
      const known = this.indexedBlocks.get(key);
      if (known !== undefined && known.size <= this.maxHeaderListSize) return known.headers;
      const headers = Object.freeze(this.decodeBlock()) as HeaderList;
      if (this.indexedBlocks.size >= INDEXED_BLOCKS_MAX) this.indexedBlocks.clear();
      this.indexedBlocks.set(key, { headers, size: this.listSize });
      return headers;
    } finally {
      this.src = EMPTY; // do not keep the caller's buffer alive
    }
  }

  private decodeBlock(): HeaderList {
    const src = this.src;
    const table = this.table;
    const headers: HeaderList = [];
    let fieldSeen = false;
    while (this.pos < this.end) {
      const b = src[this.pos];
      if (b & 0x80) {
        // Indexed header field (Section 6.1).
        const index = this.readInt(7);
        if (index === 0) throw new HpackError('index 0');
        if (index <= STATIC_COUNT) {
          const e = STATIC_TABLE[index - 1];
          this.emit(headers, e[0], e[1]);
        } else {
          const d = index - STATIC_COUNT - 1;
          if (d >= table.count) throw new HpackError(`index ${index} beyond the table`);
          this.emit(headers, table.name(d), table.value(d));
        }
      } else if (b & 0x40) {
        // Literal with incremental indexing (Section 6.2.1).
        const index = this.readInt(6);
        const name = index === 0 ? this.readString() : this.nameAt(index);
        const value = this.readString();
        table.add(name, value);
        this.indexedBlocks.clear();
        this.emit(headers, name, value);
      } else if (b & 0x20) {
        // Dynamic table size update (Section 6.3): only before the first field.
        if (fieldSeen) throw new HpackError('dynamic table size update after a header field');
        const size = this.readInt(5);
        if (size > this.settingsMax) {
          throw new HpackError(`dynamic table size update to ${size} above the limit ${this.settingsMax}`);
        }
        table.setMaxSize(size);
        this.indexedBlocks.clear();
        this.updateRequired = false;
        continue;
      } else {
        // Literal without indexing (0000) or never indexed (0001) (Sections 6.2.2, 6.2.3).
        // The never-indexed flag is not passed on: we are an endpoint, not an intermediary.
        const index = this.readInt(4);
        const name = index === 0 ? this.readString() : this.nameAt(index);
        this.emit(headers, name, this.readString());
      }
      if (!fieldSeen) {
        if (this.updateRequired) throw new HpackError('missing dynamic table size update');
        fieldSeen = true;
      }
    }
    return headers;
  }

  private emit(headers: HeaderList, name: string, value: string): void {
    this.listSize += name.length + value.length + ENTRY_OVERHEAD;
    if (this.listSize > this.maxHeaderListSize) throw new HpackError('header list too large');
    headers.push([name, value]);
  }

  /** The name of a static or dynamic table entry, for a literal with an indexed name. */
  private nameAt(index: number): string {
    if (index <= STATIC_COUNT) return STATIC_TABLE[index - 1][0]; // index 0 means a literal name
    const d = index - STATIC_COUNT - 1;
    if (d >= this.table.count) throw new HpackError(`index ${index} beyond the table`);
    return this.table.name(d);
  }

  /** Section 5.1 integer with an N-bit prefix at the current position. */
  private readInt(prefixBits: number): number {
    const src = this.src;
    const mask = (1 << prefixBits) - 1;
    let value = src[this.pos++] & mask;
    if (value < mask) return value;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw new HpackError('truncated integer');
      const b = src[this.pos++];
      value += (b & 0x7f) * 2 ** shift;
      if (value > MAX_INT) throw new HpackError('integer overflow');
      if ((b & 0x80) === 0) return value;
      shift += 7;
      // Continuation bytes adding only zeros are legal but pointless; cap their number.
      if (shift > 28) throw new HpackError('integer overflow');
    }
  }

  /** Section 5.2 string literal at the current position. */
  private readString(): string {
    if (this.pos >= this.end) throw new HpackError('truncated header field');
    const huffman = (this.src[this.pos] & 0x80) !== 0;
    const len = this.readInt(7);
    if (len > this.end - this.pos) throw new HpackError('truncated string');
    const start = this.pos;
    this.pos += len;
    if (!huffman) return this.src.toString('latin1', start, this.pos);
    const max = huffmanMaxDecodedLength(len);
    if (this.scratch.length < max) this.scratch = Buffer.allocUnsafe(Math.max(max, this.scratch.length * 2));
    const n = huffmanDecode(this.src, start, this.pos, this.scratch);
    if (n < 0) throw new HpackError('invalid Huffman code (EOS or bad padding)');
    return this.scratch.toString('latin1', 0, n);
  }
}

/** Fields whose values are never stored anywhere (Section 7.1.3): literal never indexed. */
const SENSITIVE = new Set(['authorization', 'proxy-authorization', 'cookie']);

/** Fields whose values change too often to be worth a table entry: literal without indexing. */
const NOT_INDEXED = new Set([
  'age',
  'content-length',
  'date',
  'etag',
  'expires',
  'grpc-message',
  'grpc-timeout',
  'if-modified-since',
  'if-none-match',
  'last-modified',
  'location',
  'set-cookie',
]);

/** The encoder's default choice of which fields to add to the dynamic table. */
export function defaultShouldIndex(name: string): boolean {
  return !NOT_INDEXED.has(name);
}

export interface HpackEncoderOptions {
  /** Huffman-code string literals unless that is longer (default true). */
  huffman?: boolean;
  /** Whether a (non-sensitive) field goes into the dynamic table; default defaultShouldIndex. */
  shouldIndex?: (name: string, value: string) => boolean;
}

/** Per name in the encoder's dynamic table: newest sequence number, and per value. */
interface DynamicName {
  seq: number;
  values: Map<string, number>;
}

/**
 * Encodes the header blocks of one HTTP/2 connection direction. The dynamic table mirrors
 * the peer decoder's; header blocks must be sent in the order they were encoded.
 */
export class HpackEncoder {
  private readonly table: DynamicTable;
  private readonly byName = new Map<string, DynamicName>();
  private readonly huffman: boolean;
  private readonly shouldIndex: (name: string, value: string) => boolean;
  /** Size updates to signal at the start of the next block: the smallest, then the last. */
  private pendingMin = -1;
  private pendingLast = -1;
  private buf = Buffer.allocUnsafe(1024);
  private pos = 0;

  /**
   * `maxTableSize` is the peer's SETTINGS_HEADER_TABLE_SIZE (4096 by default, as in the
   * protocol); any other value is signalled in the first block.
   */
  constructor(maxTableSize = 4096, options: HpackEncoderOptions = {}) {
    this.table = new DynamicTable(maxTableSize, (name, value, seq) => this.forget(name, value, seq));
    this.huffman = options.huffman ?? true;
    this.shouldIndex = options.shouldIndex ?? defaultShouldIndex;
    if (maxTableSize !== 4096) this.pendingMin = this.pendingLast = maxTableSize;
  }

  /**
   * The peer changed its SETTINGS_HEADER_TABLE_SIZE: use `n` as the table size from now on
   * and announce it at the start of the next block (Section 4.2). 0 disables indexing.
   */
  setMaxTableSize(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > MAX_INT) throw new RangeError(`bad table size ${n}`);
    this.table.setMaxSize(n);
    if (this.pendingMin < 0 || n < this.pendingMin) this.pendingMin = n;
    this.pendingLast = n;
  }

  /** Current dynamic table contents, newest first (for tests and debugging). */
  get dynamicTable(): HeaderList {
    return this.table.entries();
  }

  /** Current dynamic table size by the rule of Section 4.1. */
  get dynamicTableSize(): number {
    return this.table.size;
  }

  /**
   * Encodes a header list into one header block. Names and values must be byte strings (no
   * char above 0xff), else a TypeError.
   */
  encode(headers: HeaderList): Buffer {
    this.pos = 0;
    if (this.pendingLast >= 0) {
      // Section 4.2: signal the smallest size since the last block, then the final one.
      this.ensure(12);
      if (this.pendingMin < this.pendingLast) this.writeInt(this.pendingMin, 5, 0x20);
      this.writeInt(this.pendingLast, 5, 0x20);
      this.pendingMin = this.pendingLast = -1;
    }
    for (let i = 0; i < headers.length; i++) {
      const [name, value] = headers[i];
      this.encodeField(name, value);
    }
    // A copy: the scratch buffer is reused. Buffer#copy has a high fixed cost, and typical
    // blocks (indexed fields) are a few bytes, so those are copied by hand.
    const n = this.pos;
    const buf = this.buf;
    const out = Buffer.allocUnsafe(n);
    if (n <= 32) for (let i = 0; i < n; i++) out[i] = buf[i];
    else out.set(buf.subarray(0, n));
    return out;
  }

  private encodeField(name: string, value: string): void {
    const table = this.table;
    const stat = STATIC_BY_NAME.get(name);
    const exactStatic = stat?.values.get(value);
    // Room for the representation byte(s) and two strings with their length prefixes.
    this.ensure(16 + name.length + value.length);
    if (exactStatic !== undefined) {
      this.writeInt(exactStatic, 7, 0x80);
      return;
    }
    const dyn = this.byName.get(name);
    const sensitive = SENSITIVE.has(name);
    if (dyn && !sensitive) {
      const seq = dyn.values.get(value);
      if (seq !== undefined) {
        this.writeInt(STATIC_COUNT + table.inserted - seq, 7, 0x80);
        return;
      }
    }
    // A literal. The name by index if there is one (static first: it never moves).
    const nameIndex = stat ? stat.index : dyn ? STATIC_COUNT + table.inserted - dyn.seq : 0;
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    // Index unless sensitive, unwanted, or so big it would flush most of the table.
    const index = !sensitive && entrySize <= (table.maxSize * 3) / 4 && this.shouldIndex(name, value);
    if (index) this.writeInt(nameIndex, 6, 0x40);
    else this.writeInt(nameIndex, 4, sensitive ? 0x10 : 0x00);
    if (nameIndex === 0) this.writeString(name);
    this.writeString(value);
    if (index) {
      table.add(name, value);
      const seq = table.inserted - 1;
      let e = this.byName.get(name);
      if (!e) this.byName.set(name, (e = { seq, values: new Map() }));
      e.seq = seq;
      e.values.set(value, seq);
    }
  }

  /** DynamicTable eviction callback: drops lookups that point at the evicted entry. */
  private forget(name: string, value: string, seq: number): void {
    const e = this.byName.get(name);
    if (!e) return;
    // Eviction is oldest first, so once the newest entry of a name goes, all of them are gone.
    if (e.seq === seq) this.byName.delete(name);
    else if (e.values.get(value) === seq) e.values.delete(value);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Section 5.1 integer with an N-bit prefix; `flags` are the bits above the prefix. */
  private writeInt(value: number, prefixBits: number, flags: number): void {
    const buf = this.buf;
    const mask = (1 << prefixBits) - 1;
    if (value < mask) {
      buf[this.pos++] = flags | value;
      return;
    }
    buf[this.pos++] = flags | mask;
    value -= mask;
    while (value >= 0x80) {
      buf[this.pos++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 128);
    }
    buf[this.pos++] = value;
  }

  /**
   * Section 5.2 string literal, Huffman-coded unless that is longer (on a tie Huffman, as in
   * the RFC's examples). Space was ensured.
   */
  private writeString(s: string): void {
    const hlen = huffmanEncodedLength(s);
    if (hlen < 0) throw new TypeError('HPACK: header names and values must be byte strings (chars <= 0xff)');
    if (this.huffman && hlen <= s.length) {
      this.writeInt(hlen, 7, 0x80);
      this.pos = huffmanEncode(s, this.buf, this.pos);
    } else {
      this.writeInt(s.length, 7, 0);
      this.pos += this.buf.write(s, this.pos, 'latin1');
    }
  }
}
