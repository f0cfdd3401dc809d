// A member gives memory back once a burst of work is over. After a burst of writes V8's
// heap holds the garbage of the burst and the room it grew into; V8's own memory reducer
// collects it only about eight seconds after its last full collection, and not at all if
// it looked during the burst. Here the event loop's utilization is sampled: after a busy
// stretch (above busyUtilization), once it has stayed near idle (below quietUtilization)
// for quietSamples samples in a row, one major collection is started (incremental, so it
// pauses nothing for long) and the member waits for the next busy stretch.
//
// Measured (100k puts from 16 clients, RSS 2 s after the last one): the three members
// 570-617 MiB without, 495-512 MiB with. The collection frees the garbage but gives pages
// back only where nothing live is left (it is not V8's memory-reducing kind, which JS
// cannot ask for), so a member, usually the leader, sometimes stays near 200 MiB.

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

type GcFunction = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void;

/** V8's gc function without --expose-gc on the command line: a member started by hand gets it too. */
function gcFunction(): GcFunction {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as GcFunction;
}

/** Samples the event loop and collects once it goes quiet after a burst; returns a stopper. */
export function startIdleGc(onCollect: (utilization: number) => void = () => undefined, opts: IdleGcOptions = idleGcDefaults): () => void {
  const gc = gcFunction();
  const detector = new IdleDetector(opts);
  let last = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    if (!detector.sample(u)) return;
    gc({ type: 'major', execution: 'async' });
    onCollect(u);
  }, opts.sampleMs);
  timer.unref();
  return () => clearInterval(timer);
}
