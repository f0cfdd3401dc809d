// The node runtime: drives a RawNode with a ticker, durable storage, a transport and a
// state machine. One loop handles each Ready in this order:
//
//   send `messages` (the leader's appends go out in parallel with its fsync)
//   -> restore a received snapshot into the state machine
//   -> apply the committed entries already on disk here (written by earlier Readies),
//      holding their watch events
//   -> persist snapshot metadata, entries and hard state in one batch (fsync if needed)
//   -> send `messagesAfterPersist`; release the held watch events
//   -> apply the rest of the committed entries; resolve reads whose index is applied
//   -> advance
//
// Applying before the write is what etcd's server does too (its apply runs alongside the
// WAL write): an entry's response does not wait for the fsync of later entries. It delays
// a follower's acknowledgement by the apply, which is why the watch fan-out waits until
// after the acknowledgement. Nothing is applied before it is on this member's disk.
//
// A commit index that advances reaches followers that have every entry with the next
// append (RaftConfig.lazyCommit), or commitFlushMs later in a message of its own: a lone
// writer's next put carries the commit of its last one, and the followers wake once per
// write instead of twice.
//
// Group commit falls out of this: everything proposed while a batch is being written goes
// into the next Ready, and so into the next batch and fsync.
//
// With the log written off the main thread (wal.ts, 'background'), the node is pipelined
// (RaftConfig.asyncStorageWrites): the write is started and the loop goes on to apply and
// advance, taking the next Ready while it is in flight. When a write completes, its
// `messagesAfterPersist` go out and the core hears persisted(); the core hands out for
// applying only entries durable here. A Ready with a snapshot waits for the writes before it.

import { decodeConfChange } from './confchange';
import { DiskStorage } from './disk-storage';
import { RaftError } from './errors';
import { Emitter } from './event';
import { RaftConfig } from './raft';
import { RawNode } from './rawnode';
import { SnapshotSource, Transport } from './transport';
import { ConfChangeV2, ConfState, Entry, EntryType, Message, NodeId, None, Ready, SnapshotMetadata, StateType } from './types';
import { durablePrefix, seededRandom } from './util';

/** How long a commit index may wait for an append to carry it to the followers. */
export const commitFlushMs = 1;

export interface Logger {
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {}, debug() {} };

/** One committed entry for the state machine; a ConfChange carries the configuration it produced. */
export interface Applied {
  entry: Entry;
  /** For ConfChange entries: the change, and the configuration after it (undefined if it was refused). */
  confChange?: { change: ConfChangeV2; confState: ConfState | undefined };
}

export interface StateMachine {
  /** The last index the state machine applied (durable once sync() resolves), its term and configuration. */
  applied(): { index: number; term: number; confState: ConfState | undefined };
  /** Applies committed entries in log order. */
  apply(entries: Applied[]): void | Promise<void>;
  /** Makes everything applied durable (fsync). Called before the log is compacted. */
  sync(): Promise<void>;
  /** A consistent point-in-time snapshot of the applied state, to send to a lagging member. */
  openSnapshot(): Promise<SnapshotSource>;
  /** Receives a snapshot sent by the leader into a staging area. */
  stageSnapshot(metadata: SnapshotMetadata, chunks: AsyncIterable<Uint8Array>): Promise<void>;
  /** Replaces the state with the staged snapshot (Raft accepted it); durable when it resolves. */
  restoreStaged(metadata: SnapshotMetadata): Promise<void>;
  /**
   * Optional: judges a committed ConfChange against the state after everything before it
   * was applied, before Raft applies it (etcd's ValidateConfigurationChange). A reason
   * refuses it: Raft leaves the configuration as it was and apply() gets it with no
   * confState. Must decide the same on every member.
   */
  refuseConfChange?(change: ConfChangeV2, index: number): string | undefined;
  /**
   * Optional: holds what apply() notifies besides its callers (watch events) until the
   * returned function is called. The node holds them while it applies entries ahead of a
   * write, until the write is made and acknowledged: applying ahead is for the responses.
   */
  holdNotifications?(): () => void;
  /**
   * Optional: whether a caller on this member waits for an entry to be applied (a request
   * proposed here). When none does, committed entries that arrive with new ones are applied
   * after the new ones are written and acknowledged, not before: the leader is waiting for
   * the acknowledgement, and nobody here for the apply. Taken as true when absent.
   */
  awaitsApply?(): boolean;
}

