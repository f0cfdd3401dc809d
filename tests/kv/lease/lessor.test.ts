// The lessor against etcd 3.4's lease/lessor.go and etcdserver's use of it, with a fake clock.

import fc from 'fast-check';
import {
  isLeaseError,
  LeaseError,
  LeaseErrorCode,
  leaseTtlSecondsMax,
  Lessor,
  LessorOptions,
  minLeaseTtlSecondsFor,
} from '../../../src/kv/lease';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const s = (u: Uint8Array): string => Buffer.from(u).toString('latin1');

function setup(options: Partial<LessorOptions> = {}) {
  const clock = { ms: 1_000_000 };
  const lessor = new Lessor({ minLeaseTtlSeconds: 2, now: () => clock.ms, ...options });
  return { clock, lessor };
}

function code(f: () => unknown): LeaseErrorCode | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof LeaseError) return e.code;
    throw e;
  }
  return undefined;
}

describe('applied: grant, revoke, attach, detach', () => {
  test('grant returns the granted TTL; the minimum TTL raises short ones', () => {
    const { lessor } = setup();
    expect(lessor.grant(1, 10)).toBe(10);
    expect(lessor.grant(2, 1)).toBe(2);
    expect(lessor.grant(3, 0)).toBe(2);
    expect(lessor.grant(4, -5)).toBe(2);
    expect(lessor.lookup(2)).toMatchObject({ id: 2, ttlSeconds: 2 });
  });

  test('grant errors: id 0 (not found, as etcd), id in use, TTL too large', () => {
    const { lessor } = setup();
    expect(code(() => lessor.grant(0, 10))).toBe('ERR_LEASE_NOT_FOUND');
    lessor.grant(5, 10);
    expect(code(() => lessor.grant(5, 20))).toBe('ERR_LEASE_EXIST');
    expect(code(() => lessor.grant(6, leaseTtlSecondsMax + 1))).toBe('ERR_LEASE_TTL_TOO_LARGE');
    expect(lessor.grant(6, leaseTtlSecondsMax)).toBe(9_000_000_000);
    expect(lessor.lookup(5)!.ttlSeconds).toBe(10);
    const e = new LeaseError('ERR_LEASE_EXIST');
    expect(e.message).toBe('lease already exists');
    expect(new LeaseError('ERR_LEASE_NOT_FOUND').message).toBe('lease not found');
    expect(new LeaseError('ERR_LEASE_TTL_TOO_LARGE').message).toBe('too large lease TTL');
    expect(isLeaseError(e, 'ERR_LEASE_EXIST')).toBe(true);
    expect(isLeaseError(e, 'ERR_LEASE_NOT_FOUND')).toBe(false);
  });

  test('minimum TTL from the election timeout, as etcd computes it', () => {
    expect(minLeaseTtlSecondsFor({ electionTimeoutMs: 1000, heartbeatIntervalMs: 100 })).toBe(2); // 1.5 s
    expect(minLeaseTtlSecondsFor({ electionTimeoutMs: 5000, heartbeatIntervalMs: 100 })).toBe(8); // 7.5 s
    expect(minLeaseTtlSecondsFor({ electionTimeoutMs: 2000, heartbeatIntervalMs: 100 })).toBe(3);
    expect(minLeaseTtlSecondsFor({ electionTimeoutMs: 1000, heartbeatIntervalMs: 300 })).toBe(2); // ticks 3 → 4 * 300 ms
  });

  test('revoke returns the attached keys in byte order and forgets the lease and its attachments', () => {
    const { lessor } = setup();
    lessor.grant(1, 10);
    lessor.attach(1, b('b'));
    lessor.attach(1, b('a'));
    lessor.attach(1, b('a')); // idempotent
    lessor.attach(1, b('\xff'));
    expect(lessor.leaseOfKey(b('a'))).toBe(1);
    expect(lessor.revoke(1).map(s)).toEqual(['a', 'b', '\xff']);
    expect(lessor.lookup(1)).toBeUndefined();
    expect(lessor.leaseOfKey(b('a'))).toBe(0);
    expect(code(() => lessor.revoke(1))).toBe('ERR_LEASE_NOT_FOUND');
    expect(code(() => lessor.detach(1, b('a')))).toBe('ERR_LEASE_NOT_FOUND');
  });

  test('attach and detach: unknown lease is an error; detaching a key not attached is ignored', () => {
    const { lessor } = setup();
    expect(code(() => lessor.attach(9, b('k')))).toBe('ERR_LEASE_NOT_FOUND');
    lessor.grant(1, 10);
    lessor.grant(2, 10);
    lessor.attach(1, b('k'));
    lessor.detach(1, b('other'));
    lessor.detach(2, b('k'));
    expect(lessor.leaseOfKey(b('k'))).toBe(1);
    // A key changes lease: detach from the old one, attach to the new one.
    lessor.detach(1, b('k'));
    lessor.attach(2, b('k'));
    expect(lessor.leaseOfKey(b('k'))).toBe(2);
    expect(lessor.lookup(1)!.keyCount).toBe(0);
    expect(lessor.timeToLive(2, true).keys.map(s)).toEqual(['k']);
  });

  test('a key attached to two leases is a bug', () => {
    const { lessor } = setup();
    lessor.grant(1, 10);
    lessor.grant(2, 10);
    lessor.attach(1, b('k'));
    expect(() => lessor.attach(2, b('k'))).toThrow(/assertion failed/);
  });

  test('attach copies the key (callers may reuse their buffers)', () => {
    const { lessor } = setup();
    lessor.grant(1, 10);
    const key = b('abc');
    lessor.attach(1, key);
    key[0] = 0x7a;
    expect(lessor.revoke(1).map(s)).toEqual(['abc']);
  });

  test('the applied state does not depend on the clock or on leadership', () => {
    const run = (leader: boolean, startMs: number) => {
      const { clock, lessor } = setup();
      clock.ms = startMs;
      if (leader) lessor.promote(1000);
      lessor.grant(3, 5);
      clock.ms += 60_000;
      lessor.grant(1, 100);
      lessor.attach(1, b('x'));
      lessor.revoke(3);
      return lessor.snapshotState();
    };
    expect(run(true, 0)).toEqual(run(false, 123_456));
    expect(run(false, 0)).toEqual({ leases: [{ id: 1, ttlSeconds: 100 }] });
  });
});

