// The register checker: linearizability of every key's history (checked key by key, which
// is enough: linearizability is compositional), plus revision consistency (a value is
// always read with the mod_revision its write was acknowledged with).

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RegisterOp } from './history';
import { checkOperations, Operation, Verdict } from './linearizability';
import { closedWindow, minimalFailingWindow } from './minimize';
import { ABSENT, isReadOnly, RegisterInput, registerModel, RegisterOutput, UNKNOWN_STATE } from './register-model';

export type RegisterOperation = Operation<RegisterInput, RegisterOutput> & { ref: RegisterOp };

export interface KeyResult {
  key: string;
  ops: number;
  verdict: Verdict;
  configurations: number;
  elapsedMs: number;
  reason?: string;
  /** The file with the smallest failing sub-history found. */
  witnessFile?: string;
  witnessOps?: number;
}

export interface RegisterReport {
  ok: boolean;
  ops: number;
  /** Unknown-outcome writes left out: the final history shows they never took effect, or no op ever observed their value. */
  droppedUnapplied: number;
  /** Unknown-outcome writes kept (they may take effect at any point after their call). */
  unknownKept: number;
  /** Unknown-outcome writes whose value an op observed: they took effect before that op returned. */
  resolved: number;
  keys: KeyResult[];
  /** Revision anomalies (a value read with two different mod_revisions, say). */
  anomalies: string[];
}

export interface RegisterCheckOptions {
  /**
   * Whether the value was ever written to the key according to the final history (true,
   * false), or undefined when that history is not known. An unknown-outcome write the
   * history does not hold never took effect and is left out.
   */
  applied?: (key: string, value: string) => boolean | undefined;
  /** Time budget for each key's search. */
  keyBudgetMs?: number;
  /** Where to write witness files (none written without it). */
  outDir?: string;
  /** Time origin for printing. */
  originMs?: number;
}

/** Turns a key's records into model operations (values interned to integers). */
export function toOperations(ops: readonly RegisterOp[], applied?: RegisterCheckOptions['applied']): { operations: RegisterOperation[]; dropped: number; unknownKept: number; resolved: number; names: string[] } {
  const ids = new Map<string, number>();
  const names: string[] = [];
  const intern = (v: string | null | undefined): number => {
    if (v === null || v === undefined) return ABSENT;
    let id = ids.get(v);
    if (id === undefined) {
      id = names.length;
      names.push(v);
      ids.set(v, id);
    }
    return id;
  };
  const out: RegisterOperation[] = [];
  let dropped = 0;
  for (const op of ops) {
    const unknown = op.status === 'unknown';
    if (unknown && op.f === 'read') continue;
    if (unknown && op.value !== undefined && applied?.(op.key, op.value) === false) {
      dropped++;
      continue;
    }
    const callMs = op.invokeMs;
    const returnMs = unknown ? Infinity : op.completeMs;
    let input: RegisterInput;
    let output: RegisterOutput | undefined;
    switch (op.f) {
      case 'read':
        input = { f: 'read' };
        output = { f: 'read', value: intern(op.readValue) };
        break;
      case 'write':
        input = { f: 'write', value: intern(op.value) };
        output = unknown ? undefined : { f: 'write' };
        break;
      case 'cas':
        input = { f: 'cas', expected: intern(op.expected), value: intern(op.value) };
        if (unknown) output = undefined;
        else if (op.casOk) output = { f: 'cas', ok: true };
        else output = op.readValue !== undefined ? { f: 'cas', ok: false, observed: intern(op.readValue) } : { f: 'cas', ok: false };
        break;
    }
    out.push({ client: op.client, input, output, callMs, returnMs, ref: op });
  }
  // An unknown-outcome write whose value no op ever observes (no read returns it, no cas
  // expects it or reads it) changes nothing anyone saw: in any linearization it is
  // overwritten before the state is looked at again, so it can as well never happen. (This
  // needs every failed cas to say what it read: "state != expected" alone is something an
  // unobserved value could make true.) Left in, such writes multiply the configurations a
  // search must go through: any subset of them could be the ones already "used up".
  const observed = new Set<number>();
  let blindFailures = false;
  for (const op of out) {
    if (op.output?.f === 'read') observed.add(op.output.value);
    if (op.input.f === 'cas') observed.add(op.input.expected);
    if (op.output?.f === 'cas' && !op.output.ok) {
      if (op.output.observed === undefined) blindFailures = true;
      else observed.add(op.output.observed);
    }
  }
  // An unknown-outcome write whose value some op observed did take effect (no other op
  // writes that value), and before that op returned: it becomes an op of known outcome
  // that returned then.
  const observedByMs = new Map<number, number>();
  const noteObserved = (value: number, ms: number): void => {
    if (value !== ABSENT) observedByMs.set(value, Math.min(ms, observedByMs.get(value) ?? Infinity));
  };
  for (const op of out) {
    if (op.returnMs === Infinity || op.output === undefined) continue;
    if (op.output.f === 'read') noteObserved(op.output.value, op.returnMs);
    if (op.output.f === 'cas' && op.output.ok && op.input.f === 'cas') noteObserved(op.input.expected, op.returnMs);
    if (op.output.f === 'cas' && !op.output.ok && op.output.observed !== undefined) noteObserved(op.output.observed, op.returnMs);
  }
  let unknownKept = 0;
  let resolved = 0;
  const kept: RegisterOperation[] = [];
  for (const op of out) {
    if (op.returnMs !== Infinity || op.input.f === 'read') {
      kept.push(op);
      continue;
    }
    const written = op.input.value;
    if (!blindFailures && !observed.has(written)) {
      dropped++;
      continue;
    }
    const byMs = observedByMs.get(written);
    if (byMs !== undefined && byMs >= op.callMs) {
      resolved++;
      kept.push({ ...op, returnMs: byMs, output: op.input.f === 'cas' ? { f: 'cas', ok: true } : { f: 'write' } });
      continue;
    }
    unknownKept++;
    kept.push(op);
  }
  return { operations: kept, dropped, unknownKept, resolved, names };
}

