// Bounds and constants of the lessor (etcd 3.4 lease/lessor.go), kept together.

import { assert } from './errors';

/** etcd's MaxLeaseTTL: a grant above it is refused with ERR_LEASE_TTL_TOO_LARGE. */
export const leaseTtlSecondsMax = 9_000_000_000;

/**
 * etcd's leaseRevokeRate: leases the leader revokes per second at most. Promote spreads
 * expiries so that no more than three quarters of it fall in any one second.
 */
export const leaseRevokeRatePerSecond = 1000;

/** etcd's revokeExpiredLeases runs every 500 ms with a limit of half the revoke rate. */
export const expiredCheckIntervalMs = 500;
export const expiredLeasesPerCheckMax = leaseRevokeRatePerSecond / 2;

/** etcd's defaultExpiredleaseRetryInterval: an expired lease is offered again after this if still not revoked. */
export const expiredLeaseRetryMsDefault = 3000;

assert(Number.isInteger(expiredLeasesPerCheckMax) && expiredLeasesPerCheckMax >= 1, 'each check may revoke');
assert(
  expiredLeasesPerCheckMax * (1000 / expiredCheckIntervalMs) <= leaseRevokeRatePerSecond,
  'checks stay within the revoke rate',
);

/**
 * etcd's minimum lease TTL: ceil(((3 * electionTicks) / 2) * heartbeat) in seconds, with
 * electionTicks = electionTimeout / heartbeat and integer divisions as in etcd
 * (1000 ms / 100 ms: 2 s). A grant below it is raised to it.
 */
export function minLeaseTtlSecondsFor(timing: { electionTimeoutMs: number; heartbeatIntervalMs: number }): number {
  assert(timing.heartbeatIntervalMs > 0, 'heartbeat interval is positive');
  const electionTicks = Math.floor(timing.electionTimeoutMs / timing.heartbeatIntervalMs);
  const minTtlMs = Math.floor((3 * electionTicks) / 2) * timing.heartbeatIntervalMs;
  return Math.ceil(minTtlMs / 1000);
}
