// The watch workload: W watchers on one prefix, each on its own Watch stream, spread over a
// few connections; P puts of distinct keys under the prefix from 16 writers. A shorter round
// of the same on another prefix comes first, unmeasured (see BenchParams.warmupOps). It measures
// puts/s, events delivered/s over all watchers, the delivery latency of each event (from the
// moment its put was sent to the moment a watcher received it), and checks that every
// watcher received every acknowledged put exactly once, in revision order, with the
// revision the put was acknowledged with.

import { performance } from 'node:perf_hooks';
import { BidiStream, ConnectionPool, methods } from './grpc-client';
import { CpuMeter } from './proc-stats';
import { LatencyRecorder } from './stats';
import { decodeHeaderRevision, decodeWatchResponse, encodePut, encodeWatchCreate, prefixRangeEnd } from './wire';
import { benchValue, Check, Measurement, measurement, memberPids, RunContext, runClosedLoop, sleep } from './workload';

export const watchPrefix = '/bench/watch/';
/** The warm-up round's prefix: outside watchPrefix. */
export const watchWarmupPrefix = '/bench/watch-warmup/';
/** Digits of the sequence number at the end of every key. */
const seqDigits = 8;

function watchKey(prefix: string, seq: number): Buffer {
  return Buffer.from(prefix + String(seq).padStart(seqDigits, '0'));
}

/** The sequence number at the end of a key in msg[start, end). */
function seqOfKey(msg: Uint8Array, start: number, end: number): number {
  let n = 0;
  for (let i = Math.max(start, end - seqDigits); i < end; i++) n = n * 10 + (msg[i] - 0x30);
  return n;
}

interface WatcherState {
  stream: BidiStream | undefined;
  created: boolean;
  canceledReason: string | undefined;
  closedError: string | undefined;
  count: number;
  lastRevision: number;
  outOfOrder: number;
  /** Revision and key sequence of the i-th event received (up to the number of puts). */
  revisions: Float64Array;
  seqs: Int32Array;
}

export async function runWatch(ctx: RunContext): Promise<Measurement> {
  const p = ctx.params;
  const watchPool = new ConnectionPool(ctx.endpoints, p.watchConnections);
  const writePool = new ConnectionPool(ctx.endpoints, p.connections);
  try {
    await Promise.all([watchPool.connectAll(), writePool.connectAll()]);
    if (p.watchWarmupPuts > 0) {
      const warm = await watchRound(ctx, watchPool, writePool, watchWarmupPrefix, p.watchWarmupPuts);
      // Unmeasured, but a failed check there is worth knowing of: the measured round's checks decide.
      for (const c of warm.checks) if (!c.ok) ctx.log(`watch warm-up round: ${c.name} failed: ${c.detail}`);
    }
    return await watchRound(ctx, watchPool, writePool, watchPrefix, p.watchPuts);
  } finally {
    watchPool.close();
    writePool.close();
  }
}

