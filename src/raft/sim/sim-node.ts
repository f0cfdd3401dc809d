// One simulated member: a Raft core (RawNode), its durable storage (a MemoryStorage that
// survives crashes) and its volatile state machine. The node processes Readys strictly by the
// contract in types.ts, split in time so that a crash can land between sending and persisting:
//
//   ready() -> send `messages` at once -> ... persist delay ... -> persist (snapshot, entries,
//   hard state) -> send `messagesAfterPersist` -> apply snapshot and committed entries, serve
//   read states -> advance().
//
// With asynchronous storage writes (RaftConfig.asyncStorageWrites) a Ready without a snapshot
// is applied and advanced at once, and its write joins a queue: each write completes a
// persist delay after the one before it, then its messagesAfterPersist go out and the core
// hears persisted(). A Ready with a snapshot waits for the queue and then goes the whole way
// as above.
//
// A crash drops the core, the Ready in flight, everything not yet persisted and the state
// machine; a restart rebuilds them from the storage alone.

import { decodeConfChange } from '../confchange';
import { RawNode } from '../rawnode';
import { isRaftError } from '../errors';
import { MemoryStorage, cloneConfState } from '../storage';
import { durablePrefix } from '../util';
import { ConfChangeV2, ConfState, Entry, EntryType, Message, NodeId, Ready, Snapshot, StateType, isEmptySnapshot } from '../types';
import { LogView, SafetyChecker } from './checker';
import { SimStateMachine } from './state-machine';
import { Trace } from './trace';

/** What a node needs from the simulation around it. */
export interface NodeHost {
  readonly checker: SafetyChecker;
  readonly trace: Trace;
  now(): number;
  send(from: SimNode, m: Message): void;
  schedule(delaySteps: number, run: () => void): void;
  persistDelaySteps(): number;
  /** Whether to crash this node right before the persist of `rd` completes. */
  crashBeforePersist(node: SimNode, rd: Ready): boolean;
  newRawNode(id: NodeId, storage: MemoryStorage, applied: number): RawNode;
  /** The leader of `term` advanced its commit index (its Ready is about to go out). */
  leaderCommitted(node: SimNode, term: number): void;
  /** The node just became leader of `term` (first sighting). */
  leaderElected(node: SimNode, term: number): void;
  /** Readies may be taken while earlier ones' writes are in flight. */
  readonly asyncStorageWrites: boolean;
  /** The node applied a configuration change; `cs` is its configuration now. */
  confChangeApplied(node: SimNode, index: number, cc: ConfChangeV2, cs: ConfState): void;
  snapshotEntries: number;
  compactKeepEntries: number;
}

/** Steps from a commit index owed to followers to its flush (a tick is ten steps, the runtime's 1 ms is a hundredth of its tick). */
export const commitFlushSteps = 1;

export interface NodeRole {
  term: number;
  state: StateType;
  lead: NodeId;
  commit: number;
}

export class SimNode {
  /** Durable: survives crashes. */
  readonly storage: MemoryStorage;
  private raw: RawNode | null = null;
  private sm: SimStateMachine | null = null;
  /** The configuration as of the state machine's applied index. */
  private conf: ConfState;
  /** A Ready taken and not advanced yet (it waits for its write). */
  private inflight: Ready | null = null;
  /** How many of the inflight Ready's committed entries were applied before its write. */
  private inflightApplied = 0;
  /** Readies whose writes are in flight, oldest first (one only without asynchronous writes). */
  private writes: Ready[] = [];
  /** A group of writes is in flight. */
  private writing = false;
  /** Bumped by every crash, so that events of a previous life are recognized and dropped. */
  incarnation = 0;
  /** A flushCommit() is scheduled (RaftConfig.lazyCommit). */
  private commitFlushScheduled = false;
  /** Removed from the cluster and shut down for good. */
  decommissioned = false;
  crashedAtStep = -1;

  constructor(
    readonly id: NodeId,
    storage: MemoryStorage,
    private readonly host: NodeHost,
  ) {
    this.storage = storage;
    this.conf = cloneConfState(storage.snapshot().metadata.confState);
  }

  get alive(): boolean {
    return this.raw !== null;
  }

  get appliedIndex(): number {
    return this.sm?.appliedIndex ?? -1;
  }

  get confState(): ConfState {
    return this.conf;
  }

