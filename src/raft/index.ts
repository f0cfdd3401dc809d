// The public face of the Raft layer. Other layers import only from here.
export * from './types';
export * from './errors';
export { MemoryStorage, cloneConfState } from './storage';
export type { Storage, InitialState } from './storage';
export { RawNode } from './rawnode';
export type { Status, PeerProgress } from './rawnode';
export { raftDefaults, messageClass } from './raft';
export type { RaftConfig, MessageClass } from './raft';
export { encodeConfChange, decodeConfChange, isLeaveJoint } from './confchange';
export { seededRandom, entrySizeBytes } from './util';
export type { Random } from './util';

// The node runtime (does I/O; the core above does not depend on it).
export { RaftNode, silentLogger } from './raft-node';
export type { RaftNodeOptions, StateMachine, Applied, Logger, LeaderChange } from './raft-node';
export { DiskStorage } from './disk-storage';
export { TcpTransport, transportLimits, removedMemberReason } from './tcp-transport';
export { LocalHub } from './transport';
export type { Transport, TransportHandler, SnapshotSource } from './transport';
export { Emitter } from './event';
export type { Disposable } from './event';
