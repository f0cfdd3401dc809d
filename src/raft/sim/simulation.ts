// One seeded run: N cores on a faulty network with crashes, a client workload and membership
// changes (the fault phase), then a healed, quiet cluster that must elect a leader and apply
// new proposals on every member within bounds (the liveness phase). Every event goes through
// one event queue ordered by step, and every random choice through one SimRandom, so a seed
// replays exactly. It imports the pure core modules directly, never the node runtime (I/O).

import { RawNode } from '../rawnode';
import { MemoryStorage } from '../storage';
import { ConfChangeV2, ConfState, Message, NodeId, Ready, StateType, emptyConfState } from '../types';
import { seededRandom } from '../util';
import { CheckerClock, SafetyChecker, Violation, confStateMembers } from './checker';
import { EventQueue } from './event-queue';
import { MembershipBounds, changedIds, isJoint, leaveJoint, planConfChange, planSecondConfChange } from './membership';
import { Network, NetworkHost } from './network';
import { SimParams, drawParams } from './params';
import { NodeHost, SimNode, describeConfChange } from './sim-node';
import { SimRandom } from './sim-random';
import { latin1ToBytes } from './state-machine';
import { Trace } from './trace';

export interface RunOptions {
  seed: number;
  nodes: 3 | 5;
  /** Keep (and pass to `traceSink`) a line per event. */
  verbose?: boolean;
  traceSink?: (line: string) => void;
  /** Overrides of the per-seed parameters (tests use it to pin a scenario). */
  params?: Partial<SimParams>;
}

export interface SimResult {
  seed: number;
  nodes: 3 | 5;
  ok: boolean;
  /** The first safety violation (the run stops there). */
  violation?: Violation;
  /** Set when the healed cluster missed a liveness bound. */
  livenessFailure?: Violation;
  steps: number;
  ticks: number;
  /** Hash of every event of the run: equal hashes, equal runs. */
  traceHash: number;
  events: number;
  messagesSent: number;
  /** Entries applied by some node (the length of the one history). */
  historyLength: number;
  leaderTerms: number;
  crashes: number;
  partitions: number;
  proposals: number;
  reads: number;
  confChangesProposed: number;
  /** Second conf changes proposed right behind a first (the core must refuse them). */
  confChangesBackToBack: number;
  confChangesApplied: number;
  params: SimParams;
  trace?: string[];
}

type Phase = 'faults' | 'liveness' | 'done';

export class Simulation implements NodeHost, NetworkHost, CheckerClock {
  readonly seed: number;
  readonly params: SimParams;
  readonly rng: SimRandom;
  readonly trace: Trace;
  readonly checker: SafetyChecker;
  readonly network: Network;
  private readonly queue = new EventQueue();
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly tickPhase = new Map<NodeId, number>();
  private readonly everMember = new Set<NodeId>();
  private latestConfIndex = 0;
  /** `${id}/${term}` of leaders seen committing (their first commit is a fault point). */
  private readonly leadersCommitted = new Set<string>();
  private latestConfMembers: NodeId[] = [];
  /** Nodes removed by a committed change, waiting to be shut down. */
  private removals: { id: NodeId; index: number }[] = [];
  private stepNow = 0;
  private phase: Phase = 'faults';
  private nodeIdNext: NodeId;
  private readonly counters = { crashes: 0, partitions: 0, proposals: 0, reads: 0, confChangesProposed: 0, confChangesBackToBack: 0, confChangesApplied: 0 };
  private partitionHealAt = -1;
  // liveness phase
  private healedAtStep = -1;
  private leaderSeenAtStep = -1;
  private livenessProposals: string[] = [];
  private livenessProposedAtStep = -1;
  private leaveProposedAtStep = -1;
  private livenessFailure: Violation | undefined;

  readonly snapshotEntries: number;
  readonly asyncStorageWrites: boolean;
  readonly compactKeepEntries: number;

  constructor(private readonly opts: RunOptions) {
    this.seed = opts.seed;
    this.rng = new SimRandom(opts.seed);
    this.params = { ...drawParams(this.rng, opts.nodes), ...opts.params };
    this.trace = new Trace(opts.verbose ?? false, opts.traceSink);
    this.checker = new SafetyChecker(this);
    const p = this.params;
    this.network = new Network(this.rng, this.trace, this, {
      lossRate: p.lossRate,
      duplicateRate: p.duplicateRate,
      delayStepsMax: p.delayStepsMax,
      longDelayRate: p.longDelayRate,
      longDelayStepsMax: p.longDelayStepsMax,
    });
    this.snapshotEntries = p.snapshotEntries;
    this.asyncStorageWrites = p.asyncStorageWrites;
    this.compactKeepEntries = p.compactKeepEntries;
    this.nodeIdNext = p.nodes + 1;
  }

