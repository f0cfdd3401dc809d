// Every bound of the MVCC store, named and kept together (STYLE #4). Request-level limits
// (request bytes, txn ops, quota) are the server's, not the store's.

import { assert } from './errors';

/** Largest chunk writeSnapshot yields (etcd streams its snapshot in 32 KiB..1 MiB pieces). */
export const snapshotChunkBytesMax = 1024 * 1024;

/** restoreSnapshot writes the db in batches of about this many bytes. */
export const restoreBatchBytesMax = 4 * 1024 * 1024;

/** open() and writeSnapshot() read the db this many records at a time. */
export const readBatchRecordsMax = 1024;

/**
 * LevelDB's memtable size (LevelDB's default, 4 MiB): larger memtables lower the write cost
 * under sustained load, at the price of up to two of them in memory, and the memory they
 * used stays with the allocator of LevelDB's threads (resident: 32 MiB held ~30 MiB of RSS
 * per member after 100k puts). The applier writes in batches every 100 ms, so the write
 * cost per put matters less than the memory.
 */
export const dbWriteBufferBytes = 4 * 1024 * 1024;

/**
 * Size of the slabs the store's values are kept in, outside V8's heap (value-arena.ts). A value
 * above a quarter of it gets a slab of its own; below, at most a quarter of a slab is left
 * unused when the next value does not fit.
 */
export const valueSlabBytes = 1024 * 1024;

/** A defragment waits at most this long for snapshot streams reading the old db to finish. */
export const defragReaderWaitMsMax = 10_000;

/** A single snapshot frame (one db record) may not exceed this: a corrupt length fails fast. */
export const snapshotFrameBytesMax = 64 * 1024 * 1024;

assert(snapshotChunkBytesMax >= 64 * 1024, 'snapshot chunks are large enough to be efficient');
assert(restoreBatchBytesMax >= snapshotChunkBytesMax, 'a restore batch holds at least one chunk');
assert(snapshotFrameBytesMax > snapshotChunkBytesMax, 'a frame may span several chunks');
assert(readBatchRecordsMax >= 1, 'reads make progress');
assert(dbWriteBufferBytes >= restoreBatchBytesMax, 'a restore batch fits in the memtable');
