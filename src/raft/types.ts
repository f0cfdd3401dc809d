// Wire-level and state types of the Raft core. Pure data: no I/O, no node:* imports.
//
// The shapes follow etcd-io/raft's raftpb so that the semantics of every field are the
// ones people already know; names are camelCase.

/** A member id. 0 (`None`) means "no node". */
export type NodeId = number;
export const None: NodeId = 0;

export enum EntryType {
  Normal = 0,
  /** data is an encoded ConfChangeV2 (see confchange-codec.ts). */
  ConfChange = 1,
}

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

export interface ConfState {
  /** Voters of the incoming (or only) configuration. */
  voters: NodeId[];
  learners: NodeId[];
  /** Voters of the outgoing configuration; non-empty only while joint. */
  votersOutgoing: NodeId[];
  /** Voters of the outgoing configuration that become learners when the joint state is left. */
  learnersNext: NodeId[];
  /** Leave the joint configuration automatically once it is committed. */
  autoLeave: boolean;
}

export interface SnapshotMetadata {
  index: number;
  term: number;
  confState: ConfState;
}

export interface Snapshot {
  data: Uint8Array;
  metadata: SnapshotMetadata;
}

export type ConfChangeType = 'addNode' | 'removeNode' | 'addLearner';

export interface ConfChangeSingle {
  type: ConfChangeType;
  nodeId: NodeId;
}

/**
 * 'auto': a simple change when possible (one voter change), otherwise joint consensus left
 * automatically. 'implicit': joint, left automatically. 'explicit': joint, left by proposing
 * an empty ConfChangeV2.
 */
export type ConfChangeTransition = 'auto' | 'implicit' | 'explicit';

export interface ConfChangeV2 {
  transition: ConfChangeTransition;
  changes: ConfChangeSingle[];
  /** Opaque to Raft; carried to the application (etcd puts the member's URLs here). */
  context?: string;
}

export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

export const emptyHardState: HardState = Object.freeze({ term: 0, vote: None, commit: 0 });

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === None && hs.commit === 0;
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export enum StateType {
  Follower = 'StateFollower',
  Candidate = 'StateCandidate',
  Leader = 'StateLeader',
  PreCandidate = 'StatePreCandidate',
}

/** Volatile state; never persisted. */
export interface SoftState {
  lead: NodeId;
  raftState: StateType;
}

export const MessageTypes = [
  'MsgHup', // local: start an election
  'MsgBeat', // local: leader sends heartbeats
  'MsgProp', // propose entries (local, or forwarded by a follower)
  'MsgApp',
  'MsgAppResp',
  'MsgVote',
  'MsgVoteResp',
  'MsgSnap',
  'MsgHeartbeat',
  'MsgHeartbeatResp',
  'MsgUnreachable', // local: the transport could not reach `from`
  'MsgSnapStatus', // local: a snapshot to `from` finished (reject = failed)
  'MsgCheckQuorum', // local: leader checks it still hears from a quorum
  'MsgTransferLeader',
  'MsgTimeoutNow',
  'MsgReadIndex',
  'MsgReadIndexResp',
  'MsgPreVote',
  'MsgPreVoteResp',
] as const;

export type MessageType = (typeof MessageTypes)[number];

export interface Message {
  type: MessageType;
  to: NodeId;
  from: NodeId;
  term: number;
  /** Term of the entry at `index` (MsgApp), or of the candidate's last entry (votes). */
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  snapshot?: Snapshot;
  reject: boolean;
  /** On a rejected MsgAppResp: the follower's hint at where the logs may match. */
  rejectHint: number;
  /** ReadIndex request context; 'CampaignTransfer' on votes caused by a leader transfer. */
  context?: string;
}

/** Builds a message with every field defaulted. */
export function message(m: Partial<Message> & Pick<Message, 'type'>): Message {
  return {
    to: None,
    from: None,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...m,
  };
}

export interface ReadState {
  /** The commit index at the time the read was confirmed; serve the read once applied >= index. */
  index: number;
  context: string;
}

/**
 * Everything the core wants done. Handle a Ready strictly in this order (the node runtime
 * and the simulator both do):
 *
 *   1. `messages` may be sent at once, in parallel with step 2 (they are the leader's
 *      appends, heartbeats and snapshots: the leader counts itself toward a commit only
 *      after its own entries are durable, see advance()).
 *   2. Persist, with one fsync: `snapshot` (if any), then `entries` (replacing any
 *      conflicting suffix), then `hardState` (if any).
 *   3. Only after step 2 is durable, send `messagesAfterPersist` (votes, append replies,
 *      anything whose promise depends on the persisted term, vote or log).
 *   4. Apply `snapshot` to the state machine, then `committedEntries` in order; for each
 *      ConfChange entry call applyConfChange(). Serve `readStates` whose index is applied.
 *   5. Call advance(ready).
 */
export interface Ready {
  softState?: SoftState;
  /** Persist before sending messagesAfterPersist. Absent when unchanged. */
  hardState?: HardState;
  /** Unstable entries to append to durable storage. */
  entries: Entry[];
  /** A snapshot to persist and apply (received from the leader). */
  snapshot?: Snapshot;
  /** Entries to apply to the state machine; already committed. */
  committedEntries: Entry[];
  /** Safe to send before this Ready is persisted. */
  messages: Message[];
  /** Must not leave before this Ready's hardState, entries and snapshot are durable. */
  messagesAfterPersist: Message[];
  readStates: ReadState[];
  /** Whether step 2 needs an fsync (term, vote or entries changed). */
  mustSync: boolean;
}

export function isEmptySnapshot(s: Snapshot | undefined): boolean {
  return s === undefined || s.metadata.index === 0;
}

export function emptyConfState(): ConfState {
  return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
}