  /** The core's view of its role, or undefined when crashed. */
  role(): NodeRole | undefined {
    if (this.raw === null) return undefined;
    const st = this.raw.status();
    return { term: st.hardState.term, state: st.softState.raftState, lead: st.softState.lead, commit: st.hardState.commit };
  }

  /**
   * The snapshot to put in an outgoing MsgSnap: as etcd's server does, the state machine as
   * applied now, with its configuration, rather than the older stored snapshot (whose
   * configuration may predate the recipient, which would then refuse it).
   */
  outgoingSnapshot(stored: Snapshot): Snapshot {
    const sm = this.sm;
    if (sm === null || sm.appliedIndex <= stored.metadata.index) return stored;
    const index = sm.appliedIndex;
    return { data: sm.snapshotData(), metadata: { index, term: this.storage.term(index), confState: cloneConfState(this.conf) } };
  }

  /** The leader's view of a peer's replication, for failure reports. */
  describeProgress(peer: NodeId): string {
    const pr = this.raw?.status().progress?.get(peer);
    if (pr === undefined) return 'no progress';
    return `${pr.state} match ${pr.match} next ${pr.next}${pr.recentActive ? '' : ' inactive'}`;
  }

  isLeader(): boolean {
    return this.role()?.state === StateType.Leader;
  }

  // ---- life cycle -----------------------------------------------------------------------------

  start(): void {
    const snap = this.storage.snapshot();
    const sm = SimStateMachine.restore(snap.data, snap.metadata.index);
    this.host.checker.observeRestore(this.id, 0, sm.appliedIndex, sm.hash);
    this.sm = sm;
    this.conf = cloneConfState(snap.metadata.confState);
    // With asynchronous writes the state machine (its snapshot) can be ahead of the commit
    // index last written: everything applied was committed, so the commit index starts there
    // (as DiskStorage.startFrom does).
    const hs = this.storage.hardStateNow();
    if (snap.metadata.index > hs.commit) this.storage.setHardState({ ...hs, commit: snap.metadata.index });
    this.raw = this.host.newRawNode(this.id, this.storage, snap.metadata.index);
    this.host.trace.event(this.host.now(), 'start', [this.id, this.incarnation, snap.metadata.index], () => {
      const hs = this.storage.hardStateNow();
      return `node ${this.id} (life ${this.incarnation}) from snapshot ${snap.metadata.index}, log ${this.storage.firstIndex()}..${this.storage.lastIndex()}, term ${hs.term} vote ${hs.vote} commit ${hs.commit}`;
    });
    this.afterInput();
  }

  crash(reason: string): void {
    if (this.raw === null) return;
    this.raw = null;
    this.sm = null;
    this.inflight = null;
    this.writes = [];
    this.writing = false;
    this.commitFlushScheduled = false;
    this.incarnation++;
    this.crashedAtStep = this.host.now();
    this.host.trace.event(this.host.now(), 'crash', [this.id], () => `node ${this.id} (${reason})`);
  }

  // ---- inputs ---------------------------------------------------------------------------------

  tick(): void {
    if (this.raw === null) return;
    this.raw.tick();
    this.afterInput();
  }

  deliver(m: Message): void {
    if (this.raw === null) return;
    try {
      this.raw.step(m);
    } catch (e) {
      // A response from a peer the core no longer knows (removed meanwhile) is dropped.
      if (!isRaftError(e, 'ERR_STEP_PEER_NOT_FOUND')) throw e;
    }
    this.afterInput();
  }

  /** Returns false if the core dropped the proposal (no leader, transfer in progress...). */
  propose(data: Uint8Array): boolean {
    if (this.raw === null) return false;
    try {
      this.raw.propose(data);
      return true;
    } catch (e) {
      if (!isRaftError(e, 'ERR_PROPOSAL_DROPPED')) throw e;
      return false;
    } finally {
      this.afterInput();
    }
  }

  proposeConfChange(cc: ConfChangeV2): boolean {
    if (this.raw === null) return false;
    try {
      this.raw.proposeConfChange(cc);
      return true;
    } catch (e) {
      if (!isRaftError(e, 'ERR_PROPOSAL_DROPPED')) throw e;
      return false;
    } finally {
      this.afterInput();
    }
  }

  readIndex(context: string): void {
    if (this.raw === null) return;
    this.raw.readIndex(context);
    this.afterInput();
  }

