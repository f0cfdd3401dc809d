// A priority queue of simulated events, ordered by (time in steps, insertion order), so that
// two events at the same step always run in the order they were scheduled: determinism.

export interface SimEvent {
  readonly atStep: number;
  readonly run: () => void;
}

interface Queued extends SimEvent {
  readonly seq: number;
}

export class EventQueue {
  private readonly heap: Queued[] = [];
  private seqNext = 0;

  get size(): number {
    return this.heap.length;
  }

  push(atStep: number, run: () => void): void {
    const item: Queued = { atStep, run, seq: this.seqNext++ };
    const heap = this.heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  /** The earliest event due at or before `step`, removed from the queue; undefined if none. */
  popDue(step: number): SimEvent | undefined {
    const heap = this.heap;
    if (heap.length === 0 || heap[0].atStep > step) return undefined;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l], heap[m])) m = l;
        if (r < heap.length && before(heap[r], heap[m])) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m], heap[i]];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Queued, b: Queued): boolean {
  return a.atStep < b.atStep || (a.atStep === b.atStep && a.seq < b.seq);
}
