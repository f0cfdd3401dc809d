// Latency samples, percentiles and medians.

/** Most latency samples one recorder keeps (5M = 40 MB); beyond it, samples are dropped and counted. */
export const latencySamplesMax = 5_000_000;

/** Latency samples in milliseconds, kept in a growing Float64Array. */
export class LatencyRecorder {
  private samples = new Float64Array(1024);
  private length = 0;
  dropped = 0;

  add(ms: number): void {
    if (this.length === this.samples.length) {
      if (this.length >= latencySamplesMax) {
        this.dropped++;
        return;
      }
      const next = new Float64Array(Math.min(this.samples.length * 2, latencySamplesMax));
      next.set(this.samples);
      this.samples = next;
    }
    this.samples[this.length++] = ms;
  }

  count(): number {
    return this.length;
  }

  /** Percentiles (0..100) by nearest rank; NaN when there are no samples. */
  percentiles(ps: readonly number[]): number[] {
    if (this.length === 0) return ps.map(() => NaN);
    const sorted = this.samples.slice(0, this.length).sort();
    return ps.map((p) => sorted[Math.min(this.length - 1, Math.max(0, Math.ceil((p / 100) * this.length) - 1))]);
  }
}

export function median(xs: readonly number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export function sum(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}