describe('leader: promote, demote, renew, expired', () => {
  test('a follower never expires leases, and cannot renew them', () => {
    const { clock, lessor } = setup();
    lessor.grant(1, 5);
    clock.ms += 3600_000;
    expect(lessor.expired(10)).toEqual([]);
    expect(lessor.lookup(1)!.remainingMs).toBe(Infinity);
    expect(code(() => lessor.renew(1))).toBe('ERR_NOT_PRIMARY');
  });

  test('promote: every lease expires ttl + extend from now; then they expire on time', () => {
    const { clock, lessor } = setup();
    lessor.grant(1, 5);
    lessor.grant(2, 10);
    clock.ms += 3600_000; // time on a follower does not count
    lessor.promote(1000);
    expect(lessor.isPrimary).toBe(true);
    expect(lessor.lookup(1)!.remainingMs).toBe(6000);
    clock.ms += 5999;
    expect(lessor.expired(10)).toEqual([]);
    clock.ms += 1;
    expect(lessor.expired(10)).toEqual([1]);
    lessor.revoke(1); // the leader's proposal, applied
    clock.ms += 5000;
    expect(lessor.expired(10)).toEqual([2]);
  });

  test('grant on the leader starts the clock at once', () => {
    const { clock, lessor } = setup();
    lessor.promote(1000);
    lessor.grant(1, 5);
    expect(lessor.lookup(1)!.remainingMs).toBe(5000);
    clock.ms += 5000;
    expect(lessor.expired(10)).toEqual([1]);
  });

  test('renew: expiry = now + ttl, returns the TTL; unknown lease: not found', () => {
    const { clock, lessor } = setup();
    lessor.grant(1, 5);
    lessor.promote(0);
    clock.ms += 4000;
    expect(lessor.renew(1)).toBe(5);
    clock.ms += 4000;
    expect(lessor.expired(10)).toEqual([]);
    clock.ms += 1000;
    expect(lessor.expired(10)).toEqual([1]);
    expect(code(() => lessor.renew(2))).toBe('ERR_LEASE_NOT_FOUND');
  });

  test('renew of an expired lease does not revive it: ERR_LEASE_EXPIRED, then revoked or not primary', async () => {
    const { clock, lessor } = setup();
    lessor.grant(1, 5);
    lessor.grant(2, 5);
    lessor.promote(0);
    clock.ms += 5000;
    expect(code(() => lessor.renew(1))).toBe('ERR_LEASE_EXPIRED');
    const revoked = lessor.whenExpiredSettles(1);
    const demoted = lessor.whenExpiredSettles(2);
    lessor.revoke(1);
    await expect(revoked).resolves.toBe('revoked');
    lessor.demote();
    await expect(demoted).resolves.toBe('not-primary');
    await expect(lessor.whenExpiredSettles(1)).resolves.toBe('revoked');
    await expect(lessor.whenExpiredSettles(2)).resolves.toBe('not-primary');
  });

  test('expired(limit): at most limit, soonest first; a returned lease comes back only after the retry interval', () => {
    const { clock, lessor } = setup({ expiredLeaseRetryMs: 3000 });
    lessor.promote(0);
    for (let id = 1; id <= 5; id++) {
      lessor.grant(id, 2 + id); // lease i expires at (2 + i) s
    }
    clock.ms += 10_000;
    expect(lessor.expired(2)).toEqual([1, 2]);
    expect(lessor.expired(10)).toEqual([3, 4, 5]);
    expect(lessor.expired(10)).toEqual([]); // revokes are on their way through Raft
    lessor.revoke(1);
    lessor.revoke(2);
    clock.ms += 2999;
    expect(lessor.expired(10)).toEqual([]);
    clock.ms += 1;
    expect(lessor.expired(10)).toEqual([3, 4, 5]); // their revokes were lost: offered again
  });

  test('a lease renewed before its revoke is proposed is not returned', () => {
    const { clock, lessor } = setup();
    lessor.promote(0);
    lessor.grant(1, 5);
    clock.ms += 4999;
    lessor.renew(1);
    clock.ms += 1;
    expect(lessor.expired(10)).toEqual([]);
    clock.ms += 4999;
    expect(lessor.expired(10)).toEqual([1]);
  });

  test('demote forgets expiries; promote again restarts them in full', () => {
    const { clock, lessor } = setup();
    lessor.grant(1, 5);
    lessor.promote(0);
    clock.ms += 4000;
    lessor.demote();
    expect(lessor.isPrimary).toBe(false);
    clock.ms += 100_000;
    expect(lessor.expired(10)).toEqual([]);
    expect(lessor.lookup(1)!.remainingMs).toBe(Infinity);
    lessor.promote(2000);
    expect(lessor.lookup(1)!.remainingMs).toBe(7000);
  });

  test('promote spreads a pile-up of expiries to 3/4 of the revoke rate per second', () => {
    const rate = 8; // 6 per second at most
    const { clock, lessor } = setup({ leaseRevokeRatePerSecond: rate });
    for (let id = 1; id <= 20; id++) lessor.grant(id, 10);
    lessor.promote(1000);
    const t0 = clock.ms;
    const expiries = lessor.leases().map((l) => l.remainingMs);
    expect(Math.min(...expiries)).toBe(11_000);
    // No one-second window holds more than 6 + the first lease of the next window.
    const counts = new Map<number, number>();
    for (const ms of expiries) counts.set(Math.floor((ms - 11_000) / 1000), (counts.get(Math.floor((ms - 11_000) / 1000)) ?? 0) + 1);
    for (const n of counts.values()) expect(n).toBeLessThanOrEqual(7);
    expect(Math.max(...expiries)).toBeGreaterThan(11_000 + 1000);
    // Below the rate, nothing is spread.
    const small = setup({ leaseRevokeRatePerSecond: 100 });
    for (let id = 1; id <= 20; id++) small.lessor.grant(id, 10);
    small.lessor.promote(1000);
    expect(new Set(small.lessor.leases().map((l) => l.remainingMs))).toEqual(new Set([11_000]));
    expect(clock.ms).toBe(t0);
  });
});

