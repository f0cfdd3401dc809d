// Requests waiting for their Raft entry to be applied, by request id.

export class Wait<T> {
  private readonly waiters = new Map<number, { resolve: (v: T) => void; reject: (e: Error) => void }>();

  /**
   * The promise of request `id`'s result. It may be failed (timeout, stop) before its caller
   * awaits it, for example while the caller still waits for a leader to propose to: it is
   * marked handled, so that such a rejection never becomes an unhandled one (which ends a
   * Node process). Whoever awaits it still gets the rejection.
   */
  register(id: number): Promise<T> {
    const p = new Promise<T>((resolve, reject) => this.waiters.set(id, { resolve, reject }));
    p.catch(() => undefined);
    return p;
  }

  has(id: number): boolean {
    return this.waiters.has(id);
  }

  trigger(id: number, value: T): void {
    const w = this.waiters.get(id);
    if (!w) return;
    this.waiters.delete(id);
    w.resolve(value);
  }

  fail(id: number, err: Error): void {
    const w = this.waiters.get(id);
    if (!w) return;
    this.waiters.delete(id);
    w.reject(err);
  }

  failAll(err: Error): void {
    for (const [id] of this.waiters) this.fail(id, err);
  }

  get size(): number {
    return this.waiters.size;
  }
}
