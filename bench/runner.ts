// Runs the benchmark: for each workload (and, in a full run, each client level) it starts a
// fresh cluster of one system, measures, stops it, then does the same with a fresh cluster of
// the other, with the same client in the same process. Which system goes first alternates
// from one unit to the next and from one run to the next (skiff-etcd, etcd-skiff, ...), so
// that neither always follows the other's teardown; before each cluster starts, the disk is
// flushed (sync), so that neither measures the other's writeback. With --runs N the whole
// sequence repeats and each figure is the median of the N runs.

import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import { StoreCluster, StoreKind } from '../tests/helpers/cluster';
import { startCluster } from './clusters';
import { runFailover } from './failover';
import { machineInfo, MachineInfo } from './machine';
import { runMemory } from './memory';
import { benchParams, BenchParams, CaseName, WorkloadName, workloadNames } from './params';
import { runPut } from './put';
import { runRange } from './range';
import { median } from './stats';
import { runWatch } from './watch';
import { Check, makeContext, Measurement, RunContext } from './workload';

export const systems: readonly StoreKind[] = ['skiff', 'etcd'];

/** The systems in the order they run for a unit: alternating by unit and by run (both from 0). */
export function systemOrder(run: number, unit: number): readonly StoreKind[] {
  return (run + unit) % 2 === 0 ? systems : [...systems].reverse();
}

/** Writes every dirty page out (sync(2)), so that the next cluster starts on a quiet disk. */
function flushDisk(): void {
  execFileSync('sync', { stdio: 'ignore' });
}

export interface BenchOptions {
  quick: boolean;
  workloads: readonly WorkloadName[];
  runs: number;
  log: (line: string) => void;
  /** Writes a V8 CPU profile of every skiff member into this directory (node --cpu-prof). */
  profileDir?: string;
  /** Only these client levels of the put and range workloads (default: all of the mode's). */
  clientLevels?: readonly number[];
  /** No warm-up load before a level or the watch round: measured from the first request. */
  cold?: boolean;
}

/** The figures compared between the systems (medians over runs). */
export interface Figures {
  ops: number;
  errors: number;
  durationSec: number;
  throughputOpsPerSec: number;
  latencyMsP50: number;
  latencyMsP99: number;
  cpuClientSecPer1kOps: number;
  cpuMembersSecPer1kOps: number;
  extra: Record<string, number>;
}

export interface SystemSummary extends Figures {
  checks: Check[];
  checksOk: boolean;
  runs: Measurement[];
}

export interface CaseResult {
  case: CaseName;
  clients: number;
  connections: number;
  skiff: SystemSummary;
  etcd: SystemSummary;
  /** skiff / etcd for every figure. */
  ratio: Figures;
}

export interface BenchResult {
  date: string;
  mode: 'full' | 'quick';
  runs: number;
  workloads: WorkloadName[];
  machine: MachineInfo;
  params: BenchParams;
  cases: CaseResult[];
  checksOk: boolean;
  wallSec: number;
}

interface Step {
  case: CaseName;
  clients: number;
  run: (ctx: RunContext) => Promise<Measurement>;
}

/** Steps that share one fresh cluster per system. */
interface Unit {
  workload: WorkloadName;
  steps: Step[];
}

function plan(params: BenchParams, workloads: readonly WorkloadName[]): Unit[] {
  const units: Unit[] = [];
  const grouped = (workload: WorkloadName, steps: Step[]): void => {
    if (params.freshClusterPerLevel) for (const s of steps) units.push({ workload, steps: [s] });
    else units.push({ workload, steps });
  };
  for (const w of workloadNames.filter((x) => workloads.includes(x))) {
    switch (w) {
      case 'put':
        grouped(
          w,
          params.clientLevels.map((clients) => ({ case: 'put', clients, run: (ctx) => runPut(ctx, clients) })),
        );
        break;
      case 'range':
        grouped(w, [
          ...params.clientLevels.map((clients): Step => ({ case: 'range-linearizable', clients, run: (ctx) => runRange(ctx, clients, 'linearizable') })),
          ...params.clientLevels.map((clients): Step => ({ case: 'range-serializable', clients, run: (ctx) => runRange(ctx, clients, 'serializable') })),
        ]);
        break;
      case 'watch':
        units.push({ workload: w, steps: [{ case: 'watch', clients: params.watchWriters, run: runWatch }] });
        break;
      case 'failover':
        units.push({ workload: w, steps: [{ case: 'failover', clients: params.failoverWriters, run: runFailover }] });
        break;
      case 'memory':
        units.push({ workload: w, steps: [{ case: 'memory', clients: params.memoryClients, run: runMemory }] });
        break;
    }
  }
  return units;
}