describe('queries', () => {
  test('timeToLive on the leader: remaining seconds truncated as etcd, granted TTL, keys on request', () => {
    const { clock, lessor } = setup();
    lessor.promote(0);
    lessor.grant(1, 10);
    lessor.attach(1, b('k2'));
    lessor.attach(1, b('k1'));
    expect(lessor.timeToLive(1)).toEqual({ id: 1, ttlSeconds: 10, grantedTtlSeconds: 10, keys: [] });
    clock.ms += 1;
    expect(lessor.timeToLive(1).ttlSeconds).toBe(9); // 9.999 s
    clock.ms += 8998;
    expect(lessor.timeToLive(1).ttlSeconds).toBe(1);
    clock.ms += 1;
    expect(lessor.timeToLive(1).ttlSeconds).toBe(1);
    clock.ms += 500;
    expect(lessor.timeToLive(1).ttlSeconds).toBe(0);
    clock.ms += 1000; // expired, revoke pending: 0 or negative, truncated toward zero
    expect(Object.is(lessor.timeToLive(1).ttlSeconds, 0)).toBe(true);
    clock.ms += 1000;
    expect(lessor.timeToLive(1).ttlSeconds).toBe(-1);
    expect(lessor.timeToLive(1, true).keys.map(s)).toEqual(['k1', 'k2']);
    expect(code(() => lessor.timeToLive(2))).toBe('ERR_LEASE_NOT_FOUND');
  });

  test('timeToLive on a follower: the granted TTL', () => {
    const { clock, lessor } = setup();
    lessor.grant(1, 10);
    clock.ms += 5000;
    expect(lessor.timeToLive(1)).toMatchObject({ ttlSeconds: 10, grantedTtlSeconds: 10 });
  });

  test('leases: soonest expiry first, then by id', () => {
    const { lessor } = setup();
    lessor.grant(3, 10);
    lessor.grant(1, 30);
    lessor.grant(2, 20);
    expect(lessor.leases().map((l) => l.id)).toEqual([1, 2, 3]); // follower: all forever
    lessor.promote(0);
    expect(lessor.leases().map((l) => l.id)).toEqual([3, 2, 1]);
    expect(lessor.size).toBe(3);
  });
});

