// Invariant checks for the watch hub. A violated invariant is a bug: crash, never catch.

// One assertion helper for the whole project: a broken invariant is a bug (crash, never catch).
export { AssertionFailure, assert } from '../../raft';
