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
// It pauses the member (130-150 ms with 100k keys of 256 bytes), which is why it waits for
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
 * Above this much heap in use no collection is made: the pause grows with what is live
 * (about 3-4 ms per MiB here, so at most ~250 ms), and a leader paused near its election
 * timeout would lose its followers. V8's own memory reducer still runs.
 */
export const compactingHeapBytesMax = 64 * 1024 * 1024;

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
    if (v8.getHeapStatistics().used_heap_size > compactingHeapBytesMax) onCollect({ utilization: u, skipped: true, pauseMs: 0 });
    else onCollect({ utilization: u, skipped: false, pauseMs: compactingCollection(gc) });
  }, opts.sampleMs);
  timer.unref();
  return () => clearInterval(timer);
}
