// Quorum arithmetic for a majority configuration and for a joint (two-majority) one.

import { NodeId } from './types';

export type VoteResult = 'pending' | 'lost' | 'won';

/** A set of voters decided by simple majority. The empty config commits everything. */
export class MajorityConfig {
  readonly ids: ReadonlySet<NodeId>;

  constructor(ids: Iterable<NodeId> = []) {
    this.ids = new Set(ids);
  }

  get size(): number {
    return this.ids.size;
  }

  sorted(): NodeId[] {
    return [...this.ids].sort((a, b) => a - b);
  }

  /**
   * The largest index acknowledged by a majority. `ackedIndex` returns undefined for a voter
   * that has acknowledged nothing. An empty config returns Infinity (it never constrains a
   * joint config).
   */
  committedIndex(ackedIndex: (id: NodeId) => number | undefined): number {
    const n = this.ids.size;
    if (n === 0) return Infinity;
    // The leader asks on every acknowledgement: an insertion sort (descending) into a scratch
    // array of this config's size, instead of a new array and Array.prototype.sort each time.
    const acked = (this.scratch ??= new Float64Array(n));
    let k = 0;
    for (const id of this.ids) {
      const v = ackedIndex(id) ?? 0;
      let j = k++;
      while (j > 0 && acked[j - 1] < v) {
        acked[j] = acked[j - 1];
        j--;
      }
      acked[j] = v;
    }
    // The (n/2+1)-th largest is acknowledged by a majority.
    return acked[Math.floor(n / 2)];
  }

  private scratch: Float64Array | undefined;

  voteResult(votes: ReadonlyMap<NodeId, boolean>): VoteResult {
    const n = this.ids.size;
    if (n === 0) return 'won'; // an empty config wins, so that joint quorums reduce to the other half
    let granted = 0;
    let missing = 0;
    for (const id of this.ids) {
      const v = votes.get(id);
      if (v === undefined) missing++;
      else if (v) granted++;
    }
    const q = Math.floor(n / 2) + 1;
    if (granted >= q) return 'won';
    if (granted + missing >= q) return 'pending';
    return 'lost';
  }
}

/** Two majority configs; a decision needs both (the outgoing one is empty when not joint). */
export class JointConfig {
  constructor(
    readonly incoming: MajorityConfig = new MajorityConfig(),
    readonly outgoing: MajorityConfig = new MajorityConfig(),
  ) {}

  isJoint(): boolean {
    return this.outgoing.size > 0;
  }

  ids(): Set<NodeId> {
    return new Set([...this.incoming.ids, ...this.outgoing.ids]);
  }

  committedIndex(ackedIndex: (id: NodeId) => number | undefined): number {
    const a = this.incoming.committedIndex(ackedIndex);
    const b = this.outgoing.committedIndex(ackedIndex);
    return Math.min(a, b);
  }

  voteResult(votes: ReadonlyMap<NodeId, boolean>): VoteResult {
    const a = this.incoming.voteResult(votes);
    const b = this.outgoing.voteResult(votes);
    if (a === b) return a;
    if (a === 'lost' || b === 'lost') return 'lost';
    return 'pending';
  }
}
