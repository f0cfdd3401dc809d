// Prometheus metrics under etcd's own names where they apply, so that dashboards and
// alerts written for etcd read skiff unchanged.

import * as client from 'prom-client';

export class StoreMetrics {
  readonly registry = new client.Registry();
  readonly hasLeader = new client.Gauge({ name: 'etcd_server_has_leader', help: 'Whether or not a leader exists. 1 is existence, 0 is not.', registers: [this.registry] });
  readonly isLeader = new client.Gauge({ name: 'etcd_server_is_leader', help: 'Whether or not this member is a leader. 1 if is, 0 otherwise.', registers: [this.registry] });
  readonly leaderChanges = new client.Counter({ name: 'etcd_server_leader_changes_seen_total', help: 'The number of leader changes seen.', registers: [this.registry] });
  readonly proposalsCommitted = new client.Gauge({ name: 'etcd_server_proposals_committed_total', help: 'The total number of consensus proposals committed.', registers: [this.registry] });
  readonly proposalsApplied = new client.Gauge({ name: 'etcd_server_proposals_applied_total', help: 'The total number of consensus proposals applied.', registers: [this.registry] });
  readonly proposalsPending = new client.Gauge({ name: 'etcd_server_proposals_pending', help: 'The current number of pending proposals to commit.', registers: [this.registry] });
  readonly proposalsFailed = new client.Counter({ name: 'etcd_server_proposals_failed_total', help: 'The total number of failed proposals seen.', registers: [this.registry] });
  readonly walFsyncSeconds = new client.Histogram({
    name: 'etcd_disk_wal_fsync_duration_seconds',
    help: 'The latency distributions of fsync called by WAL.',
    buckets: [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192],
    registers: [this.registry],
  });
  readonly backendCommitSeconds = new client.Histogram({
    name: 'etcd_disk_backend_commit_duration_seconds',
    help: 'The latency distributions of commit called by backend.',
    buckets: [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192],
    registers: [this.registry],
  });
  readonly dbTotalSizeBytes = new client.Gauge({ name: 'etcd_mvcc_db_total_size_in_bytes', help: 'Total size of the underlying database physically allocated in bytes.', registers: [this.registry] });
  readonly watchers = new client.Gauge({ name: 'etcd_debugging_mvcc_watcher_total', help: 'Total number of watchers.', registers: [this.registry] });
  readonly slowWatchers = new client.Gauge({ name: 'etcd_debugging_mvcc_slow_watcher_total', help: 'Total number of unsynced slow watchers.', registers: [this.registry] });
  readonly watchStreams = new client.Gauge({ name: 'etcd_debugging_mvcc_watch_stream_total', help: 'Total number of watch streams.', registers: [this.registry] });
  readonly keysTotal = new client.Gauge({ name: 'etcd_debugging_mvcc_keys_total', help: 'Total number of keys.', registers: [this.registry] });
  readonly valueBytes = new client.Gauge({ name: 'skiff_mvcc_value_bytes', help: 'Bytes of values held by the in-memory index (live) and of the slabs holding them (slabs).', labelNames: ['kind'], registers: [this.registry] });
  readonly leasesGranted = new client.Counter({ name: 'etcd_debugging_lease_granted_total', help: 'The total number of granted leases.', registers: [this.registry] });
  readonly leasesRevoked = new client.Counter({ name: 'etcd_debugging_lease_revoked_total', help: 'The total number of revoked leases.', registers: [this.registry] });
  readonly serverVersion = new client.Gauge({ name: 'etcd_server_version', help: 'Which version is running. 1 for server_version label with current version.', labelNames: ['server_version'], registers: [this.registry] });

  constructor() {
    client.collectDefaultMetrics({ register: this.registry });
  }
}
