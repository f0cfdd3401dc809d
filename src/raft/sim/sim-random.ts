// The simulator's one source of randomness. Everything random in a run (network, faults,
// workload, the cores' election timeouts) is drawn from one of these, seeded from the run's
// seed, so a seed replays exactly.

import { seededRandom } from '../util';

export class SimRandom {
  private readonly source: ReturnType<typeof seededRandom>;

  constructor(seed: number) {
    this.source = seededRandom(seed);
  }

  /** Uniform float in [0, 1). */
  float(): number {
    return this.source.float();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return this.source.int(n);
  }

  /** Uniform integer in [lo, hi] (both inclusive). */
  range(lo: number, hi: number): number {
    return lo + this.source.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return p > 0 && this.source.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.source.int(items.length)];
  }

  /** A new seed for a derived generator (a core's election timeouts, say). */
  seed(): number {
    return this.source.int(0x7fffffff) + 1;
  }

  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.source.int(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}
