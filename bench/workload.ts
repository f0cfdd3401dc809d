// What every workload shares: the context it runs in (a fresh cluster, its endpoints with
// the leader first), the measurement it returns, and the closed-loop driver (N clients, each
// issuing its next request when the previous one is answered, like etcd's benchmark tool).

import { performance } from 'node:perf_hooks';
import type { StoreCluster, StoreKind } from '../tests/helpers/cluster';
import { Connection, ConnectionPool, methods } from './grpc-client';
import type { BenchParams, CaseName } from './params';
import { CpuMeter } from './proc-stats';
import { LatencyRecorder } from './stats';
import { decodeStatusResponse, encodeEmpty } from './wire';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** One case (workload at one client level) measured on one system. */
export interface Measurement {
  case: CaseName;
  system: StoreKind;
  clients: number;
  connections: number;
  /** Operations counted for throughput and CPU (watch: events delivered). */
  ops: number;
  errors: number;
  durationSec: number;
  throughputOpsPerSec: number;
  latencyMsP50: number;
  latencyMsP99: number;
  cpuClientSec: number;
  cpuMembersSec: number[];
  cpuClientSecPer1kOps: number;
  cpuMembersSecPer1kOps: number;
  /** Workload-specific figures (watch: putsPerSec; failover: recoveryMs; memory: rssMiB...). */
  extra: Record<string, number>;
  checks: Check[];
  /** First few error messages, for diagnosis. */
  errorSamples: string[];
}

export interface RunContext {
  params: BenchParams;
  cluster: StoreCluster;
  /** Client URLs, leader first, then the others in member order. */
  endpoints: string[];
  /** Member index of each entry of endpoints. */
  endpointMembers: number[];
  leaderMember: number;
  log: (line: string) => void;
}

/** At most this many error messages are kept per measurement. */
export const errorSamplesMax = 5;

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A fixed pseudo-random value, like etcd benchmark's mustRandBytes (the same bytes for every put). */
export function benchValue(bytes: number): Buffer {
  const v = Buffer.allocUnsafe(bytes);
  let x = 0x2545f491;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    v[i] = 0x21 + ((x >>> 0) % 94); // printable, like a JSON-ish payload
  }
  return v;
}

/** The member index of the leader, asking every member's Maintenance.Status until they agree on one. */
export async function findLeader(cluster: StoreCluster, timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ids: bigint[] = [];
    let leader = 0n;
    for (let i = 0; i < cluster.members.length; i++) {
      if (cluster.members[i].proc === undefined) {
        ids.push(-1n);
        continue;
      }
      const c = new Connection(cluster.members[i].clientUrl);
      try {
        const st = decodeStatusResponse(await c.unary(methods.status, encodeEmpty(), 2000));
        ids.push(st.memberId);
        if (st.leader !== 0n) leader = st.leader;
      } catch {
        ids.push(-1n);
      } finally {
        c.close();
      }
    }
    const idx = leader === 0n ? -1 : ids.indexOf(leader);
    if (idx >= 0) return idx;
    if (Date.now() > deadline) throw new Error(`no leader among ${cluster.kind} members within ${timeoutMs} ms`);
    await sleep(100);
  }
}

export async function makeContext(params: BenchParams, cluster: StoreCluster, log: (line: string) => void): Promise<RunContext> {
  const leaderMember = await findLeader(cluster);
  const endpointMembers = [leaderMember, ...cluster.members.map((_, i) => i).filter((i) => i !== leaderMember)];
  return { params, cluster, leaderMember, endpointMembers, endpoints: endpointMembers.map((i) => cluster.members[i].clientUrl), log };
}

export function memberPids(cluster: StoreCluster): (number | undefined)[] {
  return cluster.members.map((_, i) => cluster.pid(i));
}

export interface ClosedLoopOptions {
  pool: ConnectionPool;
  clients: number;
  opsTotal: number;
  durationMaxSec: number;
  /** One request; i counts requests across clients from 0. */
  op: (conn: Connection, i: number) => Promise<unknown>;
}

export interface ClosedLoopResult {
  ops: number;
  errors: number;
  durationSec: number;
  latency: LatencyRecorder;
  errorSamples: string[];
}

/** N clients over the pool's connections, each issuing its next request when the last one is answered. */
export async function runClosedLoop(o: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const latency = new LatencyRecorder();
  const errorSamples: string[] = [];
  let issued = 0;
  let ops = 0;
  let errors = 0;
  const start = performance.now();
  const deadline = start + o.durationMaxSec * 1000;
  const client = async (c: number): Promise<void> => {
    const conn = o.pool.forClient(c);
    while (issued < o.opsTotal) {
      const i = issued++;
      const t0 = performance.now();
      if (t0 > deadline) return;
      try {
        await o.op(conn, i);
        latency.add(performance.now() - t0);
        ops++;
      } catch (e) {
        errors++;
        if (errorSamples.length < errorSamplesMax) errorSamples.push((e as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: o.clients }, (_, c) => client(c)));
  return { ops, errors, durationSec: (performance.now() - start) / 1000, latency, errorSamples };
}

/** Unmeasured requests on every connection of the pool. */
export async function warmUp(pool: ConnectionPool, perConnection: number, op: (conn: Connection, i: number) => Promise<unknown>): Promise<void> {
  await pool.connectAll();
  await Promise.all(
    pool.conns.map(async (conn, c) => {
      for (let k = 0; k < perConnection; k++) await op(conn, c * perConnection + k);
    }),
  );
}

/**
 * The level's own load, unmeasured, before it is measured (BenchParams.warmupOps): the
 * connections' first requests and then warmupOps operations or warmupMaxSec at the level's
 * concurrency.
 */
export async function warmUpLevel(pool: ConnectionPool, p: BenchParams, clients: number, op: (conn: Connection, i: number) => Promise<unknown>): Promise<void> {
  await warmUp(pool, p.warmupOpsPerConnection, op);
  if (p.warmupOps > 0) await runClosedLoop({ pool, clients, opsTotal: p.warmupOps, durationMaxSec: p.warmupMaxSec, op });
}

/** Builds the measurement from a closed loop's result and the CPU used meanwhile. */
export function measurement(
  base: { case: CaseName; system: StoreKind; clients: number; connections: number },
  r: { ops: number; errors: number; durationSec: number; latency: LatencyRecorder; errorSamples: string[] },
  cpu: ReturnType<CpuMeter['stop']>,
  extra: Record<string, number> = {},
  checks: Check[] = [],
): Measurement {
  const [p50, p99] = r.latency.percentiles([50, 99]);
  const membersSec = cpu.memberSec.reduce((a, b) => a + b, 0);
  const per1k = (sec: number): number => (r.ops > 0 ? (sec / r.ops) * 1000 : NaN);
  return {
    ...base,
    ops: r.ops,
    errors: r.errors,
    durationSec: r.durationSec,
    throughputOpsPerSec: r.durationSec > 0 ? r.ops / r.durationSec : NaN,
    latencyMsP50: p50,
    latencyMsP99: p99,
    cpuClientSec: cpu.clientSec,
    cpuMembersSec: cpu.memberSec,
    cpuClientSecPer1kOps: per1k(cpu.clientSec),
    cpuMembersSecPer1kOps: per1k(membersSec),
    extra,
    checks,
    errorSamples: r.errorSamples,
  };
}