  // ---- CheckerClock -----------------------------------------------------------------------------

  step(): number {
    return this.stepNow;
  }

  tick(): number {
    return Math.floor(this.stepNow / this.params.stepsPerTick);
  }

  // ---- the run ----------------------------------------------------------------------------------

  run(): SimResult {
    const p = this.params;
    this.trace.event(0, 'params', [p.nodes], () => `seed ${this.seed} ${JSON.stringify(p)}`);
    try {
      const voters: NodeId[] = [];
      for (let id = 1; id <= p.nodes; id++) voters.push(id);
      const cs: ConfState = { ...emptyConfState(), voters };
      for (const id of voters) this.addNode(id, MemoryStorage.bootstrap(cs));
      const faultPhaseEndStep = p.faultPhaseTicks * p.stepsPerTick;
      const stepsMax = faultPhaseEndStep + (p.livenessAppliedTicksMax + 1) * p.stepsPerTick;
      for (this.stepNow = 0; this.stepNow <= stepsMax && this.phase !== 'done'; this.stepNow++) {
        if (this.stepNow === faultPhaseEndStep) this.startLiveness();
        this.runStep();
        if (!this.checker.ok) break;
      }
    } catch (e) {
      const err = e as Error;
      const where = (err.stack ?? '').split('\n').find((l) => l.includes('/src/')) ?? '';
      this.checker.violation('core-exception', `${err.name}: ${err.message} ${where.trim()}`);
    }
    return this.result();
  }

  private runStep(): void {
    const p = this.params;
    for (let ev = this.queue.popDue(this.stepNow); ev !== undefined; ev = this.queue.popDue(this.stepNow)) {
      ev.run();
      if (!this.checker.ok) return;
    }
    for (const node of this.nodes.values()) {
      if ((this.stepNow + this.tickPhase.get(node.id)!) % p.stepsPerTick === 0) node.tick();
      if (!this.checker.ok) return;
    }
    if (this.stepNow % p.stepsPerTick === 0) this.decommissionRemoved();
    if (this.phase === 'faults') {
      this.injectFaults();
      this.runWorkload();
    } else if (this.phase === 'liveness' && this.stepNow % p.stepsPerTick === 0) {
      this.checkLiveness();
    }
  }

  private result(): SimResult {
    const violation = this.checker.violations[0];
    return {
      seed: this.seed,
      nodes: this.params.nodes,
      ok: violation === undefined && this.livenessFailure === undefined,
      violation,
      livenessFailure: this.livenessFailure,
      steps: this.stepNow,
      ticks: this.tick(),
      traceHash: this.trace.hash,
      events: this.trace.eventCount,
      messagesSent: this.network.sentCount,
      historyLength: this.checker.historyLength,
      leaderTerms: this.checker.leaderTermCount,
      crashes: this.counters.crashes,
      partitions: this.counters.partitions,
      proposals: this.counters.proposals,
      reads: this.counters.reads,
      confChangesProposed: this.counters.confChangesProposed,
      confChangesBackToBack: this.counters.confChangesBackToBack,
      confChangesApplied: this.counters.confChangesApplied,
      params: this.params,
      trace: this.opts.verbose ? this.trace.lines : undefined,
    };
  }

  // ---- nodes ------------------------------------------------------------------------------------

  private addNode(id: NodeId, storage: MemoryStorage): SimNode {
    const node = new SimNode(id, storage, this);
    this.nodes.set(id, node);
    this.tickPhase.set(id, this.rng.int(this.params.stepsPerTick));
    node.start();
    return node;
  }

  newRawNode(id: NodeId, storage: MemoryStorage, applied: number): RawNode {
    const p = this.params;
    return new RawNode({
      id,
      storage,
      applied,
      electionTimeoutTicks: p.electionTimeoutTicks,
      heartbeatIntervalTicks: p.heartbeatIntervalTicks,
      random: seededRandom(this.rng.seed()),
      messageBytesMax: p.messageBytesMax,
      inflightMessagesMax: p.inflightMessagesMax,
      inflightBytesMax: p.inflightBytesMax,
      committedBytesPerReadyMax: p.committedBytesPerReadyMax,
      uncommittedBytesMax: p.uncommittedBytesMax,
      checkQuorum: p.checkQuorum,
      preVote: p.preVote,
      batchAppends: p.batchAppends,
      asyncStorageWrites: p.asyncStorageWrites,
      lazyCommit: p.lazyCommit,
    });
  }

