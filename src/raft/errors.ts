// Errors with stable codes. Callers match on `code`, never on the message.

export type RaftErrorCode =
  | 'ERR_COMPACTED' // requested index is older than the storage's first index
  | 'ERR_SNAP_OUT_OF_DATE' // snapshot is older than the existing one
  | 'ERR_UNAVAILABLE' // requested entry is past the last index
  | 'ERR_SNAPSHOT_TEMPORARILY_UNAVAILABLE'
  | 'ERR_PROPOSAL_DROPPED' // no leader, leader transfer in progress, or too much uncommitted
  | 'ERR_STEP_LOCAL_MSG'
  | 'ERR_STEP_PEER_NOT_FOUND'
  | 'ERR_CONF_CHANGE'; // an invalid configuration change

export class RaftError extends Error {
  constructor(
    readonly code: RaftErrorCode,
    message?: string,
  ) {
    super(message ?? code);
    this.name = 'RaftError';
  }
}

export function isRaftError(e: unknown, code: RaftErrorCode): e is RaftError {
  return e instanceof RaftError && e.code === code;
}

/** A broken invariant is a bug: crash, never catch. */
export class AssertionFailure extends Error {
  constructor(message: string) {
    super(`assertion failed: ${message}`);
    this.name = 'AssertionFailure';
  }
}

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new AssertionFailure(message);
}
