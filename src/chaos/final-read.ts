// Reading back what the store holds at the end: every member's whole key-space history (a
// watch from revision 1 until the current revision; nothing is compacted in a run) and the
// final state of the harness's keys.

import type * as grpc from '@grpc/grpc-js';
import { callUnary, WatchRequest, WatchResponse, Wire } from '../kv/proto';
import type { MemberClients } from './clients';
import { deadline, errorText, prefixEnd } from './clients';
import type { HistoryEvent } from './history';

export const chaosPrefix = '/chaos/';

/** The member's own (serializable) revision. */
export async function memberRevision(mc: MemberClients, timeoutMs: number): Promise<number> {
  const res = await callUnary(mc.kv, 'Range', { key: Buffer.from(chaosPrefix), range_end: prefixEnd(chaosPrefix), count_only: true, serializable: true }, { deadline: deadline(timeoutMs) });
  return res.header?.revision ?? 0;
}

/**
 * Every event of the whole key space from revision 1 through untilRev, from one member:
 * returned, or handed to onEvent one by one (and not kept).
 */
export function readHistory(mc: MemberClients, untilRev: number, timeoutMs: number, onEvent?: (e: HistoryEvent) => void): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let lastRev = 0;
  if (untilRev <= 0) return Promise.resolve(events);
  return new Promise((resolve, reject) => {
    const call: grpc.ClientDuplexStream<Wire<WatchRequest>, WatchResponse> = mc.watch.Watch();
    let done = false;
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      call.removeAllListeners('data');
      call.on('error', () => {});
      call.cancel();
      if (err) reject(err);
      else resolve(events);
    };
    const timer = setTimeout(() => finish(new Error(`history read: only up to rev ${lastRev} of ${untilRev} within ${timeoutMs} ms`)), timeoutMs);
    call.on('data', (resp: WatchResponse) => {
      if (resp.canceled) return finish(new Error(`history watch canceled: ${resp.cancel_reason} (compact revision ${resp.compact_revision})`));
      for (const e of resp.events) {
        const ev: HistoryEvent = { rev: e.kv?.mod_revision ?? 0, key: e.kv?.key.toString() ?? '', type: e.type, value: e.type === 'PUT' ? (e.kv?.value.toString() ?? '') : null };
        lastRev = ev.rev;
        if (onEvent !== undefined) onEvent(ev);
        else events.push(ev);
      }
      if (lastRev >= untilRev) finish();
    });
    call.on('error', (e) => finish(new Error(`history watch: ${errorText(e)}`)));
    call.on('end', () => finish(new Error('history watch ended')));
    call.write({ create_request: { key: Buffer.from([0]), range_end: Buffer.from([0]), start_revision: 1 } });
  });
}

/** Every key under the prefix with its value and mod_revision (a linearizable read). */
export async function readState(mc: MemberClients, prefix: string, timeoutMs: number): Promise<{ rev: number; kvs: Map<string, { value: string; modRev: number }> }> {
  const res = await callUnary(mc.kv, 'Range', { key: Buffer.from(prefix), range_end: prefixEnd(prefix) }, { deadline: deadline(timeoutMs) });
  const kvs = new Map<string, { value: string; modRev: number }>();
  for (const kv of res.kvs) kvs.set(kv.key.toString(), { value: kv.value.toString(), modRev: kv.mod_revision });
  return { rev: res.header?.revision ?? 0, kvs };
}

/**
 * The first answer of attempt(i), trying the given members (indexes, in order) in turn until
 * one answers: every one at least once, and further rounds while the time is before
 * deadlineMs. undefined if none answered (or none was given).
 */
export async function firstAnswer<T>(members: readonly number[], attempt: (i: number) => Promise<T>, deadlineMs: number, now: () => number = Date.now): Promise<T | undefined> {
  if (members.length === 0) return undefined;
  for (let tries = 0; tries < members.length || now() < deadlineMs; tries++) {
    try {
      return await attempt(members[tries % members.length]);
    } catch {
      // the next member
    }
  }
  return undefined;
}
