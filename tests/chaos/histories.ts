// Hand-made and generated histories for the checkers' tests.

import type { RegisterOp } from '../../src/chaos/history';
import { Rng } from '../../src/chaos/rng';

export function read(client: number, key: string, t0: number, t1: number, value: string | null, modRev?: number): RegisterOp {
  return { client, member: 0, key, f: 'read', invokeMs: t0, completeMs: t1, status: 'ok', readValue: value, ...(modRev !== undefined ? { readModRev: modRev } : {}) };
}

export function write(client: number, key: string, t0: number, t1: number, value: string, rev?: number): RegisterOp {
  return { client, member: 0, key, f: 'write', invokeMs: t0, completeMs: t1, status: 'ok', value, ...(rev !== undefined ? { rev } : {}) };
}

export function writeUnknown(client: number, key: string, t0: number, t1: number, value: string): RegisterOp {
  return { client, member: 0, key, f: 'write', invokeMs: t0, completeMs: t1, status: 'unknown', value, error: 'DEADLINE_EXCEEDED' };
}

export function cas(client: number, key: string, t0: number, t1: number, expected: string | null, value: string, result: { ok: true } | { ok: false; read?: string | null }): RegisterOp {
  const op: RegisterOp = { client, member: 0, key, f: 'cas', invokeMs: t0, completeMs: t1, status: 'ok', expected, value, casOk: result.ok };
  if (!result.ok && result.read !== undefined) op.readValue = result.read;
  return op;
}

export function casUnknown(client: number, key: string, t0: number, t1: number, expected: string | null, value: string): RegisterOp {
  return { client, member: 0, key, f: 'cas', invokeMs: t0, completeMs: t1, status: 'unknown', expected, value, error: 'UNAVAILABLE' };
}

/**
 * A history a real register produces: ops take effect one at a time at points 10 ms
 * apart; each op's interval stretches a random amount either side of its point (so
 * neighbours overlap). Some writes lose their answer (unknown outcome), and some unknown
 * writes never take effect at all.
 */
export function sequentialRegisterHistory(seed: number, opsCount: number, keys: string[], o: { spreadMs?: number; unknownChance?: number } = {}): RegisterOp[] {
  const rng = new Rng(seed);
  const spread = o.spreadMs ?? 35;
  const unknownChance = o.unknownChance ?? 0.05;
  const state = new Map<string, string | null>();
  const recent = new Map<string, (string | null)[]>();
  const out: RegisterOp[] = [];
  let seq = 0;
  let rev = 1;
  for (let i = 0; i < opsCount; i++) {
    const key = rng.pick(keys);
    const cur = state.get(key) ?? null;
    const point = 1000 + i * 10;
    const t0 = point - rng.int(spread);
    const t1 = point + rng.int(spread);
    const client = rng.int(8);
    const r = rng.float();
    const value = `v${seq++}`;
    const seen = recent.get(key) ?? [null];
    if (r < 0.35) {
      out.push(read(client, key, t0, t1, cur));
    } else if (r < 0.65) {
      state.set(key, value);
      rev++;
      out.push(rng.chance(unknownChance) ? writeUnknown(client, key, t0, t1, value) : write(client, key, t0, t1, value, rev));
      recent.set(key, [...seen.slice(-3), value]);
    } else if (r < 0.95) {
      const expected = rng.chance(0.6) ? cur : rng.pick(seen);
      const ok = expected === cur;
      if (ok) {
        state.set(key, value);
        rev++;
        recent.set(key, [...seen.slice(-3), value]);
      }
      if (rng.chance(unknownChance)) out.push(casUnknown(client, key, t0, t1, expected, value));
      else out.push(cas(client, key, t0, t1, expected, value, ok ? { ok: true } : { ok: false, read: cur }));
    } else {
      // A write that never took effect and whose answer never came.
      out.push(writeUnknown(client, key, t0, t1, `never${seq++}`));
    }
  }
  return out;
}