/** Values read with a mod_revision other than the one their write was acknowledged with. */
export function revisionAnomalies(ops: readonly RegisterOp[]): string[] {
  const anomalies: string[] = [];
  const revOf = new Map<string, { rev: number; how: string }>();
  const note = (key: string, value: string | null | undefined, rev: number | undefined, how: string): void => {
    if (rev === undefined || value === undefined) return;
    if (value === null) {
      if (rev !== 0) anomalies.push(`${key}: absent key read with mod_revision ${rev} (${how})`);
      return;
    }
    const k = `${key}\u0000${value}`;
    const seen = revOf.get(k);
    if (seen === undefined) revOf.set(k, { rev, how });
    else if (seen.rev !== rev) anomalies.push(`${key}: value ${value} has mod_revision ${seen.rev} (${seen.how}) and ${rev} (${how})`);
  };
  for (const op of ops) {
    if (op.status !== 'ok') continue;
    if ((op.f === 'write' || (op.f === 'cas' && op.casOk)) && op.rev !== undefined) note(op.key, op.value, op.rev, `acknowledged ${op.f} by client ${op.client}`);
    if (op.readValue !== undefined) note(op.key, op.readValue, op.readModRev, `read by client ${op.client}`);
  }
  return anomalies;
}

export const registerCheckLimits = Object.freeze({
  /** Keys with more ops than this are first checked window by window (a cheap, sound way to find local violations). */
  windowedFromOps: 400,
  windowOps: 200,
  windowStrideOps: 100,
  windowBudgetMs: 2000,
});

interface KeyVerdict {
  verdict: Verdict;
  configurations: number;
  reason?: string;
  /** A failing history: the whole one, or a closed window of it (start unknown). */
  failing: RegisterOperation[];
  start: 'initial' | 'unknown';
}

/**
 * One key: first closed windows from an unknown start state (any that fails proves a
 * violation, and the search on a failing whole history can take long: it must exhaust
 * every linearization of what comes before), then the whole history.
 */
function checkKey(operations: RegisterOperation[], deadlineMs: number): KeyVerdict {
  const sorted = [...operations].sort((a, b) => a.callMs - b.callMs);
  const l = registerCheckLimits;
  let configurations = 0;
  if (sorted.length > l.windowedFromOps) {
    for (let s = 0; s < sorted.length; s += l.windowStrideOps) {
      const window = closedWindow(sorted, s, Math.min(sorted.length - 1, s + l.windowOps - 1)) as RegisterOperation[];
      const r = checkOperations(registerModel, window, { initState: UNKNOWN_STATE, deadlineMs: Math.min(deadlineMs, performance.now() + l.windowBudgetMs) });
      configurations += r.configurations;
      if (r.verdict === 'illegal') return { verdict: 'illegal', configurations, failing: window, start: 'unknown' };
      if (performance.now() > deadlineMs) break;
    }
  }
  const r = checkOperations(registerModel, sorted, { deadlineMs });
  return { verdict: r.verdict, configurations: configurations + r.configurations, ...(r.reason ? { reason: r.reason } : {}), failing: sorted, start: 'initial' };
}

