// Requests waiting for their Raft entry to be applied, by request id.

export class Wait<T> {
  private readonly waiters = new Map<number, { resolve: (v: T) => void; reject: (e: Error) => void }>();

  register(id: number): Promise<T> {
    return new Promise<T>((resolve, reject) => this.waiters.set(id, { resolve, reject }));
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
