// The lessor of one member: etcd 3.4's lease/lessor.go, split along what is replicated.
//
// Applied state (identical on every member, changed only by applying committed entries,
// no clock involved): the leases (id, granted TTL) and the keys attached to each.
//   grant / revoke / attach / detach
//
// Leader state (this member only, never replicated, driven by the clock `now()`): the
// expiry of each lease. Only the leader (the "primary") has expiries; it renews leases on
// keep-alive and finds the expired ones, which it revokes by proposing revokes through Raft
// like any other write. A follower's leases never expire: on promotion the new leader gives
// every lease its full TTL plus an extension, so a failover never shortens a lease.
//   promote / demote / renew / expired
//
// Queries work on any member from local state: lookup / leases / timeToLive.

import { assert, LeaseError } from './errors';
import { ExpiryQueue } from './expiry-queue';
import { expiredLeaseRetryMsDefault, leaseRevokeRatePerSecond, leaseTtlSecondsMax } from './limits';

export interface LessorOptions {
  /** Grants below it are raised to it: minLeaseTtlSecondsFor({ electionTimeoutMs, heartbeatIntervalMs }). */
  minLeaseTtlSeconds: number;
  /** Milliseconds since some epoch, for expiries only (leader state). Default Date.now. */
  now?: () => number;
  /** An expired lease returned by expired() is returned again after this if still not revoked. */
  expiredLeaseRetryMs?: number;
  /** Promote spreads expiries so that at most 3/4 of this many fall in one second. */
  leaseRevokeRatePerSecond?: number;
}

/** One lease as the queries see it. */
export interface LeaseInfo {
  id: number;
  /** The granted TTL (after raising to the minimum). */
  ttlSeconds: number;
  /** Milliseconds until expiry on the leader; Infinity on other members (never expire there). */
  remainingMs: number;
  keyCount: number;
}

/** etcd's LeaseTimeToLive answer, from local state. */
export interface LeaseTimeToLive {
  id: number;
  /**
   * Seconds left, truncated toward zero as etcd's int64(Remaining().Seconds()): may be 0 or
   * negative for an expired lease whose revoke is pending. On a member that is not the
   * leader: the granted TTL (see timeToLive).
   */
  ttlSeconds: number;
  grantedTtlSeconds: number;
  /** Attached keys in byte order (empty unless asked for). */
  keys: Uint8Array[];
}

/** The applied state, for the store's snapshot. Attachments are rebuilt from the keys. */
export interface LessorState {
  leases: { id: number; ttlSeconds: number }[];
}

/** Outcome of waiting on an expired lease (etcd's Renew waiting on revokec or demotec). */
export type ExpiredLeaseOutcome = 'revoked' | 'not-primary';

interface Lease {
  readonly id: number;
  readonly ttlSeconds: number;
  /** Leader only: Infinity when not primary (etcd's "forever"). */
  expiryMs: number;
  /** Attached keys by latin1 key string. */
  readonly keys: Map<string, Uint8Array>;
}

export class Lessor {
  private readonly minLeaseTtlSeconds: number;
  private readonly now: () => number;
  private readonly expiredLeaseRetryMs: number;
  private readonly revokeRatePerSecond: number;

  private readonly leaseMap = new Map<number, Lease>();
  /** Which lease each attached key belongs to. invariant: a key is attached to at most one lease. */
  private readonly keyLease = new Map<string, number>();
  private primary = false;
  /** Leader only: when to look at each lease next (its expiry, or its revoke retry time). */
  private readonly expiryQueue = new ExpiryQueue();
  private readonly waiters = new Map<number, ((outcome: ExpiredLeaseOutcome) => void)[]>();

  constructor(options: LessorOptions) {
    assert(Number.isSafeInteger(options.minLeaseTtlSeconds) && options.minLeaseTtlSeconds >= 1, 'minLeaseTtlSeconds is a positive integer');
    this.minLeaseTtlSeconds = options.minLeaseTtlSeconds;
    this.now = options.now ?? Date.now;
    this.expiredLeaseRetryMs = options.expiredLeaseRetryMs ?? expiredLeaseRetryMsDefault;
    assert(this.expiredLeaseRetryMs > 0, 'expiredLeaseRetryMs is positive');
    this.revokeRatePerSecond = options.leaseRevokeRatePerSecond ?? leaseRevokeRatePerSecond;
    assert(this.revokeRatePerSecond >= 4, 'the revoke rate leaves room for spreading');
  }

