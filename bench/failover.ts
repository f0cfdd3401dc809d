// The failover workload: 16 writers put distinct keys with a 300 ms deadline per request;
// after a while the leader is killed with SIGKILL. It measures the time from the kill to
// the first acknowledged put that was issued after the kill, then restarts the killed
// member and checks that every acknowledged put is on every member with the revision it
// was acknowledged with. A writer whose request fails moves to the next connection (the
// connections are spread over all members, so it finds a live one).

import { performance } from 'node:perf_hooks';
import { Connection, ConnectionPool, methods } from './grpc-client';
import { CpuMeter } from './proc-stats';
import { LatencyRecorder } from './stats';
import { decodeHeaderRevision, decodeRangeResponse, encodePut, encodeRange, prefixRangeEnd } from './wire';
import { benchValue, Check, errorSamplesMax, Measurement, measurement, memberPids, RunContext, sleep } from './workload';

export const failoverPrefix = '/bench/failover/';

interface Put {
  sentMs: number;
  ackedMs: number;
  revision: number;
}

/**
 * Reads every key under the prefix from one member (serializable: that member's own state),
 * keys only, page by page. Returns key -> mod revision.
 */
async function readBack(conn: Connection, prefix: Buffer, pageKeys: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const end = prefixRangeEnd(prefix);
  let from: Buffer = prefix;
  for (;;) {
    const r = decodeRangeResponse(await conn.unary(methods.range, encodeRange({ key: from, rangeEnd: end, limit: pageKeys, serializable: true, keysOnly: true }), 10_000));
    for (const kv of r.kvs) out.set(kv.key.toString('utf8'), kv.modRevision);
    if (!r.more || r.kvs.length === 0) return out;
    from = Buffer.concat([r.kvs[r.kvs.length - 1].key, Buffer.from([0])]);
  }
}

export async function runFailover(ctx: RunContext): Promise<Measurement> {
  const p = ctx.params;
  const value = benchValue(p.valueBytes);
  const pool = new ConnectionPool(ctx.endpoints, p.connections);
  const puts = new Map<string, Put>();
  const latency = new LatencyRecorder();
  const errorSamples: string[] = [];
  let errors = 0;
  let timeouts = 0;
  let seq = 0;
  let stopping = false;
  let killMs = Infinity;
  let firstAckAfterKillMs = Infinity;

  try {
    await pool.connectAll();
    const meter = new CpuMeter(memberPids(ctx.cluster));
    meter.start();
    const startMs = performance.now();
    const writer = async (w: number): Promise<void> => {
      let c = w % pool.conns.length;
      while (!stopping) {
        const key = `${failoverPrefix}${String(seq++).padStart(10, '0')}`;
        const sentMs = performance.now();
        try {
          const msg = await pool.conns[c].unary(methods.put, encodePut(Buffer.from(key), value), p.failoverRequestTimeoutMs);
          const ackedMs = performance.now();
          puts.set(key, { sentMs, ackedMs, revision: decodeHeaderRevision(msg) });
          latency.add(ackedMs - sentMs);
          if (sentMs >= killMs && ackedMs < firstAckAfterKillMs) firstAckAfterKillMs = ackedMs;
        } catch (e) {
          errors++;
          if ((e as { code?: number }).code === 4) timeouts++;
          if (errorSamples.length < errorSamplesMax) errorSamples.push(`${pool.conns[c].endpoint}: ${(e as Error).message}`);
          c = (c + 1) % pool.conns.length;
          await sleep(p.failoverRetryBackoffMs);
        }
      }
    };
    const writers = Array.from({ length: p.failoverWriters }, (_, w) => writer(w));

    await sleep(p.failoverBeforeKillSec * 1000);
    const victim = ctx.leaderMember;
    meter.sample();
    killMs = performance.now();
    ctx.log(`failover: kill -9 leader ${ctx.cluster.members[victim].name} (pid ${ctx.cluster.pid(victim)})`);
    await ctx.cluster.kill(victim, 'SIGKILL');
    const giveUpMs = killMs + p.failoverRecoveryMaxSec * 1000;
    while (firstAckAfterKillMs === Infinity && performance.now() < giveUpMs) await sleep(5);
    await sleep(p.failoverAfterRecoverySec * 1000);
    stopping = true;
    await Promise.all(writers);
    const endMs = performance.now();
    const cpu = meter.stop();
    const recoveryMs = firstAckAfterKillMs - killMs;
    ctx.log(`failover: first acknowledged put issued after the kill at +${recoveryMs.toFixed(0)} ms; ${puts.size} puts acknowledged`);

    // Restart the killed member; every acknowledged put must be on every member.
    ctx.cluster.spawnMember(victim);
    await ctx.cluster.waitHealthy(p.failoverVerifyMaxSec * 1000);
    const verifyDeadline = performance.now() + p.failoverVerifyMaxSec * 1000;
    const missingByMember: number[] = [];
    const wrongRevisionByMember: number[] = [];
    let firstProblem = '';
    for (let i = 0; i < ctx.cluster.members.length; i++) {
      const conn = new Connection(ctx.cluster.members[i].clientUrl);
      try {
        let missing = 0;
        let wrong = 0;
        for (;;) {
          missing = 0;
          wrong = 0;
          let stored: Map<string, number>;
          try {
            stored = await readBack(conn, Buffer.from(failoverPrefix), p.readBackPageKeys);
          } catch (e) {
            if (performance.now() > verifyDeadline) throw e;
            await sleep(100);
            continue;
          }
          for (const [key, put] of puts) {
            const rev = stored.get(key);
            if (rev === undefined) missing++;
            else if (rev !== put.revision) wrong++;
          }
          // A member that restarted may still be catching up: read again until it holds
          // everything or the deadline passes.
          if ((missing === 0 && wrong === 0) || performance.now() > verifyDeadline) break;
          await sleep(100);
        }
        missingByMember.push(missing);
        wrongRevisionByMember.push(wrong);
        if ((missing > 0 || wrong > 0) && !firstProblem) firstProblem = `${ctx.cluster.members[i].name}: ${missing} missing, ${wrong} at another revision`;
      } finally {
        conn.close();
      }
    }
    const missingMax = Math.max(...missingByMember);
    const checks: Check[] = [
      { name: 'a put issued after the kill was acknowledged', ok: Number.isFinite(recoveryMs), detail: Number.isFinite(recoveryMs) ? `after ${recoveryMs.toFixed(0)} ms` : `none within ${p.failoverRecoveryMaxSec} s` },
      {
        name: 'zero acknowledged puts missing after restart',
        ok: missingMax === 0 && wrongRevisionByMember.every((x) => x === 0),
        detail: firstProblem || `${puts.size} acknowledged puts on all ${ctx.cluster.members.length} members`,
      },
    ];
    return measurement(
      { case: 'failover', system: ctx.cluster.kind, clients: p.failoverWriters, connections: p.connections },
      { ops: puts.size, errors, durationSec: (endMs - startMs) / 1000, latency, errorSamples },
      cpu,
      {
        recoveryMs,
        putsAcked: puts.size,
        failedPuts: errors,
        timedOutPuts: timeouts,
        missingAckedPuts: missingMax,
      },
      checks,
    );
  } finally {
    stopping = true;
    pool.close();
  }
}
