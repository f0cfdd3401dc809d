// The simulator's public face: run one seed (for tests), or a range of seeds (for the CLI:
// `npm run sim -- --seeds 2000 --nodes 5`, `skiff sim`).

import { SimResult, runSeed } from './simulation';

export { SafetyChecker, arrayLogView, confStateMembers } from './checker';
export type { CheckerClock, InvariantName, LogView, Violation } from './checker';
export type { SimParams } from './params';
export { runSeed, Simulation } from './simulation';
export type { RunOptions, SimResult } from './simulation';

export interface SimMainOptions {
  /** How many seeds to run, starting at `seed` (default 1). */
  seeds: number;
  seed?: number;
  nodes: 3 | 5;
  /** Make the last line printed `{"seeds":N,"violations":V,"liveness_failures":L,"steps":S}`. */
  json: boolean;
  /** Print every event of every seed to stderr (meant for one seed). Also: SKIFF_SIM_TRACE=1. */
  trace?: boolean;
  /**
   * Stop at the first failing seed (the mutation script hunts for one); 'checker': at the
   * first seed failing one of the simulator's own invariants (not a core exception or liveness).
   */
  untilFailure?: boolean | 'checker';
  /** Where lines go; console.log by default. */
  print?: (line: string) => void;
}

export interface SimSummary {
  seeds: number;
  violations: number;
  liveness_failures: number;
  steps: number;
}

/** Runs the seeds, prints one line per failing seed and a summary; returns the exit code. */
export function simMain(opts: SimMainOptions): number {
  const print = opts.print ?? ((line: string) => console.log(line));
  const first = opts.seed ?? 1;
  const trace = opts.trace ?? process.env.SKIFF_SIM_TRACE === '1';
  const summary: SimSummary = { seeds: 0, violations: 0, liveness_failures: 0, steps: 0 };
  let historyLength = 0;
  let leaderTerms = 0;
  for (let seed = first; seed < first + opts.seeds; seed++) {
    const result = runSeed({
      seed,
      nodes: opts.nodes,
      verbose: trace,
      traceSink: trace ? (line) => process.stderr.write(`${line}\n`) : undefined,
    });
    summary.seeds++;
    summary.steps += result.steps;
    historyLength += result.historyLength;
    leaderTerms += result.leaderTerms;
    if (result.violation !== undefined) summary.violations++;
    if (result.livenessFailure !== undefined) summary.liveness_failures++;
    for (const line of failureLines(result)) print(line);
    if (opts.untilFailure === true && !result.ok) break;
    if (opts.untilFailure === 'checker' && result.violation !== undefined && result.violation.invariant !== 'core-exception') break;
  }
  print(
    `sim: ${summary.seeds} seeds from ${first} on ${opts.nodes} nodes: ${summary.violations} with a safety violation, ` +
      `${summary.liveness_failures} with a liveness failure; ${summary.steps} steps, ${historyLength} entries applied, ${leaderTerms} elected terms`,
  );
  if (opts.json) print(JSON.stringify(summary));
  return summary.violations === 0 && summary.liveness_failures === 0 ? 0 : 1;
}

export function failureLines(result: SimResult): string[] {
  const lines: string[] = [];
  for (const v of [result.violation, result.livenessFailure]) {
    if (v === undefined) continue;
    lines.push(
      `FAIL seed=${v.seed} nodes=${result.nodes} invariant=${v.invariant} step=${v.step} tick=${v.tick}: ${v.detail}` +
        ` (replay: npm run sim -- --seed ${v.seed} --nodes ${result.nodes})`,
    );
  }
  return lines;
}