describe('persistence', () => {
  test('snapshotState / restoreState round trip; attachments are rebuilt by the caller', async () => {
    const { lessor } = setup();
    lessor.grant(7, 30);
    lessor.grant(3, 1);
    lessor.attach(7, b('a'));
    const state = lessor.snapshotState();
    expect(state).toEqual({ leases: [{ id: 3, ttlSeconds: 2 }, { id: 7, ttlSeconds: 30 }] });
    expect(JSON.parse(JSON.stringify(state))).toEqual(state);

    const other = setup().lessor;
    other.grant(99, 10);
    other.attach(99, b('z'));
    other.restoreState(state);
    expect(other.lookup(99)).toBeUndefined();
    expect(other.leaseOfKey(b('z'))).toBe(0);
    expect(other.lookup(7)).toMatchObject({ ttlSeconds: 30, keyCount: 0, remainingMs: Infinity });
    other.attach(7, b('a'));
    expect(other.snapshotState()).toEqual(state);
  });

  test('restore on the leader restarts expiries; waiters are released', async () => {
    const { clock, lessor } = setup();
    lessor.promote(0);
    lessor.grant(1, 5);
    lessor.grant(2, 5);
    clock.ms += 5000;
    const gone = lessor.whenExpiredSettles(1);
    const kept = lessor.whenExpiredSettles(2);
    lessor.restoreState({ leases: [{ id: 2, ttlSeconds: 5 }] });
    await expect(gone).resolves.toBe('revoked');
    await expect(kept).resolves.toBe('not-primary');
    expect(lessor.lookup(2)!.remainingMs).toBe(5000);
    expect(lessor.expired(10)).toEqual([]);
  });
});

