// The results chart, SVG written by hand: throughput and p99 latency against concurrent
// clients, for skiff and etcd, for the workloads run at several client levels (put,
// linearizable and serializable range). skiff is drawn solid with circles, etcd dashed
// with squares; one colour per workload.

import type { BenchResult, CaseResult } from './runner';
import type { CaseName } from './params';

const panelWidth = 460;
const panelHeight = 300;
const margin = { left: 64, right: 16, top: 36, bottom: 44 };
const legendHeight = 64;
const titleHeight = 44;

const colours: Partial<Record<CaseName, string>> = {
  put: '#d62728',
  'range-linearizable': '#1f77b4',
  'range-serializable': '#2ca02c',
};

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function num(n: number): string {
  return Number.isFinite(n) ? String(Math.round(n * 10) / 10) : '0';
}

/** Round-number ticks from 0 to at least max. */
function linearTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / 5;
  const pow = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s >= rough) ?? 10 * pow;
  const ticks: number[] = [];
  for (let t = 0; t < max + step - 1e-9; t += step) ticks.push(t);
  return ticks;
}

/** Powers of ten covering [min, max]. */
function logTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(min > 0 ? min : 0.01));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(max > 0 ? max : 1)));
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e++) ticks.push(10 ** e);
  return ticks;
}

function tickLabel(v: number): string {
  if (v >= 1e6) return `${v / 1e6}M`;
  if (v >= 1e3) return `${v / 1e3}k`;
  return String(Number(v.toPrecision(3)));
}

interface Series {
  caseName: CaseName;
  system: 'skiff' | 'etcd';
  points: { clients: number; value: number }[];
}

function panel(
  x0: number,
  y0: number,
  title: string,
  yLabel: string,
  series: Series[],
  clientLevels: number[],
  yScale: 'linear' | 'log',
): string {
  const w = panelWidth - margin.left - margin.right;
  const h = panelHeight - margin.top - margin.bottom;
  const px = x0 + margin.left;
  const py = y0 + margin.top;
  const values = series.flatMap((s) => s.points.map((p) => p.value)).filter((v) => Number.isFinite(v) && v > 0);
  const vmax = values.length ? Math.max(...values) : 1;
  const vmin = values.length ? Math.min(...values) : 1;
  const yTicks = yScale === 'linear' ? linearTicks(vmax) : logTicks(vmin, vmax);
  const yLo = yScale === 'linear' ? 0 : yTicks[0];
  const yHi = yTicks[yTicks.length - 1];
  const yOf = (v: number): number => {
    const f = yScale === 'linear' ? (v - yLo) / (yHi - yLo) : (Math.log10(v) - Math.log10(yLo)) / (Math.log10(yHi) - Math.log10(yLo));
    return py + h - f * h;
  };
  const lx = clientLevels.map((c) => Math.log2(c));
  const xLo = Math.min(...lx);
  const xHi = Math.max(...lx);
  const xOf = (c: number): number => px + (xHi === xLo ? w / 2 : ((Math.log2(c) - xLo) / (xHi - xLo)) * w);

  const out: string[] = [];
  out.push(`<text x="${num(px + w / 2)}" y="${num(y0 + 20)}" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`);
  for (const t of yTicks) {
    const y = yOf(t);
    out.push(`<line x1="${num(px)}" y1="${num(y)}" x2="${num(px + w)}" y2="${num(y)}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${num(px - 6)}" y="${num(y + 4)}" text-anchor="end" font-size="11">${tickLabel(t)}</text>`);
  }
  for (const c of clientLevels) {
    const x = xOf(c);
    out.push(`<line x1="${num(x)}" y1="${num(py)}" x2="${num(x)}" y2="${num(py + h)}" stroke="#f0f0f0"/>`);
    out.push(`<text x="${num(x)}" y="${num(py + h + 16)}" text-anchor="middle" font-size="11">${c}</text>`);
  }
  out.push(`<rect x="${num(px)}" y="${num(py)}" width="${num(w)}" height="${num(h)}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${num(px + w / 2)}" y="${num(py + h + 34)}" text-anchor="middle" font-size="12">concurrent clients (8 connections)</text>`);
  out.push(`<text transform="translate(${num(x0 + 16)},${num(py + h / 2)}) rotate(-90)" text-anchor="middle" font-size="12">${esc(yLabel)}</text>`);
  for (const s of series) {
    const pts = s.points.filter((p) => Number.isFinite(p.value) && p.value > 0);
    if (pts.length === 0) continue;
    const colour = colours[s.caseName] ?? '#555';
    const d = pts.map((p, i) => `${i === 0 ? 'M' : 'L'}${num(xOf(p.clients))},${num(yOf(p.value))}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="2"${s.system === 'etcd' ? ' stroke-dasharray="6,4"' : ''}/>`);
    for (const p of pts) {
      const x = xOf(p.clients);
      const y = yOf(p.value);
      out.push(
        s.system === 'skiff'
          ? `<circle cx="${num(x)}" cy="${num(y)}" r="4" fill="${colour}"><title>skiff ${s.caseName} ${p.clients} clients: ${p.value.toPrecision(4)}</title></circle>`
          : `<rect x="${num(x - 4)}" y="${num(y - 4)}" width="8" height="8" fill="white" stroke="${colour}" stroke-width="2"><title>etcd ${s.caseName} ${p.clients} clients: ${p.value.toPrecision(4)}</title></rect>`,
      );
    }
  }
  return out.join('\n');
}

