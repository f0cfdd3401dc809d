// The safety invariants, checked as the simulation runs. The checker is fed observations
// (a node is leader of a term, a node stored an entry, applied an entry, a read was requested,
// a read state came out) and records a Violation the first time an invariant breaks. It knows
// nothing about the network or the cores, so tests can feed it hand-made situations.

import { ConfState, Entry, EntryType, NodeId, ReadState } from '../types';
import { bytesToLatin1, chainHash, entryKey } from './state-machine';

export type InvariantName =
  | 'election-safety' // at most one leader per term, ever
  | 'log-matching' // same (index, term) in two stored logs => identical prefixes
  | 'leader-completeness' // a new leader holds every entry committed before its term
  | 'state-machine-safety' // every applied sequence is a prefix of one history
  | 'linearizable-read' // a read index covers every commit made before the read was asked
  | 'conf-change-safety' // a leader starts no configuration change while another is uncommitted
  | 'durable-apply' // only entries durable on the member are applied
  | 'core-exception' // the core threw (an assertion, or an error the contract does not allow)
  | 'liveness'; // after healing: no leader, or proposals not applied, within the bound

export interface Violation {
  seed: number;
  step: number;
  tick: number;
  invariant: InvariantName;
  detail: string;
}

export interface CheckerClock {
  readonly seed: number;
  step(): number;
  tick(): number;
}

/** A node's log as it will be once the Ready in hand is persisted: storage plus the Ready. */
export interface LogView {
  /** Index and term of the snapshot the log starts after (0, 0 for a full log). */
  readonly snapshotIndex: number;
  readonly snapshotTerm: number;
  readonly lastIndex: number;
  /** The entry at i, for snapshotIndex < i <= lastIndex; undefined otherwise. */
  entry(i: number): Entry | undefined;
}

/** A LogView over a plain array of entries (entries[k].index === snapshotIndex + 1 + k). */
export function arrayLogView(entries: Entry[], snapshot = { index: 0, term: 0 }): LogView {
  return {
    snapshotIndex: snapshot.index,
    snapshotTerm: snapshot.term,
    lastIndex: snapshot.index + entries.length,
    entry: (i) => (i > snapshot.index && i <= snapshot.index + entries.length ? entries[i - snapshot.index - 1] : undefined),
  };
}

interface StoredEntry {
  prevTerm: number;
  key: string;
  nodeId: NodeId;
}

export class SafetyChecker {
  readonly violations: Violation[] = [];

  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** Leaders elected but whose log is not yet checked: key `${id}/${term}` -> history length at election. */
  private readonly electedAt = new Map<string, number>();
  /** Every (index, term) any node ever stored: its predecessor's term and its content. */
  private readonly stored = new Map<string, StoredEntry>();
  /**
   * The one history of committed entries, as cores hand them out and nodes apply them:
   * historyKey[i], historyTerm[i], historyHash[i] for the entry at index i (1-based).
   */
  private readonly historyKey: string[] = [''];
  private readonly historyTerm: number[] = [0];
  private readonly historyHash: number[] = [0];
  private readonly normalDataIndex = new Map<string, number>();
  /** The highest commit index any node has had. */
  private commitMax = 0;
  private readonly readRequestedAtCommit = new Map<string, number>();

  constructor(private readonly clock: CheckerClock) {}

  get ok(): boolean {
    return this.violations.length === 0;
  }

  /** How many terms had a leader. */
  get leaderTermCount(): number {
    return this.leaderOfTerm.size;
  }

  get maxCommit(): number {
    return this.commitMax;
  }

  /** Index of the last entry known committed (handed out as committed, or applied). */
  get historyLength(): number {
    return this.historyKey.length - 1;
  }

  historyKeyAt(i: number): string | undefined {
    return i >= 1 && i < this.historyKey.length ? this.historyKey[i] : undefined;
  }

  /** Index of the first applied Normal entry whose data is `data` (latin1), or 0. */
  indexOfData(data: string): number {
    return this.normalDataIndex.get(data) ?? 0;
  }

  violation(invariant: InvariantName, detail: string): void {
    this.violations.push({ seed: this.clock.seed, step: this.clock.step(), tick: this.clock.tick(), invariant, detail });
  }