  /** True between promote() and demote(). */
  get isPrimary(): boolean {
    return this.primary;
  }

  get size(): number {
    return this.leaseMap.size;
  }

  // -------------------------------------------------------------------------------------
  // Applied through Raft: deterministic on every member
  // -------------------------------------------------------------------------------------

  /**
   * Grants lease `id` for ttlSeconds (raised to the minimum TTL). id 0: ERR_LEASE_NOT_FOUND
   * (as etcd's lessor; the server picks a nonzero id before proposing). TTL above
   * leaseTtlSecondsMax: ERR_LEASE_TTL_TOO_LARGE. id in use: ERR_LEASE_EXIST.
   * Returns the granted TTL.
   */
  grant(id: number, ttlSeconds: number): number {
    assert(Number.isSafeInteger(id), 'lease ids are safe integers');
    assert(Number.isSafeInteger(ttlSeconds), 'TTLs are integers');
    if (id === 0) throw new LeaseError('ERR_LEASE_NOT_FOUND');
    if (ttlSeconds > leaseTtlSecondsMax) throw new LeaseError('ERR_LEASE_TTL_TOO_LARGE');
    if (this.leaseMap.has(id)) throw new LeaseError('ERR_LEASE_EXIST');
    const granted = Math.max(ttlSeconds, this.minLeaseTtlSeconds);
    const lease: Lease = { id, ttlSeconds: granted, expiryMs: Infinity, keys: new Map() };
    this.leaseMap.set(id, lease);
    if (this.primary) this.refresh(lease, 0);
    return granted;
  }

  /**
   * Revokes lease `id`: removes it and its attachments and returns the keys that were
   * attached, in byte order (the order etcd deletes them in). The caller deletes those keys
   * in the same write; they are already detached, so it need not (and cannot) detach them.
   * Unknown id: ERR_LEASE_NOT_FOUND.
   */
  revoke(id: number): Uint8Array[] {
    const lease = this.leaseMap.get(id);
    if (lease === undefined) throw new LeaseError('ERR_LEASE_NOT_FOUND');
    const keys = sortedKeys(lease);
    for (const keyStr of lease.keys.keys()) this.keyLease.delete(keyStr);
    this.leaseMap.delete(id);
    this.expiryQueue.delete(id);
    this.settle(id, 'revoked');
    return keys;
  }

  /**
   * Attaches key to lease `id` (a put with this lease). Unknown lease: ERR_LEASE_NOT_FOUND.
   * A key moving to another lease must be detached from its old one first.
   */
  attach(id: number, key: Uint8Array): void {
    const lease = this.leaseMap.get(id);
    if (lease === undefined) throw new LeaseError('ERR_LEASE_NOT_FOUND');
    const keyStr = keyString(key);
    const owner = this.keyLease.get(keyStr);
    assert(owner === undefined || owner === id, 'a key is attached to at most one lease');
    lease.keys.set(keyStr, Uint8Array.from(key));
    this.keyLease.set(keyStr, id);
  }

  /**
   * Detaches key from lease `id` (the key was deleted, or put with another lease or none).
   * Unknown lease: ERR_LEASE_NOT_FOUND (etcd's applier logs it and goes on). A key not
   * attached to it is ignored.
   */
  detach(id: number, key: Uint8Array): void {
    const lease = this.leaseMap.get(id);
    if (lease === undefined) throw new LeaseError('ERR_LEASE_NOT_FOUND');
    const keyStr = keyString(key);
    if (!lease.keys.delete(keyStr)) return;
    this.keyLease.delete(keyStr);
  }

  /** The lease key is attached to, 0 if none (etcd's GetLease). */
  leaseOfKey(key: Uint8Array): number {
    return this.keyLease.get(keyString(key)) ?? 0;
  }

  // -------------------------------------------------------------------------------------
  // Leader only: not replicated, uses the clock
  // -------------------------------------------------------------------------------------

  /**
   * This member became leader: every lease expires ttl + extendMs from now (extendMs: the
   * election timeout, as etcd). With leaseRevokeRatePerSecond leases or more, expiries that
   * would pile up are spread so that at most 3/4 of the revoke rate fall in any second.
   */
  promote(extendMs: number): void {
    assert(extendMs >= 0, 'the extension is not negative');
    this.primary = true;
    this.expiryQueue.clear();
    for (const lease of this.leaseMap.values()) this.refresh(lease, extendMs);
    if (this.leaseMap.size < this.revokeRatePerSecond) return;
    this.spreadExpiries(extendMs);
  }

