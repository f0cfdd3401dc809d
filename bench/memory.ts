// The memory workload: load K distinct keys (256-byte values, sequential, 16 clients), let
// the followers finish applying, then read each member's resident set (VmRSS); read it again
// after an idle period, once the runtimes had time to give back what the burst left.

import { ConnectionPool, methods } from './grpc-client';
import { CpuMeter, processRssBytes } from './proc-stats';
import { benchKey } from './put';
import { encodePut } from './wire';
import { benchValue, Check, Measurement, measurement, memberPids, RunContext, runClosedLoop, sleep } from './workload';

const mib = 1024 * 1024;

/** Each member's RSS in MiB (NaN where it could not be read). */
function readRss(pids: readonly (number | undefined)[]): number[] {
  return pids.map((pid) => (pid === undefined ? NaN : (processRssBytes(pid) ?? NaN) / mib));
}

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

export async function runMemory(ctx: RunContext): Promise<Measurement> {
  const p = ctx.params;
  const value = benchValue(p.valueBytes);
  const pids = memberPids(ctx.cluster);
  const rssBefore = readRss(pids);
  const pool = new ConnectionPool(ctx.endpoints, p.connections);
  try {
    await pool.connectAll();
    const meter = new CpuMeter(pids);
    meter.start();
    const r = await runClosedLoop({
      pool,
      clients: p.memoryClients,
      opsTotal: p.memoryKeys,
      durationMaxSec: Infinity,
      op: (conn, i) => conn.unary(methods.put, encodePut(benchKey(i, p.putKeyBytes), value)),
    });
    const cpu = meter.stop();
    await sleep(p.memorySettleSec * 1000);
    const rss = readRss(pids);
    await sleep(p.memoryIdleSec * 1000);
    const rssIdle = readRss(pids);
    const extra: Record<string, number> = { keys: r.ops };
    ctx.cluster.members.forEach((m, i) => {
      extra[`rssMiB.${m.name}`] = rss[i];
      extra[`rssMiBIdle.${m.name}`] = rssIdle[i];
    });
    extra.rssMiBMax = Math.max(...rss);
    extra.rssMiBLeader = rss[ctx.leaderMember];
    extra.rssMiBTotal = sum(rss);
    extra.rssMiBTotalBefore = sum(rssBefore);
    extra.rssMiBMaxIdle = Math.max(...rssIdle);
    extra.rssMiBTotalIdle = sum(rssIdle);
    const checks: Check[] = [
      { name: 'every key loaded', ok: r.ops === p.memoryKeys && r.errors === 0, detail: `${r.ops}/${p.memoryKeys} puts, ${r.errors} errors` },
      ...[rss, rssIdle].map((x, i) => ({
        name: `RSS read for every member (${i === 0 ? 'after load' : 'after idle'})`,
        ok: x.every((v) => Number.isFinite(v) && v > 0),
        detail: x.map((v) => v.toFixed(1)).join(', ') + ' MiB',
      })),
    ];
    return measurement({ case: 'memory', system: ctx.cluster.kind, clients: p.memoryClients, connections: p.connections }, r, cpu, extra, checks);
  } finally {
    pool.close();
  }
}
