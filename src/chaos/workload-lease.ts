// The lease workload:
//   - a granter grants short leases and puts one key on each, then lets them expire;
//   - keepers keep a few leases alive (one keep-alive stream each, moving to the next
//     member when it breaks or stops answering), each with a key on it;
//   - an observer reads every lease key, over and over.
// Lease ids are chosen by the client (below 2^53): etcd's own are 64-bit and would not
// survive the trip through a JS number.

import type * as grpc from '@grpc/grpc-js';
import { callUnary, LeaseKeepAliveRequest, LeaseKeepAliveResponse, Wire } from '../kv/proto';
import { deadline, prefixEnd, sleep } from './clients';
import { LeaseRecord, nowMs } from './history';
import type { Rng } from './rng';
import { failureBackoffMs, WorkloadContext } from './workload-register';

export const leasePrefix = '/chaos/lease/';

export interface LeaseWorkloadOptions {
  ttlSec: number;
  grantEveryMs: number;
  keepAliveEveryMs: number;
  observeEveryMs: number;
}

function leaseId(rng: Rng): number {
  // [2^40, 2^52): clear of anything the stores generate in a short run, exact as a number.
  return 2 ** 40 + rng.int(2 ** 26) * 2 ** 26 + rng.int(2 ** 26);
}

async function grantWithKey(ctx: WorkloadContext, member: number, rng: Rng, ttlSec: number, kind: 'exp' | 'keep'): Promise<LeaseRecord | undefined> {
  const id = leaseId(rng);
  const grantInvokeMs = nowMs();
  const g = await callUnary(ctx.pool.members[member].lease, 'LeaseGrant', { ID: id, TTL: ttlSec }, { deadline: deadline(ctx.opTimeoutMs) });
  if (g.error) throw new Error(`LeaseGrant: ${g.error}`);
  const rec: LeaseRecord = { id, key: `${leasePrefix}${kind}/${id}`, ttlSec: g.TTL, grantInvokeMs, grantAckMs: nowMs(), putStatus: 'unknown', keepAlive: kind === 'keep', keepAlives: [] };
  ctx.rec.leases.push(rec);
  const putInvokeMs = nowMs();
  try {
    const p = await callUnary(ctx.pool.members[member].kv, 'Put', { key: Buffer.from(rec.key), value: Buffer.from(String(id)), lease: id }, { deadline: deadline(ctx.opTimeoutMs) });
    rec.putAckMs = nowMs();
    rec.putStatus = 'ok';
    ctx.rec.ack({ key: rec.key, value: String(id), rev: p.header?.revision ?? 0, ackMs: rec.putAckMs, source: 'lease' }, putInvokeMs);
  } catch {
    // unknown: the key may exist; it must go with the lease all the same
  }
  return rec;
}

export async function runLeaseGranter(ctx: WorkloadContext, rng: Rng, o: LeaseWorkloadOptions): Promise<void> {
  let member = 0;
  while (!ctx.stopped()) {
    try {
      await grantWithKey(ctx, member, rng, o.ttlSec, 'exp');
    } catch {
      member = (member + 1) % ctx.pool.size;
      await sleep(failureBackoffMs);
      continue;
    }
    await sleep(o.grantEveryMs);
  }
}

/**
 * Keeps one lease alive until stopped. A keep-alive answered with TTL > 0 renewed the lease;
 * one answered with TTL <= 0 found it gone (the keeper then stops).
 */
export async function runLeaseKeeper(ctx: WorkloadContext, keeper: number, rng: Rng, o: LeaseWorkloadOptions): Promise<void> {
  let member = keeper % ctx.pool.size;
  let rec: LeaseRecord | undefined;
  while (rec === undefined && !ctx.stopped()) {
    try {
      rec = await grantWithKey(ctx, member, rng, o.ttlSec, 'keep');
    } catch {
      member = (member + 1) % ctx.pool.size;
      await sleep(failureBackoffMs);
    }
  }
  if (rec === undefined) return;
  const lease = rec;
  while (!ctx.stopped() && lease.lost === undefined) {
    await new Promise<void>((resolve) => {
      const streamMember = member;
      const call: grpc.ClientDuplexStream<Wire<LeaseKeepAliveRequest>, LeaseKeepAliveResponse> = ctx.pool.members[member].lease.LeaseKeepAlive();
      const sent: number[] = [];
      let ended = false;
      const end = (): void => {
        if (ended) return;
        ended = true;
        clearInterval(timer);
        call.removeAllListeners('data');
        call.on('error', () => {});
        call.cancel();
        resolve();
      };
      const timer = setInterval(() => {
        if (ctx.stopped() || lease.lost !== undefined) return end();
        // An answer overdue by more than a request deadline: this member is not answering.
        if (sent.length > 0 && nowMs() - sent[0] > ctx.opTimeoutMs) return end();
        sent.push(nowMs());
        call.write({ ID: lease.id });
      }, o.keepAliveEveryMs);
      call.on('data', (r: LeaseKeepAliveResponse) => {
        const sentMs = sent.shift();
        if (sentMs === undefined) return;
        const ackMs = nowMs();
        if (r.TTL > 0) lease.keepAlives.push({ sentMs, ackMs, ttlSec: r.TTL, member: streamMember });
        else {
          lease.lost = { sentMs, ackMs, member: streamMember };
          end();
        }
      });
      call.on('error', () => end());
      call.on('end', () => end());
      sent.push(nowMs());
      call.write({ ID: lease.id });
    });
    if (!ctx.stopped() && lease.lost === undefined) {
      member = (member + 1) % ctx.pool.size;
      await sleep(failureBackoffMs);
    }
  }
  lease.keptUntilMs = nowMs();
}

/** Reads every lease key, again and again, until stopped. */
export async function runLeaseObserver(ctx: WorkloadContext, o: LeaseWorkloadOptions, stopped: () => boolean): Promise<void> {
  let member = 0;
  while (!stopped()) {
    const invokeMs = nowMs();
    try {
      const res = await callUnary(ctx.pool.members[member].kv, 'Range', { key: Buffer.from(leasePrefix), range_end: prefixEnd(leasePrefix), keys_only: true }, { deadline: deadline(ctx.opTimeoutMs) });
      ctx.rec.leaseObservations.push({ member, invokeMs, completeMs: nowMs(), keys: new Set(res.kvs.map((kv) => kv.key.toString())) });
      member = (member + 1) % ctx.pool.size;
    } catch {
      member = (member + 1) % ctx.pool.size;
    }
    await sleep(o.observeEveryMs);
  }
}
