// The Raft state machine: elections (with PreVote and CheckQuorum), log replication with
// flow control, commitment, snapshots, ReadIndex, leader transfer and membership changes.
// Synchronous and pure: time is tick(), input is step(), output is collected in msgs and
// read by RawNode.ready().
//
// References: "In Search of an Understandable Consensus Algorithm" (the paper, §N) and
// Ongaro's thesis "Consensus: Bridging Theory and Practice" (thesis §N).

import { Changer, decodeConfChange, entersJoint, isLeaveJoint, encodeConfChange } from './confchange';
import { assert, RaftError } from './errors';
import { RaftLog } from './log';
import { ReadOnly, ReadOnlyOption } from './read-only';
import { Storage } from './storage';
import { confStateOf, ProgressState, ProgressTracker, TrackerConfig } from './tracker';
import { ConfChangeV2, ConfState, Entry, EntryType, message, Message, MessageType, None, NodeId, Snapshot, StateType } from './types';
import { payloadSizeBytes, Random } from './util';

export interface RaftConfig {
  id: NodeId;
  storage: Storage;
  /** Ticks a follower waits without hearing from a leader before campaigning (randomized in [t, 2t)). */
  electionTimeoutTicks: number;
  heartbeatIntervalTicks: number;
  /** The only source of randomness: seeded by the caller. */
  random: Random;
  /** The last index applied to the state machine, when restarting. */
  applied?: number;
  /** Bytes of entries in one MsgApp (at least one entry is always sent). */
  messageBytesMax?: number;
  /** MsgApp in flight to one follower in Replicate state. */
  inflightMessagesMax?: number;
  /** Bytes in flight to one follower; 0 for no limit. */
  inflightBytesMax?: number;
  /** Bytes of proposed but uncommitted entries the leader accepts before dropping proposals. */
  uncommittedBytesMax?: number;
  /** Bytes of committed entries handed to the application per Ready. */
  committedBytesPerReadyMax?: number;
  checkQuorum?: boolean;
  preVote?: boolean;
  readOnlyOption?: ReadOnlyOption;
  disableProposalForwarding?: boolean;
  /**
   * Batch replication per Ready: a proposal is appended to the leader's log at once (and
   * refused at once when it cannot be), but the MsgApp that carry it are made by
   * flushAppends(), which RawNode calls before it reports or hands out a Ready. Proposals
   * stepped in between then travel together: one MsgApp per follower instead of one per
   * proposal, and one acknowledgement back. A follower forwarding proposals merges
   * consecutive ones to the leader into one MsgProp likewise. Default false: a message per
   * proposal, as etcd's raft does.
   */
  batchAppends?: boolean;
  /**
   * The caller may take the next Ready before the entries of the last one are durable, and
   * reports each write's completion with RawNode.persisted(). Committed entries are then
   * handed out only once they are durable here too. Default false: advance() means the
   * Ready was persisted.
   */
  asyncStorageWrites?: boolean;
  /**
   * A commit index that advanced reaches an up-to-date follower with the next MsgApp or
   * heartbeat instead of an empty MsgApp of its own, sent now. The caller sends what is
   * still owed with flushCommit() shortly after (commitFlushPending() tells when it must).
   * A follower whose forwarded proposals just committed is told at once: its client waits
   * for it. With one writer, the commit of its last put then travels with its next put,
   * and the followers are not woken twice per write. Default false: at once, as etcd.
   */
  lazyCommit?: boolean;
}

export const raftDefaults = Object.freeze({
  messageBytesMax: 1024 * 1024,
  inflightMessagesMax: 256,
  inflightBytesMax: 0,
  uncommittedBytesMax: Infinity,
  committedBytesPerReadyMax: 64 * 1024 * 1024,
});

/**
 * When a message may leave the node, relative to persisting the Ready it comes in.
 * 'beforePersist': a leader's replication traffic (thesis §10.2.1: the leader writes its log
 * in parallel with sending it, and counts itself only once durable) and requests that
 * promise nothing. 'afterPersist': anything that promises durable state (a vote, an
 * acknowledged append, a candidate's own term). 'local': never sent.
 */
export type MessageClass = 'local' | 'beforePersist' | 'afterPersist';

export const messageClass: Record<MessageType, MessageClass> = {
  MsgHup: 'local',
  MsgBeat: 'local',
  MsgUnreachable: 'local',
  MsgSnapStatus: 'local',
  MsgCheckQuorum: 'local',
  MsgProp: 'beforePersist',
  MsgApp: 'beforePersist',
  MsgAppResp: 'afterPersist',
  MsgVote: 'afterPersist',
  MsgVoteResp: 'afterPersist',
  MsgSnap: 'beforePersist',
  MsgHeartbeat: 'beforePersist',
  MsgHeartbeatResp: 'afterPersist',
  MsgTransferLeader: 'beforePersist',
  MsgTimeoutNow: 'beforePersist',
  MsgReadIndex: 'beforePersist',
  MsgReadIndexResp: 'beforePersist',
  MsgPreVote: 'beforePersist',
  MsgPreVoteResp: 'afterPersist',
};

