// The values of the store's revisions, kept outside V8's heap: appended into slabs (Buffers of
// valueSlabBytes), each revision entry holding its slab, offset and length.
//
// Why: as latin1 strings in the heap, values were most of what survived each young-generation
// collection during a write burst (~270 of the ~700 bytes a put leaves behind), and every one
// was copied twice by the collector (within the young generation, then into the old one).
// In a slab they are copied once, by us, and the collector sees one object per slab.
//
// Slab bytes are written once and never overwritten, so bytes read from an entry are right
// even after the entry was released or moved. Reclaiming:
// - each slab counts its live bytes; releasing an entry (it left the index and the history)
//   subtracts its length, and a slab with nothing live is dropped (the collector frees it);
// - when the slabs hold more than twice the live bytes (and at least slackBytes more), the
//   slabs less than half live are evacuated: the caller visits every entry still held and
//   `relocate` copies the values of those slabs into the current one. A store whose keys are
//   overwritten in random order would otherwise keep every slab that still has one live value.

import { assert } from './errors';

export class ValueSlab {
  /** Bytes appended so far (the free space starts here). */
  used = 0;
  /** Bytes of entries still held. invariant: 0 <= live <= used <= buf.length */
  live = 0;
  /** Marked for evacuation: relocate() moves values out of it. */
  evacuating = false;
  constructor(readonly buf: Buffer) {}
}

/** Where an entry's value is: the fields a revision entry carries. */
export interface ValueHolder {
  /** undefined for an empty value. */
  slab: ValueSlab | undefined;
  vOff: number;
  vLen: number;
}

export interface ValueArenaStats {
  /** Bytes of values held. */
  liveBytes: number;
  /** Bytes of the slabs in use (what the values cost in memory). */
  slabBytes: number;
  slabs: number;
}

export class ValueArena {
  private cur: ValueSlab | undefined;
  private readonly slabs = new Set<ValueSlab>();
  private liveBytes = 0;
  private heldBytes = 0;

  /**
   * slabBytes: the size of a shared slab; a value larger than a quarter of it gets a slab of
   * its own. slackBytes: waste below this never triggers an evacuation.
   */
  constructor(
    private readonly slabBytes: number,
    private readonly slackBytes = 4 * slabBytes,
  ) {
    assert(slabBytes >= 4, 'a slab holds at least four one-byte values');
  }

  /** Copies `value` into the arena and points `h` at it. */
  hold(h: ValueHolder, value: Uint8Array): void {
    this.place(h, value, 0, value.length);
  }

  /** `h` is no longer held by the store (each entry is released once). */
  release(h: ValueHolder): void {
    const s = h.slab;
    if (s === undefined) return;
    s.live -= h.vLen;
    this.liveBytes -= h.vLen;
    assert(s.live >= 0, 'a value is released once');
    if (s.live === 0 && s !== this.cur) this.drop(s);
  }

  /** True when the slabs waste more than they hold (see the file's comment). */
  wasteful(): boolean {
    const waste = this.heldBytes - this.liveBytes;
    return waste > this.liveBytes && waste >= this.slackBytes;
  }

  /**
   * Evacuates the slabs less than half live: `visitHeld` must call `relocate` on every entry
   * the store still holds (an entry visited twice is moved once).
   */
  evacuate(visitHeld: (relocate: (h: ValueHolder) => void) => void): void {
    const marked: ValueSlab[] = [];
    for (const s of this.slabs) {
      if (s !== this.cur && s.live * 2 < s.buf.length) {
        s.evacuating = true;
        marked.push(s);
      }
    }
    if (marked.length === 0) return;
    visitHeld(this.relocate);
    for (const s of marked) {
      s.evacuating = false;
      // Every value of a marked slab was visited and moved. Were one missed, its entry would
      // still read the right bytes (the slab stays alive through it); it stays counted.
      if (s.live === 0) this.drop(s);
    }
  }

  stats(): ValueArenaStats {
    return { liveBytes: this.liveBytes, slabBytes: this.heldBytes, slabs: this.slabs.size };
  }

  private readonly relocate = (h: ValueHolder): void => {
    const s = h.slab;
    if (s === undefined || !s.evacuating) return;
    s.live -= h.vLen;
    this.liveBytes -= h.vLen;
    this.place(h, s.buf, h.vOff, h.vOff + h.vLen);
  };

  private place(h: ValueHolder, src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    h.vLen = n;
    if (n === 0) {
      h.slab = undefined;
      h.vOff = 0;
      return;
    }
    let s = this.cur;
    if (n > this.slabBytes >>> 2) {
      s = this.newSlab(n);
    } else if (s === undefined || s.used + n > s.buf.length) {
      const old = s;
      s = this.cur = this.newSlab(this.slabBytes);
      if (old !== undefined && old.live === 0) this.drop(old);
    }
    s.buf.set(start === 0 && end === src.length ? src : src.subarray(start, end), s.used);
    h.slab = s;
    h.vOff = s.used;
    s.used += n;
    s.live += n;
    this.liveBytes += n;
  }

  private newSlab(bytes: number): ValueSlab {
    // allocUnsafeSlow: a buffer of its own, not a slice of Node's shared pool.
    const s = new ValueSlab(Buffer.allocUnsafeSlow(bytes));
    this.slabs.add(s);
    this.heldBytes += bytes;
    return s;
  }

  private drop(s: ValueSlab): void {
    this.slabs.delete(s);
    this.heldBytes -= s.buf.length;
  }
}

const EMPTY = Buffer.alloc(0);

/** The bytes of `h`'s value, as a view (it stays right: slabs are never rewritten). */
export function valueView(h: ValueHolder): Buffer {
  return h.slab === undefined ? EMPTY : h.slab.buf.subarray(h.vOff, h.vOff + h.vLen);
}

/** A copy of `h`'s value that owns its memory. */
export function valueCopy(h: ValueHolder): Buffer {
  if (h.slab === undefined) return Buffer.alloc(0);
  const out = Buffer.allocUnsafe(h.vLen);
  h.slab.buf.copy(out, 0, h.vOff, h.vOff + h.vLen);
  return out;
}

/** Byte order of two values (as Go's bytes.Compare). */
export function compareValues(a: ValueHolder, b: ValueHolder): number {
  if (a.slab === undefined || b.slab === undefined) return (a.vLen > 0 ? 1 : 0) - (b.vLen > 0 ? 1 : 0);
  return a.slab.buf.compare(b.slab.buf, b.vOff, b.vOff + b.vLen, a.vOff, a.vOff + a.vLen);
}
