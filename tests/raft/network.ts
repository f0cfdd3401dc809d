// A minimal synchronous network of RawNodes for unit tests: each node's Ready is persisted
// at once and its messages queued; deliver() runs until no message is left.

import {
  ConfState,
  decodeConfChange,
  EntryType,
  MemoryStorage,
  Message,
  MessageType,
  NodeId,
  RaftConfig,
  RawNode,
  seededRandom,
  StateType,
} from '../../src/raft';

export interface TestNode {
  id: NodeId;
  rn: RawNode;
  storage: MemoryStorage;
  applied: string[];
}

export type Filter = (m: Message) => boolean; // true: drop

const decoder = new TextDecoder();
const encoder = new TextEncoder();

export class Network {
  readonly nodes = new Map<NodeId, TestNode>();
  queue: Message[] = [];
  /** Every message delivered, for assertions. */
  delivered: Message[] = [];
  private filters: Filter[] = [];

  constructor(
    ids: NodeId[],
    readonly config: Partial<Omit<RaftConfig, 'id' | 'storage'>> = {},
    confState: ConfState = { voters: ids, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
  ) {
    for (const id of ids) {
      const storage = MemoryStorage.bootstrap(confState);
      const rn = new RawNode({ electionTimeoutTicks: 10, heartbeatIntervalTicks: 1, preVote: false, checkQuorum: false, random: seededRandom(id), ...config, id, storage });
      const n = { id, rn, storage, applied: [] };
      this.nodes.set(id, n);
      this.process(n); // apply the bootstrap configuration
    }
    this.queue = [];
  }

  /** Crash and restart: volatile state is lost, storage (what was persisted) is kept. */
  restart(id: NodeId): void {
    const n = this.node(id);
    const snap = n.storage.snapshot();
    n.applied = snap.metadata.index > 0 ? (JSON.parse(decoder.decode(snap.data)) as string[]) : [];
    n.rn = new RawNode({ electionTimeoutTicks: 10, heartbeatIntervalTicks: 1, preVote: false, checkQuorum: false, random: seededRandom(id + 100), ...this.config, id, storage: n.storage, applied: snap.metadata.index });
    this.queue = this.queue.filter((m) => m.to !== id);
  }

  node(id: NodeId): TestNode {
    return this.nodes.get(id)!;
  }

  raft(id: NodeId): RawNode['raft'] {
    return this.node(id).rn.raft;
  }

  /** Drops messages matching f until cleared. */
  drop(f: Filter): void {
    this.filters.push(f);
  }

  isolate(id: NodeId): void {
    this.drop((m) => m.from === id || m.to === id);
  }

  cut(a: NodeId, b: NodeId): void {
    this.drop((m) => (m.from === a && m.to === b) || (m.from === b && m.to === a));
  }

  dropType(t: MessageType): void {
    this.drop((m) => m.type === t);
  }

  recover(): void {
    this.filters = [];
  }

  /** Handles one Ready: persist, queue both message lists, apply. */
  process(n: TestNode): void {
    if (!n.rn.hasReady()) return;
    const rd = n.rn.ready();
    if (rd.snapshot) {
      n.storage.applySnapshot(rd.snapshot);
      n.applied = JSON.parse(decoder.decode(rd.snapshot.data)) as string[];
    }
    n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    // Written at once: with asynchronous writes, the core is told so right away.
    if (this.config.asyncStorageWrites && rd.entries.length > 0) n.rn.persisted(rd.entries[rd.entries.length - 1].index, rd.entries[rd.entries.length - 1].term);
    this.queue.push(...rd.messages, ...rd.messagesAfterPersist);
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) n.rn.applyConfChange(decodeConfChange(e.data));
      else if (e.data.length > 0) n.applied.push(decoder.decode(e.data));
    }
    n.rn.advance(rd);
  }

  /** Processes every node's Ready and delivers messages until the network is quiet. */
  stabilize(maxRounds = 1000): void {
    this.stabilizeExcept(undefined, maxRounds);
  }

  /** stabilize(), but node `held` takes no Ready: messages reach its core and wait there. */
  stabilizeExcept(held: NodeId | undefined, maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      for (const n of this.nodes.values()) if (n.id !== held) this.process(n);
      if (this.queue.length === 0) return;
      const msgs = this.queue;
      this.queue = [];
      for (const m of msgs) {
        if (this.filters.some((f) => f(m))) continue;
        const to = this.nodes.get(m.to);
        if (!to) continue;
        this.delivered.push(m);
        to.rn.step(m);
      }
    }
    throw new Error('network did not stabilize');
  }

  campaign(id: NodeId): void {
    this.node(id).rn.campaign();
    this.stabilize();
  }

  propose(id: NodeId, data: string): void {
    this.node(id).rn.propose(encoder.encode(data));
    this.stabilize();
  }

  tick(id: NodeId, n: number): void {
    for (let i = 0; i < n; i++) this.node(id).rn.tick();
  }

  leader(): NodeId | undefined {
    for (const n of this.nodes.values()) if (n.rn.raft.state === StateType.Leader) return n.id;
    return undefined;
  }

  /** The terms of every entry in a node's log after the bootstrap entries, as in the paper's figures. */
  logTerms(id: NodeId): number[] {
    const s = this.node(id).storage;
    const r = this.raft(id).raftLog;
    const out: number[] = [];
    for (let i = Math.max(s.firstIndex(), 1); i <= r.lastIndex(); i++) out.push(r.term(i));
    return out;
  }

  /** Clears the record of delivered messages and returns what it held. */
  takeDelivered(): Message[] {
    const d = this.delivered;
    this.delivered = [];
    return d;
  }
}
