// Every size, count and duration the benchmark uses, for the full run and for --quick (the
// CI smoke version), kept together. The relations between them are asserted at load.

export type WorkloadName = 'put' | 'range' | 'watch' | 'failover' | 'memory';
export const workloadNames: readonly WorkloadName[] = ['put', 'range', 'watch', 'failover', 'memory'];

/** A measured case: range splits into its two consistency levels. */
export type CaseName = 'put' | 'range-linearizable' | 'range-serializable' | 'watch' | 'failover' | 'memory';

export interface BenchParams {
  mode: 'full' | 'quick';

  // Both clusters get the same flags.
  members: number;
  heartbeatMs: number;
  electionMs: number;
  snapshotCount: number;

  /** Value size of every put (etcd benchmark --val-size). */
  valueBytes: number;
  /** Key size of the put workload (etcd benchmark --key-size; the key is a varint of its index). */
  putKeyBytes: number;
  /** Distinct keys the put workload writes to (etcd benchmark --key-space-size). */
  putKeySpaceSize: number;
  /** etcd benchmark --sequential-keys: key i % space instead of a random one. */
  putSequentialKeys: boolean;

  /** Concurrent clients at each level of the put and range workloads. */
  clientLevels: readonly number[];
  /** Connections the clients share (etcd benchmark --conns). */
  connections: number;
  /** Operations per level (etcd benchmark --total); a level also stops at levelDurationMaxSec. */
  levelOpsTotal: number;
  levelDurationMaxSec: number;
  /** Unmeasured operations per connection before a level starts (every connection up and used). */
  warmupOpsPerConnection: number;
  /**
   * Then the level's own load, unmeasured, for warmupOps operations or warmupMaxSec, whichever
   * ends first: both systems are measured in their steady state. skiff runs on V8, which
   * compiles a hot path with its optimizing compiler only after thousands of calls; measured
   * from the first request, a level of ~10 s at 128 clients spent a sixth of its time on
   * compilation and cold code (put: 9.7k ops/s from cold, 13.1k after 8k puts; etcd 8.0k
   * either way).
   */
  warmupOps: number;
  warmupMaxSec: number;
  /** Start fresh clusters for every client level (full), or once per workload (quick, to stay within CI time). */
  freshClusterPerLevel: boolean;

  watchers: number;
  watchConnections: number;
  watchWriters: number;
  watchPuts: number;
  /** Puts of a warm-up round before the measured one (its own watchers and prefix, unmeasured). */
  watchWarmupPuts: number;
  /** The writers stop after this long even when they have not written watchPuts. */
  watchWriteMaxSec: number;
  /** After the last put is acknowledged, how long the watchers may take to receive everything. */
  watchDrainMaxSec: number;

  failoverWriters: number;
  failoverRequestTimeoutMs: number;
  /** Writes before the kill. */
  failoverBeforeKillSec: number;
  /** Writes after the first acknowledged put issued after the kill. */
  failoverAfterRecoverySec: number;
  /** Give up waiting for an acknowledged put after the kill. */
  failoverRecoveryMaxSec: number;
  /** Pause after a failed put before the writer tries the next connection. */
  failoverRetryBackoffMs: number;
  /** Restarted member: time to become healthy and to show every acknowledged put. */
  failoverVerifyMaxSec: number;

  memoryKeys: number;
  memoryClients: number;
  /** Wait after loading before reading RSS (followers finish applying). */
  memorySettleSec: number;
  /**
   * A further wait, with no load, before reading RSS a second time: what a member holds once
   * its runtime has given back what the burst left (V8's memory reducer starts 8-30 s after
   * the last allocations; Go's scavenger returns memory over a similar time).
   */
  memoryIdleSec: number;

  /** Keys per page when reading back the failover keys. */
  readBackPageKeys: number;
}

const full: BenchParams = {
  mode: 'full',
  members: 3,
  heartbeatMs: 100,
  electionMs: 1000,
  snapshotCount: 100_000,
  valueBytes: 256,
  putKeyBytes: 8,
  putKeySpaceSize: 100_000,
  putSequentialKeys: false,
  clientLevels: [1, 16, 128],
  connections: 8,
  levelOpsTotal: 100_000,
  levelDurationMaxSec: 30,
  warmupOpsPerConnection: 20,
  warmupOps: 10_000,
  warmupMaxSec: 3,
  freshClusterPerLevel: true,
  watchers: 100,
  watchConnections: 4,
  watchWriters: 16,
  watchPuts: 20_000,
  watchWarmupPuts: 4_000,
  watchWriteMaxSec: 120,
  watchDrainMaxSec: 60,
  failoverWriters: 16,
  failoverRequestTimeoutMs: 300,
  failoverBeforeKillSec: 3,
  failoverAfterRecoverySec: 2,
  failoverRecoveryMaxSec: 30,
  failoverRetryBackoffMs: 10,
  failoverVerifyMaxSec: 30,
  memoryKeys: 100_000,
  memoryClients: 16,
  memorySettleSec: 2,
  memoryIdleSec: 40,
  readBackPageKeys: 10_000,
};

const quick: BenchParams = {
  ...full,
  mode: 'quick',
  levelOpsTotal: 2_000,
  levelDurationMaxSec: 0.5,
  warmupOpsPerConnection: 5,
  warmupOps: 200,
  warmupMaxSec: 0.5,
  freshClusterPerLevel: false,
  watchPuts: 400,
  watchWarmupPuts: 100,
  watchWriteMaxSec: 10,
  watchDrainMaxSec: 15,
  failoverBeforeKillSec: 0.5,
  failoverAfterRecoverySec: 0.5,
  failoverRecoveryMaxSec: 15,
  failoverVerifyMaxSec: 20,
  memoryKeys: 2_000,
  memorySettleSec: 0.5,
  memoryIdleSec: 1,
};

function assertParams(p: BenchParams): void {
  const check = (ok: boolean, what: string): void => {
    if (!ok) throw new Error(`bench params (${p.mode}): ${what}`);
  };
  check(p.members >= 3, 'failover needs at least 3 members (a quorum survives one kill)');
  check(p.electionMs >= 5 * p.heartbeatMs, 'election timeout >= 5 heartbeats (etcd refuses less)');
  check(p.clientLevels.length > 0, 'at least one client level');
  check(p.clientLevels.every((c) => c >= 1), 'client levels >= 1');
  check(p.connections >= 1, 'connections >= 1');
  check(p.putKeySpaceSize >= 1, 'key space >= 1');
  // The key is a zigzag varint of an index below the key space: it must fit in the key.
  check(Math.ceil(Math.log2(2 * p.putKeySpaceSize) / 7) <= p.putKeyBytes, 'key space fits in putKeyBytes');
  check(p.watchers >= 1 && p.watchConnections >= 1 && p.watchWriters >= 1 && p.watchPuts >= p.watchWriters, 'watch sizes');
  check(p.failoverRequestTimeoutMs < p.electionMs, 'failover request timeout below the election timeout');
  check(p.memoryKeys >= p.memoryClients, 'memory keys >= clients');
}

assertParams(full);
assertParams(quick);

export function benchParams(mode: 'full' | 'quick'): BenchParams {
  return mode === 'quick' ? quick : full;
}