test('a long run against a reference model (fast-check): expiry is exact and applied state is clock-free', () => {
  type Step =
    | { t: 'grant'; id: number; ttl: number }
    | { t: 'revoke'; id: number }
    | { t: 'renew'; id: number }
    | { t: 'tick'; ms: number }
    | { t: 'promote'; extend: number }
    | { t: 'demote' }
    | { t: 'expired'; limit: number };
  const id = fc.integer({ min: 1, max: 6 });
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.record({ t: fc.constant('grant' as const), id, ttl: fc.integer({ min: -1, max: 8 }) }),
    fc.record({ t: fc.constant('revoke' as const), id }),
    fc.record({ t: fc.constant('renew' as const), id }),
    fc.record({ t: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 4000 }) }),
    fc.record({ t: fc.constant('promote' as const), extend: fc.integer({ min: 0, max: 2000 }) }),
    fc.record({ t: fc.constant('demote' as const) }),
    fc.record({ t: fc.constant('expired' as const), limit: fc.integer({ min: 1, max: 3 }) }),
  );
  fc.assert(
    fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
      const { clock, lessor } = setup({ expiredLeaseRetryMs: 3000 });
      // Reference: granted TTL and (leader only) expiry per lease.
      const model = new Map<number, { ttl: number; expiry: number }>();
      let primary = false;
      for (const st of steps) {
        switch (st.t) {
          case 'grant': {
            const c = code(() => lessor.grant(st.id, st.ttl));
            expect(c).toBe(model.has(st.id) ? 'ERR_LEASE_EXIST' : undefined);
            if (c === undefined) {
              const ttl = Math.max(st.ttl, 2);
              model.set(st.id, { ttl, expiry: primary ? clock.ms + ttl * 1000 : Infinity });
            }
            break;
          }
          case 'revoke':
            expect(code(() => lessor.revoke(st.id))).toBe(model.has(st.id) ? undefined : 'ERR_LEASE_NOT_FOUND');
            model.delete(st.id);
            break;
          case 'renew': {
            const m = model.get(st.id);
            const want = !primary ? 'ERR_NOT_PRIMARY' : m === undefined ? 'ERR_LEASE_NOT_FOUND' : m.expiry <= clock.ms ? 'ERR_LEASE_EXPIRED' : undefined;
            expect(code(() => lessor.renew(st.id))).toBe(want);
            if (want === undefined) m!.expiry = clock.ms + m!.ttl * 1000;
            break;
          }
          case 'tick':
            clock.ms += st.ms;
            break;
          case 'promote':
            primary = true;
            lessor.promote(st.extend);
            for (const m of model.values()) m.expiry = clock.ms + st.extend + m.ttl * 1000;
            break;
          case 'demote':
            primary = false;
            lessor.demote();
            for (const m of model.values()) m.expiry = Infinity;
            break;
          case 'expired': {
            const got = lessor.expired(st.limit);
            expect(got.length).toBeLessThanOrEqual(st.limit);
            for (const x of got) expect(model.get(x)!.expiry).toBeLessThanOrEqual(clock.ms);
            // Below the limit, every due lease was returned: asking again at once gives nothing.
            if (got.length < st.limit) expect(lessor.expired(10)).toEqual([]);
            break;
          }
        }
        for (const [lid, m] of model) {
          expect(lessor.lookup(lid)!.remainingMs).toBe(m.expiry === Infinity ? Infinity : m.expiry - clock.ms);
        }
        expect(lessor.size).toBe(model.size);
      }
      expect(lessor.snapshotState().leases).toEqual([...model].map(([lid, m]) => ({ id: lid, ttlSeconds: m.ttl })).sort((a, z) => a.id - z.id));
    }),
    { numRuns: 300 },
  );
});
