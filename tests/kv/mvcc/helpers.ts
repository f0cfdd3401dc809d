import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KeyValue, MvccCore, MvccEvent, RevisionEvents } from '../../../src/kv/mvcc';

/** Bytes of a latin1 string. */
export const b = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
/** latin1 string of bytes. */
export const s = (u: Uint8Array): string => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('latin1');

/** A KeyValue as plain strings and numbers, for readable expectations. */
export interface Kv {
  key: string;
  value: string;
  create: number;
  mod: number;
  ver: number;
  lease: number;
}

export function kv(x: KeyValue): Kv {
  return { key: s(x.key), value: s(x.value), create: x.createRevision, mod: x.modRevision, ver: x.version, lease: x.lease };
}

export function kvs(xs: KeyValue[]): Kv[] {
  return xs.map(kv);
}

export function ev(e: MvccEvent): { type: string; kv: Kv; prev?: Kv } {
  return e.prevKv === undefined ? { type: e.type, kv: kv(e.kv) } : { type: e.type, kv: kv(e.kv), prev: kv(e.prevKv) };
}

export function revs(rs: RevisionEvents[]): Array<{ rev: number; events: ReturnType<typeof ev>[] }> {
  return rs.map((r) => ({ rev: r.revision, events: r.events.map(ev) }));
}

export function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-mvcc-'));
}

export function rmDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(`${dir}.restoring`, { recursive: true, force: true });
}

export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of chunks) out.push(new Uint8Array(c));
  return out;
}

export async function* fromChunks(chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const c of chunks) yield c;
}

/** Bytes of the values of every entry the store holds (index and history), each counted once. */
export function heldValueBytes(st: MvccCore): number {
  let sum = 0;
  const seen = new Set<unknown>();
  st.forEachHeld((en) => {
    if (seen.has(en)) return;
    seen.add(en);
    sum += en.vLen;
  });
  return sum;
}