  transferLeader(transferee: NodeId): void {
    if (this.raw === null) return;
    this.raw.transferLeader(transferee);
    this.afterInput();
  }

  reportUnreachable(id: NodeId): void {
    if (this.raw === null) return;
    this.raw.reportUnreachable(id);
    this.afterInput();
  }

  reportConnectionLost(id: NodeId): void {
    if (this.raw === null) return;
    this.raw.reportConnectionLost(id);
    this.afterInput();
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    if (this.raw === null) return;
    this.raw.reportSnapshot(id, ok);
    this.afterInput();
  }

  // ---- Ready processing -----------------------------------------------------------------------

  /** After anything that may change the core: observe its role, then handle a Ready if due. */
  private afterInput(): void {
    this.observe();
    this.pump();
    this.scheduleCommitFlush();
  }

  /** As the node runtime: a commit index owed to followers goes out shortly (RaftConfig.lazyCommit). */
  private scheduleCommitFlush(): void {
    if (this.raw === null || this.commitFlushScheduled || !this.raw.commitFlushPending()) return;
    this.commitFlushScheduled = true;
    const incarnation = this.incarnation;
    this.host.schedule(commitFlushSteps, () => {
      if (this.incarnation !== incarnation || this.raw === null) return;
      this.commitFlushScheduled = false;
      this.raw.flushCommit();
      this.afterInput();
    });
  }

  private observe(): void {
    const raw = this.raw;
    if (raw === null) return;
    const st = raw.status();
    const checker = this.host.checker;
    checker.observeCommit(st.hardState.commit);
    if (st.softState.raftState === StateType.Leader) {
      if (checker.observeLeader(this.id, st.hardState.term)) {
        this.host.trace.event(this.host.now(), 'leader', [this.id, st.hardState.term], () => `node ${this.id} leads term ${st.hardState.term}`);
        this.host.leaderElected(this, st.hardState.term);
      }
    }
  }

  private pump(): void {
    const raw = this.raw;
    if (raw === null || this.inflight !== null || !raw.hasReady()) return;
    const rd = raw.ready();
    const now = this.host.now();
    this.host.trace.event(now, 'ready', [this.id, rd.entries.length, rd.committedEntries.length, rd.messages.length, rd.messagesAfterPersist.length], () =>
      describeReady(this.id, rd),
    );
    this.host.checker.observeCommitted(this.id, rd.committedEntries);
    const st = raw.status();
    if (st.softState.raftState === StateType.Leader) {
      const term = st.hardState.term;
      const view = this.logView(rd);
      if (this.host.checker.leaderLogCheckPending(this.id, term)) this.host.checker.checkLeaderLog(this.id, term, view);
      this.host.checker.observeLeaderEntries(this.id, term, rd.entries, view, st.hardState.commit);
      if (rd.hardState !== undefined && rd.hardState.commit > this.storage.hardStateNow().commit) this.host.leaderCommitted(this, term);
    }
    for (const m of rd.messages) this.host.send(this, m);
    const hasSnapshot = rd.snapshot !== undefined && !isEmptySnapshot(rd.snapshot);
    const whole = !this.host.asyncStorageWrites || hasSnapshot;
    if (whole) {
      this.inflight = rd;
      // As the node runtime: committed entries written by earlier Readies are applied
      // before this Ready's write, the rest after it.
      this.inflightApplied = hasSnapshot ? 0 : durablePrefix(rd.committedEntries, rd.entries);
      this.applyEntries(rd.committedEntries.slice(0, this.inflightApplied));
    }
    this.writes.push(rd);
    this.scheduleWrite();
    if (whole) return;
    this.apply(rd);
    raw.advance(rd);
    this.maybeSnapshot();
    this.afterInput();
  }

  /**
   * The writes queued now complete together after one persist delay (the log's group commit:
   * writes made while one is in flight go out together after it).
   */
  private scheduleWrite(): void {
    if (this.writing || this.writes.length === 0) return;
    this.writing = true;
    const group = this.writes.slice();
    const incarnation = this.incarnation;
    this.host.schedule(this.host.persistDelaySteps(), () => {
      for (const rd of group) {
        if (this.incarnation !== incarnation) return;
        this.completeWrite(rd);
      }
      if (this.incarnation !== incarnation) return;
      this.writing = false;
      this.scheduleWrite();
    });
  }