  // ---- election safety ------------------------------------------------------------------

  /** A node is leader of `term` now. Returns true the first time this (node, term) is seen. */
  observeLeader(nodeId: NodeId, term: number): boolean {
    const known = this.leaderOfTerm.get(term);
    if (known === undefined) {
      this.leaderOfTerm.set(term, nodeId);
      this.electedAt.set(`${nodeId}/${term}`, this.historyLength);
      return true;
    }
    if (known !== nodeId) this.violation('election-safety', `term ${term} has two leaders: ${known} and ${nodeId}`);
    return false;
  }

  observeCommit(commit: number): void {
    if (commit > this.commitMax) this.commitMax = commit;
  }

  // ---- leader completeness ----------------------------------------------------------------

  /** Whether the log of (node, term) still awaits its leader-completeness check. */
  leaderLogCheckPending(nodeId: NodeId, term: number): boolean {
    return this.electedAt.has(`${nodeId}/${term}`);
  }

  /**
   * Checks the log of a leader of `term` against every entry known committed (handed out as
   * committed by a core, or applied) before it was elected. Entries inside the leader's snapshot are covered by it; the
   * snapshot itself must sit on the history.
   */
  checkLeaderLog(nodeId: NodeId, term: number, log: LogView): void {
    const key = `${nodeId}/${term}`;
    const historyLengthAtElection = this.electedAt.get(key);
    if (historyLengthAtElection === undefined) return;
    this.electedAt.delete(key);
    const si = log.snapshotIndex;
    if (si > 0 && si <= historyLengthAtElection && this.historyTerm[si] !== log.snapshotTerm) {
      this.violation(
        'leader-completeness',
        `leader ${nodeId} of term ${term}: snapshot at ${si} has term ${log.snapshotTerm}, committed entry has term ${this.historyTerm[si]}`,
      );
      return;
    }
    for (let i = si + 1; i <= historyLengthAtElection; i++) {
      if (this.historyTerm[i] >= term) continue;
      const e = log.entry(i);
      if (e === undefined || entryKey(e) !== this.historyKey[i]) {
        const has = e === undefined ? 'nothing' : `term ${e.term}`;
        this.violation(
          'leader-completeness',
          `leader ${nodeId} of term ${term} lacks committed entry ${i} (term ${this.historyTerm[i]}), has ${has}`,
        );
        return;
      }
    }
  }

  // ---- log matching -------------------------------------------------------------------------

  /**
   * A node made entry `e` durable, right after an entry of term `prevTerm`. By induction over
   * indexes, "same (index, term) => same content and same predecessor term" everywhere is the
   * log matching property.
   */
  observeStoredEntry(nodeId: NodeId, e: Entry, prevTerm: number): void {
    const k = `${e.index}:${e.term}`;
    const key = entryKey(e);
    const known = this.stored.get(k);
    if (known === undefined) {
      this.stored.set(k, { prevTerm, key, nodeId });
      return;
    }
    if (known.key !== key) {
      this.violation('log-matching', `entry ${e.index} term ${e.term} differs between nodes ${known.nodeId} and ${nodeId}`);
    } else if (known.prevTerm !== prevTerm) {
      this.violation(
        'log-matching',
        `entry ${e.index} term ${e.term} follows term ${known.prevTerm} on node ${known.nodeId} but term ${prevTerm} on node ${nodeId}`,
      );
    }
  }

  // ---- state machine safety -----------------------------------------------------------------

  /**
   * Node `nodeId`'s core handed out `entries` as committed (in a Ready, before they are
   * applied: the node may crash first, but they are committed all the same).
   */
  observeCommitted(nodeId: NodeId, entries: readonly Entry[]): void {
    for (const e of entries) {
      if (e.index > this.historyKey.length) return; // not contiguous with the history; checked when applied
      if (!this.extendHistory(nodeId, e, 'committed')) return;
    }
  }

  /** Node `nodeId`, having applied up to `appliedIndex`, applies `e`. */
  observeApply(nodeId: NodeId, appliedIndex: number, e: Entry): void {
    if (e.index !== appliedIndex + 1) {
      this.violation('state-machine-safety', `node ${nodeId} applied entry ${e.index} right after ${appliedIndex}`);
      return;
    }
    this.extendHistory(nodeId, e, 'applied');
  }

