// The seeded CI run: a few hundred seeds on 3 and on 5 nodes must pass every safety check and
// the liveness phase. A failure prints the seed; `npm run sim -- --seed S --nodes N` replays it.

import { SimResult, failureLines, runSeed, simMain } from '../../src/raft/sim';
import { parseSimArgs } from '../../src/raft/sim/main';

const seedsPerSize = Number(process.env.SKIFF_SIM_SEEDS ?? 300);

function runSeeds(nodes: 3 | 5, count: number): { failures: string[]; results: SimResult[] } {
  const failures: string[] = [];
  const results: SimResult[] = [];
  for (let seed = 1; seed <= count; seed++) {
    const r = runSeed({ seed, nodes });
    results.push({ ...r, trace: undefined });
    failures.push(...failureLines(r));
  }
  return { failures, results };
}

describe('seeded simulation', () => {
  test.each([3, 5] as const)(`${seedsPerSize} seeds on %i nodes: no violation, no liveness failure`, (nodes) => {
    const { failures, results } = runSeeds(nodes, seedsPerSize);
    expect(failures).toEqual([]);
    // The runs did exercise what they should.
    const sum = (f: (r: SimResult) => number): number => results.reduce((n, r) => n + f(r), 0);
    expect(sum((r) => r.leaderTerms)).toBeGreaterThan(seedsPerSize * 3);
    expect(sum((r) => r.crashes)).toBeGreaterThan(seedsPerSize);
    expect(sum((r) => r.partitions)).toBeGreaterThan(seedsPerSize);
    expect(sum((r) => r.confChangesApplied)).toBeGreaterThan(seedsPerSize);
    expect(sum((r) => r.confChangesBackToBack)).toBeGreaterThan(seedsPerSize / 10);
    expect(sum((r) => r.reads)).toBeGreaterThan(seedsPerSize * 10);
    expect(sum((r) => r.historyLength)).toBeGreaterThan(seedsPerSize * 50);
  });
});

describe('simMain', () => {
  test('prints a summary and, with json, ends with the JSON line', () => {
    const lines: string[] = [];
    const code = simMain({ seeds: 3, seed: 5, nodes: 3, json: true, print: (l) => lines.push(l) });
    expect(code).toBe(0);
    const last = JSON.parse(lines[lines.length - 1]);
    expect(Object.keys(last)).toEqual(['seeds', 'violations', 'liveness_failures', 'steps']);
    expect(last.seeds).toBe(3);
    expect(last.violations).toBe(0);
    expect(last.liveness_failures).toBe(0);
    const steps = [5, 6, 7].reduce((n, seed) => n + runSeed({ seed, nodes: 3 }).steps, 0);
    expect(last.steps).toBe(steps);
  });

  test('command line: --seed alone replays one seed', () => {
    expect(parseSimArgs(['--seed', '17', '--nodes', '5'])).toEqual({ seed: 17, seeds: 1, nodes: 5, json: false });
    expect(parseSimArgs(['--seeds=2000', '--json'])).toMatchObject({ seeds: 2000, nodes: 3, json: true });
    expect(() => parseSimArgs(['--nodes', '4'])).toThrow();
  });
});
