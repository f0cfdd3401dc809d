// The watch workload: a writer puts and deletes keys under one prefix; several watchers
// watch the prefix from revision 1, each through its own member. When a watcher's stream
// breaks (or stalls: nothing for a while though writes were acknowledged past what it has
// seen) it opens a new one on the next member from the last revision it saw + 1. At the
// end each watcher asks for progress until the store says it is synced past the last
// write (or gives up), so that it has every event it should have.

import type * as grpc from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { callUnary, WatchRequest, WatchResponse, Wire } from '../kv/proto';
import { deadline, errorText, prefixEnd, sleep } from './clients';
import { HistoryEvent, nowMs, WatcherRecord, WatchSegment } from './history';
import type { Rng } from './rng';
import { failureBackoffMs, WorkloadContext } from './workload-register';

export const watchPrefix = '/chaos/watch/';

export const watchLimits = Object.freeze({
  /** A stream that shows nothing this long while writes past it were acknowledged is stalled. */
  stallMs: 4000,
  stallCheckMs: 500,
  reconnectDelayMs: 100,
  /** Catching up at the end: how long, and how often to ask for progress. */
  catchUpMs: 20_000,
  progressEveryMs: 300,
});

export async function runWatchWriter(ctx: WorkloadContext, client: number, rng: Rng, keys: number): Promise<void> {
  let member = client % ctx.pool.size;
  let seq = 0;
  while (!ctx.stopped()) {
    const key = `${watchPrefix}w${rng.int(keys)}`;
    const del = rng.chance(0.15);
    const invokeMs = nowMs();
    try {
      const kv = ctx.pool.members[member].kv;
      if (del) {
        const res = await callUnary(kv, 'DeleteRange', { key: Buffer.from(key) }, { deadline: deadline(ctx.opTimeoutMs) });
        ctx.rec.noteTerm(res.header?.raft_term);
        const rev = res.header?.revision ?? 0;
        if (res.deleted > 0) {
          ctx.rec.ack({ key, value: null, rev, ackMs: nowMs(), source: `watch writer ${client}` }, invokeMs);
          ctx.rec.latestWatchedRev = Math.max(ctx.rec.latestWatchedRev, rev);
        }
      } else {
        const value = `w${client}.${seq++}`;
        const res = await callUnary(kv, 'Put', { key: Buffer.from(key), value: Buffer.from(value) }, { deadline: deadline(ctx.opTimeoutMs) });
        ctx.rec.noteTerm(res.header?.raft_term);
        const rev = res.header?.revision ?? 0;
        ctx.rec.ack({ key, value, rev, ackMs: nowMs(), source: `watch writer ${client}` }, invokeMs);
        ctx.rec.latestWatchedRev = Math.max(ctx.rec.latestWatchedRev, rev);
      }
      if (ctx.thinkMs > 0) await sleep(ctx.thinkMs);
    } catch {
      member = (member + 1) % ctx.pool.size;
      await sleep(failureBackoffMs);
    }
  }
}

export interface WatcherControl {
  /** Resolves when the watcher has stopped (after catching up to `untilRev`, or giving up). */
  finish(untilRev: number): Promise<void>;
  record: WatcherRecord;
  /** The highest revision the store said this watcher is synced to. */
  coveredRev(): number;
}

/** Converts a watch response's events. */
function toEvents(resp: WatchResponse): HistoryEvent[] {
  return resp.events.map((e) => ({
    rev: e.kv?.mod_revision ?? 0,
    key: e.kv?.key.toString() ?? '',
    type: e.type,
    value: e.type === 'PUT' ? (e.kv?.value.toString() ?? '') : null,
  }));
}

export function startWatcher(ctx: WorkloadContext, watcher: number, prefix: string): WatcherControl {
  const record: WatcherRecord = { watcher, prefix, segments: [] };
  let member = watcher % ctx.pool.size;
  let nextRev = 1;
  let covered = 0;
  let finishing = false;
  let untilRev = Infinity;
  let finishDeadlineMs = Infinity;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));

  const loop = async (): Promise<void> => {
    while (true) {
      if (finishing && (covered >= untilRev || nowMs() > finishDeadlineMs)) break;
      const seg: WatchSegment = { member, startRev: nextRev, openedMs: nowMs(), closedMs: 0, events: [], end: '' };
      record.segments.push(seg);
      await new Promise<void>((resolve) => {
        const md = new Metadata();
        md.set('hasleader', 'true');
        const call: grpc.ClientDuplexStream<Wire<WatchRequest>, WatchResponse> = ctx.pool.members[member].watch.Watch(md);
        let lastProgressMs = nowMs();
        let ended = false;
        const end = (why: string): void => {
          if (ended) return;
          ended = true;
          seg.end = why;
          seg.closedMs = nowMs();
          clearInterval(timer);
          call.removeAllListeners('data');
          call.on('error', () => {});
          call.cancel();
          resolve();
        };
        const timer = setInterval(() => {
          const now = nowMs();
          if (finishing) {
            if (covered >= untilRev) return end('caught up');
            if (now > finishDeadlineMs) return end('gave up catching up');
            call.write({ progress_request: {} });
          }
          if (now - lastProgressMs > watchLimits.stallMs && ctx.rec.latestWatchedRev >= nextRev) end('stalled');
        }, finishing ? watchLimits.progressEveryMs : watchLimits.stallCheckMs);
        call.on('data', (resp: WatchResponse) => {
          if (resp.canceled) return end(`canceled: ${resp.cancel_reason}${resp.compact_revision ? ` (compacted at ${resp.compact_revision})` : ''}`);
          const events = toEvents(resp);
          if (events.length > 0) {
            lastProgressMs = nowMs();
            seg.events.push(...events);
            nextRev = events[events.length - 1].rev + 1;
            covered = Math.max(covered, nextRev - 1);
          } else if (!resp.created && resp.header !== null) {
            // A progress answer: every event up to the header's revision was sent.
            lastProgressMs = nowMs();
            covered = Math.max(covered, resp.header.revision);
            if (finishing && covered >= untilRev) end('caught up');
          }
        });
        call.on('error', (e) => end(errorText(e)));
        call.on('end', () => end('stream ended'));
        call.write({ create_request: { key: Buffer.from(prefix), range_end: prefixEnd(prefix), start_revision: nextRev } });
      });
      if (finishing && (covered >= untilRev || nowMs() > finishDeadlineMs)) break;
      member = (member + 1) % ctx.pool.size;
      await sleep(watchLimits.reconnectDelayMs);
    }
    done();
  };
  void loop();
  return {
    record,
    coveredRev: () => covered,
    finish: (rev: number) => {
      untilRev = rev;
      finishDeadlineMs = nowMs() + watchLimits.catchUpMs;
      finishing = true;
      return finished;
    },
  };
}

/** The store's current revision, by a linearizable read through any member that answers. */
export async function currentRevision(ctx: Pick<WorkloadContext, 'pool'>, timeoutMs = 2000): Promise<number | undefined> {
  for (let i = 0; i < ctx.pool.size; i++) {
    try {
      const res = await callUnary(ctx.pool.members[i].kv, 'Range', { key: Buffer.from('/chaos/'), range_end: prefixEnd('/chaos/'), count_only: true }, { deadline: deadline(timeoutMs) });
      return res.header?.revision;
    } catch {
      // next member
    }
  }
  return undefined;
}
