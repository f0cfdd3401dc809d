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
