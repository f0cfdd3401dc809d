// Shared types of the MVCC store. Keys and values are bytes; revisions are numbers (they
// stay far below 2^53).

/** A key's state at one revision, as etcd's mvccpb.KeyValue. */
export interface KeyValue {
  key: Uint8Array;
  /** Revision of the key's last creation. */
  createRevision: number;
  /** Revision of the key's last modification. */
  modRevision: number;
  /** 1 on creation, +1 on every put; a delete resets it. */
  version: number;
  value: Uint8Array;
  /** Attached lease id, or 0. */
  lease: number;
}

export type EventType = 'PUT' | 'DELETE';

/** As etcd's mvccpb.Event: a DELETE carries the key with modRevision = the deletion's revision. */
export interface MvccEvent {
  type: EventType;
  kv: KeyValue;
  prevKv?: KeyValue;
}

/** Everything one write transaction (one revision) changed, in order. */
export interface RevisionEvents {
  revision: number;
  events: MvccEvent[];
}

export type SortOrder = 'NONE' | 'ASCEND' | 'DESCEND';
export type SortTarget = 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE';

export interface RangeOptions {
  key: Uint8Array;
  /** Empty/undefined: the single key. [0x00]: every key >= key. Otherwise the half-open [key, rangeEnd). */
  rangeEnd?: Uint8Array;
  /** 0: no limit. */
  limit?: number;
  /** 0: the current revision. */
  revision?: number;
  sortOrder?: SortOrder;
  sortTarget?: SortTarget;
  keysOnly?: boolean;
  countOnly?: boolean;
  minModRevision?: number;
  maxModRevision?: number;
  minCreateRevision?: number;
  maxCreateRevision?: number;
}

export interface RangeResult {
  kvs: KeyValue[];
  /** Number of keys in the range (before limit). */
  count: number;
  /** More keys in the range than returned. */
  more: boolean;
}

/** A subscription's own disposer. */
export interface Disposable {
  dispose(): void;
}

/** Query of the store's history (see MvccStore.eventsBetween). */
export interface HistoryQuery {
  /** First revision wanted (inclusive). Below the compacted revision: ERR_COMPACTED. */
  fromRevision: number;
  /** Last revision wanted (inclusive); 0/undefined: the current revision. Clamped to it. */
  toRevision?: number;
  /** Only events on these keys, with the same meaning as RangeOptions.key/rangeEnd. */
  key?: Uint8Array;
  rangeEnd?: Uint8Array;
  /**
   * Stop after the revision at which this many events were collected (a revision is never
   * split, so one revision may overshoot it). 0/undefined: no limit.
   */
  eventsMax?: number;
}

export interface HistoryResult {
  /** Revisions in [fromRevision, nextRevision) that have events matching the query, in order. */
  revisions: RevisionEvents[];
  /** The first revision not yet scanned: continue from here. */
  nextRevision: number;
}

export interface HashKVResult {
  /** CRC-32 of the store's content up to `hashRevision`; equal on members with the same history. */
  hash: number;
  /** The revision the hash covers. */
  hashRevision: number;
  compactRevision: number;
  /** The store's current revision. */
  revision: number;
}