  /** This member is no longer leader: expiries are forgotten (a follower never expires a lease). */
  demote(): void {
    this.primary = false;
    for (const lease of this.leaseMap.values()) lease.expiryMs = Infinity;
    this.expiryQueue.clear();
    for (const id of [...this.waiters.keys()]) this.settle(id, 'not-primary');
  }

  /**
   * Keep-alive: the lease expires ttl from now; returns the TTL. Not the leader:
   * ERR_NOT_PRIMARY (forward to the leader). Unknown: ERR_LEASE_NOT_FOUND. Already expired
   * (its revoke is pending): ERR_LEASE_EXPIRED, without renewing it; etcd's Renew then waits
   * for the revoke (→ not found, keep-alive answers TTL 0) or the demotion (→ not primary):
   * the server does the same with whenExpiredSettles(id).
   */
  renew(id: number): number {
    if (!this.primary) throw new LeaseError('ERR_NOT_PRIMARY');
    const lease = this.leaseMap.get(id);
    if (lease === undefined) throw new LeaseError('ERR_LEASE_NOT_FOUND');
    if (lease.expiryMs - this.now() <= 0) throw new LeaseError('ERR_LEASE_EXPIRED');
    this.refresh(lease, 0);
    return lease.ttlSeconds;
  }

  /**
   * Resolves when an expired lease is revoked ('revoked'), or this member stops being the
   * leader ('not-primary'; also when the applied state is restored). Resolves at once if
   * the lease is already gone or this member is not the leader.
   */
  whenExpiredSettles(id: number): Promise<ExpiredLeaseOutcome> {
    if (!this.leaseMap.has(id)) return Promise.resolve('revoked');
    if (!this.primary) return Promise.resolve('not-primary');
    return new Promise((resolve) => {
      const list = this.waiters.get(id);
      if (list === undefined) this.waiters.set(id, [resolve]);
      else list.push(resolve);
    });
  }

  /**
   * Leases past their expiry, at most `limit`, for the leader to revoke through Raft (etcd's
   * findExpiredLeases). A lease returned here is not returned again for
   * expiredLeaseRetryMs, unless renewed and expired again meanwhile: if its revoke did not
   * get applied (a lost proposal), it is offered again. Empty on a follower.
   */
  expired(limit: number): number[] {
    assert(limit >= 1, 'the limit allows progress');
    if (!this.primary) return [];
    const now = this.now();
    const out: number[] = [];
    while (out.length < limit) {
      const next = this.expiryQueue.peek();
      if (next === undefined || next.timeMs > now) break;
      const lease = this.leaseMap.get(next.id);
      assert(lease !== undefined, 'queued leases exist');
      this.expiryQueue.set(next.id, now + this.expiredLeaseRetryMs);
      if (lease.expiryMs <= now) out.push(next.id);
    }
    return out;
  }

  // -------------------------------------------------------------------------------------
  // Queries (any member)
  // -------------------------------------------------------------------------------------

  lookup(id: number): LeaseInfo | undefined {
    const lease = this.leaseMap.get(id);
    return lease === undefined ? undefined : this.info(lease, this.now());
  }

  /** Every lease, soonest expiry first (etcd's Leases order), then by id. */
  leases(): LeaseInfo[] {
    const now = this.now();
    const all = [...this.leaseMap.values()].map((l) => this.info(l, now));
    all.sort((a, b) => (a.remainingMs === b.remainingMs ? a.id - b.id : a.remainingMs - b.remainingMs));
    return all;
  }

  /**
   * etcd's LeaseTimeToLive from local state. On the leader: the remaining seconds,
   * truncated. Elsewhere etcd forwards the request to the leader (and its local lessor
   * would say 9223372036 s, "forever"); here a member that is not the leader answers the
   * granted TTL, the most a lease can have left. Unknown: ERR_LEASE_NOT_FOUND (the service
   * answers TTL -1, as etcd).
   */
  timeToLive(id: number, withKeys = false): LeaseTimeToLive {
    const lease = this.leaseMap.get(id);
    if (lease === undefined) throw new LeaseError('ERR_LEASE_NOT_FOUND');
    const ttlSeconds = this.primary ? truncSeconds(lease.expiryMs - this.now()) : lease.ttlSeconds;
    return { id, ttlSeconds, grantedTtlSeconds: lease.ttlSeconds, keys: withKeys ? sortedKeys(lease) : [] };
  }