export function renderChart(r: BenchResult): string {
  const charted = r.cases.filter((c) => colours[c.case] !== undefined);
  const caseNames = [...new Set(charted.map((c) => c.case))];
  const clientLevels = [...new Set(charted.map((c) => c.clients))].sort((a, b) => a - b);
  const series = (get: (c: CaseResult, s: 'skiff' | 'etcd') => number): Series[] =>
    caseNames.flatMap((name) =>
      (['skiff', 'etcd'] as const).map((system) => ({
        caseName: name,
        system,
        points: charted
          .filter((c) => c.case === name)
          .sort((a, b) => a.clients - b.clients)
          .map((c) => ({ clients: c.clients, value: get(c, system) })),
      })),
    );
  const width = 2 * panelWidth;
  const height = titleHeight + panelHeight + legendHeight;
  const m = r.machine;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`);
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(`<text x="${width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">skiff ${esc(m.skiffVersion)} vs etcd ${esc(m.etcdVersion)}: 3 members on 127.0.0.1</text>`);
  out.push(
    `<text x="${width / 2}" y="37" text-anchor="middle" font-size="11" fill="#555">${esc(`${r.mode} run, ${r.runs} run(s), ${r.date.slice(0, 10)}; ${m.cores} cores ${m.cpuModel}; Node ${m.node}; skiff ${m.skiffCommit.slice(0, 7)}${m.skiffDirty ? '+dirty' : ''}`)}</text>`,
  );
  if (charted.length === 0) {
    out.push(`<text x="${width / 2}" y="${titleHeight + panelHeight / 2}" text-anchor="middle" font-size="13">no put or range results in this run</text>`);
  } else {
    out.push(panel(0, titleHeight, 'Throughput', 'operations per second', series((c, s) => c[s].throughputOpsPerSec), clientLevels, 'linear'));
    out.push(panel(panelWidth, titleHeight, 'Latency p99', 'milliseconds (log scale)', series((c, s) => c[s].latencyMsP99), clientLevels, 'log'));
  }
  // Legend: one entry per workload (colour), then the two line styles.
  let lx = 40;
  const ly = titleHeight + panelHeight + 24;
  for (const name of caseNames) {
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${colours[name]}" stroke-width="3"/>`);
    out.push(`<text x="${lx + 30}" y="${ly + 4}" font-size="12">${esc(name)}</text>`);
    lx += 60 + name.length * 7;
  }
  out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="#333" stroke-width="2"/><circle cx="${lx + 12}" cy="${ly}" r="4" fill="#333"/>`);
  out.push(`<text x="${lx + 30}" y="${ly + 4}" font-size="12">skiff</text>`);
  lx += 80;
  out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="#333" stroke-width="2" stroke-dasharray="6,4"/><rect x="${lx + 8}" y="${ly - 4}" width="8" height="8" fill="white" stroke="#333" stroke-width="2"/>`);
  out.push(`<text x="${lx + 30}" y="${ly + 4}" font-size="12">etcd</text>`);
  out.push(`<text x="40" y="${ly + 26}" font-size="11" fill="#555">256-byte values; put: ${r.params.putSequentialKeys ? 'sequential' : 'random'} keys in a ${r.params.putKeySpaceSize}-key space; range: one key. Medians of the runs.</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
