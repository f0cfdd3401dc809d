// Errors with stable codes. Callers match on `code`, never on the message; the messages of
// ERR_COMPACTED and ERR_FUTURE_REV are etcd's own (the server prefixes "etcdserver: ").

export type MvccErrorCode =
  | 'ERR_COMPACTED' // the requested revision has been compacted
  | 'ERR_FUTURE_REV' // the requested revision is past the current one
  | 'ERR_SNAPSHOT_INVALID' // a snapshot stream is truncated, corrupt or of an unknown format
  | 'ERR_STORE_CORRUPT' // the on-disk state cannot be read back
  | 'ERR_STORE_FAILED'; // an earlier disk write failed; the store must be reopened

const messages: Record<MvccErrorCode, string> = {
  ERR_COMPACTED: 'mvcc: required revision has been compacted',
  ERR_FUTURE_REV: 'mvcc: required revision is a future revision',
  ERR_SNAPSHOT_INVALID: 'mvcc: invalid snapshot',
  ERR_STORE_CORRUPT: 'mvcc: corrupt store',
  ERR_STORE_FAILED: 'mvcc: an earlier write to disk failed',
};

export class MvccError extends Error {
  constructor(
    readonly code: MvccErrorCode,
    detail?: string,
  ) {
    super(detail === undefined ? messages[code] : `${messages[code]}: ${detail}`);
    this.name = 'MvccError';
  }
}

export function isMvccError(e: unknown, code?: MvccErrorCode): e is MvccError {
  return e instanceof MvccError && (code === undefined || e.code === code);
}

// One assertion helper for the whole project: a broken invariant is a bug (crash, never catch).
export { AssertionFailure, assert } from '../../raft';
