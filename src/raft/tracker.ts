// The leader's view of each follower: replication progress, flow control, and the
// configuration (voters, learners) those followers belong to.

import { assert } from './errors';
import { JointConfig, MajorityConfig, VoteResult } from './quorum';
import { ConfState, NodeId } from './types';

/**
 * In-flight MsgApp messages to one follower, bounded by count and by bytes.
 * invariant: count <= countMax; bytes stays within bytesMax unless a single message exceeds it.
 */
export class Inflights {
  private readonly indexes: number[] = []; // last entry index of each in-flight message, ascending
  private readonly sizes: number[] = [];
  private bytesInFlight = 0;

  constructor(
    readonly countMax: number,
    readonly bytesMax: number, // 0 means no byte limit
  ) {
    assert(countMax > 0, 'inflight count max must be positive');
  }

  add(index: number, bytes: number): void {
    assert(!this.full(), 'cannot add into a full inflights');
    if (this.indexes.length > 0) assert(index > this.indexes[this.indexes.length - 1], 'inflight indexes must increase');
    this.indexes.push(index);
    this.sizes.push(bytes);
    this.bytesInFlight += bytes;
  }

  /** Frees every in-flight message whose last index is <= to. */
  freeLE(to: number): void {
    let n = 0;
    while (n < this.indexes.length && this.indexes[n] <= to) {
      this.bytesInFlight -= this.sizes[n];
      n++;
    }
    if (n > 0) {
      this.indexes.splice(0, n);
      this.sizes.splice(0, n);
    }
  }

  /** Frees the oldest in-flight message. */
  freeFirstOne(): void {
    if (this.indexes.length > 0) this.freeLE(this.indexes[0]);
  }

  full(): boolean {
    return this.indexes.length >= this.countMax || (this.bytesMax > 0 && this.bytesInFlight >= this.bytesMax);
  }

  count(): number {
    return this.indexes.length;
  }

  reset(): void {
    this.indexes.length = 0;
    this.sizes.length = 0;
    this.bytesInFlight = 0;
  }
}

export enum ProgressState {
  /** Send at most one MsgApp per heartbeat interval while looking for the match point. */
  Probe = 'StateProbe',
  /** Optimistically stream entries, pipelined up to the inflight limits. */
  Replicate = 'StateReplicate',
  /** A snapshot is on its way; send nothing until it is reported done. */
  Snapshot = 'StateSnapshot',
}

export class Progress {
  // invariant: match < next
  match = 0;
  next: number;
  state: ProgressState = ProgressState.Probe;
  /** In Snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from this peer since the last CheckQuorum round. */
  recentActive = false;
  /** In Probe state: a probe has been sent and not answered within this heartbeat interval. */
  msgAppFlowPaused = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, inflights: Inflights, isLearner: boolean) {
    this.next = next;
    this.inflights = inflights;
    this.isLearner = isLearner;
  }

  /** A copy sharing the inflights (the original is discarded when a change is applied). */
  clone(): Progress {
    const c = new Progress(this.next, this.inflights, this.isLearner);
    c.match = this.match;
    c.state = this.state;
    c.pendingSnapshot = this.pendingSnapshot;
    c.recentActive = this.recentActive;
    c.msgAppFlowPaused = this.msgAppFlowPaused;
    return c;
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** Records that a MsgApp with entries up to lastIndex was sent. */
  sentEntries(count: number, lastIndex: number, bytes: number): void {
    if (this.state === ProgressState.Replicate) {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
    } else if (this.state === ProgressState.Probe) {
      this.msgAppFlowPaused = true;
    }
  }

  /** Returns false if n is stale (an old, reordered acknowledgement). */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * Handles a rejected MsgApp for `rejected`, with the follower's hint of its matching
   * point. Returns false if the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      // In Replicate, next - 1 is not the probe; only a rejection of the match point is stale.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In Probe, only a rejection of the latest probe (next - 1) counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /** Whether sending MsgApp to this peer is throttled. */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.msgAppFlowPaused;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }

  toString(): string {
    return `${this.state} match=${this.match} next=${this.next}${this.isLearner ? ' learner' : ''}${this.pendingSnapshot ? ` pendingSnap=${this.pendingSnapshot}` : ''}${this.isPaused() ? ' paused' : ''}`;
  }
}