  private completeWrite(rd: Ready): void {
    const host = this.host;
    if (host.crashBeforePersist(this, rd)) {
      this.crash('before persist');
      return;
    }
    const checker = host.checker;
    // 2. persist: snapshot, entries, hard state.
    if (rd.snapshot !== undefined && !isEmptySnapshot(rd.snapshot)) this.storage.applySnapshot(cloneSnapshot(rd.snapshot));
    if (rd.entries.length > 0) {
      this.storage.append(rd.entries.map(cloneEntry));
      const first = Math.max(rd.entries[0].index, this.storage.firstIndex());
      for (const e of rd.entries) {
        if (e.index < first) continue;
        checker.observeStoredEntry(this.id, e, this.storage.term(e.index - 1));
      }
    }
    if (rd.hardState !== undefined) this.storage.setHardState(rd.hardState);
    host.trace.event(host.now(), 'persist', [this.id, this.storage.lastIndex()], () => {
      const hs = this.storage.hardStateNow();
      return `node ${this.id} log ${this.storage.firstIndex()}..${this.storage.lastIndex()} term ${hs.term} vote ${hs.vote} commit ${hs.commit}`;
    });
    // 3. messages that promise durable state.
    for (const m of rd.messagesAfterPersist) host.send(this, m);
    const raw = this.raw!;
    this.writes.shift();
    if (host.asyncStorageWrites && rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1];
      raw.persisted(last.index, last.term);
    }
    if (this.inflight === rd) {
      // 4. apply (what was not applied before the write), 5. advance.
      this.apply(rd, this.inflightApplied);
      this.inflight = null;
      raw.advance(rd);
      this.maybeSnapshot();
    }
    this.afterInput();
  }

  /**
   * Applies a Ready's snapshot and its committed entries (but the first `skip`, applied
   * already) and serves its read states.
   */
  private apply(rd: Ready, skip = 0): void {
    const host = this.host;
    const checker = host.checker;
    if (rd.snapshot !== undefined && !isEmptySnapshot(rd.snapshot)) {
      const restored = SimStateMachine.restore(rd.snapshot.data, rd.snapshot.metadata.index);
      checker.observeRestore(this.id, this.sm!.appliedIndex, restored.appliedIndex, restored.hash);
      this.sm = restored;
      this.conf = cloneConfState(rd.snapshot.metadata.confState);
    }
    this.applyEntries(skip === 0 ? rd.committedEntries : rd.committedEntries.slice(skip));
    for (const rs of rd.readStates) {
      host.trace.event(host.now(), 'read-state', [this.id, rs.index], () => `node ${this.id} ${rs.context} at ${rs.index}`);
      checker.observeReadState(this.id, rs);
    }
  }

  private applyEntries(entries: Entry[]): void {
    const host = this.host;
    const checker = host.checker;
    const raw = this.raw!;
    const sm = this.sm!;
    for (const e of entries) {
      if (!this.durableHere(e)) checker.violation('durable-apply', `node ${this.id} applies entry ${e.index} term ${e.term}, not in its storage (last ${this.storage.lastIndex()})`);
      checker.observeApply(this.id, sm.appliedIndex, e);
      sm.apply(e);
      if (e.type === EntryType.ConfChange) {
        const cc = decodeConfChange(e.data);
        let cs: ConfState;
        try {
          cs = raw.applyConfChange(cc);
        } catch (err) {
          // An invalid change leaves the configuration as it was, on every member alike.
          if (!isRaftError(err, 'ERR_CONF_CHANGE')) throw err;
          cs = raw.status().confState;
        }
        this.conf = cloneConfState(cs);
        host.trace.event(host.now(), 'conf', [this.id, e.index], () => `node ${this.id} applied ${describeConfChange(cc)} at ${e.index}: ${describeConfState(cs)}`);
        host.confChangeApplied(this, e.index, cc, cs);
      }
    }
  }

  private durableHere(e: Entry): boolean {
    const s = this.storage;
    if (e.index <= s.snapshot().metadata.index) return true;
    return e.index <= s.lastIndex() && e.index >= s.firstIndex() && s.term(e.index) === e.term;
  }

  /** Takes a snapshot every `snapshotEntries` applied entries and compacts the log behind it. */
  private maybeSnapshot(): void {
    const sm = this.sm!;
    const snapIndex = this.storage.snapshot().metadata.index;
    if (sm.appliedIndex - snapIndex < this.host.snapshotEntries) return;
    this.storage.createSnapshot(sm.appliedIndex, this.conf, sm.snapshotData());
    const compactIndex = sm.appliedIndex - this.host.compactKeepEntries;
    if (compactIndex >= this.storage.firstIndex()) this.storage.compact(compactIndex);
    this.host.trace.event(this.host.now(), 'snapshot', [this.id, sm.appliedIndex], () => `node ${this.id} at ${sm.appliedIndex}, log from ${this.storage.firstIndex()}`);
  }

  /** The log as it will be once `rd` (and every write in flight before it) is persisted. */
  private logView(rd: Ready): LogView {
    const storage = this.storage;
    const snap = rd.snapshot !== undefined && !isEmptySnapshot(rd.snapshot) ? rd.snapshot.metadata : storage.snapshot().metadata;
    const fromStorage = !(rd.snapshot !== undefined && !isEmptySnapshot(rd.snapshot));
    // Newest first: a write's entries replace whatever older ones wrote from its first index on.
    const pending = [rd, ...[...this.writes].reverse()].filter((w) => w.entries.length > 0).map((w) => w.entries);
    const storageLast = fromStorage ? storage.lastIndex() : snap.index;
    const lastIndex = pending.length > 0 ? pending[0][pending[0].length - 1].index : storageLast;
    // A compacted prefix is behind the storage's snapshot, which may be newer than `snap`.
    const snapshotIndex = fromStorage ? storage.firstIndex() - 1 : snap.index;
    const snapshotTerm = fromStorage ? storage.term(snapshotIndex) : snap.term;
    return {
      snapshotIndex,
      snapshotTerm,
      lastIndex,
      entry: (i: number): Entry | undefined => {
        if (i <= snapshotIndex || i > lastIndex) return undefined;
        for (const ents of pending) {
          if (i >= ents[0].index) return ents[i - ents[0].index];
        }
        if (!fromStorage || i > storageLast) return undefined;
        return storage.entries(i, i + 1, Infinity)[0];
      },
    };
  }
}

