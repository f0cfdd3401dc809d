// Linearizability checking in the manner of Porcupine (anishathalye/porcupine, after Wing &
// Gong and Lowe): the history of one object is a list of operations with call and return
// times; a depth-first search linearizes, at each step, one operation whose call comes
// before the earliest pending return and that the sequential model allows; it backtracks
// when it reaches a return it cannot get past, and remembers every (linearized set, state)
// it has seen so that no configuration is explored twice.
//
// An operation whose outcome is unknown (a timeout, a connection lost after the request
// went out) has returnMs = Infinity and output undefined: it may take effect at any point
// after its call, or never (it is then linearized after everything else, where it changes
// nothing that anyone observed).
//
// P-compositionality (linearizability is local: a history is linearizable iff each
// object's sub-history is) is the caller's: partition by key and check each part.

export interface Model<S, I, O> {
  init(): S;
  /** The state after applying input with output to state, or undefined if not allowed. Output undefined: outcome unknown. */
  step(state: S, input: I, output: O | undefined): S | undefined;
  /** A key equal for equal states (memoization). */
  stateKey(state: S): string | number;
}

export interface Operation<I, O> {
  client: number;
  input: I;
  /** undefined when the outcome is unknown. */
  output: O | undefined;
  callMs: number;
  /** Infinity when the outcome is unknown. */
  returnMs: number;
  /**
   * May also be left out altogether (a window's ops that straddle its bounds: they may have
   * taken effect outside it). Left out, it changes nothing.
   */
  optional?: boolean;
}

export type Verdict = 'ok' | 'illegal' | 'unknown';

export interface CheckResult {
  verdict: Verdict;
  /** Configurations memoized (a measure of the search's work). */
  configurations: number;
  /** The most operations linearized at once before the search gave up (illegal) or finished. */
  longestLinearized: number;
  /** Why the verdict is unknown. */
  reason?: string;
}

export interface CheckOptions<S> {
  /** Start from this state instead of model.init(). */
  initState?: S;
  /** Give up (verdict unknown) at this performance.now() time. */
  deadlineMs?: number;
  /** Give up when this many configurations are memoized. */
  configurationsMax?: number;
  /** Try ops of unknown outcome only after those of known outcome at each step. */
  deferUnknown?: boolean;
}

export const linearizabilityLimits = Object.freeze({
  /** Memoized configurations of one search before it gives up (about 100 bytes each). */
  configurationsMax: 10_000_000,
  /** Search steps between two looks at the clock. */
  stepsPerDeadlineCheck: 4096,
});

/**
 * Checks one object's history. Operations may come in any order; they are sorted by call
 * time (ties: calls before returns, so that touching intervals count as concurrent).
 */
