// Auto compaction (--auto-compaction-mode / --auto-compaction-retention), run by the leader:
// 'periodic' keeps the history of the last retention period (revisions are sampled every
// tenth of it, and the newest sample older than the period is the compaction target);
// 'revision' keeps the last N revisions, checked every five minutes as etcd does.

export type AutoCompactorOptions = { mode: 'periodic'; retentionMs: number } | { mode: 'revision'; keepRevisions: number; checkIntervalMs?: number };

export class AutoCompactor {
  private samples: { atMs: number; revision: number }[] = [];

  constructor(private readonly opts: AutoCompactorOptions) {}

  checkIntervalMs(): number {
    if (this.opts.mode === 'revision') return this.opts.checkIntervalMs ?? 5 * 60_000;
    return Math.max(100, Math.min(this.opts.retentionMs / 10, 3600_000));
  }

  /** The revision to compact to now (0: nothing to do). */
  target(nowMs: number, currentRevision: number): number {
    if (this.opts.mode === 'revision') return Math.max(0, currentRevision - this.opts.keepRevisions);
    this.samples.push({ atMs: nowMs, revision: currentRevision });
    let target = 0;
    while (this.samples.length > 0 && nowMs - this.samples[0].atMs >= this.opts.retentionMs) {
      target = this.samples[0].revision;
      this.samples.shift();
    }
    return target;
  }
}