export interface RaftNodeOptions {
  id: NodeId;
  storage: DiskStorage;
  stateMachine: StateMachine;
  transport: Transport;
  /** Milliseconds per tick (etcd's --heartbeat-interval is one tick). */
  tickMs: number;
  electionTimeoutTicks: number;
  heartbeatIntervalTicks: number;
  /** Applied entries between two compactions of the log (etcd's --snapshot-count). */
  snapshotEntriesCount: number;
  /** Entries kept after a compaction so that slightly lagging followers need no snapshot. */
  compactionKeepEntries?: number;
  logger?: Logger;
  /** Seed for the election timeout randomization; defaults to one from the id and the clock. */
  seed?: number;
  raft?: Partial<Omit<RaftConfig, 'id' | 'storage' | 'random' | 'electionTimeoutTicks' | 'heartbeatIntervalTicks' | 'applied'>>;
}

export interface LeaderChange {
  lead: NodeId;
  term: number;
  state: StateType;
}

interface PendingRead {
  ctx: string;
  waiters: { resolve: (index: number) => void; reject: (e: Error) => void }[];
  sentAtMs: number;
}

export class RaftNode {
  readonly id: NodeId;
  readonly rn: RawNode;
  readonly onLeaderChange = new Emitter<LeaderChange>();
  /** Fired after each synced write of the log, with its duration in seconds. */
  readonly onFsync = new Emitter<number>();
  /** Fired after each batch of entries is applied, with the new applied index. */
  readonly onApplied = new Emitter<number>();
  /**
   * Fired right before the node blocks on writing its log on this thread (inline writes),
   * after it applied what was already on disk: output queued by that apply (responses to
   * its callers) should be sent now, or it would wait for the write and its fsync.
   */
  readonly beforeBlockingWrite = new Emitter<void>();
  private readonly opts: RaftNodeOptions;
  private readonly log: Logger;
  private ticker: NodeJS.Timeout | undefined;
  private commitFlushTimer: NodeJS.Timeout | undefined;
  /** When the loop first saw followers owed the commit index (undefined: nothing owed). */
  private commitOwedAtMs: number | undefined;
  private running = false;
  private loopScheduled = false;
  private loopSoon = false;
  private loopActive = false;
  private stopped = false;
  private appliedIndex: number;
  private lead: NodeId = None;
  private state: StateType = StateType.Follower;
  /** Reads waiting for the next ReadIndex round. */
  private readQueue: PendingRead['waiters'] = [];
  private readInFlight: PendingRead | undefined;
  private readSeq = 0;
  /** Reads whose ReadState arrived, waiting for the applied index to reach it. */
  private readsWaitingApply: { index: number; waiters: PendingRead['waiters'] }[] = [];
  private snapshotsInFlight = new Set<NodeId>();
  private readonly pipelined: boolean;
  private compacting = false;

  constructor(opts: RaftNodeOptions) {
    this.opts = opts;
    this.id = opts.id;
    this.log = opts.logger ?? silentLogger;
    const applied = opts.stateMachine.applied();
    opts.storage.startFrom(applied);
    this.appliedIndex = applied.index;
    // A log written off the main thread is written while the node goes on (see handleReady).
    this.pipelined = !opts.storage.writesInline;
    this.rn = new RawNode({
      asyncStorageWrites: this.pipelined,
      checkQuorum: true,
      preVote: true,
      // Proposals of one event-loop turn go out together (see RaftConfig.batchAppends).
      batchAppends: true,
      lazyCommit: true,
      ...opts.raft,
      id: opts.id,
      storage: opts.storage,
      electionTimeoutTicks: opts.electionTimeoutTicks,
      heartbeatIntervalTicks: opts.heartbeatIntervalTicks,
      applied: applied.index,
      random: seededRandom(opts.seed ?? (opts.id * 2654435761 + Date.now()) >>> 0),
    });
  }

