// A member gives memory back once a burst of work is over. After a burst of writes V8's
// heap holds the garbage of the burst and the room it grew into; V8's own memory reducer
// collects it only about eight seconds after its last full collection, and not at all if
// it looked during the burst. Here the event loop's utilization is sampled: after a busy
// stretch (above busyUtilization), once it has stayed near idle (below quietUtilization)
// for quietSamples samples in a row, one full collection runs, compacting the old
// generation, and the member waits for the next busy stretch.
//
// Node 20's V8 reads any argument given to gc() (an options object included) as a request
// for a young-generation collection only; gc() without one is the full, synchronous kind.
// It pauses the member (130-260 ms with 100k keys of 256 bytes), which is why it waits for
// quiet and is skipped for a heap above compactingHeapBytesMax.
//
// Measured (100k puts from 16 clients, RSS 2 s after the last one): see README, Benchmarks.

import { performance } from 'node:perf_hooks';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

export interface IdleGcOptions {
  sampleMs: number;
  busyUtilization: number;
  quietUtilization: number;
  quietSamples: number;
}

export const idleGcDefaults: IdleGcOptions = Object.freeze({ sampleMs: 500, busyUtilization: 0.3, quietUtilization: 0.05, quietSamples: 2 });

/** The decision alone: fed one utilization sample at a time, says when to collect. */
export class IdleDetector {
  private busy = false;
  private quiet = 0;

  constructor(private readonly opts: IdleGcOptions = idleGcDefaults) {}

  /** True when this sample ends a quiet stretch after a busy one (at most once per busy stretch). */
  sample(utilization: number): boolean {
    if (utilization > this.opts.busyUtilization) {
      this.busy = true;
      this.quiet = 0;
      return false;
    }
    if (!this.busy) return false;
    if (utilization >= this.opts.quietUtilization) {
      this.quiet = 0;
      return false;
    }
    if (++this.quiet < this.opts.quietSamples) return false;
    this.busy = false;
    this.quiet = 0;
    return true;
  }
}

/** V8's gc(): called without arguments, a full synchronous collection. */
export type GcFunction = () => void;

/** V8's gc function without --expose-gc on the command line: a member started by hand gets it too. */
export function gcFunction(): GcFunction {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as GcFunction;
}

/**
 * Above this much heap in use (live, and garbage not yet collected) no collection is made:
 * the pause grows with what is live (4-6 ms per live MiB measured here, with three members
 * on two cores: 180-260 ms for the 40 MiB of 100k keys), and a leader paused near its
 * election timeout would lose its followers. At this bound a heap that is all live would
 * pause ~0.6 s, under the 1 s election timeout. Above it V8's own memory reducer still runs.
 * (Right after a burst of 100k puts a member had 44-86 MiB in use, 40 MiB of it live.)
 */
export const compactingHeapBytesMax = 128 * 1024 * 1024;

/**
 * One full collection that also moves every surviving object together (V8's
 * --compact-on-every-full-gc, set for this collection only), so that the pages the burst
 * left partly filled are given back: without it a member kept 15-40 MiB of old-space pages
 * beyond what was live. Returns how long it paused the process, in ms.
 */
export function compactingCollection(gc: GcFunction): number {
  const always = process.execArgv.includes('--compact-on-every-full-gc');
  v8.setFlagsFromString('--compact-on-every-full-gc');
  const t0 = performance.now();
  try {
    gc();
  } finally {
    if (!always) v8.setFlagsFromString('--no-compact-on-every-full-gc');
  }
  return performance.now() - t0;
}

/** What one idle collection did (skipped: the heap was above compactingHeapBytesMax). */
export interface IdleCollection {
  utilization: number;
  /** Heap in use (live and not yet collected) before, and after. */
  heapUsedBytes: number;
  heapUsedAfterBytes: number;
  skipped: boolean;
  pauseMs: number;
}

/** Samples the event loop and collects once it goes quiet after a burst; returns a stopper. */
export function startIdleGc(onCollect: (c: IdleCollection) => void = () => undefined, opts: IdleGcOptions = idleGcDefaults): () => void {
  const gc = gcFunction();
  const detector = new IdleDetector(opts);
  let last = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    if (!detector.sample(u)) return;
    const used = v8.getHeapStatistics().used_heap_size;
    if (used > compactingHeapBytesMax) {
      onCollect({ utilization: u, heapUsedBytes: used, heapUsedAfterBytes: used, skipped: true, pauseMs: 0 });
      return;
    }
    const pauseMs = compactingCollection(gc);
    onCollect({ utilization: u, heapUsedBytes: used, heapUsedAfterBytes: v8.getHeapStatistics().used_heap_size, skipped: false, pauseMs });
  }, opts.sampleMs);
  timer.unref();
  return () => clearInterval(timer);
}
