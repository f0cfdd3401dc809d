import type { LeaseObservation, LeaseRecord } from '../../src/chaos/history';
import { checkLeases } from '../../src/chaos/lease-checker';
import { LeaderlessTracker, StatusView } from '../../src/chaos/monitor';

const view = (member: number, leaderId: number): StatusView => ({ member, selfId: member + 1, leaderId, term: 5 });

describe('leaderless stretches (elections that elect nobody; etcd reports the applied term)', () => {
  test('a stretch runs from the first poll with no leader to the first poll with one', () => {
    const t = new LeaderlessTracker();
    t.note([view(0, 1), view(1, 1)], 100);
    t.note([view(0, 0), view(1, 0)], 200);
    t.note([], 300); // nobody answered: tells nothing
    t.note([view(0, 0)], 400);
    t.note([view(0, 0), view(1, 2)], 500);
    t.note([view(0, 0), view(1, 0)], 600);
    t.close(700);
    t.close(800);
    expect(t.stretches.map((s) => [s.startMs, s.endMs])).toEqual([
      [200, 500],
      [600, 700],
    ]);
  });

  test('no lease can be revoked without a leader: the expiry bound restarts at its end (etcd seed 301)', () => {
    const l: LeaseRecord = { id: 1, key: '/chaos/lease/exp/1', ttlSec: 3, grantInvokeMs: 0, grantAckMs: 10, putAckMs: 20, putStatus: 'ok', keepAlive: false, keepAlives: [] };
    const obs = (t0: number, t1: number, keys: string[]): LeaseObservation => ({ member: 0, invokeMs: t0, completeMs: t1, keys: new Set(keys) });
    // A partition ends at 2.3 s; nobody leads from 2.3 s to 11.6 s (no term rise seen), then
    // the new leader gives the lease its TTL again: the key is there until 14.6 s.
    const input = { leases: [l], observations: [obs(10_000, 11_700, [l.key]), obs(15_000, 15_010, [])], termRises: [11_600], electionMs: 1000, slackMs: 1500 };
    const partition = { startMs: 0, endMs: 2300 };
    expect(checkLeases({ ...input, disruptions: [partition] }).ok).toBe(false);
    expect(checkLeases({ ...input, disruptions: [partition, { startMs: 2300, endMs: 11_600 }] }).ok).toBe(true);
  });
});
