// The memory workload: load K distinct keys (256-byte values, sequential, 16 clients), let
// the followers finish applying, then read each member's resident set (VmRSS).

import { ConnectionPool, methods } from './grpc-client';
import { CpuMeter, processRssBytes } from './proc-stats';
import { benchKey } from './put';
import { encodePut } from './wire';
import { benchValue, Check, Measurement, measurement, memberPids, RunContext, runClosedLoop, sleep } from './workload';

const mib = 1024 * 1024;

export async function runMemory(ctx: RunContext): Promise<Measurement> {
  const p = ctx.params;
  const value = benchValue(p.valueBytes);
  const pids = memberPids(ctx.cluster);
  const rssBefore = pids.map((pid) => (pid === undefined ? NaN : (processRssBytes(pid) ?? NaN) / mib));
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
    const rss = pids.map((pid) => (pid === undefined ? NaN : (processRssBytes(pid) ?? NaN) / mib));
    const extra: Record<string, number> = { keys: r.ops };
    ctx.cluster.members.forEach((m, i) => {
      extra[`rssMiB.${m.name}`] = rss[i];
    });
    extra.rssMiBMax = Math.max(...rss);
    extra.rssMiBLeader = rss[ctx.leaderMember];
    extra.rssMiBTotal = rss.reduce((a, b) => a + b, 0);
    extra.rssMiBTotalBefore = rssBefore.reduce((a, b) => a + b, 0);
    const checks: Check[] = [
      { name: 'every key loaded', ok: r.ops === p.memoryKeys && r.errors === 0, detail: `${r.ops}/${p.memoryKeys} puts, ${r.errors} errors` },
      { name: 'RSS read for every member', ok: rss.every((x) => Number.isFinite(x) && x > 0), detail: rss.map((x) => x.toFixed(1)).join(', ') + ' MiB' },
    ];
    return measurement({ case: 'memory', system: ctx.cluster.kind, clients: p.memoryClients, connections: p.connections }, r, cpu, extra, checks);
  } finally {
    pool.close();
  }
}
