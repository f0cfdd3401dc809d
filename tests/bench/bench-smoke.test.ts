// The benchmark harness, quick version, against real clusters of skiff and etcd: every
// workload runs on both systems, every figure is there, and the harness's own checks pass
// (every watcher got every event once and in order; no acknowledged put lost across a
// leader kill). No timing targets: CI machines are too noisy for them.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireBuild, requireTool } from '../helpers/cluster';
import { workloadNames } from '../../bench/params';
import { formatTable, toJson, writeResults } from '../../bench/report';
import { runBench, stopActiveClusters } from '../../bench/runner';

jest.setTimeout(180_000);

describe('npm run bench -- --quick', () => {
  const available = requireTool('etcd', 'apt-get install etcd-server');

  afterAll(async () => {
    await stopActiveClusters();
  });

  (available ? test : test.skip)('runs every workload against skiff and etcd; figures present, checks pass', async () => {
    requireBuild();
    const log: string[] = [];
    const r = await runBench({ quick: true, workloads: [...workloadNames], runs: 1, log: (l) => log.push(l) });
    const table = formatTable(r);
    const failed = r.cases.flatMap((c) => (['skiff', 'etcd'] as const).flatMap((s) => c[s].checks.filter((k) => !k.ok).map((k) => `${c.case}/${c.clients} ${s}: ${k.name}: ${k.detail}`)));
    expect({ failed, table }).toEqual({ failed: [], table });

    const cases = new Set(r.cases.map((c) => c.case));
    expect([...cases].sort()).toEqual(['failover', 'memory', 'put', 'range-linearizable', 'range-serializable', 'watch']);
    expect(r.cases.filter((c) => c.case === 'put').map((c) => c.clients)).toEqual(r.params.clientLevels);
    for (const c of r.cases) {
      for (const s of [c.skiff, c.etcd]) {
        expect(s.ops).toBeGreaterThan(0);
        expect(s.throughputOpsPerSec).toBeGreaterThan(0);
        expect(s.latencyMsP50).toBeGreaterThan(0);
        expect(s.latencyMsP99).toBeGreaterThanOrEqual(s.latencyMsP50);
        expect(s.cpuClientSecPer1kOps).toBeGreaterThan(0);
        expect(s.cpuMembersSecPer1kOps).toBeGreaterThan(0);
        expect(s.runs[0].cpuMembersSec).toHaveLength(3);
      }
      expect(Number.isFinite(c.ratio.throughputOpsPerSec)).toBe(true);
      expect(Number.isFinite(c.ratio.latencyMsP99)).toBe(true);
    }
    const byCase = (name: string) => r.cases.find((c) => c.case === name)!;
    for (const s of ['skiff', 'etcd'] as const) {
      const watch = byCase('watch')[s];
      expect(watch.extra.putsAcked).toBe(r.params.watchPuts);
      expect(watch.ops).toBe(r.params.watchPuts * r.params.watchers);
      // A response holds at least one event and at most every put.
      expect(watch.extra.eventsPerResponse).toBeGreaterThanOrEqual(1);
      expect(watch.extra.eventsPerResponse).toBeLessThanOrEqual(r.params.watchPuts);
      const fo = byCase('failover')[s];
      expect(fo.extra.recoveryMs).toBeGreaterThan(0);
      expect(fo.extra.missingAckedPuts).toBe(0);
      const mem = byCase('memory')[s];
      expect(mem.extra.keys).toBe(r.params.memoryKeys);
      expect(mem.extra.rssMiBTotal).toBeGreaterThan(0);
    }
    expect(r.machine.cores).toBeGreaterThan(0);
    expect(r.machine.etcdVersion).toMatch(/^\d+\.\d+\.\d+/);

    // Output: the table, JSON (no NaN), the results file and its chart.
    expect(table).toContain('ratio');
    const parsed = JSON.parse(toJson(r)) as { cases: unknown[]; machine: { node: string } };
    expect(parsed.cases).toHaveLength(r.cases.length);
    expect(parsed.machine.node).toBe(process.version);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-results-'));
    try {
      const files = writeResults(r, dir);
      expect(JSON.parse(fs.readFileSync(files.json, 'utf8')).date).toBe(r.date);
      const svg = fs.readFileSync(files.svg, 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg).toContain('Throughput');
      expect(svg).toContain('Latency p99');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