  async start(): Promise<void> {
    this.running = true;
    await this.opts.transport.start({
      step: (m) => this.step(m),
      receiveSnapshot: (m, chunks) => this.receiveSnapshot(m, chunks),
      reportUnreachable: (id) => {
        this.rn.reportUnreachable(id);
        this.schedule();
      },
      reportConnectionLost: (id) => {
        if (!this.running) return;
        this.rn.reportConnectionLost(id);
        this.schedule();
      },
    });
    this.ticker = setInterval(() => this.tick(), this.opts.tickMs);
    this.ticker.unref?.();
    this.schedule();
  }

  get leader(): NodeId {
    return this.lead;
  }

  isLeader(): boolean {
    return this.state === StateType.Leader;
  }

  get applied(): number {
    return this.appliedIndex;
  }

  tick(): void {
    if (!this.running) return;
    this.rn.tick();
    this.expireStaleReads();
    this.schedule();
  }

  step(m: Message): void {
    if (!this.running) return;
    try {
      this.rn.step(m);
    } catch (e) {
      this.log.warn({ err: String(e), type: m.type, from: m.from }, 'dropped a message from a peer');
    }
    // What a peer sent is taken as soon as the messages that came with it are stepped, not a
    // turn later (a follower's acknowledgement, a leader's commit are what others wait for),
    // unless it leaves a leader with entries to write that proposals read later in this turn
    // could share the write with. Only a leader batches: a follower's entries come from it.
    this.schedule(!this.isLeader() || !this.rn.hasEntriesToWrite());
  }

  /** Proposes data; throws RaftError ERR_PROPOSAL_DROPPED when it cannot be accepted now. */
  propose(data: Uint8Array): void {
    this.rn.propose(data);
    this.schedule();
  }

  proposeConfChange(cc: ConfChangeV2): void {
    this.rn.proposeConfChange(cc);
    this.schedule();
  }

  transferLeader(transferee: NodeId): void {
    this.rn.transferLeader(transferee);
    this.schedule();
  }

