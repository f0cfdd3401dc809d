import { Entry } from './types';

/** Bytes an entry counts for in size limits (payload plus a fixed header estimate). */
export function entrySizeBytes(e: Entry): number {
  return e.data.byteLength + 16;
}

export function payloadSizeBytes(entries: readonly Entry[]): number {
  let n = 0;
  for (const e of entries) n += e.data.byteLength;
  return n;
}

/** The longest prefix of entries within maxBytes, but always at least one entry. */
export function entriesLimitedBySize(entries: Entry[], maxBytes: number): Entry[] {
  if (entries.length === 0) return entries;
  let size = entrySizeBytes(entries[0]);
  let n = 1;
  for (; n < entries.length; n++) {
    size += entrySizeBytes(entries[n]);
    if (size > maxBytes) break;
  }
  return n === entries.length ? entries : entries.slice(0, n);
}

/** A small seeded PRNG (mulberry32). The core takes its randomness from one of these. */
export interface Random {
  /** Uniform integer in [0, n). */
  int(n: number): number;
}

export function seededRandom(seed: number): Random & { float(): number } {
  let a = seed >>> 0;
  const float = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { float, int: (n: number) => Math.floor(float() * n) };
}

/**
 * How many of the committed entries (a prefix) were written by earlier Readies: those below
 * the first of the entries this Ready writes, all of them when it writes none.
 */
export function durablePrefix(committed: readonly Entry[], toWrite: readonly Entry[]): number {
  if (toWrite.length === 0) return committed.length;
  const firstNew = toWrite[0].index;
  let n = 0;
  while (n < committed.length && committed[n].index < firstNew) n++;
  return n;
}
