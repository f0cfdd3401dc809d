// The simulated network between cores: every message gets a delay in steps (so messages
// reorder), may be lost or duplicated, and is dropped when a partition separates its ends.
// A partition is a list of groups; two nodes can talk iff some group holds both (a node in
// two groups is a bridge). Messages are checked against the partition when sent and again
// when they arrive: a partition also cuts what was in flight.

import { Message, MessageType, NodeId } from '../types';
import { SimRandom } from './sim-random';
import { Trace } from './trace';

export interface NetworkFaults {
  lossRate: number;
  duplicateRate: number;
  delayStepsMax: number;
  longDelayRate: number;
  longDelayStepsMax: number;
}

export interface NetworkHost {
  now(): number;
  schedule(delaySteps: number, run: () => void): void;
  /** Hands a message to its target (which may have crashed meanwhile). */
  deliver(m: Message): void;
  /** The transport could not send `m` (partition or loss): the sender may learn of it. */
  undeliverable(m: Message, reason: 'partition' | 'loss' | 'down'): void;
  isDown(id: NodeId): boolean;
}

export class Network {
  private groups: ReadonlyArray<ReadonlySet<NodeId>> | null = null;
  sentCount = 0;
  deliveredCount = 0;

  constructor(
    private readonly rng: SimRandom,
    private readonly trace: Trace,
    private readonly host: NetworkHost,
    public faults: NetworkFaults,
  ) {}

  get partitioned(): boolean {
    return this.groups !== null;
  }

  partition(groups: NodeId[][]): void {
    this.groups = groups.map((g) => new Set(g));
    this.trace.event(this.host.now(), 'partition', groups.flatMap((g) => [...g, 0]), () => groups.map((g) => `{${g.join(',')}}`).join(' '));
  }

  heal(): void {
    if (this.groups === null) return;
    this.groups = null;
    this.trace.event(this.host.now(), 'heal', [], () => 'network healed');
  }

  canReach(from: NodeId, to: NodeId): boolean {
    if (from === to || this.groups === null) return true;
    for (const g of this.groups) if (g.has(from) && g.has(to)) return true;
    return false;
  }

  send(m: Message): void {
    this.sentCount++;
    const now = this.host.now();
    const rng = this.rng;
    if (m.to === m.from) {
      this.host.schedule(0, () => this.arrive(m));
      return;
    }
    if (this.host.isDown(m.to)) {
      this.trace.event(now, 'drop', traceNums(m), () => `${describeMessage(m)} (target down)`);
      this.host.undeliverable(m, 'down');
      return;
    }
    if (!this.canReach(m.from, m.to)) {
      this.trace.event(now, 'drop', traceNums(m), () => `${describeMessage(m)} (partition)`);
      this.host.undeliverable(m, 'partition');
      return;
    }
    if (rng.chance(this.faults.lossRate)) {
      this.trace.event(now, 'drop', traceNums(m), () => `${describeMessage(m)} (loss)`);
      this.host.undeliverable(m, 'loss');
      return;
    }
    const copies = rng.chance(this.faults.duplicateRate) ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      const delay = this.delaySteps();
      this.trace.event(now, c === 0 ? 'send' : 'dup', [...traceNums(m), delay], () => `${describeMessage(m)} +${delay}`);
      this.host.schedule(delay, () => this.arrive(m));
    }
  }

  private delaySteps(): number {
    const f = this.faults;
    if (this.rng.chance(f.longDelayRate)) return this.rng.range(f.delayStepsMax, Math.max(f.delayStepsMax, f.longDelayStepsMax));
    return this.rng.range(1, Math.max(1, f.delayStepsMax));
  }

  private arrive(m: Message): void {
    if (this.host.isDown(m.to)) {
      // The transport notices a connection that broke with the message on it.
      this.host.undeliverable(m, 'down');
      return;
    }
    if (!this.canReach(m.from, m.to)) {
      // A partition that started while the message was on its way: lost with the connection.
      this.trace.event(this.host.now(), 'drop', traceNums(m), () => `${describeMessage(m)} (partition, in flight)`);
      this.host.undeliverable(m, 'partition');
      return;
    }
    this.deliveredCount++;
    this.trace.event(this.host.now(), 'recv', traceNums(m), () => describeMessage(m));
    this.host.deliver(cloneMessage(m));
  }
}

const messageTypeCode = new Map<MessageType, number>();

function traceNums(m: Message): number[] {
  let code = messageTypeCode.get(m.type);
  if (code === undefined) {
    code = m.type.length * 31 + m.type.charCodeAt(3) + m.type.charCodeAt(m.type.length - 1) * 7;
    messageTypeCode.set(m.type, code);
  }
  return [code, m.from, m.to, m.term, m.logTerm, m.index, m.entries.length, m.commit, m.reject ? 1 : 0];
}

/** A deep copy, as a real transport would hand over: cores never share objects. */
export function cloneMessage(m: Message): Message {
  const copy: Message = { ...m, entries: m.entries.map((e) => ({ ...e })) };
  if (m.snapshot !== undefined) {
    const md = m.snapshot.metadata;
    const cs = md.confState;
    copy.snapshot = {
      data: m.snapshot.data,
      metadata: {
        index: md.index,
        term: md.term,
        confState: {
          voters: [...cs.voters],
          learners: [...cs.learners],
          votersOutgoing: [...cs.votersOutgoing],
          learnersNext: [...cs.learnersNext],
          autoLeave: cs.autoLeave,
        },
      },
    };
  }
  return copy;
}

export function describeMessage(m: Message): string {
  let s = `${m.type} ${m.from}->${m.to} t${m.term}`;
  if (m.type === 'MsgApp' || m.type === 'MsgVote' || m.type === 'MsgPreVote') s += ` log ${m.index}@t${m.logTerm}`;
  if (m.entries.length > 0) s += ` ents ${m.entries[0].index}..${m.entries[m.entries.length - 1].index}`;
  if (m.type === 'MsgAppResp') s += ` idx ${m.index}${m.reject ? ` reject hint ${m.rejectHint}` : ''}`;
  if (m.reject && m.type !== 'MsgAppResp') s += ' reject';
  if (m.commit > 0) s += ` c${m.commit}`;
  if (m.snapshot !== undefined && m.snapshot.metadata.index > 0) s += ` snap ${m.snapshot.metadata.index}@t${m.snapshot.metadata.term}`;
  if (m.context !== undefined) s += ` ctx ${m.context}`;
  return s;
}
