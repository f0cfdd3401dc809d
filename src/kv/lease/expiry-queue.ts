// A min-heap of (lease id, time) with one live entry per lease: etcd's LeaseExpiredNotifier.
// Updating a lease pushes a new entry; the old one becomes stale and is skipped when it
// surfaces. The heap is rebuilt when stale entries outnumber live ones, so its size stays
// within twice the number of leases queued.

interface Entry {
  id: number;
  timeMs: number;
}

export class ExpiryQueue {
  private heap: Entry[] = [];
  /** The live entry's time of each queued lease. */
  private readonly live = new Map<number, number>();

  get size(): number {
    return this.live.size;
  }

  /** Queues or re-queues `id` at `timeMs`. */
  set(id: number, timeMs: number): void {
    this.live.set(id, timeMs);
    this.push({ id, timeMs });
    if (this.heap.length > 2 * this.live.size + 64) this.rebuild();
  }

  delete(id: number): void {
    this.live.delete(id);
  }

  clear(): void {
    this.heap = [];
    this.live.clear();
  }

  /** The earliest live entry, or undefined. */
  peek(): Entry | undefined {
    this.dropStale();
    return this.heap[0];
  }

  private dropStale(): void {
    while (this.heap.length > 0) {
      const top = this.heap[0];
      if (this.live.get(top.id) === top.timeMs) return;
      this.pop();
    }
  }

  private rebuild(): void {
    this.heap = [...this.live].map(([id, timeMs]) => ({ id, timeMs }));
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private push(e: Entry): void {
    this.heap.push(e);
    let i = this.heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private pop(): void {
    const last = this.heap.pop();
    if (last === undefined || this.heap.length === 0) return;
    this.heap[0] = last;
    this.down(0);
  }

  private down(i: number): void {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.heap.length && this.less(l, m)) m = l;
      if (r < this.heap.length && this.less(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private less(a: number, b: number): boolean {
    const x = this.heap[a];
    const y = this.heap[b];
    return x.timeMs < y.timeMs || (x.timeMs === y.timeMs && x.id < y.id);
  }

  private swap(a: number, b: number): void {
    const t = this.heap[a];
    this.heap[a] = this.heap[b];
    this.heap[b] = t;
  }
}