  now(): number {
    return this.stepNow;
  }

  schedule(delaySteps: number, run: () => void): void {
    this.queue.push(this.stepNow + delaySteps, run);
  }

  persistDelaySteps(): number {
    return this.rng.range(0, this.params.persistDelayStepsMax);
  }

  crashBeforePersist(node: SimNode, rd: Ready): boolean {
    if (this.phase !== 'faults') return false;
    const p = this.params;
    const hs = node.storage.hardStateNow();
    let rate = 0;
    if (rd.hardState !== undefined && (rd.hardState.term !== hs.term || rd.hardState.vote !== hs.vote)) rate = p.crashBeforeVotePersistRate;
    else if (rd.entries.length > 0 || rd.hardState !== undefined) rate = p.crashBeforePersistRate;
    if (!this.rng.chance(rate)) return false;
    this.counters.crashes++;
    this.scheduleRestart(node);
    return true;
  }

  send(from: SimNode, m: Message): void {
    if (from.decommissioned) return;
    if (m.type === 'MsgSnap' && m.snapshot !== undefined) m = { ...m, snapshot: from.outgoingSnapshot(m.snapshot) };
    this.network.send(m);
  }

  deliver(m: Message): void {
    const target = this.nodes.get(m.to);
    if (target === undefined) return;
    target.deliver(m);
    if (m.type === 'MsgSnap') {
      const from = this.nodes.get(m.from);
      if (from !== undefined) this.schedule(1, () => from.reportSnapshot(m.to, true));
    }
  }

  undeliverable(m: Message, reason: 'partition' | 'loss' | 'down'): void {
    const from = this.nodes.get(m.from);
    if (from === undefined) return;
    if (m.type === 'MsgSnap') this.schedule(1, () => from.reportSnapshot(m.to, false));
    else if (reason !== 'loss' && m.type === 'MsgApp') this.schedule(1, () => from.reportUnreachable(m.to));
    // A follower's answers to a leader that is down or cut off: its connection broke.
    if (reason !== 'loss' && (m.type === 'MsgAppResp' || m.type === 'MsgHeartbeatResp')) this.schedule(1, () => from.reportConnectionLost(m.to));
  }

  isDown(id: NodeId): boolean {
    const node = this.nodes.get(id);
    return node === undefined || !node.alive;
  }

  confChangeApplied(_node: SimNode, index: number, _cc: ConfChangeV2, cs: ConfState): void {
    this.counters.confChangesApplied++;
    // Nodes replaying old history see old configurations: only the newest change counts.
    if (index <= this.latestConfIndex) return;
    this.latestConfIndex = index;
    const members = confStateMembers(cs);
    for (const id of members) this.everMember.add(id);
    this.latestConfMembers = members;
    // A member removed by a committed change is shut down for good (ids are never reused),
    // once every member of the configuration has applied the change (before that, a member
    // still in the old configuration may need its vote).
    for (const other of this.nodes.values()) {
      if (other.decommissioned || !this.everMember.has(other.id) || members.includes(other.id)) continue;
      if (!this.removals.some((r) => r.id === other.id)) this.removals.push({ id: other.id, index });
    }
  }

  /** Shuts down removed nodes whose removal every member has applied. */
  private decommissionRemoved(): void {
    if (this.removals.length === 0) return;
    const appliedMin = Math.min(...this.latestConfMembers.map((id) => this.nodes.get(id)?.appliedIndex ?? -1));
    for (const r of this.removals.filter((r) => r.index <= appliedMin)) {
      const node = this.nodes.get(r.id)!;
      node.decommissioned = true;
      node.crash('removed from the cluster');
    }
    this.removals = this.removals.filter((r) => r.index > appliedMin);
  }