  // -------------------------------------------------------------------------------------
  // Persistence of the applied state
  // -------------------------------------------------------------------------------------

  snapshotState(): LessorState {
    const leases = [...this.leaseMap.values()].map((l) => ({ id: l.id, ttlSeconds: l.ttlSeconds }));
    leases.sort((a, b) => a.id - b.id);
    return { leases };
  }

  /**
   * Replaces the applied state (snapshot install or restart). Attachments are cleared: the
   * caller attaches every leased key of the restored store. Expiries: forever, as etcd's
   * recovery; on the leader (unusual) the full TTL from now.
   */
  restoreState(state: LessorState): void {
    this.leaseMap.clear();
    this.keyLease.clear();
    this.expiryQueue.clear();
    for (const { id, ttlSeconds } of state.leases) {
      assert(Number.isSafeInteger(id) && id !== 0, 'restored lease ids are valid');
      assert(!this.leaseMap.has(id), 'restored lease ids are unique');
      const lease: Lease = { id, ttlSeconds: Math.max(ttlSeconds, this.minLeaseTtlSeconds), expiryMs: Infinity, keys: new Map() };
      this.leaseMap.set(id, lease);
      if (this.primary) this.refresh(lease, 0);
    }
    for (const id of [...this.waiters.keys()]) this.settle(id, this.leaseMap.has(id) ? 'not-primary' : 'revoked');
  }

  // -------------------------------------------------------------------------------------
  // Internals
  // -------------------------------------------------------------------------------------

  private refresh(lease: Lease, extendMs: number): void {
    assert(this.primary, 'only the leader has expiries');
    lease.expiryMs = this.now() + extendMs + lease.ttlSeconds * 1000;
    this.expiryQueue.set(lease.id, lease.expiryMs);
  }

  /**
   * etcd's pile-up avoidance at promotion: walk the leases by expiry in one-second windows;
   * past 3/4 of the revoke rate in a window, push each further lease back in proportion to
   * the excess (minus how far into the window it already is).
   */
  private spreadExpiries(extendMs: number): void {
    const now = this.now();
    const byExpiry = [...this.leaseMap.values()].sort((a, b) => a.expiryMs - b.expiryMs || a.id - b.id);
    const targetPerSecond = Math.floor((3 * this.revokeRatePerSecond) / 4);
    let baseWindowMs = byExpiry[0].expiryMs - now;
    let nextWindowMs = baseWindowMs + 1000;
    let inWindow = 0;
    for (const lease of byExpiry) {
      const remainingMs = lease.expiryMs - now;
      if (remainingMs > nextWindowMs) {
        baseWindowMs = remainingMs;
        nextWindowMs = baseWindowMs + 1000;
        inWindow = 1;
        continue;
      }
      inWindow++;
      if (inWindow <= targetPerSecond) continue;
      const delayMs = Math.trunc(1000 * (inWindow / targetPerSecond) - (remainingMs - baseWindowMs));
      nextWindowMs = baseWindowMs + delayMs;
      this.refresh(lease, delayMs + extendMs);
    }
  }

  private info(lease: Lease, now: number): LeaseInfo {
    return {
      id: lease.id,
      ttlSeconds: lease.ttlSeconds,
      remainingMs: lease.expiryMs === Infinity ? Infinity : lease.expiryMs - now,
      keyCount: lease.keys.size,
    };
  }

  private settle(id: number, outcome: ExpiredLeaseOutcome): void {
    const list = this.waiters.get(id);
    if (list === undefined) return;
    this.waiters.delete(id);
    for (const resolve of list) resolve(outcome);
  }
}

function keyString(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

function sortedKeys(lease: Lease): Uint8Array[] {
  return [...lease.keys.values()].sort((a, b) => Buffer.compare(a, b));
}

/** int64(d.Seconds()) for d in milliseconds: truncation toward zero, never -0. */
function truncSeconds(ms: number): number {
  return Math.trunc(ms / 1000) + 0;
}
