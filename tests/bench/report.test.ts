// The people's table: per-run ratios pair run i of skiff with run i of etcd.

import { parseArgs } from '../../bench/main';
import { benchParams } from '../../bench/params';
import { formatTable, headline, perRunRatios } from '../../bench/report';
import { runParams, type BenchResult, type CaseResult, type SystemSummary } from '../../bench/runner';
import type { Measurement } from '../../bench/workload';
import type { StoreKind } from '../helpers/cluster';

function measurement(system: StoreKind, ops: number, p99: number): Measurement {
  return {
    case: 'put',
    system,
    clients: 128,
    connections: 8,
    ops: 1000,
    errors: 0,
    durationSec: 1000 / ops,
    throughputOpsPerSec: ops,
    latencyMsP50: p99 / 4,
    latencyMsP99: p99,
    cpuClientSec: 0.1,
    cpuMembersSec: [0.1, 0.1, 0.1],
    cpuClientSecPer1kOps: 0.1,
    cpuMembersSecPer1kOps: 0.3,
    extra: {},
    checks: [{ name: 'no errors', ok: true, detail: '' }],
    errorSamples: [],
  };
}

/** A summary whose median figures are those of `runs[median]` (enough for the table). */
function summary(runs: Measurement[], median: number): SystemSummary {
  const m = runs[median];
  return { ...m, checks: m.checks, checksOk: true, runs };
}

function result(cases: CaseResult[], runs: number): BenchResult {
  return {
    date: '2026-12-07T00:00:00.000Z',
    mode: 'full',
    runs,
    workloads: ['put'],
    machine: {
      cores: 2,
      cpuModel: 'test',
      memoryBytes: 2 ** 30,
      os: 'linux',
      node: 'v20',
      etcdVersion: '3.4.23',
      skiffVersion: '0.1.0',
      skiffCommit: '0123456789abcdef',
      skiffDirty: false,
      loadAverageStart: [0, 0, 0],
      loadAverageEnd: [0, 0, 0],
    },
    params: {} as BenchResult['params'],
    cases,
    checksOk: true,
    wallSec: 1,
  };
}

describe('bench report', () => {
  // Run 2 is fast for both systems: the medians (run 3 for skiff, run 1 for etcd) pair
  // figures from different runs, which is what the per-run line makes visible.
  const skiffRuns = [measurement('skiff', 10000, 40), measurement('skiff', 16000, 30), measurement('skiff', 12000, 44)];
  const etcdRuns = [measurement('etcd', 8000, 40), measurement('etcd', 10000, 32), measurement('etcd', 7000, 36)];
  const c: CaseResult = {
    case: 'put',
    clients: 128,
    connections: 8,
    skiff: summary(skiffRuns, 2),
    etcd: summary(etcdRuns, 0),
    ratio: { ...measurement('skiff', 1.5, 1.1), extra: {} },
  };

  test('per-run ratios divide run i of skiff by run i of etcd', () => {
    expect(perRunRatios(c, (f) => f.throughputOpsPerSec)).toEqual([1.25, 1.6, 12000 / 7000]);
    expect(perRunRatios(c, (f) => f.latencyMsP99)).toEqual([1, 30 / 32, 44 / 36]);
  });

  test('a run without a counterpart is left out, and a zero denominator gives no ratio', () => {
    const lopsided: CaseResult = { ...c, etcd: summary([measurement('etcd', 0, 40), etcdRuns[1]], 0) };
    const r = perRunRatios(lopsided, (f) => f.throughputOpsPerSec);
    expect(r).toHaveLength(2);
    expect(r[0]).toBeNaN();
    expect(r[1]).toBe(1.6);
  });

  test('the table shows the per-run ratios under the case when there are several runs', () => {
    const table = formatTable(result([c], 3));
    const lines = table.split('\n');
    const at = lines.findIndex((l) => l.includes('ratio') && l.trimStart().startsWith('ratio'));
    expect(at).toBeGreaterThan(0);
    expect(lines[at + 1]).toMatch(/per run: ops\/s 1\.25 1\.60 1\.71 {3}p99 1\.00 0\.938 1\.22$/);
    expect(table).toContain('the ratio is of the medians');
  });

  test('a single run gets no per-run line', () => {
    const one: CaseResult = { ...c, skiff: summary([skiffRuns[0]], 0), etcd: summary([etcdRuns[0]], 0) };
    const table = formatTable(result([one], 1));
    expect(table).not.toContain('per run:');
    expect(table).not.toContain('the ratio is of the medians');
  });

  test('the headline says whether the levels were warmed up; --cold measures from the first request', () => {
    const warm = { ...result([c], 1), params: benchParams('full') };
    expect(headline(warm)).toContain('warmed up (10000 ops or 3 s per level, 4000 puts before watch)');
    expect(headline({ ...warm, params: { ...warm.params, warmupOps: 0, watchWarmupPuts: 0 } })).toContain('cold (no warm-up load)');
    expect(parseArgs([]).cold).toBe(false);
    expect(parseArgs(['--cold', '--workloads', 'put']).cold).toBe(true);
    // --cold drops the warm-up load, and only it; the connections' first requests stay.
    const cold = runParams({ quick: false, cold: true, clientLevels: [1] });
    expect(cold).toEqual({ ...benchParams('full'), clientLevels: [1], warmupOps: 0, watchWarmupPuts: 0 });
    expect(cold.warmupOpsPerConnection).toBeGreaterThan(0);
    expect(runParams({ quick: true }).warmupOps).toBe(benchParams('quick').warmupOps);
  });
});
