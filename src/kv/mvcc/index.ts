// Public face of the MVCC store.

export { MvccStore } from './store';
export { MvccCore, INITIAL_REVISION } from './core';
export type { RevisionListener } from './core';
export { WriteTxn } from './write-txn';
export { MvccError, isMvccError } from './errors';
export type { MvccErrorCode } from './errors';
export * as mvccLimits from './limits';
export * from './types';