/** One round: watchers on `prefixText` created, `puts` puts under it, every event received. */
async function watchRound(ctx: RunContext, watchPool: ConnectionPool, writePool: ConnectionPool, prefixText: string, puts: number): Promise<Measurement> {
  const p = ctx.params;
  const value = benchValue(p.valueBytes);
  const prefix = Buffer.from(prefixText);
  const sentMs = new Float64Array(puts);
  const ackRevision = new Float64Array(puts);
  const delivery = new LatencyRecorder();
  let eventsTotal = 0;
  let eventResponses = 0;
  let lastEventMs = 0;

  const watchers: WatcherState[] = [];
  try {
    const createdAll: Promise<void>[] = [];
    for (let w = 0; w < p.watchers; w++) {
      const st: WatcherState = {
        stream: undefined,
        created: false,
        canceledReason: undefined,
        closedError: undefined,
        count: 0,
        lastRevision: 0,
        outOfOrder: 0,
        revisions: new Float64Array(puts),
        seqs: new Int32Array(puts),
      };
      watchers.push(st);
      createdAll.push(
        new Promise<void>((resolve, reject) => {
          st.stream = watchPool.forClient(w).stream(methods.watch, {
            onMessage: (msg) => {
              const r = decodeWatchResponse(msg);
              if (r.created && !st.created) {
                st.created = true;
                resolve();
              }
              if (r.canceled) st.canceledReason = r.cancelReason || `canceled (compact revision ${r.compactRevision})`;
              if (r.events.length === 0) return;
              const now = performance.now();
              for (const ev of r.events) {
                const seq = seqOfKey(msg, ev.keyStart, ev.keyEnd);
                if (ev.modRevision <= st.lastRevision) st.outOfOrder++;
                st.lastRevision = ev.modRevision;
                if (st.count < puts) {
                  st.revisions[st.count] = ev.modRevision;
                  st.seqs[st.count] = seq;
                }
                st.count++;
                if (seq < puts) delivery.add(now - sentMs[seq]);
              }
              eventsTotal += r.events.length;
              eventResponses++;
              lastEventMs = now;
            },
            onClose: (err) => {
              st.closedError = err?.message ?? 'closed by the server';
              reject(new Error(`watcher ${w} closed before it was created: ${st.closedError}`));
            },
          });
          st.stream.write(encodeWatchCreate(prefix, prefixRangeEnd(prefix)));
        }),
      );
    }
    await Promise.all(createdAll);

    const meter = new CpuMeter(memberPids(ctx.cluster));
    meter.start();
    const firstSendMs = performance.now();
    const w = await runClosedLoop({
      pool: writePool,
      clients: p.watchWriters,
      opsTotal: puts,
      durationMaxSec: p.watchWriteMaxSec,
      op: async (conn, i) => {
        sentMs[i] = performance.now();
        ackRevision[i] = decodeHeaderRevision(await conn.unary(methods.put, encodePut(watchKey(prefixText, i), value)));
      },
    });
    const acked = w.ops;
    const drainDeadline = performance.now() + p.watchDrainMaxSec * 1000;
    while (watchers.some((s) => s.count < acked && s.closedError === undefined) && performance.now() < drainDeadline) await sleep(10);
    const cpu = meter.stop();

    // Checks: every watcher saw exactly the acknowledged puts, once each, in revision order.
    let incomplete = 0;
    let misordered = 0;
    let mismatched = 0;
    let firstProblem = '';
    for (let i = 0; i < watchers.length; i++) {
      const s = watchers[i];
      let bad = false;
      if (s.count !== acked) {
        incomplete++;
        bad = true;
        if (!firstProblem) firstProblem = `watcher ${i}: ${s.count} events for ${acked} acknowledged puts${s.canceledReason ? ` (canceled: ${s.canceledReason})` : ''}${s.closedError ? ` (closed: ${s.closedError})` : ''}`;
      }
      if (s.outOfOrder > 0) {
        misordered++;
        if (!firstProblem) firstProblem = `watcher ${i}: ${s.outOfOrder} events out of revision order or repeated`;
      }
      const n = Math.min(s.count, puts);
      for (let k = 0; k < n && !bad; k++) {
        const seq = s.seqs[k];
        if (seq < 0 || seq >= puts || ackRevision[seq] !== s.revisions[k]) {
          mismatched++;
          bad = true;
          if (!firstProblem) firstProblem = `watcher ${i}: event ${k} (key seq ${seq}) at revision ${s.revisions[k]}, put acknowledged at ${ackRevision[seq]}`;
        }
      }
    }
    const checks: Check[] = [
      { name: 'all watchers created', ok: watchers.every((s) => s.created), detail: `${watchers.filter((s) => s.created).length}/${watchers.length}` },
      { name: 'every put acknowledged', ok: w.errors === 0 && acked === puts, detail: `${acked}/${puts} acknowledged, ${w.errors} errors` },
      {
        name: 'every watcher got every event once, in order',
        ok: incomplete === 0 && misordered === 0 && mismatched === 0,
        detail: firstProblem || `${watchers.length} watchers x ${acked} events`,
      },
    ];
    const [putP50, putP99] = w.latency.percentiles([50, 99]);
    const durationSec = ((lastEventMs || performance.now()) - firstSendMs) / 1000;
    return measurement(
      { case: 'watch', system: ctx.cluster.kind, clients: p.watchWriters, connections: p.connections },
      { ops: eventsTotal, errors: w.errors, durationSec, latency: delivery, errorSamples: w.errorSamples },
      cpu,
      {
        watchers: p.watchers,
        putsAcked: acked,
        putsPerSec: acked / w.durationSec,
        putLatencyMsP50: putP50,
        putLatencyMsP99: putP99,
        eventsPerSec: eventsTotal / durationSec,
        eventsPerResponse: eventResponses > 0 ? eventsTotal / eventResponses : 0,
      },
      checks,
    );
  } finally {
    for (const s of watchers) s.stream?.cancel();
  }
}