  /**
   * A linearizable read point: resolves with an index once it is applied locally and no
   * later leader can have committed past it when the read began (thesis §6.4). Concurrent
   * callers share one round of ReadIndex: those arriving while a round is in flight wait
   * for the next one, which starts after them.
   */
  readIndex(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.readQueue.push({ resolve, reject });
      this.startReadRound();
    });
  }

  private startReadRound(): void {
    if (this.readInFlight || this.readQueue.length === 0 || !this.running) return;
    const ctx = `${this.id}:${++this.readSeq}`;
    this.readInFlight = { ctx, waiters: this.readQueue, sentAtMs: Date.now() };
    this.readQueue = [];
    this.rn.readIndex(ctx);
    this.schedule();
  }

  /** A round that got no answer (no leader, or it changed) is sent again; callers time out on their own. */
  private expireStaleReads(): void {
    const r = this.readInFlight;
    if (!r) return;
    if (Date.now() - r.sentAtMs > this.opts.tickMs * this.opts.electionTimeoutTicks) {
      r.sentAtMs = Date.now();
      this.rn.readIndex(r.ctx);
    }
  }

  /**
   * Runs the loop in the next turn (setImmediate), so that what else arrives in this one
   * joins its Ready; `soon`: once the current callback is done (a microtask) instead.
   */
  private schedule(soon = false): void {
    if (this.loopActive || !this.running || (soon ? this.loopSoon : this.loopScheduled)) return;
    if (soon) this.loopSoon = true;
    else this.loopScheduled = true;
    (soon ? queueMicrotask : setImmediate)(() => {
      if (soon) this.loopSoon = false;
      else this.loopScheduled = false;
      void this.loop();
    });
  }

  private async loop(): Promise<void> {
    if (this.loopActive) return;
    this.loopActive = true;
    try {
      while (this.running && this.rn.hasReady()) {
        await this.handleReady(this.rn.ready());
      }
    } catch (e) {
      this.fail(e);
    } finally {
      this.loopActive = false;
    }
    if (this.running && this.rn.hasReady()) this.schedule();
    this.armCommitFlush();
  }

  /**
   * Sends the commit index to followers still owed it once it has waited commitFlushMs
   * (see RaftConfig.lazyCommit). Runs after every loop: a debt is timed from the loop that
   * first saw it, so that a debt settled by an append and a new one after it are not taken
   * for one.
   */
  private armCommitFlush(): void {
    if (!this.running || !this.rn.commitFlushPending()) {
      this.commitOwedAtMs = undefined;
      return;
    }
    this.commitOwedAtMs ??= performance.now();
    if (this.commitFlushTimer === undefined) this.commitFlushTimer = setTimeout(() => this.commitFlushDue(), commitFlushMs);
  }

  private commitFlushDue(): void {
    this.commitFlushTimer = undefined;
    if (!this.running || this.commitOwedAtMs === undefined) return;
    const waitMs = this.commitOwedAtMs + commitFlushMs - performance.now();
    if (waitMs > 0) {
      this.commitFlushTimer = setTimeout(() => this.commitFlushDue(), waitMs);
      return;
    }
    this.commitOwedAtMs = undefined;
    this.rn.flushCommit();
    this.schedule();
  }

  failed: Error | undefined;
  readonly onFailure = new Emitter<Error>();

  /** Storage or state machine failure: the node cannot go on safely. */
  private fail(e: unknown): void {
    if (this.failed) return;
    this.log.error({ err: e instanceof Error ? e.stack : String(e) }, 'raft node loop failed; stopping');
    this.running = false;
    this.failed = e instanceof Error ? e : new Error(String(e));
    this.onFailure.fire(this.failed);
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState) this.noteSoftState(rd.softState.lead, rd.softState.raftState);
    this.sendMessages(rd.messages);
    if (rd.snapshot) {
      // Writes in flight first: the snapshot replaces the log they write to.
      await this.opts.storage.flushed();
      await this.opts.stateMachine.restoreStaged(rd.snapshot.metadata);
      this.appliedIndex = rd.snapshot.metadata.index;
    }
    // Inline, committed entries that an earlier Ready's write put on disk here are applied
    // before this Ready's write: their clients' responses do not wait for the fsync of the
    // entries that came after them. What the apply notifies otherwise (watch events) is held
    // until the write is made and acknowledged, so that a follower's acknowledgement waits
    // for the apply alone. Those of this Ready's own entries that are committed already (a
    // follower hearing of a commit with the entries) are applied after the write. When no
    // caller here waits for an apply (a follower whose clients are elsewhere: it learns of a
    // commit with the next append), all of them are: the acknowledgement goes first.
    const committed = rd.committedEntries;
    let early = this.pipelined || rd.snapshot ? 0 : durablePrefix(committed, rd.entries);
    if (early > 0 && rd.entries.length > 0 && !this.applyAwaited(rd)) early = 0;
    const release = early > 0 && rd.entries.length > 0 ? this.opts.stateMachine.holdNotifications?.() : undefined;
    try {
      if (early > 0) {
        await this.applyEntries(early === committed.length ? committed : committed.slice(0, early));
        if (rd.mustSync) this.beforeBlockingWrite.fire();
      }
      await this.persist(rd);
    } finally {
      release?.();
    }
    if (early < committed.length) await this.applyEntries(early === 0 ? committed : committed.slice(early));
    for (const rs of rd.readStates) this.readStateArrived(rs.index, rs.context);
    this.rn.advance(rd);
    this.resolveAppliedReads();
    if (rd.committedEntries.length > 0 || rd.snapshot) this.onApplied.fire(this.appliedIndex);
    this.maybeCompact();
  }

  /**
   * Writes the Ready's snapshot, entries and hard state and sends its messagesAfterPersist
   * once they are durable: here, or pipelined, when the write completes.
   */
  private async persist(rd: Ready): Promise<void> {
    const t0 = performance.now();
    const saved = this.opts.storage.save({ hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot, sync: rd.mustSync });
    const last = rd.entries.length > 0 ? rd.entries[rd.entries.length - 1] : undefined;
    if (rd.snapshot || !this.pipelined) {
      await saved;
      const seconds = (performance.now() - t0) / 1000;
      // Pipelined, the core hears of every write, this one (waited for) included.
      if (this.pipelined && last) this.rn.persisted(last.index, last.term);
      this.sendMessages(rd.messagesAfterPersist);
      // After the acknowledgements: the leader is waiting for them, not for the metric.
      if (rd.mustSync) this.onFsync.fire(seconds);
    } else {
      // The write goes on while this Ready's committed entries (durable here already) are
      // applied and later Readies are taken; its acknowledgements go out, and the leader
      // counts its entries, when it is on disk. Writes complete in order, and a save with
      // nothing to write waits for the writes before it, so that messagesAfterPersist never
      // claim more than is durable.
      const after = rd.messagesAfterPersist;
      const sync = rd.mustSync;
      saved.then(
        () => {
          if (!this.running) return;
          const seconds = (performance.now() - t0) / 1000;
          if (last) this.rn.persisted(last.index, last.term);
          this.sendMessages(after);
          if (sync) this.onFsync.fire(seconds);
          this.schedule();
        },
        (e: unknown) => this.fail(e),
      );
    }
  }

  private noteSoftState(lead: NodeId, state: StateType): void {
    const changed = lead !== this.lead || state !== this.state;
    this.lead = lead;
    this.state = state;
    if (!changed) return;
    this.log.info({ lead, state, term: this.rn.raft.term }, 'raft state changed');
    this.onLeaderChange.fire({ lead, term: this.rn.raft.term, state });
    // A pending ReadIndex is dropped by a change of leader: ask again.
    if (this.readInFlight && lead !== None) this.rn.readIndex(this.readInFlight.ctx);
  }

  private sendMessages(msgs: Message[]): void {
    if (msgs.length === 0) return;
    const plain: Message[] = [];
    for (const m of msgs) {
      if (m.type === 'MsgSnap') void this.sendSnapshot(m);
      else plain.push(m);
    }
    if (plain.length > 0) this.opts.transport.send(plain);
  }

  /**
   * Raft's snapshot is only a compaction marker: the data sent is a point-in-time snapshot
   * of the state machine at its applied index (etcd's "merged snapshot"), which is at
   * least as new.
   */
  private async sendSnapshot(m: Message): Promise<void> {
    if (this.snapshotsInFlight.has(m.to)) return;
    this.snapshotsInFlight.add(m.to);
    let ok = false;
    try {
      const src = await this.opts.stateMachine.openSnapshot();
      try {
        const msg: Message = { ...m, snapshot: { data: new Uint8Array(0), metadata: src.metadata } };
        this.log.info({ to: m.to, index: src.metadata.index }, 'sending snapshot');
        ok = await this.opts.transport.sendSnapshot(msg, src);
      } finally {
        src.close();
      }
    } catch (e) {
      this.log.warn({ to: m.to, err: String(e) }, 'snapshot send failed');
    } finally {
      this.snapshotsInFlight.delete(m.to);
      if (this.running) {
        this.rn.reportSnapshot(m.to, ok);
        this.schedule();
      }
    }
  }

  private async receiveSnapshot(m: Message, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const meta = m.snapshot!.metadata;
    this.log.info({ from: m.from, index: meta.index }, 'receiving snapshot');
    await this.opts.stateMachine.stageSnapshot(meta, chunks);
    this.step(m);
  }

  private async applyEntries(entries: Entry[]): Promise<void> {
    let batch: Applied[] = [];
    const sm = this.opts.stateMachine;
    for (const entry of entries) {
      if (entry.index <= this.appliedIndex) continue; // already in the state machine (restart)
      if (entry.type === EntryType.ConfChange) {
        const change = decodeConfChange(entry.data);
        // The state machine judges the change on the state right before it.
        if (sm.refuseConfChange && batch.length > 0) {
          await sm.apply(batch);
          batch = [];
        }
        const refusal = sm.refuseConfChange?.(change, entry.index);
        let confState: ConfState | undefined;
        try {
          if (refusal === undefined) confState = this.rn.applyConfChange(change);
          else this.log.warn({ index: entry.index, reason: refusal }, 'configuration change refused by the state machine');
        } catch (e) {
          if (!(e instanceof RaftError && e.code === 'ERR_CONF_CHANGE')) throw e;
          this.log.warn({ index: entry.index, err: e.message }, 'configuration change refused');
        }
        batch.push({ entry, confChange: { change, confState } });
      } else {
        batch.push({ entry });
      }
    }
    if (batch.length > 0) await this.opts.stateMachine.apply(batch);
    this.appliedIndex = Math.max(this.appliedIndex, entries[entries.length - 1].index);
  }

  /** Whether a caller on this member waits for committed entries to be applied. */
  private applyAwaited(rd: Ready): boolean {
    return this.opts.stateMachine.awaitsApply?.() !== false || this.readsWaitingApply.length > 0 || rd.readStates.length > 0;
  }

  private readStateArrived(index: number, ctx: string): void {
    const r = this.readInFlight;
    if (!r || r.ctx !== ctx) return;
    this.readInFlight = undefined;
    this.readsWaitingApply.push({ index, waiters: r.waiters });
    this.startReadRound();
  }

  private resolveAppliedReads(): void {
    if (this.readsWaitingApply.length === 0) return;
    const still: typeof this.readsWaitingApply = [];
    for (const r of this.readsWaitingApply) {
      if (r.index <= this.appliedIndex) for (const w of r.waiters) w.resolve(r.index);
      else still.push(r);
    }
    this.readsWaitingApply = still;
  }

  /** Compacts the log once enough entries were applied since the last compaction. */
  private maybeCompact(): void {
    const s = this.opts.storage;
    if (this.compacting || this.appliedIndex - s.firstIndex() + 1 <= this.opts.snapshotEntriesCount) return;
    this.compacting = true;
    void (async () => {
      try {
        await this.opts.stateMachine.sync();
        const a = this.opts.stateMachine.applied();
        const keep = this.opts.compactionKeepEntries ?? 5000;
        const compactIndex = Math.max(a.index - keep, s.firstIndex() - 1);
        if (a.confState && compactIndex >= s.firstIndex()) {
          await s.compact({ index: a.index, term: a.term, confState: a.confState }, compactIndex);
          this.log.info({ applied: a.index, compactIndex }, 'compacted raft log');
        }
      } catch (e) {
        this.log.warn({ err: String(e) }, 'log compaction failed');
      } finally {
        this.compacting = false;
      }
    })();
  }

  /** Stops ticking and processing; pending reads fail. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.running = false;
    if (this.ticker) clearInterval(this.ticker);
    if (this.commitFlushTimer) clearTimeout(this.commitFlushTimer);
    const err = new Error('raft node stopped');
    for (const w of this.readQueue) w.reject(err);
    for (const w of this.readInFlight?.waiters ?? []) w.reject(err);
    for (const r of this.readsWaitingApply) for (const w of r.waiters) w.reject(err);
    this.readQueue = [];
    this.readInFlight = undefined;
    this.readsWaitingApply = [];
    while (this.loopActive) await new Promise((r) => setTimeout(r, 1));
    await this.opts.transport.stop();
  }
}
