// Output: a table for people, JSON for machines, and the results file (plus its chart)
// under bench/results/.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../tests/helpers/cluster';
import { renderChart } from './chart';
import type { BenchResult, CaseResult, Figures } from './runner';

export const resultsDir = path.join(repoRoot, 'bench', 'results');

/** A number in a table cell: 3 significant digits below 100, whole numbers above; '-' when unknown. */
export function fmt(n: number): string {
  if (!Number.isFinite(n)) return '-';
  const a = Math.abs(n);
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  if (a >= 1) return n.toFixed(2);
  if (a === 0) return '0';
  return n.toPrecision(3);
}

function shortCommit(r: BenchResult): string {
  return `${r.machine.skiffCommit.slice(0, 7)}${r.machine.skiffDirty ? '+dirty' : ''}`;
}

/** How each level started: after a warm-up load, or cold (--cold; results from before warm-ups have no warmupOps). */
function warmth(r: BenchResult): string {
  const ops = r.params.warmupOps ?? 0;
  return ops > 0 ? `warmed up (${ops} ops or ${r.params.warmupMaxSec} s per level, ${r.params.watchWarmupPuts} puts before watch)` : 'cold (no warm-up load)';
}

export function headline(r: BenchResult): string {
  const m = r.machine;
  return (
    `skiff ${m.skiffVersion} (${shortCommit(r)}) vs etcd ${m.etcdVersion} — ${r.mode} run, ${r.runs} run${r.runs > 1 ? 's (medians)' : ''}, ${warmth(r)}, ${r.date}\n` +
    `${m.cores} cores ${m.cpuModel}, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, Node ${m.node}, load ${m.loadAverageStart.map((x) => x.toFixed(2)).join(' ')} -> ${m.loadAverageEnd.map((x) => x.toFixed(2)).join(' ')}`
  );
}

const columns: { title: string; width: number; get: (f: Figures) => number }[] = [
  { title: 'ops/s', width: 10, get: (f) => f.throughputOpsPerSec },
  { title: 'p50 ms', width: 8, get: (f) => f.latencyMsP50 },
  { title: 'p99 ms', width: 8, get: (f) => f.latencyMsP99 },
  { title: 'client CPU', width: 11, get: (f) => f.cpuClientSecPer1kOps },
  { title: 'members CPU', width: 12, get: (f) => f.cpuMembersSecPer1kOps },
  { title: 'errors', width: 7, get: (f) => f.errors },
];

function caseLabel(c: CaseResult): string {
  return c.case;
}

/**
 * skiff/etcd of run i against run i, for each run: the two systems ran one after the other
 * in the same run, so these pairs show the spread that the ratio of medians hides.
 */
export function perRunRatios(c: CaseResult, get: (f: Figures) => number): number[] {
  const n = Math.min(c.skiff.runs.length, c.etcd.runs.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = get(c.skiff.runs[i]);
    const e = get(c.etcd.runs[i]);
    out.push(Number.isFinite(s) && Number.isFinite(e) && e !== 0 ? s / e : NaN);
  }
  return out;
}

export function formatTable(r: BenchResult): string {
  const lines: string[] = [headline(r), ''];
  const head = `${'case'.padEnd(19)}${'clients'.padStart(7)}  ${'system'.padEnd(6)}${columns.map((c) => c.title.padStart(c.width)).join('')}  checks`;
  lines.push(head);
  lines.push(`${''.padEnd(58)}(CPU: seconds per 1k ops; members: all three summed)`);
  lines.push('-'.repeat(head.length + 4));
  for (const c of r.cases) {
    const row = (label: string, clients: string, system: string, f: Figures, checks: string): string =>
      `${label.padEnd(19)}${clients.padStart(7)}  ${system.padEnd(6)}${columns.map((col) => fmt(col.get(f)).padStart(col.width)).join('')}  ${checks}`;
    lines.push(row(caseLabel(c), String(c.clients), 'skiff', c.skiff, c.skiff.checksOk ? 'ok' : 'FAILED'));
    lines.push(row('', '', 'etcd', c.etcd, c.etcd.checksOk ? 'ok' : 'FAILED'));
    lines.push(row('', '', 'ratio', { ...c.ratio, errors: NaN }, ''));
    if (Math.min(c.skiff.runs.length, c.etcd.runs.length) > 1) {
      const list = (get: (f: Figures) => number): string => perRunRatios(c, get).map(fmt).join(' ');
      lines.push(`${''.padEnd(28)}per run: ops/s ${list((f) => f.throughputOpsPerSec)}   p99 ${list((f) => f.latencyMsP99)}`);
    }
    // Extras named with a dot (per-member figures) are in the JSON only.
    for (const k of Object.keys(c.skiff.extra).filter((x) => !x.includes('.'))) {
      lines.push(`${''.padEnd(28)}${k.padEnd(22)} skiff ${fmt(c.skiff.extra[k]).padStart(9)}   etcd ${fmt(c.etcd.extra[k]).padStart(9)}   ratio ${fmt(c.ratio.extra[k]).padStart(6)}`);
    }
  }
  lines.push('');
  lines.push('ratio = skiff / etcd (throughput: above 1 is skiff faster; latency and CPU: above 1 is skiff costlier).');
  if (r.runs > 1) lines.push('figures are medians over the runs; the ratio is of the medians; per run: the ratio within each run.');
  lines.push('watch: ops are events delivered to all watchers; latency is from sending the put to receiving the event.');
  lines.push('failover: ops are acknowledged puts; recoveryMs is kill -9 of the leader to the first acknowledged put issued after it.');
  const failed = r.cases.flatMap((c) =>
    (['skiff', 'etcd'] as const).flatMap((s) => c[s].checks.filter((k) => !k.ok).map((k) => `  ${c.case} c=${c.clients} ${s}: ${k.name}: ${k.detail}`)),
  );
  const errs = r.cases.flatMap((c) =>
    (['skiff', 'etcd'] as const).flatMap((s) => (c[s].runs[0]?.errorSamples ?? []).slice(0, 2).map((e) => `  ${c.case} c=${c.clients} ${s}: ${e}`)),
  );
  if (failed.length > 0) lines.push('', 'FAILED CHECKS:', ...failed);
  if (errs.length > 0) lines.push('', 'Sample errors:', ...errs);
  lines.push('', `All checks ${r.checksOk ? 'passed' : 'did NOT pass'}; wall time ${r.wallSec.toFixed(0)} s.`);
  return lines.join('\n');
}

/** JSON.stringify with NaN and Infinity as null (JSON has neither). */
export function toJson(r: BenchResult): string {
  return JSON.stringify(r, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);
}

/** Writes <stamp>-<mode>.json and its chart <stamp>-<mode>.svg to dir; returns both paths. */
export function writeResults(r: BenchResult, dir: string): { json: string; svg: string } {
  fs.mkdirSync(dir, { recursive: true });
  const stamp = r.date.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  const base = path.join(dir, `${stamp}-${r.mode}`);
  fs.writeFileSync(`${base}.json`, toJson(r) + '\n');
  fs.writeFileSync(`${base}.svg`, renderChart(r));
  return { json: `${base}.json`, svg: `${base}.svg` };
}
