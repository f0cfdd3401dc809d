// The append workload: each key's value is a list of elements; a client appends a new
// element to one key, or to two keys at once, with a txn that compares each key's
// mod_revision to the one it last read and puts the longer lists (on a failed compare the
// txn reads the keys instead, and the client tries again with what it read; after an
// unknown outcome it gives the element up, since it may have been appended).
//
// Every attempt also goes to the register history, key by key: a txn whose compares held
// is a successful compare-and-swap of each key; one whose compares failed read each key
// (one compare failing says nothing about the others); one of unknown outcome is an
// unknown-outcome compare-and-swap of each key (it may take effect only if its compare
// held, which a per-key view allows at least).

import { callUnary, ResponseOp } from '../kv/proto';
import { deadline, errorText, sleep } from './clients';
import { APPEND_SEPARATOR, AppendOp, nowMs, RegisterOp } from './history';
import type { Rng } from './rng';
import { failureBackoffMs, WorkloadContext } from './workload-register';

export const appendPrefix = '/chaos/app/';

/** Compare failures in a row before a client gives an element up. */
export const appendAttemptsMax = 4;

/**
 * A key's list grows with every append, and every revision of it stays in the store (a run
 * compacts nothing), so the keys change every generation: the lists stay short in runs of
 * any length.
 */
export const appendGenerationMs = 10_000;

/** The append keys of the generation at `elapsedMs` into the run. */
export function appendKeys(count: number, elapsedMs = 0): string[] {
  const gen = Math.floor(elapsedMs / appendGenerationMs);
  return Array.from({ length: count }, (_, i) => `${appendPrefix}g${gen}/a${i}`);
}

function rangeResult(resp: ResponseOp | undefined): { value: string | null; rev: number } {
  const got = resp?.response === 'response_range' ? resp.response_range.kvs[0] : undefined;
  return got ? { value: got.value.toString(), rev: got.mod_revision } : { value: null, rev: 0 };
}

export async function runAppendClient(ctx: WorkloadContext, client: number, rng: Rng, keysNow: () => readonly string[]): Promise<void> {
  let member = (client + 1) % ctx.pool.size;
  let seq = 0;
  const seen = new Map<string, { value: string | null; rev: number }>();
  const failed = async (): Promise<void> => {
    member = (member + 1) % ctx.pool.size;
    await sleep(failureBackoffMs);
  };
  while (!ctx.stopped()) {
    const keys = keysNow();
    const chosen = rng.chance(0.3) ? rng.shuffle(keys).slice(0, 2).sort() : [rng.pick(keys)];
    const elem = `a${client}.${seq++}`;
    // Read the keys this client has not seen yet.
    let readFailed = false;
    for (const key of chosen) {
      if (seen.has(key) || readFailed) continue;
      const op: RegisterOp = { client, member, key, f: 'read', invokeMs: nowMs(), completeMs: 0, status: 'ok' };
      try {
        const res = await callUnary(ctx.pool.members[member].kv, 'Range', { key: Buffer.from(key) }, { deadline: deadline(ctx.opTimeoutMs) });
        ctx.rec.noteTerm(res.header?.raft_term);
        op.completeMs = nowMs();
        const got = res.kvs[0];
        op.readValue = got ? got.value.toString() : null;
        op.readModRev = got ? got.mod_revision : 0;
        seen.set(key, { value: op.readValue, rev: op.readModRev });
      } catch (e) {
        op.completeMs = nowMs();
        op.status = 'unknown';
        op.error = errorText(e);
        readFailed = true;
      }
      ctx.rec.registerOps.push(op);
    }
    if (readFailed) {
      await failed();
      continue;
    }
    for (let attempt = 0; attempt < appendAttemptsMax && !ctx.stopped(); attempt++) {
      const expected = chosen.map((k) => seen.get(k) ?? { value: null, rev: 0 });
      const values = expected.map((e) => (e.value === null || e.value === '' ? elem : `${e.value}${APPEND_SEPARATOR}${elem}`));
      const a: AppendOp = { client, keys: chosen, elem, invokeMs: nowMs(), completeMs: 0, status: 'ok' };
      const projections: RegisterOp[] = chosen.map((key, i) => ({ client, member, key, f: 'cas', invokeMs: 0, completeMs: 0, status: 'ok', value: values[i], expected: expected[i].value, expectedRev: expected[i].rev }));
      let error: string | undefined;
      let responses: ResponseOp[] = [];
      try {
        a.invokeMs = nowMs();
        const res = await callUnary(
          ctx.pool.members[member].kv,
          'Txn',
          {
            compare: chosen.map((key, i) => ({ key: Buffer.from(key), target: 'MOD' as const, result: 'EQUAL' as const, mod_revision: expected[i].rev })),
            success: chosen.map((key, i) => ({ request_put: { key: Buffer.from(key), value: Buffer.from(values[i]) } })),
            failure: chosen.map((key) => ({ request_range: { key: Buffer.from(key) } })),
          },
          { deadline: deadline(ctx.opTimeoutMs) },
        );
        ctx.rec.noteTerm(res.header?.raft_term);
        a.completeMs = nowMs();
        a.committed = res.succeeded;
        if (res.succeeded) a.rev = res.header?.revision ?? 0;
        responses = res.responses;
      } catch (e) {
        a.completeMs = nowMs();
        a.status = 'unknown';
        error = errorText(e);
      }
      ctx.rec.appendOps.push(a);
      for (let i = 0; i < chosen.length; i++) {
        const p = projections[i];
        p.invokeMs = a.invokeMs;
        p.completeMs = a.completeMs;
        if (a.status === 'unknown') {
          p.status = 'unknown';
          p.error = error;
        } else if (a.committed) {
          p.casOk = true;
          p.rev = a.rev;
          seen.set(p.key, { value: values[i], rev: a.rev as number });
          ctx.rec.ack({ key: p.key, value: values[i], rev: a.rev as number, ackMs: a.completeMs, source: `append client ${client}` }, a.invokeMs);
        } else {
          const now = rangeResult(responses[i]);
          seen.set(p.key, now);
          if (chosen.length === 1) {
            p.casOk = false;
            p.readValue = now.value;
            p.readModRev = now.rev;
          } else {
            ctx.rec.registerOps.push({ client, member, key: p.key, f: 'read', invokeMs: a.invokeMs, completeMs: a.completeMs, status: 'ok', readValue: now.value, readModRev: now.rev });
            continue;
          }
        }
        ctx.rec.registerOps.push(p);
      }
      if (a.status === 'unknown') {
        for (const k of chosen) seen.delete(k);
        await failed();
        break;
      }
      if (a.committed) break;
    }
    if (ctx.thinkMs > 0) await sleep(ctx.thinkMs);
  }
}