/** The configuration: voters (possibly joint), learners, and learners-to-be. */
export interface TrackerConfig {
  voters: JointConfig;
  /** Learners; disjoint from voters. */
  learners: Set<NodeId>;
  /** Outgoing voters that become learners when the joint config is left. */
  learnersNext: Set<NodeId>;
  autoLeave: boolean;
}

export function cloneTrackerConfig(c: TrackerConfig): TrackerConfig {
  return {
    voters: new JointConfig(new MajorityConfig(c.voters.incoming.ids), new MajorityConfig(c.voters.outgoing.ids)),
    learners: new Set(c.learners),
    learnersNext: new Set(c.learnersNext),
    autoLeave: c.autoLeave,
  };
}

export function emptyTrackerConfig(): TrackerConfig {
  return { voters: new JointConfig(), learners: new Set(), learnersNext: new Set(), autoLeave: false };
}

export function confStateOf(c: TrackerConfig): ConfState {
  return {
    voters: c.voters.incoming.sorted(),
    votersOutgoing: c.voters.outgoing.sorted(),
    learners: [...c.learners].sort((a, b) => a - b),
    learnersNext: [...c.learnersNext].sort((a, b) => a - b),
    autoLeave: c.autoLeave,
  };
}

export class ProgressTracker {
  config: TrackerConfig = emptyTrackerConfig();
  progress = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();

  constructor(
    readonly inflightMessagesMax: number,
    readonly inflightBytesMax: number,
  ) {}

  newInflights(): Inflights {
    return new Inflights(this.inflightMessagesMax, this.inflightBytesMax);
  }

  isSingleton(): boolean {
    return this.config.voters.incoming.size === 1 && !this.config.voters.isJoint();
  }

  committed(): number {
    return this.config.voters.committedIndex((id) => this.progress.get(id)?.match);
  }

  /** Voters (both halves of a joint config), sorted. */
  voterIds(): NodeId[] {
    return [...this.config.voters.ids()].sort((a, b) => a - b);
  }

  learnerIds(): NodeId[] {
    return [...this.config.learners].sort((a, b) => a - b);
  }

  /**
   * Every tracked id, sorted: iteration order is deterministic. The leader asks for them on
   * every proposal and acknowledgement, so the sorted list is kept until the progress map is
   * replaced (a configuration change switches to a new map) or changes size; callers must
   * not modify it.
   */
  ids(): readonly NodeId[] {
    const c = this.idsCache;
    if (c !== undefined && c.of === this.progress && c.size === this.progress.size) return c.ids;
    const ids = [...this.progress.keys()].sort((a, b) => a - b);
    this.idsCache = { of: this.progress, size: this.progress.size, ids };
    return ids;
  }

  private idsCache: { of: ReadonlyMap<NodeId, Progress>; size: number; ids: readonly NodeId[] } | undefined;

  isVoter(id: NodeId): boolean {
    return this.config.voters.incoming.ids.has(id) || this.config.voters.outgoing.ids.has(id);
  }

  /** Whether the active peers form a quorum (CheckQuorum). */
  quorumActive(): boolean {
    const votes = new Map<NodeId, boolean>();
    for (const [id, pr] of this.progress) {
      if (pr.isLearner) continue;
      votes.set(id, pr.recentActive);
    }
    return this.config.voters.voteResult(votes) === 'won';
  }

  resetVotes(): void {
    this.votes.clear();
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const [id, pr] of this.progress) {
      if (pr.isLearner) continue;
      const v = this.votes.get(id);
      if (v === undefined) continue;
      if (v) granted++;
      else rejected++;
    }
    return { granted, rejected, result: this.config.voters.voteResult(this.votes) };
  }
}