  /** Checks `e` against the history, or appends it if it is the next index. False on a violation. */
  private extendHistory(nodeId: NodeId, e: Entry, verb: string): boolean {
    const key = entryKey(e);
    if (e.index < this.historyKey.length) {
      if (this.historyKey[e.index] === key) return true;
      this.violation('state-machine-safety', `node ${nodeId} ${verb} ${describeKey(key)} at ${e.index}, history has ${describeKey(this.historyKey[e.index])}`);
      return false;
    }
    this.historyKey.push(key);
    this.historyTerm.push(e.term);
    this.historyHash.push(chainHash(this.historyHash[e.index - 1], e.index, key));
    if (e.type === EntryType.Normal && e.data.byteLength > 0) {
      const data = bytesToLatin1(e.data);
      if (!this.normalDataIndex.has(data)) this.normalDataIndex.set(data, e.index);
    }
    return true;
  }

  /** Node `nodeId` restored its state machine (from a snapshot) to `appliedIndex` with chain `hash`. */
  observeRestore(nodeId: NodeId, appliedIndexBefore: number, appliedIndex: number, hash: number): void {
    if (appliedIndex < appliedIndexBefore) {
      this.violation('state-machine-safety', `node ${nodeId} restored a snapshot at ${appliedIndex} over applied ${appliedIndexBefore}`);
      return;
    }
    if (appliedIndex === 0) return;
    if (appliedIndex >= this.historyKey.length) {
      this.violation('state-machine-safety', `node ${nodeId} restored a snapshot at ${appliedIndex}, past anything applied`);
      return;
    }
    if (this.historyHash[appliedIndex] !== hash) {
      this.violation('state-machine-safety', `node ${nodeId} restored a snapshot at ${appliedIndex} that is not the history's state`);
    }
  }

  // ---- linearizable reads -------------------------------------------------------------------

  observeReadRequest(context: string): void {
    this.readRequestedAtCommit.set(context, this.commitMax);
  }

  observeReadState(nodeId: NodeId, rs: ReadState): void {
    const needed = this.readRequestedAtCommit.get(rs.context);
    if (needed === undefined) {
      this.violation('linearizable-read', `node ${nodeId} got a read state for unknown context ${rs.context}`);
      return;
    }
    if (rs.index < needed) {
      this.violation(
        'linearizable-read',
        `read ${rs.context} on node ${nodeId} got index ${rs.index}, but ${needed} was committed before it was asked`,
      );
    }
  }

  // ---- configuration changes ----------------------------------------------------------------

  /**
   * A leader of `term` is about to persist `entries` (its new ones among them). A configuration
   * change it created must not follow another one that was not committed yet (Raft thesis
   * §4.1: one change at a time). `commit` is the leader's commit index now, which is at least
   * what it was when it accepted the change.
   */
  observeLeaderEntries(nodeId: NodeId, term: number, entries: readonly Entry[], log: LogView, commit: number): void {
    for (const e of entries) {
      if (e.type !== EntryType.ConfChange || e.term !== term) continue;
      for (let i = e.index - 1; i > log.snapshotIndex && i > commit; i--) {
        const prev = log.entry(i);
        if (prev !== undefined && prev.type === EntryType.ConfChange) {
          this.violation(
            'conf-change-safety',
            `leader ${nodeId} of term ${term} appended a conf change at ${e.index} while the one at ${i} is uncommitted (commit ${commit})`,
          );
          return;
        }
      }
    }
  }
}

export function confStateMembers(cs: ConfState): NodeId[] {
  const all = new Set<NodeId>([...cs.voters, ...cs.learners, ...cs.votersOutgoing, ...cs.learnersNext]);
  return [...all].sort((a, b) => a - b);
}

function describeKey(key: string): string {
  const first = key.indexOf('/');
  const second = key.indexOf('/', first + 1);
  const term = key.slice(0, first);
  const type = key.slice(first + 1, second);
  const data = key.slice(second + 1);
  const shown = type === 'cc' ? 'conf change' : data === '' ? 'empty entry' : JSON.stringify(data.slice(0, 24));
  return `${shown} of term ${term}`;
}
