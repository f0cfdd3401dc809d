// Public face of the MVCC store (etcd's mvcc package, v3.4 semantics).
//
//   const store = await MvccStore.open<{ consistentIndex: number; term: number }>(dir);
//   store.savedMeta                       // meta of the last flush: where to resume applying
//   store.onRevision((ev) => ...)         // each committed revision's events (the watch hub)
//
//   // apply one committed request, on every member in the same order:
//   const tw = store.write();             // the next revision
//   const prev = tw.put(key, value, lease);
//   const deleted = tw.deleteRange(key, rangeEnd);
//   const r = tw.range({ key, rangeEnd, limit }); // sees this txn's own writes
//   const headerRevision = tw.end();      // commits, records history, notifies
//   store.compact(rev);
//   await store.flush({ consistentIndex, term }); // now and then: one batch, sync false
//
//   store.range(opts)                     // reads at any uncompacted revision
//   store.eventsBetween({ fromRevision }) // history for watchers catching up
//   store.hashKV(rev)                     // HashKV
//   store.writeSnapshot(meta) / MvccStore.restoreSnapshot(dir, chunks) // Raft snapshots
//
// Everything but open/flush/snapshot/close is synchronous and deterministic. KeyValues are
// made on demand (the index keeps keys packed, values in slabs outside V8's heap); events
// handed to listeners are shared between them: never mutate them.

export { MvccStore } from './store';
export { MvccCore, INITIAL_REVISION } from './core';
export type { MvccCoreOptions, RevisionListener } from './core';
export type { ValueArenaStats } from './value-arena';
export { WriteTxn } from './write-txn';
export { MvccError, isMvccError } from './errors';
export type { MvccErrorCode } from './errors';
export * as mvccLimits from './limits';
export * from './types';
