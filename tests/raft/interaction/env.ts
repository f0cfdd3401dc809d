// A scripted environment for the Raft core: commands drive a few RawNodes by hand, and
// every effect is written to a trace that is compared with a golden file.
//
// Processing a Ready here persists at once, then queues both message lists; the timing of
// crashes between the two is the simulator's business.

import {
  ConfChangeSingle,
  ConfChangeTransition,
  ConfState,
  decodeConfChange,
  EntryType,
  MemoryStorage,
  Message,
  NodeId,
  RaftConfig,
  RaftError,
  RawNode,
  seededRandom,
  StateType,
} from '../../../src/raft';
import { formatConfState, formatEntries, formatHardState, formatMessage, formatReady } from './format';

interface EnvNode {
  id: NodeId;
  rn: RawNode;
  storage: MemoryStorage;
  config: Omit<RaftConfig, 'storage' | 'random' | 'id'>;
  applied: string[];
  seed: number;
}

export interface Command {
  name: string;
  args: string[];
  kv: Map<string, string>;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

export class InteractionEnv {
  readonly nodes = new Map<NodeId, EnvNode>();
  /** Messages sent and not yet delivered, in send order. */
  private inFlight: Message[] = [];
  private out: string[] = [];
  /** Sets of ids; a message crossing two different sets is dropped on delivery. */
  private partitions: Set<NodeId>[] = [];

  run(cmd: Command): string {
    this.out = [];
    const handler = this.handlers[cmd.name];
    if (!handler) throw new Error(`unknown command ${cmd.name}`);
    try {
      handler(cmd);
    } catch (e) {
      if (e instanceof RaftError) this.out.push(`error: ${e.code}${e.message !== e.code ? ` (${e.message})` : ''}`);
      else throw e;
    }
    return this.out.join('\n');
  }

  private log(line: string, indent = 0): void {
    this.out.push(' '.repeat(indent) + line);
  }

