// Cutting a non-linearizable history of one object down to a small failing part that still
// proves the violation.
//
// A window of operations, with the ops that straddle its bounds as optional ones (see
// closedWindow), is linearizable from *some* state whenever the whole history is. So a
// window that fails from the unknown start state is a witness of the violation. Removing
// read-only ops (reads, failed compare-and-swaps) from a witness keeps it a witness.

import { checkOperations, Model, Operation } from './linearizability';

export interface MinimizeOptions<S, I, O> {
  model: Model<S, I, O>;
  /** A state the model accepts anything from (the start of a window). */
  unknownState: S;
  /** Ops that may be dropped from a witness (read-only ones). */
  removable(op: Operation<I, O>): boolean;
  /** Stop shrinking at this performance.now() time (the witness found so far is kept). */
  deadlineMs: number;
  /** Ops in a window up to which single read-only ops are tried for removal. */
  greedyOpsMax?: number;
}

export interface Witness<S, I, O> {
  ops: Operation<I, O>[];
  /** The state the witness starts in: the model's initial state or the unknown state. */
  start: 'initial' | 'unknown';
  initState: S;
}

/**
 * The window of ops[s..e] (ops sorted by call time) with what it needs to be checked alone
 * from an unknown start state. Let [lo, hi] be the span from the first call to the last
 * return of its ops with a known outcome. Every other op with a known outcome either lies
 * wholly outside [lo, hi], and then the whole history's linearization puts it before or
 * after all of the window's known-outcome ops (it folds into the start state, or changes
 * nothing the window observed), or straddles a bound, and then it comes in as an optional
 * op: it took effect inside the window or it is left out. Ops of unknown outcome called by
 * hi come in too (they may take effect inside it; one placed before the window's first
 * known-outcome op can go to the very end instead, since the model accepts it in every
 * state).
 */
export function closedWindow<I, O>(ops: readonly Operation<I, O>[], s: number, e: number): Operation<I, O>[] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = s; i <= e; i++) {
    if (ops[i].returnMs === Infinity) continue;
    lo = Math.min(lo, ops[i].callMs);
    hi = Math.max(hi, ops[i].returnMs);
  }
  if (lo === Infinity) return ops.slice(s, e + 1);
  const out: Operation<I, O>[] = [];
  for (let i = 0; i < ops.length && ops[i].callMs <= hi; i++) {
    const op = ops[i];
    if (i >= s && i <= e) out.push(op);
    else if (op.returnMs >= lo) out.push(op.optional === true || op.returnMs === Infinity ? op : { ...op, optional: true });
  }
  return out;
}

/**
 * The smallest failing closed window it finds in a failing history (the whole history if
 * nothing smaller fails). start: the state the history starts in ('unknown' for a history
 * that is itself a window of a longer one).
 */
export function minimalFailingWindow<S, I, O>(history: readonly Operation<I, O>[], o: MinimizeOptions<S, I, O> & { start?: 'initial' | 'unknown' }): Witness<S, I, O> {
  const ops = [...history].sort((a, b) => a.callMs - b.callMs);
  const n = ops.length;
  const fails = (set: Operation<I, O>[], initState: S): boolean => {
    const r = checkOperations(o.model, set, { initState, deadlineMs: o.deadlineMs });
    return r.verdict === 'illegal';
  };
  const closure = (s: number, e: number): Operation<I, O>[] => closedWindow(ops, s, e);
  const startKind = o.start ?? 'initial';
  const init = startKind === 'initial' ? o.model.init() : o.unknownState;
  let best: Witness<S, I, O> = { ops, start: startKind, initState: init };
  if (n === 0 || performance.now() > o.deadlineMs) return best;

  // The shortest failing prefix (by call order) from the start state.
  let lo = 0;
  let hi = n - 1;
  while (lo < hi && performance.now() < o.deadlineMs) {
    const mid = (lo + hi) >> 1;
    if (fails(closure(0, mid), init)) hi = mid;
    else lo = mid + 1;
  }
  const end = lo;
  const prefix = closure(0, end);
  if (!fails(prefix, init)) return best;
  best = { ops: prefix, start: startKind, initState: init };

  // The latest start that still fails from the unknown state.
  if (fails(prefix, o.unknownState)) {
    let s0 = 0;
    let s1 = end;
    while (s0 < s1 && performance.now() < o.deadlineMs) {
      const mid = (s0 + s1 + 1) >> 1;
      if (fails(closure(mid, end), o.unknownState)) s0 = mid;
      else s1 = mid - 1;
    }
    const window = closure(s0, end);
    if (fails(window, o.unknownState)) best = { ops: window, start: 'unknown', initState: o.unknownState };
  }

  // Drop read-only ops one at a time while it still fails.
  if (best.ops.length <= (o.greedyOpsMax ?? 400)) {
    let cur = best.ops;
    for (let i = cur.length - 1; i >= 0 && performance.now() < o.deadlineMs; i--) {
      if (!o.removable(cur[i])) continue;
      const without = cur.slice(0, i).concat(cur.slice(i + 1));
      if (fails(without, best.initState)) cur = without;
    }
    best = { ...best, ops: cur };
  }
  return best;
}