/** Clusters running now, stopped by stopActiveClusters() on an interrupt. */
const activeClusters = new Set<StoreCluster>();

export async function stopActiveClusters(): Promise<void> {
  await Promise.all([...activeClusters].map((c) => discard(c)));
  activeClusters.clear();
}

/**
 * Ends a cluster whose data is thrown away: SIGKILL to every member (by pid), then the
 * data directory is removed. A graceful stop makes etcd's leader try to hand over
 * leadership to members that are stopping too, which takes seconds per cluster.
 */
async function discard(cluster: StoreCluster, opts: { graceful?: boolean } = {}): Promise<void> {
  // A profiled member writes its profile only when it exits by itself (SIGTERM).
  if (!opts.graceful) await Promise.all(cluster.members.map((_, i) => cluster.kill(i, 'SIGKILL')));
  await cluster.stop();
}

function failedMeasurement(step: Step, system: StoreKind, connections: number, error: unknown): Measurement {
  return {
    case: step.case,
    system,
    clients: step.clients,
    connections,
    ops: 0,
    errors: 0,
    durationSec: NaN,
    throughputOpsPerSec: NaN,
    latencyMsP50: NaN,
    latencyMsP99: NaN,
    cpuClientSec: NaN,
    cpuMembersSec: [],
    cpuClientSecPer1kOps: NaN,
    cpuMembersSecPer1kOps: NaN,
    extra: {},
    checks: [{ name: 'ran without error', ok: false, detail: error instanceof Error ? error.message.slice(0, 2000) : String(error) }],
    errorSamples: [],
  };
}

async function runUnit(params: BenchParams, unit: Unit, system: StoreKind, log: (line: string) => void, profileDir: string | undefined): Promise<Measurement[]> {
  const out: Measurement[] = [];
  let cluster: StoreCluster | undefined;
  try {
    flushDisk();
    cluster = await startCluster(
      {
        kind: system,
        members: params.members,
        heartbeatMs: params.heartbeatMs,
        electionMs: params.electionMs,
        flags: [`--snapshot-count=${params.snapshotCount}`],
        ...(profileDir !== undefined && system === 'skiff' ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] } : {}),
      },
      log,
    );
    activeClusters.add(cluster);
    const ctx = await makeContext(params, cluster, (line) => log(`  [${system}] ${line}`));
    for (const step of unit.steps) {
      let m: Measurement;
      try {
        m = await step.run(ctx);
      } catch (e) {
        m = failedMeasurement(step, system, params.connections, e);
      }
      log(`  ${system.padEnd(5)} ${step.case} c=${step.clients}: ${m.throughputOpsPerSec.toFixed(0)} ops/s, p99 ${m.latencyMsP99.toFixed(2)} ms${m.errors ? `, ${m.errors} errors` : ''}${m.checks.every((c) => c.ok) ? '' : ' CHECK FAILED'}`);
      out.push(m);
    }
  } catch (e) {
    for (const step of unit.steps.slice(out.length)) out.push(failedMeasurement(step, system, params.connections, e));
    log(`  ${system} ${unit.workload}: ${(e as Error).message.split('\n')[0]}`);
  } finally {
    if (cluster) {
      await discard(cluster, { graceful: profileDir !== undefined && system === 'skiff' });
      activeClusters.delete(cluster);
    }
  }
  return out;
}