export function checkOperations<S, I, O>(model: Model<S, I, O>, history: readonly Operation<I, O>[], options: CheckOptions<S> = {}): CheckResult {
  const ops = [...history].sort((a, b) => a.callMs - b.callMs);
  const n = ops.length;
  if (n === 0) return { verdict: 'ok', configurations: 0, longestLinearized: 0 };
  for (const op of ops) {
    if (!(op.returnMs >= op.callMs)) throw new Error(`assertion failed: operation returns (${op.returnMs}) before its call (${op.callMs})`);
  }

  // Entries: 0 is the head sentinel; 1 + 2i is op i's call, 2 + 2i its return.
  const events: { t: number; entry: number }[] = [];
  for (let i = 0; i < n; i++) {
    events.push({ t: ops[i].callMs, entry: 1 + 2 * i });
    events.push({ t: ops[i].returnMs, entry: 2 + 2 * i });
  }
  const isCall = (e: number): boolean => e % 2 === 1;
  events.sort((a, b) => a.t - b.t || (isCall(a.entry) ? 0 : 1) - (isCall(b.entry) ? 0 : 1) || a.entry - b.entry);
  const size = 2 * n + 1;
  const next = new Int32Array(size).fill(-1);
  const prev = new Int32Array(size).fill(-1);
  let last = 0;
  for (const ev of events) {
    next[last] = ev.entry;
    prev[ev.entry] = last;
    last = ev.entry;
  }
  const opOf = (e: number): number => (e - 1) >> 1;
  const returnOf = (callEntry: number): number => callEntry + 1;

  const lift = (callEntry: number): void => {
    const r = returnOf(callEntry);
    next[prev[callEntry]] = next[callEntry];
    if (next[callEntry] !== -1) prev[next[callEntry]] = prev[callEntry];
    next[prev[r]] = next[r];
    if (next[r] !== -1) prev[next[r]] = prev[r];
  };
  const unlift = (callEntry: number): void => {
    const r = returnOf(callEntry);
    if (next[r] !== -1) prev[next[r]] = r;
    next[prev[r]] = r;
    if (next[callEntry] !== -1) prev[next[callEntry]] = callEntry;
    next[prev[callEntry]] = callEntry;
  };

  // The linearized set, canonically: every op before `low` (in call order) that has a
  // return time is linearized; `extra` lists the linearized ones from `low` on (few: each
  // was called before op low's return); unknown-outcome ops are listed apart, since they
  // may stay unlinearized until the end.
  const linearized = new Uint8Array(n);
  const unknownOutcome = new Uint8Array(n);
  for (let i = 0; i < n; i++) unknownOutcome[i] = ops[i].returnMs === Infinity ? 1 : 0;
  let low = 0;
  const advanceLow = (): void => {
    while (low < n && (linearized[low] === 1 || unknownOutcome[low] === 1)) low++;
  };
  advanceLow();
  const unknownLinearized: number[] = [];
  const setKey = (stateKey: string | number): string => {
    let k = `${stateKey}|${low}`;
    if (low < n) {
      const until = ops[low].returnMs;
      for (let i = low + 1; i < n && ops[i].callMs <= until; i++) if (linearized[i] === 1 && unknownOutcome[i] === 0) k += `,${i}`;
    }
    if (unknownLinearized.length > 0) k += `|${unknownLinearized.join(',')}`;
    return k;
  };
  const mark = (i: number): void => {
    linearized[i] = 1;
    if (unknownOutcome[i] === 1) {
      let j = unknownLinearized.length;
      unknownLinearized.push(i);
      while (j > 0 && unknownLinearized[j - 1] > i) {
        unknownLinearized[j] = unknownLinearized[j - 1];
        j--;
      }
      unknownLinearized[j] = i;
    } else if (i === low) advanceLow();
  };
  const unmark = (i: number): void => {
    linearized[i] = 0;
    if (unknownOutcome[i] === 1) {
      const j = unknownLinearized.indexOf(i);
      unknownLinearized.splice(j, 1);
    } else if (i < low) low = i;
  };

  const seen = new Set<string>();
  const configurationsMax = options.configurationsMax ?? linearizabilityLimits.configurationsMax;
  const stackEntry: number[] = [];
  const stackState: S[] = [];
  /** 0: the op took effect; 1: an optional op was left out. */
  const stackVariant: number[] = [];
  const stackPass: number[] = [];
  let state: S = options.initState !== undefined ? options.initState : model.init();
  let longest = 0;
  // The candidates at each configuration are the calls before the first return in the
  // list: ops of known outcome first (pass 0), then those of unknown outcome (pass 1),
  // which may take effect anywhere and so would otherwise be tried first, and in vain, at
  // every step.
  let entry = next[0];
  let variant = 0;
  let pass = 0;
  let steps = 0;
  const deferUnknown = options.deferUnknown === true;
  while (next[0] !== -1) {
    if (++steps % linearizabilityLimits.stepsPerDeadlineCheck === 0 && options.deadlineMs !== undefined && performance.now() > options.deadlineMs) {
      return { verdict: 'unknown', configurations: seen.size, longestLinearized: longest, reason: 'deadline' };
    }
    if (isCall(entry)) {
      const i = opOf(entry);
      if (deferUnknown && unknownOutcome[i] !== pass) {
        entry = next[entry];
        continue;
      }
      const op = ops[i];
      const after = variant === 0 ? model.step(state, op.input, op.output) : state;
      if (after !== undefined) {
        mark(i);
        const key = setKey(model.stateKey(after));
        if (!seen.has(key)) {
          seen.add(key);
          if (seen.size > configurationsMax) return { verdict: 'unknown', configurations: seen.size, longestLinearized: longest, reason: 'configurations' };
          stackEntry.push(entry);
          stackState.push(state);
          stackVariant.push(variant);
          stackPass.push(pass);
          state = after;
          lift(entry);
          if (stackEntry.length > longest) longest = stackEntry.length;
          entry = next[0];
          variant = 0;
          pass = 0;
          continue;
        }
        unmark(i);
      }
      if (variant === 0 && op.optional === true) {
        variant = 1;
        continue;
      }
      entry = next[entry];
      variant = 0;
    } else if (pass === 0 && deferUnknown) {
      entry = next[0];
      pass = 1;
    } else {
      // A return no candidate gets past: the op it ends had to be linearized before it.
      const top = stackEntry.pop();
      if (top === undefined) return { verdict: 'illegal', configurations: seen.size, longestLinearized: longest };
      state = stackState.pop() as S;
      const topVariant = stackVariant.pop() as number;
      pass = stackPass.pop() as number;
      unmark(opOf(top));
      unlift(top);
      if (topVariant === 0 && ops[opOf(top)].optional === true) {
        entry = top;
        variant = 1;
      } else {
        entry = next[top];
        variant = 0;
      }
    }
  }
  return { verdict: 'ok', configurations: seen.size, longestLinearized: longest };
}
