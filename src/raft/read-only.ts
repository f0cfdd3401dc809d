// ReadIndex requests waiting for a quorum of heartbeat acknowledgements (thesis 6.4).

import { Message, NodeId } from './types';

export type ReadOnlyOption = 'safe' | 'leaseBased';

export interface ReadIndexStatus {
  req: Message;
  /** The leader's commit index when the request arrived. */
  index: number;
  acks: Map<NodeId, boolean>;
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  constructor(readonly option: ReadOnlyOption) {}

  addRequest(index: number, m: Message): void {
    const ctx = m.context ?? '';
    if (this.pending.has(ctx)) return;
    this.pending.set(ctx, { req: m, index, acks: new Map() });
    this.queue.push(ctx);
  }

  /** Records an acknowledgement; returns the acks so far, or undefined for an unknown context. */
  recvAck(id: NodeId, ctx: string): Map<NodeId, boolean> | undefined {
    const rs = this.pending.get(ctx);
    if (!rs) return undefined;
    rs.acks.set(id, true);
    return rs.acks;
  }

  /**
   * Pops every request up to and including ctx: a quorum acknowledging a later heartbeat
   * also confirms the leadership for every earlier request.
   */
  advance(ctx: string): ReadIndexStatus[] {
    const i = this.queue.indexOf(ctx);
    if (i < 0) return [];
    const done = this.queue.slice(0, i + 1);
    this.queue = this.queue.slice(i + 1);
    const out: ReadIndexStatus[] = [];
    for (const c of done) {
      const rs = this.pending.get(c);
      if (rs) out.push(rs);
      this.pending.delete(c);
    }
    return out;
  }

  lastPendingRequestCtx(): string | undefined {
    return this.queue.length > 0 ? this.queue[this.queue.length - 1] : undefined;
  }

  pendingCount(): number {
    return this.queue.length;
  }
}