  private node(idArg: string | undefined): EnvNode {
    const id = Number(idArg);
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${idArg}`);
    return n;
  }

  private ids(cmd: Command): NodeId[] {
    const ids = cmd.args.map(Number).filter((n) => !Number.isNaN(n));
    return ids.length > 0 ? ids : [...this.nodes.keys()].sort((a, b) => a - b);
  }

  private readonly handlers: Record<string, (cmd: Command) => void> = {
    // add-nodes N voters=(1,2,3) learners=(4) prevote=true checkquorum=true readonly=safe inflight=256 maxbytes=N index=0
    'add-nodes': (cmd) => {
      const count = Number(cmd.args[0]);
      const list = (k: string): NodeId[] => (cmd.kv.get(k) ?? '').replace(/[()]/g, '').split(/[ ,]+/).filter(Boolean).map(Number);
      const cs: ConfState = { voters: list('voters'), learners: list('learners'), votersOutgoing: [], learnersNext: [], autoLeave: false };
      const bool = (k: string, d: boolean): boolean => (cmd.kv.has(k) ? cmd.kv.get(k) === 'true' : d);
      for (let i = 0; i < count; i++) {
        const id = this.nodes.size + 1;
        const storage = MemoryStorage.bootstrap(cs);
        const config: EnvNode['config'] = {
          electionTimeoutTicks: 10,
          heartbeatIntervalTicks: 1,
          preVote: bool('prevote', false),
          checkQuorum: bool('checkquorum', false),
          readOnlyOption: (cmd.kv.get('readonly') as 'safe' | 'leaseBased' | undefined) ?? 'safe',
          inflightMessagesMax: Number(cmd.kv.get('inflight') ?? 256),
          messageBytesMax: Number(cmd.kv.get('maxbytes') ?? 1024 * 1024),
        };
        const seed = id;
        const rn = new RawNode({ ...config, id, storage, random: seededRandom(seed) });
        const node: EnvNode = { id, rn, storage, config, applied: [], seed };
        this.nodes.set(id, node);
        // Apply the bootstrap configuration entries before the script goes on.
        const saved = this.out;
        this.out = [];
        this.processReady(node);
        this.out = saved;
        const st = rn.status();
        this.log(`INFO ${id} is a ${st.softState.raftState} at term ${st.hardState.term} with ${formatConfState(st.confState)}, log ${storage.firstIndex()}..${storage.lastIndex()}`);
      }
    },
    campaign: (cmd) => this.node(cmd.args[0]).rn.campaign(),
    propose: (cmd) => this.node(cmd.args[0]).rn.propose(encoder.encode(cmd.args.slice(1).join(' '))),
    // propose-conf-change 1 [transition=explicit] v4 l5 r2   (empty change list: leave joint)
    'propose-conf-change': (cmd) => {
      const changes: ConfChangeSingle[] = cmd.args.slice(1).map((a) => {
        const type = a[0] === 'v' ? 'addNode' : a[0] === 'l' ? 'addLearner' : a[0] === 'r' ? 'removeNode' : undefined;
        if (!type) throw new Error(`bad change ${a}`);
        return { type, nodeId: Number(a.slice(1)) };
      });
      const transition = (cmd.kv.get('transition') as ConfChangeTransition | undefined) ?? 'auto';
      this.node(cmd.args[0]).rn.proposeConfChange({ transition, changes });
    },
    'tick-heartbeat': (cmd) => {
      const n = this.node(cmd.args[0]);
      for (let i = 0; i < n.config.heartbeatIntervalTicks; i++) n.rn.tick();
    },
    'tick-election': (cmd) => {
      const n = this.node(cmd.args[0]);
      // Twice the base timeout always passes the randomized one.
      for (let i = 0; i < 2 * n.config.electionTimeoutTicks; i++) n.rn.tick();
    },
    tick: (cmd) => {
      const n = this.node(cmd.args[0]);
      const count = Number(cmd.args[1] ?? 1);
      for (let i = 0; i < count; i++) n.rn.tick();
    },
    'process-ready': (cmd) => {
      for (const id of this.ids(cmd)) this.processReady(this.node(String(id)));
    },
    'deliver-msgs': (cmd) => {
      for (const id of this.ids(cmd)) this.deliver(id, cmd.kv.get('drop') === 'true');
    },
    stabilize: (cmd) => this.stabilize(this.ids(cmd)),
    partition: (cmd) => {
      // partition 1 | 2 3
      this.partitions = cmd.args
        .join(' ')
        .split('|')
        .map((g) => new Set(g.trim().split(/\s+/).filter(Boolean).map(Number)));
      this.log(`partitioned: ${this.partitions.map((g) => `{${[...g].join(',')}}`).join(' ')}`);
    },
    heal: () => {
      this.partitions = [];
      this.log('healed');
    },
    'read-index': (cmd) => this.node(cmd.args[0]).rn.readIndex(cmd.args[1] ?? ''),
    'transfer-leader': (cmd) => this.node(cmd.args[0]).rn.transferLeader(Number(cmd.args[1])),
    // connection-lost ID PEER: ID's transport lost its connection to PEER
    'connection-lost': (cmd) => this.node(cmd.args[0]).rn.reportConnectionLost(Number(cmd.args[1])),
    'report-unreachable': (cmd) => this.node(cmd.args[0]).rn.reportUnreachable(Number(cmd.args[1])),
    // compact ID INDEX: snapshot at INDEX (<= applied) and drop the log up to it
    compact: (cmd) => {
      const n = this.node(cmd.args[0]);
      const index = Number(cmd.args[1]);
      const st = n.rn.status();
      n.storage.createSnapshot(index, st.confState, encoder.encode(JSON.stringify(n.applied)));
      n.storage.compact(index);
      this.log(`compacted ${n.id} to ${index}; first index ${n.storage.firstIndex()}`);
    },
    // restart ID: drops volatile state, keeps storage
    restart: (cmd) => {
      const n = this.node(cmd.args[0]);
      const snap = n.storage.snapshot();
      n.applied = snap.metadata.index > 0 ? (JSON.parse(decoder.decode(snap.data)) as string[]) : [];
      n.rn = new RawNode({ ...n.config, id: n.id, storage: n.storage, random: seededRandom(n.seed + 1000), applied: snap.metadata.index });
      this.inFlight = this.inFlight.filter((m) => m.to !== n.id);
      this.log(`restarted ${n.id} at ${formatHardState(n.storage.hardStateNow())}`);
    },
    status: (cmd) => {
      for (const id of this.ids(cmd)) {
        const st = this.node(String(id)).rn.status();
        this.log(`${id}: ${st.softState.raftState} lead=${st.softState.lead} ${formatHardState(st.hardState)} applied=${st.applied} ${formatConfState(st.confState)}`);
        if (st.progress) for (const [pid, p] of st.progress) this.log(`${pid}: ${p.state} match=${p.match} next=${p.next}${p.isLearner ? ' learner' : ''}`, 2);
      }
    },
    'raft-log': (cmd) => {
      const n = this.node(cmd.args[0]);
      const first = n.storage.firstIndex();
      const last = n.storage.lastIndex();
      if (last < first) this.log(`log is empty: first index=${first}, last index=${last}`);
      else this.log(formatEntries(n.storage.entries(first, last + 1, Infinity)).split(', ').join('\n'));
    },
    'applied': (cmd) => {
      for (const id of this.ids(cmd)) this.log(`${id}: [${this.node(String(id)).applied.join(' ')}]`);
    },
  };

  private processReady(n: EnvNode): void {
    if (!n.rn.hasReady()) return;
    const rd = n.rn.ready();
    this.log(`> ${n.id} handling Ready`);
    for (const line of formatReady(rd)) this.log(line, 2);
    // Persist: snapshot, entries, hard state.
    if (rd.snapshot) {
      n.storage.applySnapshot(rd.snapshot);
      n.applied = JSON.parse(decoder.decode(rd.snapshot.data)) as string[];
    }
    n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    this.inFlight.push(...rd.messages, ...rd.messagesAfterPersist);
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) {
        const cs = n.rn.applyConfChange(decodeConfChange(e.data));
        this.log(`INFO ${n.id} switched to configuration ${formatConfState(cs)}`);
      } else if (e.data.length > 0) {
        n.applied.push(decoder.decode(e.data));
      }
    }
    n.rn.advance(rd);
  }

  private crossesPartition(m: Message): boolean {
    if (this.partitions.length === 0) return false;
    const gFrom = this.partitions.findIndex((g) => g.has(m.from));
    const gTo = this.partitions.findIndex((g) => g.has(m.to));
    return gFrom !== gTo;
  }

  private deliver(id: NodeId, drop: boolean): boolean {
    const msgs = this.inFlight.filter((m) => m.to === id);
    if (msgs.length === 0) return false;
    this.inFlight = this.inFlight.filter((m) => m.to !== id);
    for (const m of msgs) {
      if (drop || this.crossesPartition(m)) {
        this.log(`dropped: ${formatMessage(m)}`);
        continue;
      }
      const n = this.nodes.get(id);
      if (!n) continue;
      this.log(formatMessage(m));
      n.rn.step(m);
    }
    return true;
  }

  private stabilize(ids: NodeId[]): void {
    for (;;) {
      let done = true;
      for (const id of ids) {
        const n = this.nodes.get(id)!;
        if (n.rn.hasReady()) {
          done = false;
          this.processReady(n);
        }
      }
      for (const id of ids) {
        if (this.inFlight.some((m) => m.to === id)) {
          done = false;
          this.log(`> ${id} receiving messages`);
          this.deliver(id, false);
        }
      }
      if (done) return;
    }
  }

  leaderOf(id: NodeId): NodeId {
    return this.node(String(id)).rn.status().softState.lead;
  }

  isLeader(id: NodeId): boolean {
    return this.node(String(id)).rn.status().softState.raftState === StateType.Leader;
  }
}

/** Parses one command line: `name arg arg key=value`. */
export function parseCommand(line: string): Command {
  const tokens = line.trim().match(/(?:[^\s(]+(?:\([^)]*\))?)+/g) ?? [];
  const [name, ...rest] = tokens;
  const args: string[] = [];
  const kv = new Map<string, string>();
  for (const t of rest) {
    const eq = t.indexOf('=');
    if (eq > 0 && t[0] !== '|') kv.set(t.slice(0, eq), t.slice(eq + 1));
    else args.push(t);
  }
  return { name: name ?? "", args, kv };
}