function medianFigures(ms: readonly Measurement[]): Figures {
  const pick = (f: (m: Measurement) => number): number => median(ms.map(f));
  const extraKeys = [...new Set(ms.flatMap((m) => Object.keys(m.extra)))];
  const extra: Record<string, number> = {};
  for (const k of extraKeys) extra[k] = pick((m) => m.extra[k] ?? NaN);
  return {
    ops: pick((m) => m.ops),
    errors: pick((m) => m.errors),
    durationSec: pick((m) => m.durationSec),
    throughputOpsPerSec: pick((m) => m.throughputOpsPerSec),
    latencyMsP50: pick((m) => m.latencyMsP50),
    latencyMsP99: pick((m) => m.latencyMsP99),
    cpuClientSecPer1kOps: pick((m) => m.cpuClientSecPer1kOps),
    cpuMembersSecPer1kOps: pick((m) => m.cpuMembersSecPer1kOps),
    extra,
  };
}

function summarize(ms: readonly Measurement[]): SystemSummary {
  // A check passes when it passed in every run; its detail is from the first run where it failed.
  const checks: Check[] = [];
  for (const m of ms) {
    for (const c of m.checks) {
      const prev = checks.find((x) => x.name === c.name);
      if (!prev) checks.push({ ...c });
      else if (prev.ok && !c.ok) Object.assign(prev, c);
    }
  }
  return { ...medianFigures(ms), checks, checksOk: checks.every((c) => c.ok), runs: [...ms] };
}

function ratio(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : NaN;
}

function ratioFigures(s: Figures, e: Figures): Figures {
  const extra: Record<string, number> = {};
  for (const k of Object.keys(s.extra)) extra[k] = ratio(s.extra[k], e.extra[k]);
  return {
    ops: ratio(s.ops, e.ops),
    errors: ratio(s.errors, e.errors),
    durationSec: ratio(s.durationSec, e.durationSec),
    throughputOpsPerSec: ratio(s.throughputOpsPerSec, e.throughputOpsPerSec),
    latencyMsP50: ratio(s.latencyMsP50, e.latencyMsP50),
    latencyMsP99: ratio(s.latencyMsP99, e.latencyMsP99),
    cpuClientSecPer1kOps: ratio(s.cpuClientSecPer1kOps, e.cpuClientSecPer1kOps),
    cpuMembersSecPer1kOps: ratio(s.cpuMembersSecPer1kOps, e.cpuMembersSecPer1kOps),
    extra,
  };
}

/** The parameters of a run: the mode's, with the options' client levels and --cold applied. */
export function runParams(opts: Pick<BenchOptions, 'quick' | 'clientLevels' | 'cold'>): BenchParams {
  return {
    ...benchParams(opts.quick ? 'quick' : 'full'),
    ...(opts.clientLevels ? { clientLevels: opts.clientLevels } : {}),
    ...(opts.cold === true ? { warmupOps: 0, watchWarmupPuts: 0 } : {}),
  };
}

export async function runBench(opts: BenchOptions): Promise<BenchResult> {
  const params = runParams(opts);
  const startedMs = Date.now();
  const machine = machineInfo();
  const units = plan(params, opts.workloads);
  const byCase = new Map<string, { case: CaseName; clients: number; skiff: Measurement[]; etcd: Measurement[] }>();
  for (let run = 1; run <= opts.runs; run++) {
    for (const [u, unit] of units.entries()) {
      opts.log(`run ${run}/${opts.runs}: ${unit.workload} ${unit.steps.map((s) => `${s.case} c=${s.clients}`).join(', ')}`);
      for (const system of systemOrder(run - 1, u)) {
        for (const m of await runUnit(params, unit, system, opts.log, opts.profileDir)) {
          const key = `${m.case}/${m.clients}`;
          let entry = byCase.get(key);
          if (!entry) {
            entry = { case: m.case, clients: m.clients, skiff: [], etcd: [] };
            byCase.set(key, entry);
          }
          entry[system].push(m);
        }
      }
    }
  }
  const cases: CaseResult[] = [...byCase.values()].map((e) => {
    const skiff = summarize(e.skiff);
    const etcd = summarize(e.etcd);
    return { case: e.case, clients: e.clients, connections: params.connections, skiff, etcd, ratio: ratioFigures(skiff, etcd) };
  });
  machine.loadAverageEnd = os.loadavg();
  return {
    date: new Date(startedMs).toISOString(),
    mode: params.mode,
    runs: opts.runs,
    workloads: [...opts.workloads],
    machine,
    params,
    cases,
    checksOk: cases.every((c) => c.skiff.checksOk && c.etcd.checksOk),
    wallSec: (Date.now() - startedMs) / 1000,
  };
}