function cloneEntry(e: Entry): Entry {
  return { term: e.term, index: e.index, type: e.type, data: e.data };
}

function cloneSnapshot(s: Snapshot): Snapshot {
  return { data: s.data, metadata: { index: s.metadata.index, term: s.metadata.term, confState: cloneConfState(s.metadata.confState) } };
}

export function describeConfChange(cc: ConfChangeV2): string {
  if (cc.changes.length === 0) return `leave-joint(${cc.transition})`;
  return `${cc.transition}[${cc.changes.map((c) => `${c.type} ${c.nodeId}`).join(', ')}]`;
}

export function describeConfState(cs: ConfState): string {
  let s = `voters ${cs.voters.join(',') || '-'}`;
  if (cs.votersOutgoing.length > 0) s += ` & ${cs.votersOutgoing.join(',')}${cs.autoLeave ? ' (auto-leave)' : ''}`;
  if (cs.learners.length > 0) s += ` learners ${cs.learners.join(',')}`;
  if (cs.learnersNext.length > 0) s += ` next ${cs.learnersNext.join(',')}`;
  return s;
}

function describeReady(id: NodeId, rd: Ready): string {
  const parts: string[] = [`node ${id}`];
  if (rd.softState) parts.push(`soft ${rd.softState.raftState} lead ${rd.softState.lead}`);
  if (rd.hardState) parts.push(`hard t${rd.hardState.term} v${rd.hardState.vote} c${rd.hardState.commit}`);
  if (rd.snapshot && !isEmptySnapshot(rd.snapshot)) parts.push(`snap ${rd.snapshot.metadata.index}@t${rd.snapshot.metadata.term}`);
  if (rd.entries.length) parts.push(`ents ${rd.entries[0].index}..${rd.entries[rd.entries.length - 1].index}`);
  if (rd.committedEntries.length) parts.push(`commit ${rd.committedEntries[0].index}..${rd.committedEntries[rd.committedEntries.length - 1].index}`);
  if (rd.messages.length) parts.push(`msgs ${rd.messages.length}`);
  if (rd.messagesAfterPersist.length) parts.push(`after-persist ${rd.messagesAfterPersist.length}`);
  if (rd.readStates.length) parts.push(`reads ${rd.readStates.length}`);
  return parts.join(' ');
}
