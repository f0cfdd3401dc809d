// The public face of the Raft layer. Other layers import only from here.
export * from './types';
export * from './errors';
export { Storage, InitialState, MemoryStorage, cloneConfState } from './storage';
export { RawNode, Status, PeerProgress } from './rawnode';
export { RaftConfig, raftDefaults, messageClass, MessageClass } from './raft';
export { encodeConfChange, decodeConfChange, isLeaveJoint } from './confchange';
export { Random, seededRandom, entrySizeBytes } from './util';
