// Giving memory back after a burst of work. V8 collects its old generation only when the heap
// reaches a limit it sets from the last collection, and frees a dead Buffer's native memory
// only when that collection finds the Buffer dead. A member that has just taken a burst of
// writes and then goes quiet would keep all of that garbage (tens of MiB: dead requests,
// Raft messages, log write buffers) until the next burst. Go's runtime, and so etcd, returns
// such memory on its own (a background scavenger, and a forced collection every 2 minutes).
//
// Here: once a second, if the event loop was nearly idle over the last second and the heap
// plus external memory has grown enough since the last collection, start one major
// collection in V8's incremental mode (no long pause) and measure the new baseline a check
// later. Under load nothing happens: V8's own heuristics run the collections then.

import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { performance, EventLoopUtilization } from 'node:perf_hooks';

export interface IdleReclaimOptions {
  /** How often the loop's utilization and the memory in use are sampled. */
  checkIntervalMs: number;
  /** At or below this event-loop utilization over the last interval, the member is idle. */
  idleUtilizationMax: number;
  /** Growth of heap used + external since the last collection that is worth one... */
  growthBytesMin: number;
  /** ...and as a fraction of that baseline (both must hold). */
  growthRatioMin: number;
}

export const idleReclaimDefaults: IdleReclaimOptions = {
  checkIntervalMs: 500,
  idleUtilizationMax: 0.05,
  growthBytesMin: 16 * 1024 * 1024,
  growthRatioMin: 0.25,
};

/**
 * The decision, apart from timers and V8: fed one sample per check, says when to collect.
 * After a collection the next sample only sets the new baseline (the collection runs
 * incrementally in between).
 */
export class IdleReclaimPolicy {
  /** Heap used + external right after the last collection (or at start). */
  private baselineBytes: number;
  private collecting = false;

  constructor(
    private readonly opts: IdleReclaimOptions,
    startBytes: number,
  ) {
    this.baselineBytes = startBytes;
  }

  /** One check: the loop's utilization over the last interval and the bytes in use now. */
  check(utilization: number, usedBytes: number): boolean {
    if (this.collecting) {
      this.collecting = false;
      this.baselineBytes = usedBytes;
      return false;
    }
    // Memory also shrinks by V8's own collections: follow the baseline down.
    if (usedBytes < this.baselineBytes) this.baselineBytes = usedBytes;
    if (utilization > this.opts.idleUtilizationMax) return false;
    const growth = usedBytes - this.baselineBytes;
    if (growth < this.opts.growthBytesMin || growth < this.baselineBytes * this.opts.growthRatioMin) return false;
    this.collecting = true;
    return true;
  }

  get baseline(): number {
    return this.baselineBytes;
  }
}

/** V8's gc() extension, made available at run time; undefined where V8 refuses. */
type GcFunction = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void;

function exposedGc(): GcFunction | undefined {
  const existing = (globalThis as { gc?: GcFunction }).gc;
  if (typeof existing === 'function') return existing;
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    return typeof gc === 'function' ? (gc as GcFunction) : undefined;
  } catch {
    return undefined;
  }
}

function usedBytesNow(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

export interface IdleReclaimEvent {
  usedBytes: number;
  baselineBytes: number;
}

/** Runs the policy on a timer (unref'd: it never keeps the process alive). */
export class IdleMemoryReclaimer {
  private readonly timer: NodeJS.Timeout;
  private elu: EventLoopUtilization;
  private readonly policy: IdleReclaimPolicy;
  /** Collections started (for tests and logs). */
  collections = 0;

  private constructor(
    private readonly gc: GcFunction,
    private readonly onCollect: (e: IdleReclaimEvent) => void,
    opts: IdleReclaimOptions,
  ) {
    this.policy = new IdleReclaimPolicy(opts, usedBytesNow());
    this.elu = performance.eventLoopUtilization();
    this.timer = setInterval(() => this.check(), opts.checkIntervalMs);
    this.timer.unref();
  }

  /** Starts checking; undefined when V8 does not let the process start a collection. */
  static start(onCollect: (e: IdleReclaimEvent) => void, opts: IdleReclaimOptions = idleReclaimDefaults): IdleMemoryReclaimer | undefined {
    const gc = exposedGc();
    return gc === undefined ? undefined : new IdleMemoryReclaimer(gc, onCollect, opts);
  }

  private check(): void {
    const now = performance.eventLoopUtilization();
    const utilization = performance.eventLoopUtilization(now, this.elu).utilization;
    this.elu = now;
    const used = usedBytesNow();
    const baseline = this.policy.baseline;
    if (!this.policy.check(utilization, used)) return;
    this.collections++;
    this.onCollect({ usedBytes: used, baselineBytes: baseline });
    this.gc({ type: 'major', execution: 'async' });
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
