// RawNode: the synchronous face of the Raft core. The caller drives it: tick() on a timer,
// step() for each message from a peer, then ready() / persist / send / apply / advance().

import { encodeConfChange } from './confchange';
import { assert, RaftError } from './errors';
import { messageClass, Raft, RaftConfig } from './raft';
import { confStateOf } from './tracker';
import {
  ConfChangeV2,
  ConfState,
  EntryType,
  HardState,
  hardStateEqual,
  message,
  Message,
  NodeId,
  None,
  Ready,
  SoftState,
  StateType,
} from './types';

export interface PeerProgress {
  match: number;
  next: number;
  state: string;
  isLearner: boolean;
  recentActive: boolean;
}

export interface Status {
  id: NodeId;
  hardState: HardState;
  softState: SoftState;
  applied: number;
  leadTransferee: NodeId;
  confState: ConfState;
  /** Only on the leader. */
  progress?: Map<NodeId, PeerProgress>;
}

export class RawNode {
  readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  /** A Ready handed out and not yet advanced. */
  private pendingReady = false;
  private readonly asyncStorageWrites: boolean;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.asyncStorageWrites = config.asyncStorageWrites ?? false;
    this.prevSoftState = this.softState();
    this.prevHardState = this.hardState();
  }

  get id(): NodeId {
    return this.raft.id;
  }

  tick(): void {
    this.raft.tick();
  }

  /** Whether followers are owed the commit index (RaftConfig.lazyCommit): call flushCommit() soon. */
  commitFlushPending(): boolean {
    return this.raft.commitFlushPending();
  }

  /** Sends the commit index to the followers owed it; the messages come with the next Ready. */
  flushCommit(): void {
    this.raft.flushCommit();
  }

  /** Starts an election now (pre-vote first, when enabled). */
  campaign(): void {
    this.raft.step(message({ type: 'MsgHup' }));
  }

  /** Proposes data to be appended to the log. Throws RaftError ERR_PROPOSAL_DROPPED. */
  propose(data: Uint8Array): void {
    this.raft.step(message({ type: 'MsgProp', from: this.raft.id, entries: [{ term: 0, index: 0, type: EntryType.Normal, data }] }));
  }

  /** Proposes a membership change. Throws RaftError ERR_PROPOSAL_DROPPED. */
  proposeConfChange(cc: ConfChangeV2): void {
    const data = encodeConfChange(cc);
    this.raft.step(message({ type: 'MsgProp', from: this.raft.id, entries: [{ term: 0, index: 0, type: EntryType.ConfChange, data }] }));
  }

  /**
   * Applies a committed ConfChange entry's change; call it, in log order, while applying
   * committed entries. Returns the new configuration. Throws ERR_CONF_CHANGE for an
   * invalid change, leaving the configuration as it was (every member does the same).
   */
  applyConfChange(cc: ConfChangeV2): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** Feeds a message received from a peer. Local message types are refused. */
  step(m: Message): void {
    if (messageClass[m.type] === 'local') throw new RaftError('ERR_STEP_LOCAL_MSG', `cannot step local message ${m.type}`);
    // A response from a peer no longer in the configuration: stale traffic, dropped.
    if (m.from !== None && !this.raft.trk.progress.has(m.from) && isResponse(m.type)) return;
    try {
      this.raft.step(m);
    } catch (e) {
      // A proposal forwarded by a peer that cannot be accepted now: the peer's client retries.
      if (e instanceof RaftError && e.code === 'ERR_PROPOSAL_DROPPED') return;
      throw e;
    }
  }

  /** Asks for a linearizable read point; a ReadState with this context follows in a Ready. */
  readIndex(context: string): void {
    this.raft.step(message({ type: 'MsgReadIndex', context }));
  }

  /** Asks the leader to hand leadership to transferee (thesis §3.10). */
  transferLeader(transferee: NodeId): void {
    this.raft.step(message({ type: 'MsgTransferLeader', from: transferee }));
  }

  /** The transport could not reach id: back off replication to it. */
  reportUnreachable(id: NodeId): void {
    this.raft.step(message({ type: 'MsgUnreachable', from: id }));
  }

  /**
   * The transport's connection to id broke (an error, not an idle stream). A follower of id
   * stops waiting out its election timeout (see Raft.connectionLost).
   */
  reportConnectionLost(id: NodeId): void {
    this.raft.connectionLost(id);
  }

  /** A snapshot sent to id was delivered (ok) or failed. The transport must report each. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.step(message({ type: 'MsgSnapStatus', from: id, reject: !ok }));
  }

  private softState(): SoftState {
    return { lead: this.raft.lead, raftState: this.raft.state };
  }

  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.raftLog.committed };
  }

  /** Whether the next Ready has entries or a snapshot to write. */
  hasEntriesToWrite(): boolean {
    const u = this.raft.raftLog.unstable;
    return u.snapshot !== undefined || u.hasEntriesToPersist();
  }

  hasReady(): boolean {
    const r = this.raft;
    r.flushAppends();
    const ss = this.softState();
    if (ss.lead !== this.prevSoftState.lead || ss.raftState !== this.prevSoftState.raftState) return true;
    if (!hardStateEqual(this.hardState(), this.prevHardState)) return true;
    if (r.raftLog.unstable.snapshot) return true;
    if (r.msgs.length > 0 || r.msgsAfterPersist.length > 0) return true;
    if (r.raftLog.unstable.hasEntriesToPersist()) return true;
    if (r.raftLog.hasNextCommittedEnts()) return true;
    return r.readStates.length > 0;
  }

  /** Everything to do now; see the contract on Ready. Call advance() before the next ready(). */
  ready(): Ready {
    assert(!this.pendingReady, 'ready() called again before advance()');
    const r = this.raft;
    r.flushAppends();
    const rd: Ready = {
      entries: r.raftLog.unstable.entriesToPersist(),
      committedEntries: r.raftLog.nextCommittedEnts(),
      messages: r.msgs,
      messagesAfterPersist: r.msgsAfterPersist,
      readStates: r.readStates,
      mustSync: false,
    };
    r.msgs = [];
    r.msgsAfterPersist = [];
    r.readStates = [];
    const ss = this.softState();
    if (ss.lead !== this.prevSoftState.lead || ss.raftState !== this.prevSoftState.raftState) rd.softState = ss;
    const hs = this.hardState();
    if (!hardStateEqual(hs, this.prevHardState)) rd.hardState = hs;
    if (r.raftLog.unstable.snapshot) rd.snapshot = r.raftLog.unstable.snapshot;
    // A changed commit index alone need not be fsynced: it can be learned again.
    rd.mustSync = rd.entries.length > 0 || rd.snapshot !== undefined || hs.term !== this.prevHardState.term || hs.vote !== this.prevHardState.vote;
    r.raftLog.unstable.acceptInProgress();
    this.pendingReady = true;
    return rd;
  }

  /**
   * The Ready's committed entries were applied and its messages sent; unless
   * asyncStorageWrites, it was also persisted. With asyncStorageWrites its entries are
   * reported durable by persisted() (before or after this).
   */
  advance(rd: Ready): void {
    assert(this.pendingReady, 'advance() without ready()');
    this.pendingReady = false;
    const r = this.raft;
    if (rd.softState) this.prevSoftState = rd.softState;
    if (rd.hardState) this.prevHardState = rd.hardState;
    if (rd.snapshot) r.appliedSnapshot(rd.snapshot);
    if (rd.entries.length > 0 && !this.asyncStorageWrites) {
      const last = rd.entries[rd.entries.length - 1];
      this.persisted(last.index, last.term);
    }
    if (rd.committedEntries.length > 0) {
      r.appliedTo(rd.committedEntries[rd.committedEntries.length - 1].index);
      r.reduceUncommittedSize(rd.committedEntries);
    }
  }

  /**
   * Entries up to (index, term) of a Ready are durable (writes complete in the order the
   * Readies were taken). Ignored if the log no longer holds that entry.
   */
  persisted(index: number, term: number): void {
    const r = this.raft;
    r.raftLog.stableTo(index, term);
    // The leader counts its own entries toward commitment only now that they are durable.
    if (r.state === StateType.Leader) r.selfStableTo(r.raftLog.stableLastIndex());
  }

  status(): Status {
    const r = this.raft;
    const s: Status = {
      id: r.id,
      hardState: this.hardState(),
      softState: this.softState(),
      applied: r.raftLog.applied,
      leadTransferee: r.leadTransferee,
      confState: confStateOf(r.trk.config),
    };
    if (r.state === StateType.Leader) {
      s.progress = new Map();
      for (const id of r.trk.ids()) {
        const pr = r.trk.progress.get(id)!;
        s.progress.set(id, { match: pr.match, next: pr.next, state: pr.state, isLearner: pr.isLearner, recentActive: pr.recentActive });
      }
    }
    return s;
  }
}

function isResponse(t: Message['type']): boolean {
  return t === 'MsgAppResp' || t === 'MsgHeartbeatResp' || t === 'MsgVoteResp' || t === 'MsgPreVoteResp';
}