  leaderElected(node: SimNode, term: number): void {
    const p = this.params;
    if (this.phase !== 'faults' || !this.rng.chance(p.newLeaderFaultRate)) return;
    // Half the time at once (its first appends, still in flight, are lost with the link),
    // otherwise within three ticks (in the middle of catching followers up); mostly isolated,
    // sometimes crashed.
    const mode = this.rng.pick(['isolate-now', 'isolate-now', 'isolate-now', 'isolate-later', 'isolate-later', 'crash-later'] as const);
    const delay = mode === 'isolate-now' ? 0 : this.rng.range(1, 3 * p.stepsPerTick);
    const incarnation = node.incarnation;
    this.schedule(delay, () => {
      const role = node.role();
      if (this.phase !== 'faults' || node.incarnation !== incarnation || role === undefined || role.term !== term) return;
      if (mode === 'crash-later') {
        this.crash(node, 'new leader');
        return;
      }
      this.isolate(node);
    });
  }

  leaderCommitted(node: SimNode, term: number): void {
    if (this.phase !== 'faults') return;
    const key = `${node.id}/${term}`;
    const first = !this.leadersCommitted.has(key);
    this.leadersCommitted.add(key);
    if (!this.rng.chance(first ? this.params.leaderFirstCommitFaultRate : this.params.leaderCommitFaultRate)) return;
    // Before the Ready's messages (which carry the new commit index) arrive anywhere.
    this.schedule(0, () => {
      if (this.phase !== 'faults' || node.role()?.term !== term) return;
      this.isolate(node);
    });
  }

  private isolate(node: SimNode): void {
    const p = this.params;
    const others = [...this.nodes.values()].filter((n) => !n.decommissioned && n.id !== node.id).map((n) => n.id);
    this.counters.partitions++;
    this.network.partition([[node.id], others]);
    this.partitionHealAt = this.stepNow + this.rng.range(2, p.partitionTicksMax) * p.stepsPerTick;
  }

  private crash(node: SimNode, reason: string): void {
    node.crash(reason);
    this.counters.crashes++;
    this.scheduleRestart(node);
  }

  private scheduleRestart(node: SimNode): void {
    const p = this.params;
    const incarnation = node.incarnation + (node.alive ? 1 : 0);
    const delay = this.rng.range(0, p.restartDelayTicksMax * p.stepsPerTick);
    this.schedule(delay, () => {
      if (!node.alive && !node.decommissioned && node.incarnation === incarnation) node.start();
    });
  }