export const campaignTransferContext = 'CampaignTransfer';

/** Ticks between the pre-votes of successive followers after their leader's connection broke. */
export const connectionLostStaggerTicks = 2;

type CampaignType = 'preElection' | 'election' | 'transfer';

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = None;
  lead: NodeId = None;
  state: StateType = StateType.Follower;
  readonly raftLog: RaftLog;
  readonly trk: ProgressTracker;

  /** Messages that may leave before the pending Ready is persisted; drained by ready(). */
  msgs: Message[] = [];
  /** Messages that must wait until the pending Ready is persisted; drained by ready(). */
  msgsAfterPersist: Message[] = [];
  readStates: { index: number; context: string }[] = [];

  /** Leader transfer target, or None. */
  leadTransferee: NodeId = None;
  /**
   * Index of the latest conf change proposed by this leader; a new one is refused while
   * this is not applied (only one pending change at a time).
   */
  pendingConfIndex = 0;
  /** Bytes of uncommitted entries in the leader's log (flow control of proposals). */
  uncommittedSize = 0;
  private readOnly: ReadOnly;
  /** ReadIndex requests received before this leader committed an entry of its term. */
  private pendingReadIndexMessages: Message[] = [];

  // Ticks since the last reset; for followers and candidates since the last leader contact
  // or election start, for the leader since the last CheckQuorum round.
  electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly heartbeatTimeout: number;
  readonly electionTimeout: number;
  private readonly messageBytesMax: number;
  private readonly uncommittedBytesMax: number;
  private readonly disableProposalForwarding: boolean;
  private readonly batchAppends: boolean;
  /** Proposals were appended since the last flushAppends() (batchAppends only). */
  private appendsPending = false;
  private readonly lazyCommit: boolean;
  /** Followers owed the current commit index (lazyCommit only). */
  private readonly commitOwed = new Set<NodeId>();
  /** The last index of the proposals each follower forwarded that may not be committed yet (lazyCommit only). */
  private readonly forwardedUpTo = new Map<NodeId, number>();
  /** The MsgProp this follower forwarded last and its payload bytes (batchAppends only). */
  private lastForward: { m: Message; bytes: number } | undefined;
  private readonly random: Random;

  private tickFn: () => void;
  private stepFn: (m: Message) => void;

  constructor(c: RaftConfig) {
    assert(c.id !== None, 'cannot use none as id');
    assert(c.heartbeatIntervalTicks > 0, 'heartbeat tick must be greater than 0');
    assert(c.electionTimeoutTicks > c.heartbeatIntervalTicks, 'election tick must be greater than heartbeat tick');
    this.id = c.id;
    this.random = c.random;
    this.electionTimeout = c.electionTimeoutTicks;
    this.heartbeatTimeout = c.heartbeatIntervalTicks;
    this.checkQuorum = c.checkQuorum ?? true;
    this.preVote = c.preVote ?? true;
    this.messageBytesMax = c.messageBytesMax ?? raftDefaults.messageBytesMax;
    this.uncommittedBytesMax = c.uncommittedBytesMax ?? raftDefaults.uncommittedBytesMax;
    this.disableProposalForwarding = c.disableProposalForwarding ?? false;
    this.batchAppends = c.batchAppends ?? false;
    this.lazyCommit = c.lazyCommit ?? false;
    this.readOnly = new ReadOnly(c.readOnlyOption ?? 'safe');
    assert(!(this.readOnly.option === 'leaseBased' && !this.checkQuorum), 'CheckQuorum must be enabled when ReadOnlyOption is leaseBased');
    this.raftLog = new RaftLog(c.storage, c.committedBytesPerReadyMax ?? raftDefaults.committedBytesPerReadyMax, !c.asyncStorageWrites);
    this.trk = new ProgressTracker(c.inflightMessagesMax ?? raftDefaults.inflightMessagesMax, c.inflightBytesMax ?? raftDefaults.inflightBytesMax);

    const { hardState, confState } = c.storage.initialState();
    const restored = new Changer(this.trk, this.raftLog.lastIndex()).restore(confState);
    this.switchToConfig(restored.config, restored.progress);
    if (hardState.term !== 0 || hardState.vote !== None || hardState.commit !== 0) {
      assert(hardState.commit >= this.raftLog.committed && hardState.commit <= this.raftLog.lastIndex(), `state.commit ${hardState.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`);
      this.raftLog.committed = hardState.commit;
      this.term = hardState.term;
      this.vote = hardState.vote;
    }
    if (c.applied !== undefined && c.applied > 0) this.raftLog.appliedTo(c.applied);
    this.tickFn = this.tickElection;
    this.stepFn = this.stepFollower;
    this.becomeFollower(this.term, None);
  }

  // ---- output ----

  private send(m: Message): void {
    m.from = this.id;
    if (m.type === 'MsgVote' || m.type === 'MsgVoteResp' || m.type === 'MsgPreVote' || m.type === 'MsgPreVoteResp') {
      // Vote messages carry the term they are for, which is not our term for pre-votes.
      assert(m.term !== 0, `term should be set when sending ${m.type}`);
    } else {
      assert(m.term === 0, `term should not be set when sending ${m.type} (was ${m.term})`);
      // Proposals and read requests forwarded to the leader travel as local messages.
      if (m.type !== 'MsgProp' && m.type !== 'MsgReadIndex') m.term = this.term;
    }
    assert(m.to !== this.id, `message ${m.type} addressed to self`);
    switch (messageClass[m.type]) {
      case 'local':
        assert(false, `local message ${m.type} cannot be sent`);
        break;
      case 'beforePersist':
        this.msgs.push(m);
        break;
      case 'afterPersist':
        this.msgsAfterPersist.push(m);
        break;
    }
  }

  // ---- replication (leader) ----

  /** Sends entries (or a snapshot) to `to` if flow control allows. Returns whether it sent. */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.raftLog.termOrUndefined(prevIndex);
    let ents: Entry[] | undefined;
    if (prevTerm !== undefined) {
      try {
        ents = this.raftLog.entries(pr.next, this.messageBytesMax);
      } catch (e) {
        if (!(e instanceof RaftError && e.code === 'ERR_COMPACTED')) throw e;
      }
    }
    if (prevTerm === undefined || ents === undefined) return this.maybeSendSnapshot(to);
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send(message({ type: 'MsgApp', to, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.raftLog.committed }));
    this.commitOwed.delete(to);
    pr.sentEntries(ents.length, ents.length > 0 ? ents[ents.length - 1].index : prevIndex, payloadSizeBytes(ents));
    return true;
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  private maybeSendSnapshot(to: NodeId): boolean {
    const pr = this.trk.progress.get(to)!;
    if (!pr.recentActive) return false; // it may be down; a snapshot is expensive
    let snapshot: Snapshot;
    try {
      snapshot = this.raftLog.snapshot();
    } catch (e) {
      if (e instanceof RaftError && e.code === 'ERR_SNAPSHOT_TEMPORARILY_UNAVAILABLE') return false;
      throw e;
    }
    assert(snapshot.metadata.index !== 0, 'need non-empty snapshot');
    this.send(message({ type: 'MsgSnap', to, snapshot }));
    pr.becomeSnapshot(snapshot.metadata.index);
    return true;
  }

  private sendHeartbeat(to: NodeId, context: string | undefined): void {
    // A follower may not have all committed entries yet: never tell it to commit past its match.
    const pr = this.trk.progress.get(to)!;
    const commit = Math.min(pr.match, this.raftLog.committed);
    this.send(message({ type: 'MsgHeartbeat', to, commit, context }));
    if (commit === this.raftLog.committed) this.commitOwed.delete(to);
  }

  private forEachPeer(f: (id: NodeId) => void): void {
    for (const id of this.trk.ids()) if (id !== this.id) f(id);
  }

  bcastAppend(): void {
    this.forEachPeer((id) => this.sendAppend(id));
  }

  /** Tells the followers of a commit index that just advanced (see RaftConfig.lazyCommit). */
  private bcastCommit(): void {
    if (!this.lazyCommit) {
      this.bcastAppend();
      return;
    }
    const committed = this.raftLog.committed;
    const last = this.raftLog.lastIndex();
    this.forEachPeer((id) => {
      const pr = this.trk.progress.get(id)!;
      const forwarded = this.forwardedUpTo.get(id);
      if (forwarded !== undefined && forwarded <= committed) {
        this.forwardedUpTo.delete(id);
      } else if (pr.state === ProgressState.Replicate && pr.next > last) {
        // It has every entry already: the commit index is all a MsgApp would carry now.
        this.commitOwed.add(id);
        return;
      }
      this.sendAppend(id);
    });
  }

  /** Whether followers are owed a commit index (lazyCommit): call flushCommit() soon. */
  commitFlushPending(): boolean {
    return this.commitOwed.size > 0;
  }

  /** Sends the commit index to the followers that are owed it (lazyCommit). */
  flushCommit(): void {
    if (this.state !== StateType.Leader) {
      this.commitOwed.clear();
      return;
    }
    // A Set may lose the entry being visited (maybeSendAppend settles it) while iterated.
    for (const id of this.commitOwed) if (!this.maybeSendAppend(id, true)) this.commitOwed.delete(id);
  }

  /**
   * Sends what the proposals since the last call appended (batchAppends): to each follower
   * as many MsgApp as flow control allows, each up to messageBytesMax.
   */
  flushAppends(): void {
    if (!this.appendsPending) return;
    this.appendsPending = false;
    if (this.state !== StateType.Leader) return;
    this.forEachPeer((id) => {
      while (this.maybeSendAppend(id, false));
    });
  }

  private bcastHeartbeat(context?: string): void {
    const ctx = context ?? this.readOnly.lastPendingRequestCtx();
    this.forEachPeer((id) => this.sendHeartbeat(id, ctx));
  }

  /** Commits what a quorum has durably stored, if it is of the current term (paper §5.4.2). */
  maybeCommit(): boolean {
    const mci = this.trk.committed();
    if (!Number.isFinite(mci)) return false;
    return this.raftLog.maybeCommit(mci, this.term);
  }

  /** Called once the leader's own entries up to index are durable: counts itself. */
  selfStableTo(index: number): void {
    if (this.state !== StateType.Leader) return;
    const pr = this.trk.progress.get(this.id);
    if (!pr) return;
    if (pr.maybeUpdate(index) && this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastCommit();
    }
  }

  private appendEntry(es: Entry[]): boolean {
    const li = this.raftLog.lastIndex();
    for (let i = 0; i < es.length; i++) {
      es[i].term = this.term;
      es[i].index = li + 1 + i;
    }
    if (!this.increaseUncommittedSize(es)) return false;
    this.raftLog.append(es);
    // The leader's own progress advances in selfStableTo(), once the entries are durable.
    return true;
  }

  private increaseUncommittedSize(es: Entry[]): boolean {
    const s = payloadSizeBytes(es);
    if (this.uncommittedSize > 0 && s > 0 && this.uncommittedSize + s > this.uncommittedBytesMax) return false;
    this.uncommittedSize += s;
    return true;
  }

  reduceUncommittedSize(es: Entry[]): void {
    if (this.state !== StateType.Leader) return;
    const s = payloadSizeBytes(es);
    this.uncommittedSize = s > this.uncommittedSize ? 0 : this.uncommittedSize - s;
  }

  // ---- role changes ----

  private reset(term: number): void {
    this.appendsPending = false;
    this.commitOwed.clear();
    this.forwardedUpTo.clear();
    if (this.term !== term) {
      this.term = term;
      this.vote = None;
    }
    this.lead = None;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.trk.resetVotes();
    const last = this.raftLog.lastIndex();
    for (const [id, pr] of this.trk.progress) {
      pr.inflights.reset();
      pr.match = 0;
      pr.next = last + 1;
      pr.state = ProgressState.Probe;
      pr.pendingSnapshot = 0;
      pr.msgAppFlowPaused = false;
      pr.recentActive = false;
      // Only what is durable counts for ourselves (see selfStableTo).
      if (id === this.id) pr.match = this.raftLog.stableLastIndex();
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.pendingReadIndexMessages = [];
    // Read requests of an earlier leadership must not be answered by a later one with the
    // commit index they recorded then (as etcd: a new ReadOnly on every reset).
    this.readOnly = new ReadOnly(this.readOnly.option);
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.stepFn = this.stepFollower;
    this.reset(term);
    this.tickFn = this.tickElection;
    this.lead = lead;
    this.state = StateType.Follower;
  }

  private becomeCandidate(): void {
    assert(this.state !== StateType.Leader, 'invalid transition [leader -> candidate]');
    this.stepFn = this.stepCandidate;
    this.reset(this.term + 1);
    this.tickFn = this.tickElection;
    this.vote = this.id;
    this.state = StateType.Candidate;
  }

  private becomePreCandidate(): void {
    assert(this.state !== StateType.Leader, 'invalid transition [leader -> pre-candidate]');
    // A pre-candidate changes neither its term nor its vote (thesis §9.6).
    this.stepFn = this.stepCandidate;
    this.trk.resetVotes();
    this.tickFn = this.tickElection;
    this.lead = None;
    this.state = StateType.PreCandidate;
  }

  private becomeLeader(): void {
    assert(this.state !== StateType.Follower, 'invalid transition [follower -> leader]');
    this.stepFn = this.stepLeader;
    this.reset(this.term);
    this.tickFn = this.tickHeartbeat;
    this.lead = this.id;
    this.state = StateType.Leader;
    const self = this.trk.progress.get(this.id)!;
    self.becomeReplicate();
    self.match = this.raftLog.stableLastIndex();
    self.next = this.raftLog.lastIndex() + 1;
    self.recentActive = true;
    // Conservatively treat every unapplied entry as a possible conf change.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // An empty entry of the new term: committing it commits everything before it (§5.4.2),
    // and it lets ReadIndex start (thesis §6.4).
    const ok = this.appendEntry([{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }]);
    assert(ok, 'empty entry was dropped');
    // The empty entry does not count toward the uncommitted size limit.
    this.uncommittedSize = 0;
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + this.random.int(this.electionTimeout);
  }

  private pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  /** Whether this node may become leader: a voter, with no snapshot waiting to be applied. */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.raftLog.hasNextOrInProgressSnapshot();
  }

  // ---- ticks ----

  tick(): void {
    this.tickFn();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(message({ type: 'MsgHup', from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(message({ type: 'MsgCheckQuorum', from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned (thesis §3.10).
      if (this.state === StateType.Leader && this.leadTransferee !== None) this.abortLeaderTransfer();
    }
    if (this.state !== StateType.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(message({ type: 'MsgBeat', from: this.id }));
    }
  }

  // ---- elections ----

  /**
   * The transport lost its connection to `id` (a connection error, not an idle stream).
   * When `id` is this follower's leader, waiting out the election timeout is usually
   * waiting for a dead process: the follower gives up the leader's lease at once, so that
   * it grants the pre-votes of the others, and the first voter in id order (the leader left
   * out) starts a pre-vote now. The others start theirs `connectionLostStaggerTicks` apart
   * in the same order, so that two pre-votes rarely overlap (mutual pre-vote grants would
   * split the real vote). Safe while the leader lives: only PreVote with CheckQuorum, where
   * the members that still hear the leader reject the pre-vote (leader stickiness, thesis
   * §4.2.3), and a pre-vote changes no term.
   */
  connectionLost(id: NodeId): void {
    if (!this.preVote || !this.checkQuorum) return;
    if (this.state !== StateType.Follower || this.lead === None || this.lead !== id) return;
    if (!this.promotable()) return;
    const rank = this.trk
      .voterIds()
      .filter((v) => v !== id)
      .sort((a, b) => a - b)
      .indexOf(this.id);
    if (rank < 0) return;
    // Out of the lease now (see the stickiness check in step()); the election timer fires
    // after `rank` staggers, or at once.
    const remainingTicks = rank * connectionLostStaggerTicks;
    if (remainingTicks === 0) {
      const elapsed = this.electionElapsed;
      this.electionElapsed = 0;
      this.hup('preElection');
      if (this.state !== StateType.Follower) return;
      this.electionElapsed = elapsed; // no campaign now (a configuration change to apply first)
    }
    // Reported again (a refused reconnect): the turn already set stands.
    if (this.electionElapsed >= this.electionTimeout) return;
    // Not sooner than its turn, even when its own timer was about to fire: that could make
    // its pre-vote overlap with the one of a member before it.
    this.electionElapsed = this.electionTimeout;
    this.randomizedElectionTimeout = this.electionTimeout + remainingTicks;
  }

  private hup(t: CampaignType): void {
    if (this.state === StateType.Leader) return;
    if (!this.promotable()) return;
    if (this.hasUnappliedConfChanges()) return; // its view of the configuration may be stale
    this.campaign(t);
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.raftLog.applied >= this.raftLog.committed) return false;
    const lo = Math.max(this.raftLog.applied + 1, this.raftLog.firstIndex());
    const ents = this.raftLog.slice(lo, this.raftLog.committed + 1, Infinity);
    return ents.some((e) => e.type === EntryType.ConfChange);
  }

  private campaign(t: CampaignType): void {
    if (!this.promotable()) return;
    let term: number;
    let voteMsg: MessageType;
    if (t === 'preElection') {
      this.becomePreCandidate();
      voteMsg = 'MsgPreVote';
      // Pre-votes ask for the next term without moving to it.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = 'MsgVote';
      term = this.term;
    }
    // Our own vote: a candidate's MsgVote leaves only after its term and vote are durable,
    // so no one can count on this election before that.
    const { result } = this.poll(this.id, true);
    if (result === 'won') {
      if (t === 'preElection') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    for (const id of this.trk.voterIds()) {
      if (id === this.id) continue;
      this.send(message({ type: voteMsg, to: id, term, index: lastIndex, logTerm: lastTerm, context: t === 'transfer' ? campaignTransferContext : undefined }));
    }
  }

  private poll(id: NodeId, granted: boolean): ReturnType<ProgressTracker['tallyVotes']> {
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes();
  }

  // ---- step ----

  step(m: Message): void {
    if (m.term === 0) {
      // local message
    } else if (m.term > this.term) {
      if (m.type === 'MsgVote' || m.type === 'MsgPreVote') {
        const force = m.context === campaignTransferContext;
        const inLease = this.checkQuorum && this.lead !== None && this.electionElapsed < this.electionTimeout;
        // Within the lease of a live leader, ignore disruptive candidates (thesis §4.2.3).
        if (!force && inLease) return;
      }
      if (m.type === 'MsgPreVote') {
        // Never change our term in response to a pre-vote.
      } else if (m.type === 'MsgPreVoteResp' && !m.reject) {
        // The higher term is the one we asked for; it becomes ours if we win the pre-vote.
      } else if (m.type === 'MsgApp' || m.type === 'MsgHeartbeat' || m.type === 'MsgSnap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, None);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'MsgHeartbeat' || m.type === 'MsgApp')) {
        // A stale leader, perhaps cut off: tell it our term so that it steps down. Without
        // this, with CheckQuorum or PreVote it could never learn it and the cluster would
        // be stuck with a leader no one follows.
        this.send(message({ type: 'MsgAppResp', to: m.from }));
      } else if (m.type === 'MsgPreVote') {
        this.send(message({ type: 'MsgPreVoteResp', to: m.from, term: this.term, reject: true }));
      }
      return;
    }

    switch (m.type) {
      case 'MsgHup':
        this.hup(this.preVote ? 'preElection' : 'election');
        return;
      case 'MsgVote':
      case 'MsgPreVote': {
        // We can vote for the candidate we already voted for (a repeated request), or anyone
        // if we have neither voted nor have a leader in this term; a pre-vote for a later
        // term never binds us.
        const canVote = this.vote === m.from || (this.vote === None && this.lead === None) || (m.type === 'MsgPreVote' && m.term > this.term);
        const respType = m.type === 'MsgVote' ? 'MsgVoteResp' : 'MsgPreVoteResp';
        // Election restriction (paper §5.4.1): only for a candidate whose log is at least as up to date.
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
          this.send(message({ type: respType, to: m.from, term: m.term }));
          if (m.type === 'MsgVote') {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send(message({ type: respType, to: m.from, term: this.term, reject: true }));
        }
        return;
      }
      default:
        this.stepFn(m);
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'MsgBeat':
        this.bcastHeartbeat();
        return;
      case 'MsgCheckQuorum':
        // Step down if a quorum has not been heard from in an election timeout (thesis §6.2).
        if (!this.trk.quorumActive()) this.becomeFollower(this.term, None);
        for (const [id, pr] of this.trk.progress) if (id !== this.id) pr.recentActive = false;
        return;
      case 'MsgProp':
        this.leaderPropose(m);
        return;
      case 'MsgReadIndex':
        if (this.trk.isSingleton()) {
          this.respondToReadIndex(m, this.raftLog.committed);
          return;
        }
        // Not before an entry of this term is committed: until then our commit index may be
        // behind the previous leader's (thesis §6.4 step 1).
        if (!this.committedEntryInCurrentTerm()) {
          this.pendingReadIndexMessages.push(m);
          return;
        }
        this.sendReadIndexResponse(m);
        return;
      default:
        break;
    }

    const pr = this.trk.progress.get(m.from);
    if (!pr) return;
    switch (m.type) {
      case 'MsgAppResp': {
        pr.recentActive = true;
        if (m.reject) {
          let nextProbeIdx = m.rejectHint;
          if (m.logTerm > 0) nextProbeIdx = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm).index;
          if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
            if (pr.state === ProgressState.Replicate) pr.becomeProbe();
            this.sendAppend(m.from);
          }
          return;
        }
        const oldPaused = pr.isPaused();
        if (pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === ProgressState.Probe)) {
          if (pr.state === ProgressState.Probe) {
            pr.becomeReplicate();
          } else if (pr.state === ProgressState.Snapshot && pr.match + 1 >= this.raftLog.firstIndex()) {
            // The snapshot got it far enough that the log can take over.
            pr.becomeProbe();
            pr.becomeReplicate();
          } else if (pr.state === ProgressState.Replicate) {
            pr.inflights.freeLE(m.index);
          }
          if (this.maybeCommit()) {
            this.releasePendingReadIndexMessages();
            this.bcastCommit();
          } else if (oldPaused) {
            this.sendAppend(m.from);
          }
          // Keep the pipeline full while flow control allows.
          while (this.maybeSendAppend(m.from, false)) {
            // continue
          }
          if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
            this.send(message({ type: 'MsgTimeoutNow', to: m.from }));
          }
        }
        return;
      }
      case 'MsgHeartbeatResp': {
        pr.recentActive = true;
        pr.msgAppFlowPaused = false;
        // Free one slot of a full window: the appends that filled it may all have been lost,
        // and nothing else would ever free it (as etcd's Inflights.FreeFirstOne).
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.raftLog.lastIndex() || pr.state === ProgressState.Probe) this.sendAppend(m.from);
        if (this.readOnly.option !== 'safe' || m.context === undefined) return;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (!acks || this.trk.config.voters.voteResult(acks) !== 'won') return;
        for (const rs of this.readOnly.advance(m.context)) this.respondToReadIndex(rs.req, rs.index);
        return;
      }
      case 'MsgSnapStatus':
        if (pr.state !== ProgressState.Snapshot) return;
        if (m.reject) pr.pendingSnapshot = 0;
        pr.becomeProbe();
        // Wait for a heartbeat response before probing again.
        pr.msgAppFlowPaused = true;
        return;
      case 'MsgUnreachable':
        // The stream may have lost messages: go back to probing.
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        return;
      case 'MsgTransferLeader': {
        if (pr.isLearner) return;
        const transferee = m.from;
        if (this.leadTransferee !== None) {
          if (this.leadTransferee === transferee) return;
          this.abortLeaderTransfer();
        }
        if (transferee === this.id) return;
        // Transfer leadership to the transferee within an election timeout (thesis §3.10).
        this.electionElapsed = 0;
        this.leadTransferee = transferee;
        if (pr.match === this.raftLog.lastIndex()) this.send(message({ type: 'MsgTimeoutNow', to: transferee }));
        else this.sendAppend(transferee);
        return;
      }
      default:
        return;
    }
  }

  private leaderPropose(m: Message): void {
    assert(m.entries.length > 0, `${this.id} stepped empty MsgProp`);
    if (!this.trk.progress.has(this.id)) {
      // Removed from the configuration while still leader: cannot propose.
      throw new RaftError('ERR_PROPOSAL_DROPPED', 'leader is not a member of the configuration');
    }
    if (this.leadTransferee !== None) {
      throw new RaftError('ERR_PROPOSAL_DROPPED', `transferring leadership to ${this.leadTransferee}`);
    }
    const entries = m.entries.map((e) => ({ ...e }));
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      if (e.type !== EntryType.ConfChange) continue;
      const cc = decodeConfChange(e.data);
      const alreadyPending = this.pendingConfIndex > this.raftLog.applied;
      const alreadyJoint = this.trk.config.voters.isJoint();
      const wantsLeaveJoint = isLeaveJoint(cc);
      let refused = '';
      if (alreadyPending) refused = `possible unapplied conf change at index ${this.pendingConfIndex} (applied to ${this.raftLog.applied})`;
      else if (alreadyJoint && !wantsLeaveJoint) refused = 'must transition out of joint config first';
      else if (!alreadyJoint && wantsLeaveJoint) refused = 'not in joint state; refusing empty conf change';
      if (refused !== '') {
        // Replaced by an empty entry so that the proposal's slot still commits (at most one
        // pending change at a time, thesis §4.1).
        entries[i] = { term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) };
      } else {
        this.pendingConfIndex = this.raftLog.lastIndex() + i + 1;
      }
    }
    if (!this.appendEntry(entries)) throw new RaftError('ERR_PROPOSAL_DROPPED', 'too many uncommitted entries');
    if (this.lazyCommit && m.from !== this.id && m.from !== None) this.forwardedUpTo.set(m.from, this.raftLog.lastIndex());
    if (this.batchAppends) this.appendsPending = true;
    else this.bcastAppend();
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.zeroTermOnOutOfBounds(this.raftLog.committed) === this.term;
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0) return;
    if (!this.committedEntryInCurrentTerm()) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.sendReadIndexResponse(m);
  }

  private sendReadIndexResponse(m: Message): void {
    if (this.readOnly.option === 'safe') {
      // Confirm leadership with a round of heartbeats before answering (thesis §6.4 step 3).
      this.readOnly.addRequest(this.raftLog.committed, m);
      this.readOnly.recvAck(this.id, m.context ?? '');
      this.bcastHeartbeat(m.context ?? '');
    } else {
      this.respondToReadIndex(m, this.raftLog.committed);
    }
  }

  private respondToReadIndex(req: Message, index: number): void {
    if (req.from === None || req.from === this.id) {
      this.readStates.push({ index, context: req.context ?? '' });
    } else {
      this.send(message({ type: 'MsgReadIndexResp', to: req.from, index, context: req.context }));
    }
  }

  private stepCandidate(m: Message): void {
    // Only votes of our own kind count: a candidate may still receive late pre-vote answers.
    const myVoteRespType: MessageType = this.state === StateType.PreCandidate ? 'MsgPreVoteResp' : 'MsgVoteResp';
    switch (m.type) {
      case 'MsgProp':
        throw new RaftError('ERR_PROPOSAL_DROPPED', 'no leader');
      case 'MsgApp':
        this.becomeFollower(m.term, m.from); // always m.term === this.term
        this.handleAppendEntries(m);
        return;
      case 'MsgHeartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'MsgSnap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case 'MsgPreVoteResp':
      case 'MsgVoteResp': {
        if (m.type !== myVoteRespType) return;
        const { result } = this.poll(m.from, !m.reject);
        if (result === 'won') {
          if (this.state === StateType.PreCandidate) {
            this.campaign('election');
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === 'lost') {
          // A lost (pre-)election: back to follower; a MsgVoteResp rejection may have a higher
          // term, already handled in step().
          this.becomeFollower(this.term, None);
        }
        return;
      }
      case 'MsgTimeoutNow':
        return; // ignored by candidates
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'MsgProp':
        if (this.lead === None) throw new RaftError('ERR_PROPOSAL_DROPPED', 'no leader');
        if (this.disableProposalForwarding) throw new RaftError('ERR_PROPOSAL_DROPPED', 'proposal forwarding disabled');
        if (this.batchAppends) {
          // Joins the proposal forwarded just before it, if nothing came in between: the
          // leader takes both in one step (and refuses or accepts them together).
          // A merged MsgProp stays within messageBytesMax, as a MsgApp does (one proposal
          // larger than that still travels alone).
          const bytes = payloadSizeBytes(m.entries);
          const f = this.lastForward;
          const last = this.msgs.length > 0 ? this.msgs[this.msgs.length - 1] : undefined;
          if (f !== undefined && last === f.m && f.m.to === this.lead && f.bytes + bytes <= this.messageBytesMax) {
            for (const e of m.entries) f.m.entries.push(e);
            f.bytes += bytes;
            return;
          }
          // A copy of the entries: later proposals are pushed onto it.
          const fwd: Message = { ...m, entries: [...m.entries], to: this.lead, term: 0 };
          this.lastForward = { m: fwd, bytes };
          this.send(fwd);
          return;
        }
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case 'MsgApp':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case 'MsgHeartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case 'MsgSnap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case 'MsgTransferLeader':
        if (this.lead === None) return;
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case 'MsgTimeoutNow':
        // A leader transfer never uses pre-vote: the leader asked for it (thesis §3.10).
        this.hup('transfer');
        return;
      case 'MsgReadIndex':
        if (this.lead === None) return;
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case 'MsgReadIndexResp':
        this.readStates.push({ index: m.index, context: m.context ?? '' });
        return;
      default:
        return;
    }
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      this.send(message({ type: 'MsgAppResp', to: m.from, index: this.raftLog.committed }));
      return;
    }
    const lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send(message({ type: 'MsgAppResp', to: m.from, index: lastNew }));
      return;
    }
    // Reject with a hint: the largest index <= m.index whose term is <= m.logTerm, so the
    // leader can skip a whole term of mismatching entries at once.
    const hint = this.raftLog.findConflictByTerm(Math.min(m.index, this.raftLog.lastIndex()), m.logTerm);
    this.send(message({ type: 'MsgAppResp', to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term }));
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    this.send(message({ type: 'MsgHeartbeatResp', to: m.from, context: m.context }));
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot!;
    if (this.restore(s)) {
      this.send(message({ type: 'MsgAppResp', to: m.from, index: this.raftLog.lastIndex() }));
    } else {
      this.send(message({ type: 'MsgAppResp', to: m.from, index: this.raftLog.committed }));
    }
  }

  /** Installs a snapshot from the leader. Returns false if it was ignored. */
  private restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.raftLog.committed) return false;
    if (this.state !== StateType.Follower) {
      // Only a follower receives snapshots; step down defensively.
      this.becomeFollower(this.term + 1, None);
      return false;
    }
    const cs = s.metadata.confState;
    const inConfig = cs.voters.includes(this.id) || cs.learners.includes(this.id) || cs.votersOutgoing.includes(this.id);
    if (!inConfig) return false; // a snapshot for a configuration without us: a bug elsewhere, or stale
    if (this.raftLog.matchTerm(s.metadata.index, s.metadata.term)) {
      // We have the entry already: fast-forward the commit index instead.
      this.raftLog.commitTo(s.metadata.index);
      return false;
    }
    this.raftLog.restore(s);
    const trk = new ProgressTracker(this.trk.inflightMessagesMax, this.trk.inflightBytesMax);
    const restored = new Changer(trk, this.raftLog.lastIndex()).restore(cs);
    this.switchToConfig(restored.config, restored.progress);
    return true;
  }

  // ---- leader transfer ----

  abortLeaderTransfer(): void {
    this.leadTransferee = None;
  }

  // ---- membership ----

  applyConfChange(cc: ConfChangeV2): ConfState {
    const changer = new Changer(this.trk, this.raftLog.lastIndex());
    let result;
    if (isLeaveJoint(cc)) {
      result = changer.leaveJoint();
    } else {
      const { joint, autoLeave } = entersJoint(cc);
      result = joint ? changer.enterJoint(autoLeave, cc.changes) : changer.simple(cc.changes);
    }
    return this.switchToConfig(result.config, result.progress);
  }

  private switchToConfig(config: TrackerConfig, progress: Map<NodeId, import('./tracker').Progress>): ConfState {
    this.trk.config = config;
    this.trk.progress = progress;
    const cs = confStateOf(config);
    const pr = progress.get(this.id);
    // A leader that is removed, or demoted to learner, steps down (thesis §4.2.2).
    if ((!pr || pr.isLearner) && this.state === StateType.Leader) {
      this.becomeFollower(this.term, None);
      return cs;
    }
    if (this.state !== StateType.Leader || cs.voters.length === 0) return cs;
    // The quorum may have changed: maybe something commits now. Otherwise tell the (new)
    // peers about the latest state.
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastCommit();
    } else {
      this.forEachPeer((id) => {
        this.maybeSendAppend(id, false);
      });
    }
    if (this.leadTransferee !== None && !this.trk.isVoter(this.leadTransferee)) this.abortLeaderTransfer();
    return cs;
  }

  /** Called after the application applied entries up to index. */
  appliedTo(index: number): void {
    const old = this.raftLog.applied;
    this.raftLog.appliedTo(Math.max(old, index));
    if (this.trk.config.autoLeave && index >= this.pendingConfIndex && this.state === StateType.Leader) {
      // The joint config is committed and applied: leave it (thesis §4.3).
      const leave: Entry = { term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange({ transition: 'auto', changes: [] }) };
      if (this.appendEntry([leave])) {
        this.pendingConfIndex = this.raftLog.lastIndex();
        this.bcastAppend();
      }
    }
  }

  appliedSnapshot(s: Snapshot): void {
    const index = s.metadata.index;
    this.raftLog.stableSnapTo(index);
    if (index > this.raftLog.applied) this.raftLog.applied = index;
  }
}
