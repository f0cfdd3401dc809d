// The value arena: values kept in slabs outside V8's heap, slabs dropped when nothing in them
// is held, sparse slabs evacuated when they waste more than they hold.

import * as fc from 'fast-check';
import { MvccCore } from '../../../src/kv/mvcc';
import { heldValueBytes } from './helpers';
import { ValueArena, ValueHolder, compareValues, valueCopy, valueView } from '../../../src/kv/mvcc/value-arena';

function holder(): ValueHolder {
  return { slab: undefined, vOff: 0, vLen: 0 };
}

function held(arena: ValueArena, text: string): ValueHolder {
  const h = holder();
  arena.hold(h, Buffer.from(text, 'latin1'));
  return h;
}

const str = (h: ValueHolder): string => valueCopy(h).toString('latin1');

describe('ValueArena', () => {
  test('a value is copied in: changing the source or a copy read out changes nothing held', () => {
    const arena = new ValueArena(64);
    const src = Buffer.from('abc');
    const h = holder();
    arena.hold(h, src);
    src[0] = 0x7a;
    const out = valueCopy(h);
    out[1] = 0x7a;
    expect(str(h)).toBe('abc');
    expect(valueView(h).toString()).toBe('abc');
    expect(arena.stats()).toEqual({ liveBytes: 3, slabBytes: 64, slabs: 1 });
  });

  test('an empty value takes no slab and reads as empty', () => {
    const arena = new ValueArena(64);
    const h = held(arena, '');
    expect(h.slab).toBeUndefined();
    expect(valueCopy(h).length).toBe(0);
    expect(valueView(h).length).toBe(0);
    arena.release(h);
    expect(arena.stats()).toEqual({ liveBytes: 0, slabBytes: 0, slabs: 0 });
  });

  test('values fill a slab, then the next; a slab left with nothing held is dropped, the current one is kept', () => {
    const arena = new ValueArena(16);
    const a = held(arena, 'aaaa');
    const b = held(arena, 'bbbb');
    const c = held(arena, 'cccc');
    const d = held(arena, 'dddd');
    expect(a.slab).toBe(d.slab);
    const e = held(arena, 'e'); // 16 bytes used: a new slab
    expect(e.slab).not.toBe(a.slab);
    expect(arena.stats()).toEqual({ liveBytes: 17, slabBytes: 32, slabs: 2 });
    for (const h of [a, b, c]) arena.release(h);
    expect(arena.stats().slabs).toBe(2);
    arena.release(d);
    expect(arena.stats()).toEqual({ liveBytes: 1, slabBytes: 16, slabs: 1 });
    arena.release(e);
    expect(arena.stats()).toEqual({ liveBytes: 0, slabBytes: 16, slabs: 1 }); // the current slab stays
    expect(str(d)).toBe('dddd'); // bytes read after release are still the value's
  });

  test('a value above a quarter of a slab gets a slab of its own, dropped on release', () => {
    const arena = new ValueArena(16);
    const small = held(arena, 'xy');
    const big = held(arena, 'B'.repeat(5));
    expect(big.slab).not.toBe(small.slab);
    expect(big.slab!.buf.length).toBe(5);
    const next = held(arena, 'z');
    expect(next.slab).toBe(small.slab); // the shared slab is still the current one
    arena.release(big);
    expect(arena.stats()).toEqual({ liveBytes: 3, slabBytes: 16, slabs: 1 });
  });

  test('evacuation moves the values of sparse slabs into the current one; old views still read right', () => {
    const arena = new ValueArena(16, 16);
    const hs: ValueHolder[] = [];
    for (let i = 0; i < 16; i++) hs.push(held(arena, String.fromCharCode(0x61 + i).repeat(4))); // 4 full slabs
    expect(arena.stats().slabs).toBe(4);
    // Keep one value in each of the first three slabs, and the whole last one.
    const keep = hs.filter((_h, i) => i % 4 === 0 || i >= 12);
    for (const h of hs) if (!keep.includes(h)) arena.release(h);
    expect(arena.stats()).toEqual({ liveBytes: 28, slabBytes: 64, slabs: 4 });
    expect(arena.wasteful()).toBe(true);
    const views = keep.map((h) => valueView(h));
    const before = keep.map(str);
    arena.evacuate((relocate) => {
      for (const h of keep) relocate(h);
      for (const h of keep) relocate(h); // visited twice: moved once
    });
    expect(keep.map(str)).toEqual(before);
    expect(views.map((v) => v.toString('latin1'))).toEqual(before);
    // The last slab was full and current; the three sparse ones went, their values in a new one.
    expect(arena.stats()).toEqual({ liveBytes: 28, slabBytes: 32, slabs: 2 });
    expect(arena.wasteful()).toBe(false);
  });

  test('an entry the visitor missed keeps its slab and its bytes', () => {
    const arena = new ValueArena(16, 0);
    const a = held(arena, 'aaaa');
    const b = held(arena, 'bbbb');
    for (let i = 0; i < 3; i++) arena.release(held(arena, 'xxxx'));
    held(arena, 'n'); // a new current slab
    arena.release(b);
    arena.evacuate(() => undefined);
    expect(str(a)).toBe('aaaa');
    expect(arena.stats()).toEqual({ liveBytes: 5, slabBytes: 32, slabs: 2 });
  });

  test('compareValues is byte order (Go bytes.Compare), with empty values first', () => {
    const arena = new ValueArena(64);
    const texts = ['', 'a', 'a\x00', 'ab', 'b', '\x7f', '\x80', '\xff', '\xff\xff'];
    const hs = [...texts].reverse().map((t) => held(arena, t));
    hs.sort(compareValues);
    expect(hs.map(str)).toEqual(texts);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 6 }), fc.uint8Array({ maxLength: 6 }), (x, y) => {
        const hx = holder();
        const hy = holder();
        arena.hold(hx, x);
        arena.hold(hy, y);
        expect(Math.sign(compareValues(hx, hy))).toBe(Math.sign(Buffer.compare(x, y)));
      }),
      { seed: 7, numRuns: 200 },
    );
  });
});

describe('the store keeps its values in the arena', () => {
  test('overwriting keys in random order with compactions keeps the slabs within twice what is held', () => {
    const slab = 256;
    const st = new MvccCore({ valueSlabBytes: slab });
    const rng = fc.sample(fc.array(fc.nat(49), { minLength: 50, maxLength: 50 }), { seed: 42, numRuns: 40 });
    let round = 0;
    for (const order of rng) {
      round++;
      for (const k of order) st.put(Buffer.from(`key-${k}`), Buffer.from(`value-${round}-${k}-`.padEnd(20, '.')));
      st.compact(st.revision);
      const { liveBytes, slabBytes } = st.valueStats();
      // After a compaction: not wasteful, or every slab but the current one at least half live.
      expect(slabBytes).toBeLessThanOrEqual(Math.max(2 * liveBytes + slab, liveBytes + 4 * slab));
    }
    for (let k = 0; k < 50; k++) {
      const kv = st.get(Buffer.from(`key-${k}`));
      if (kv === undefined) continue;
      expect(Buffer.from(kv.value).toString()).toMatch(new RegExp(`^value-\\d+-${k}-\\.*$`));
    }
    expect(st.valueStats().liveBytes).toBe(heldValueBytes(st));
  });
});
