// Requests waiting for their Raft entry to be applied, by request id.

/** Called once, with the result or the failure. */
export type Settle<T> = (err: Error | undefined, value: T | undefined) => void;

interface Waiter<T> {
  settle: Settle<T>;
  /** When it times out (ms since the epoch); Infinity for never. */
  deadline: number;
}

export class Wait<T> {
  private readonly waiters = new Map<number, Waiter<T>>();

  /**
   * The promise of request `id`'s result, failed by expire() once `deadline` (ms since the
   * epoch) has passed. It may be failed (timeout, stop) before its caller awaits it, for
   * example while the caller still waits for a leader to propose to: it is marked handled,
   * so that such a rejection never becomes an unhandled one (which ends a Node process).
   * Whoever awaits it still gets the rejection.
   */
  register(id: number, deadline = Infinity): Promise<T> {
    const p = new Promise<T>((resolve, reject) => this.listen(id, deadline, (e, v) => (e !== undefined ? reject(e) : resolve(v as T))));
    p.catch(() => undefined);
    return p;
  }

  /**
   * register() without a promise: `settle` is called once, synchronously from trigger(),
   * fail() or expire() (the put path's waiter: no promise, closure or microtask per request).
   * It must not throw.
   */
  listen(id: number, deadline: number, settle: Settle<T>): void {
    this.waiters.set(id, { settle, deadline });
  }

  has(id: number): boolean {
    return this.waiters.has(id);
  }

  trigger(id: number, value: T): void {
    const w = this.waiters.get(id);
    if (!w) return;
    this.waiters.delete(id);
    w.settle(undefined, value);
  }

  fail(id: number, err: Error): void {
    const w = this.waiters.get(id);
    if (!w) return;
    this.waiters.delete(id);
    w.settle(err, undefined);
  }

  failAll(err: Error): void {
    for (const [id] of this.waiters) this.fail(id, err);
  }

  /**
   * Fails every waiter whose deadline is at or before `now` with `error()`. Returns the
   * earliest deadline still ahead, or undefined when none is. One timer armed at that
   * deadline replaces a timer per request.
   */
  expire(now: number, error: () => Error): number | undefined {
    let next = Infinity;
    for (const [id, w] of this.waiters) {
      if (w.deadline <= now) this.fail(id, error());
      else if (w.deadline < next) next = w.deadline;
    }
    return next === Infinity ? undefined : next;
  }

  get size(): number {
    return this.waiters.size;
  }
}