export function checkRegisters(all: readonly RegisterOp[], o: RegisterCheckOptions = {}): RegisterReport {
  const byKey = new Map<string, RegisterOp[]>();
  for (const op of all) {
    let list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, (list = []));
    list.push(op);
  }
  const report: RegisterReport = { ok: true, ops: 0, droppedUnapplied: 0, unknownKept: 0, resolved: 0, keys: [], anomalies: revisionAnomalies(all) };
  if (report.anomalies.length > 0) report.ok = false;
  for (const [key, ops] of [...byKey].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const { operations, dropped, unknownKept, resolved } = toOperations(ops, o.applied);
    report.resolved += resolved;
    report.ops += operations.length;
    report.droppedUnapplied += dropped;
    report.unknownKept += unknownKept;
    const started = performance.now();
    const budgetMs = o.keyBudgetMs ?? 120_000;
    const found = checkKey(operations, started + budgetMs);
    const result: KeyResult = { key, ops: operations.length, verdict: found.verdict, configurations: found.configurations, elapsedMs: performance.now() - started, ...(found.reason ? { reason: found.reason } : {}) };
    if (found.verdict !== 'ok') report.ok = false;
    if (found.verdict === 'illegal') {
      const witness = minimalFailingWindow(found.failing, {
        model: registerModel,
        unknownState: UNKNOWN_STATE,
        removable: (op) => isReadOnly(op.input, op.output),
        deadlineMs: performance.now() + Math.min(60_000, budgetMs),
        start: found.start,
      });
      result.witnessOps = witness.ops.length;
      if (o.outDir !== undefined) {
        result.witnessFile = writeWitness(o.outDir, key, witness.ops as RegisterOperation[], witness.start, o.originMs ?? 0, ops);
      }
    }
    report.keys.push(result);
  }
  return report;
}

/** Renders one op of a witness as a line: client, interval, what it did and saw. */
export function describeOp(op: RegisterOp, originMs: number): string {
  const t = (ms: number): string => (ms === Infinity ? '?' : ((ms - originMs) / 1000).toFixed(4));
  const v = (x: string | null | undefined): string => (x === null ? '<absent>' : x === undefined ? '?' : JSON.stringify(x));
  const interval = `[${t(op.invokeMs)}, ${op.status === 'unknown' ? '?' : t(op.completeMs)}]`;
  let what: string;
  switch (op.f) {
    case 'read':
      what = `read -> ${v(op.readValue)} (mod_revision ${op.readModRev ?? '?'})`;
      break;
    case 'write':
      what = `write ${v(op.value)} -> ${op.status === 'unknown' ? `unknown (${op.error ?? ''})` : `ok at revision ${op.rev}`}`;
      break;
    case 'cas':
      what = `cas ${v(op.expected)} (mod_revision ${op.expectedRev}) -> ${v(op.value)}: ${
        op.status === 'unknown' ? `unknown (${op.error ?? ''})` : op.casOk ? `ok at revision ${op.rev}` : `failed, read ${v(op.readValue)} (mod_revision ${op.readModRev ?? '?'})`
      }`;
      break;
  }
  return `client ${String(op.client).padStart(3)} member ${op.member} ${interval.padEnd(24)} ${what}`;
}

/** The ops that wrote the values a witness mentions (and are not in it). */
function witnessContext(witness: readonly RegisterOperation[], keyOps: readonly RegisterOp[]): RegisterOp[] {
  const values = new Set<string>();
  for (const op of witness) for (const v of [op.ref.value, op.ref.expected, op.ref.readValue]) if (typeof v === 'string') values.add(v);
  const inWitness = new Set(witness.map((op) => op.ref));
  return keyOps.filter((op) => !inWitness.has(op) && op.value !== undefined && values.has(op.value) && (op.f === 'write' || op.casOk === true || op.status === 'unknown'));
}

function writeWitness(outDir: string, key: string, ops: RegisterOperation[], start: 'initial' | 'unknown', originMs: number, keyOps: readonly RegisterOp[]): string {
  fs.mkdirSync(outDir, { recursive: true });
  const safe = key.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^_+/, '');
  const file = path.join(outDir, `nonlinearizable-${safe}.txt`);
  const sorted = [...ops].sort((a, b) => a.callMs - b.callMs);
  const lines = [
    `# key ${key}: ${sorted.length} operations that have no linearization`,
    `# start state: ${start === 'initial' ? 'the key does not exist (start of the run)' : 'any value (a window cut from the run; every op outside it is wholly before or after it)'}`,
    `# times: seconds since the run started; '?' = no answer (may have taken effect at any point after its call, or never)`,
    ...sorted.map((op) => (op.optional === true ? '(straddles the window: may have taken effect outside it) ' : '') + describeOp(op.ref, originMs)),
    '',
    '# context, not part of the witness: the writes of the values it mentions',
    ...witnessContext(sorted, keyOps).map((op) => `#   ${describeOp(op, originMs)}`),
    '',
    '# as JSON, one op per line',
    ...sorted.map((op) => JSON.stringify(op.ref)),
    '',
  ];
  fs.writeFileSync(file, lines.join('\n'));
  return file;
}