  /** The alive leader with the highest term, if any. */
  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const node of this.nodes.values()) {
      const role = node.role();
      if (role === undefined || role.state !== StateType.Leader) continue;
      if (role.term > bestTerm) {
        best = node;
        bestTerm = role.term;
      }
    }
    return best;
  }

  private aliveNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.alive);
  }

  // ---- faults -------------------------------------------------------------------------------------

  private injectFaults(): void {
    const p = this.params;
    const perStep = 1 / p.stepsPerTick;
    if (this.network.partitioned && this.stepNow >= this.partitionHealAt) this.network.heal();
    if (!this.network.partitioned && this.rng.chance(p.partitionRatePerTick * perStep)) this.startPartition();
    if (this.rng.chance(p.crashRatePerTick * perStep)) {
      const alive = this.aliveNodes();
      const leader = this.leader();
      if (alive.length > 0) {
        const victim = leader !== undefined && this.rng.chance(0.3) ? leader : this.rng.pick(alive);
        this.crash(victim, 'fault');
      }
    }
    // A follower's connection to a live leader breaks (and heals at once): its pre-vote must
    // not disturb a leader the others still hear.
    if (this.rng.chance(p.connectionLostRatePerTick * perStep)) {
      const leader = this.leader();
      const followers = this.aliveNodes().filter((n) => n !== leader);
      if (leader !== undefined && followers.length > 0) this.rng.pick(followers).reportConnectionLost(leader.id);
    }
  }

  private startPartition(): void {
    const p = this.params;
    const ids = [...this.nodes.values()].filter((n) => !n.decommissioned).map((n) => n.id);
    if (ids.length < 2) return;
    const shuffled = this.rng.shuffle(ids);
    const leader = this.leader();
    const kind = this.rng.pick(['split', 'isolate-leader', 'leader-minority', 'bridge'] as const);
    let groups: NodeId[][];
    if ((kind === 'isolate-leader' || kind === 'leader-minority') && leader !== undefined) {
      const rest = shuffled.filter((id) => id !== leader.id);
      const minoritySize = kind === 'isolate-leader' ? 0 : this.rng.range(0, Math.max(0, Math.floor(ids.length / 2) - 1));
      groups = [[leader.id, ...rest.slice(0, minoritySize)], rest.slice(minoritySize)];
    } else if (kind === 'bridge' && ids.length >= 3) {
      const bridge = shuffled[0];
      const half = 1 + this.rng.int(ids.length - 2);
      groups = [[bridge, ...shuffled.slice(1, 1 + half)], [bridge, ...shuffled.slice(1 + half)]];
    } else {
      const minority = this.rng.range(1, Math.floor(ids.length / 2));
      groups = [shuffled.slice(0, minority), shuffled.slice(minority)];
    }
    groups = groups.map((g) => [...g].sort((a, b) => a - b));
    this.counters.partitions++;
    this.network.partition(groups);
    this.partitionHealAt = this.stepNow + this.rng.range(1, p.partitionTicksMax) * p.stepsPerTick;
  }

  // ---- workload -----------------------------------------------------------------------------------

  private runWorkload(): void {
    const p = this.params;
    const perStep = 1 / p.stepsPerTick;
    if (this.rng.chance(p.proposeRatePerTick * perStep)) {
      const burst = this.rng.chance(0.1) ? this.rng.range(2, 6) : 1;
      for (let i = 0; i < burst; i++) this.proposeAtRandomNode();
    }
    if (this.rng.chance(p.readRatePerTick * perStep)) this.readAtRandomNode();
    if (this.rng.chance(p.transferRatePerTick * perStep)) this.transferLeader();
    if (this.rng.chance(p.confChangeRatePerTick * perStep)) this.changeMembership();
  }

  private proposeAtRandomNode(): void {
    const alive = this.aliveNodes();
    if (alive.length === 0) return;
    // Half the clients go to a node that believes it leads (maybe a stale leader in a minority).
    const leaders = alive.filter((n) => n.isLeader());
    const node = leaders.length > 0 && this.rng.chance(0.5) ? this.rng.pick(leaders) : this.rng.pick(alive);
    const data = `p${this.counters.proposals++}`;
    const ok = node.propose(latin1ToBytes(data));
    this.trace.event(this.stepNow, 'propose', [node.id, ok ? 1 : 0], () => `${data} at node ${node.id}${ok ? '' : ' (dropped)'}`);
  }

  private readAtRandomNode(): void {
    const alive = this.aliveNodes();
    if (alive.length === 0) return;
    // Half the reads go to a node that believes it leads (maybe a stale leader in a minority).
    const leaders = alive.filter((n) => n.isLeader());
    const node = leaders.length > 0 && this.rng.chance(0.5) ? this.rng.pick(leaders) : this.rng.pick(alive);
    const context = `r${this.counters.reads++}`;
    this.checker.observeReadRequest(context);
    this.trace.event(this.stepNow, 'read', [node.id], () => `${context} at node ${node.id} (max commit ${this.checker.maxCommit})`);
    node.readIndex(context);
  }

  private transferLeader(): void {
    const leader = this.leader();
    if (leader === undefined) return;
    const candidates = leader.confState.voters.filter((id) => id !== leader.id);
    if (candidates.length === 0) return;
    const transferee = this.rng.pick(candidates);
    this.trace.event(this.stepNow, 'transfer', [leader.id, transferee], () => `leader ${leader.id} -> ${transferee}`);
    leader.transferLeader(transferee);
  }

  private membershipBounds(): MembershipBounds {
    return { votersMin: 3, votersMax: this.params.nodes + 1 };
  }

  /** A never-used id, if the run may still add one. It starts with an empty storage. */
  private freshId(): NodeId | undefined {
    return this.nodeIdNext > this.params.nodeIdsMax ? undefined : this.nodeIdNext;
  }

  private changeMembership(): void {
    const leader = this.leader();
    if (leader === undefined) return;
    const cs = leader.confState;
    const cc = planConfChange(this.rng, cs, this.membershipBounds(), this.freshId());
    if (cc === undefined) return;
    this.proposeConfChange(leader, cc);
    if (cc !== leaveJoint && this.rng.chance(this.params.confChangeDoubleRate)) {
      // Back to back: the leader must refuse the second while the first is pending.
      const second = planSecondConfChange(this.rng, cs, cc, this.membershipBounds());
      if (second !== undefined) {
        this.counters.confChangesBackToBack++;
        this.proposeConfChange(leader, second);
      }
    }
  }

  private proposeConfChange(leader: SimNode, cc: ConfChangeV2): void {
    const ok = leader.proposeConfChange(cc);
    this.counters.confChangesProposed++;
    this.trace.event(this.stepNow, 'propose-conf', [leader.id, ok ? 1 : 0, ...changedIds(cc)], () => `${describeConfChange(cc)} at leader ${leader.id}${ok ? '' : ' (dropped)'}`);
    if (!ok) return;
    for (const id of changedIds(cc)) {
      if (id === this.nodeIdNext && !this.nodes.has(id)) {
        this.nodeIdNext++;
        this.addNode(id, new MemoryStorage());
      }
    }
  }

  // ---- liveness -----------------------------------------------------------------------------------

  private startLiveness(): void {
    this.phase = 'liveness';
    this.healedAtStep = this.stepNow;
    this.network.heal();
    this.network.faults = { lossRate: 0, duplicateRate: 0, delayStepsMax: Math.min(this.params.delayStepsMax, 3), longDelayRate: 0, longDelayStepsMax: 0 };
    this.trace.event(this.stepNow, 'liveness', [], () => 'faults stop: network healed, crashed nodes restart');
    for (const node of this.nodes.values()) if (!node.alive && !node.decommissioned) node.start();
  }

  private checkLiveness(): void {
    const p = this.params;
    const ticksSinceHeal = (this.stepNow - this.healedAtStep) / p.stepsPerTick;
    const leader = this.leader();
    const leaderIsVoter = leader !== undefined && (leader.confState.voters.includes(leader.id) || leader.confState.votersOutgoing.includes(leader.id));
    if (leader !== undefined && leaderIsVoter && this.leaderSeenAtStep < 0) this.leaderSeenAtStep = this.stepNow;
    if (this.leaderSeenAtStep < 0) {
      if (ticksSinceHeal > p.livenessLeaderTicksMax) this.failLiveness(`no leader within ${p.livenessLeaderTicksMax} ticks of healing`);
      return;
    }
    if (leader === undefined) {
      if (ticksSinceHeal > p.livenessAppliedTicksMax) this.failLiveness(`no leader ${ticksSinceHeal} ticks after healing`);
      return;
    }
    if (this.livenessProposals.length === 0) {
      for (let i = 0; i < 3; i++) this.livenessProposals.push(`live${i}`);
    }
    const cs = leader.confState;
    if (isJoint(cs) && !cs.autoLeave && this.stepNow - this.leaveProposedAtStep >= p.electionTimeoutTicks * p.stepsPerTick) {
      this.leaveProposedAtStep = this.stepNow;
      this.proposeConfChange(leader, leaveJoint);
    }
    // A client re-proposes what is not applied anywhere yet, every two election timeouts.
    const missing = this.livenessProposals.filter((d) => this.checker.indexOfData(d) === 0);
    if (missing.length > 0 && (this.livenessProposedAtStep < 0 || this.stepNow - this.livenessProposedAtStep >= 2 * p.electionTimeoutTicks * p.stepsPerTick)) {
      this.livenessProposedAtStep = this.stepNow;
      for (const d of missing) {
        const ok = leader.propose(latin1ToBytes(d));
        this.trace.event(this.stepNow, 'propose', [leader.id, ok ? 1 : 0], () => `${d} at leader ${leader.id}${ok ? '' : ' (dropped)'}`);
      }
    }
    const lagging: string[] = [];
    if (missing.length === 0) {
      const needed = Math.max(...this.livenessProposals.map((d) => this.checker.indexOfData(d)));
      for (const id of confStateMembers(cs)) {
        const node = this.nodes.get(id);
        if (node === undefined || !node.alive || node.appliedIndex < needed) lagging.push(`${id}@${node?.appliedIndex ?? 'none'}<${needed} (${leader.describeProgress(id)})`);
      }
      if (lagging.length === 0) {
        this.phase = 'done';
        this.trace.event(this.stepNow, 'done', [this.checker.historyLength], () => `all members applied the liveness proposals; leader ${leader.id}`);
        return;
      }
    }
    if (ticksSinceHeal > p.livenessAppliedTicksMax) {
      const what = missing.length > 0 ? `proposals ${missing.join(',')} not applied` : `members not caught up: ${lagging.join(' ')}`;
      this.failLiveness(`${what} within ${p.livenessAppliedTicksMax} ticks of healing (leader ${leader.id})`);
    }
  }

  private failLiveness(detail: string): void {
    this.livenessFailure = { seed: this.seed, step: this.stepNow, tick: this.tick(), invariant: 'liveness', detail };
    this.phase = 'done';
  }
}

export function runSeed(opts: RunOptions): SimResult {
  return new Simulation(opts).run();
}
