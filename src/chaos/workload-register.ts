// The register workload: clients read, write and compare-and-swap a few keys. Each client
// runs one operation at a time against one member and moves to the next member when an
// operation fails. A compare-and-swap is a txn: if the key's mod_revision is the one this
// client last saw, put a new value, else read the key.

import { callUnary } from '../kv/proto';
import type { ClientPool } from './clients';
import { deadline, errorText, sleep } from './clients';
import { nowMs, Recorder, RegisterOp } from './history';
import type { Rng } from './rng';

export const registerPrefix = '/chaos/reg/';

export interface WorkloadContext {
  pool: ClientPool;
  rec: Recorder;
  /** Deadline of one request. */
  opTimeoutMs: number;
  /** Pause between two operations of one client. */
  thinkMs: number;
  /**
   * Register reads are linearizable (etcd's default) unless this is set: serializable reads
   * may be stale, so a run with them is the harness's self-check (the checker must object).
   */
  serializableReads?: boolean;
  stopped(): boolean;
}

export interface RegisterWorkloadOptions {
  clients: number;
  keys: number;
}

/** Pauses after a failed operation, so a client does not spin on a dead member. */
export const failureBackoffMs = 50;

export async function runRegisterClient(ctx: WorkloadContext, client: number, rng: Rng, keys: readonly string[]): Promise<void> {
  let member = client % ctx.pool.size;
  let seq = 0;
  const seen = new Map<string, { value: string | null; rev: number }>();
  while (!ctx.stopped()) {
    const key = rng.pick(keys);
    const r = rng.float();
    const kv = ctx.pool.members[member].kv;
    const op: RegisterOp = { client, member, key, f: r < 0.4 ? 'read' : r < 0.7 ? 'write' : 'cas', invokeMs: nowMs(), completeMs: 0, status: 'ok' };
    try {
      if (op.f === 'read') {
        op.invokeMs = nowMs();
        const res = await callUnary(kv, 'Range', { key: Buffer.from(key), serializable: ctx.serializableReads === true }, { deadline: deadline(ctx.opTimeoutMs) });
        ctx.rec.noteTerm(res.header?.raft_term);
        op.completeMs = nowMs();
        const got = res.kvs[0];
        op.readValue = got ? got.value.toString() : null;
        op.readModRev = got ? got.mod_revision : 0;
        seen.set(key, { value: op.readValue, rev: op.readModRev });
      } else if (op.f === 'write') {
        op.value = `r${client}.${seq++}`;
        op.invokeMs = nowMs();
        const res = await callUnary(kv, 'Put', { key: Buffer.from(key), value: Buffer.from(op.value) }, { deadline: deadline(ctx.opTimeoutMs) });
        ctx.rec.noteTerm(res.header?.raft_term);
        op.completeMs = nowMs();
        op.rev = res.header?.revision ?? 0;
        seen.set(key, { value: op.value, rev: op.rev });
        ctx.rec.ack({ key, value: op.value, rev: op.rev, ackMs: op.completeMs, source: `register client ${client}` }, op.invokeMs);
      } else {
        const last = seen.get(key) ?? { value: null, rev: 0 };
        op.value = `r${client}.${seq++}`;
        op.expected = last.value;
        op.expectedRev = last.rev;
        op.invokeMs = nowMs();
        const res = await callUnary(
          kv,
          'Txn',
          {
            compare: [{ key: Buffer.from(key), target: 'MOD', result: 'EQUAL', mod_revision: last.rev }],
            success: [{ request_put: { key: Buffer.from(key), value: Buffer.from(op.value) } }],
            failure: [{ request_range: { key: Buffer.from(key) } }],
          },
          { deadline: deadline(ctx.opTimeoutMs) },
        );
        ctx.rec.noteTerm(res.header?.raft_term);
        op.completeMs = nowMs();
        op.casOk = res.succeeded;
        if (res.succeeded) {
          op.rev = res.header?.revision ?? 0;
          seen.set(key, { value: op.value, rev: op.rev });
          ctx.rec.ack({ key, value: op.value, rev: op.rev, ackMs: op.completeMs, source: `register client ${client}` }, op.invokeMs);
        } else {
          const resp = res.responses[0];
          const got = resp?.response === 'response_range' ? resp.response_range.kvs[0] : undefined;
          op.readValue = got ? got.value.toString() : null;
          op.readModRev = got ? got.mod_revision : 0;
          seen.set(key, { value: op.readValue, rev: op.readModRev });
        }
      }
    } catch (e) {
      op.completeMs = nowMs();
      op.status = 'unknown';
      op.error = errorText(e);
      member = (member + 1) % ctx.pool.size;
    }
    ctx.rec.registerOps.push(op);
    if (op.status !== 'ok') await sleep(failureBackoffMs);
    else if (ctx.thinkMs > 0) await sleep(ctx.thinkMs);
  }
}

export function registerKeys(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${registerPrefix}k${i}`);
}
