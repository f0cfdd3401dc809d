// The watch, lease, acknowledged-write and append checkers on hand-made histories.

import { checkAckedWrites, stateFromHistory } from '../../src/chaos/acked-checker';
import { checkAppends } from '../../src/chaos/append-checker';
import type { AckedWrite, AppendOp, HistoryEvent, LeaseObservation, LeaseRecord, WatcherRecord, WatchSegment } from '../../src/chaos/history';
import { checkLeases } from '../../src/chaos/lease-checker';
import { checkWatchers, compareHistories } from '../../src/chaos/watch-checker';

const P = '/chaos/watch/';

function put(rev: number, key: string, value: string): HistoryEvent {
  return { rev, key: P + key, type: 'PUT', value };
}
function del(rev: number, key: string): HistoryEvent {
  return { rev, key: P + key, type: 'DELETE', value: null };
}
function seg(startRev: number, events: HistoryEvent[], end = 'stream ended', member = 0): WatchSegment {
  return { member, startRev, openedMs: 0, closedMs: 0, events, end };
}
function watcher(id: number, segments: WatchSegment[]): WatcherRecord {
  return { watcher: id, prefix: P, segments };
}

// The store's history: other prefixes interleave (revisions 3 and 6 are not ours).
const history: HistoryEvent[] = [
  put(2, 'a', 'v1'),
  { rev: 3, key: '/chaos/reg/k0', type: 'PUT', value: 'x' },
  put(4, 'b', 'v2'),
  del(5, 'a'),
  { rev: 6, key: '/chaos/reg/k0', type: 'PUT', value: 'y' },
  put(7, 'a', 'v3'),
];
const mine = history.filter((e) => e.key.startsWith(P));

describe('watch checker', () => {
  test('watchers that saw every change once, in order, across reconnects, pass', () => {
    const r = checkWatchers({
      watchers: [watcher(0, [seg(1, mine, 'caught up')]), watcher(1, [seg(1, mine.slice(0, 2)), seg(5, mine.slice(2), 'caught up', 1)])],
      coveredRevs: [7, 7],
      history,
    });
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
  });

  test('a duplicated event fails', () => {
    const r = checkWatchers({ watchers: [watcher(0, [seg(1, [mine[0], mine[1], mine[1], mine[2], mine[3]])])], coveredRevs: [7], history });
    expect(r.ok).toBe(false);
    expect(r.problems.map((p) => p.kind)).toEqual(['duplicate']);
  });

  test('a duplicate delivered again after a reconnect from too early a revision fails', () => {
    const r = checkWatchers({ watchers: [watcher(0, [seg(1, mine.slice(0, 2)), seg(4, mine.slice(1))])], coveredRevs: [7], history });
    expect(r.ok).toBe(false);
    expect(r.problems.map((p) => p.kind)).toContain('duplicate');
  });

  test('reordered events fail', () => {
    const r = checkWatchers({ watchers: [watcher(0, [seg(1, [mine[0], mine[2], mine[1], mine[3]])])], coveredRevs: [7], history });
    expect(r.ok).toBe(false);
    expect(r.problems.map((p) => p.kind)).toEqual(['reordered']);
  });

  test('a gap across a reconnect fails and says where', () => {
    // The first stream saw revs 2 and 4; the second, opened from 5, began at 7: rev 5 is lost.
    const r = checkWatchers({ watchers: [watcher(0, [seg(1, mine.slice(0, 2), 'UNAVAILABLE'), seg(5, [mine[3]], 'caught up', 2)])], coveredRevs: [7], history });
    expect(r.ok).toBe(false);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0].kind).toBe('gap across reconnect');
    expect(r.problems[0].detail).toContain('rev 5 DELETE /chaos/watch/a');
  });

  test('a gap inside one stream fails', () => {
    const r = checkWatchers({ watchers: [watcher(0, [seg(1, [mine[0], mine[2], mine[3]])])], coveredRevs: [7], history });
    expect(r.problems.map((p) => p.kind)).toEqual(['gap']);
  });

  test('an event the history does not have, or has otherwise, fails', () => {
    const phantom = checkWatchers({ watchers: [watcher(0, [seg(1, [mine[0], put(3, 'z', 'q'), ...mine.slice(1)])])], coveredRevs: [7], history });
    expect(phantom.problems.map((p) => p.kind)).toEqual(['phantom']);
    const mismatch = checkWatchers({ watchers: [watcher(0, [seg(1, [mine[0], put(4, 'b', 'other'), ...mine.slice(2)])])], coveredRevs: [7], history });
    expect(mismatch.problems.map((p) => p.kind)).toEqual(['mismatch']);
  });

  test('a watcher that never caught up with the last change fails', () => {
    const r = checkWatchers({ watchers: [watcher(0, [seg(1, mine.slice(0, 2), 'gave up catching up')])], coveredRevs: [4], history });
    expect(r.problems.map((p) => p.kind)).toEqual(['not caught up']);
  });

  test('a watch cancelled for compaction fails', () => {
    const r = checkWatchers({ watchers: [watcher(0, [seg(1, [], 'canceled: required revision has been compacted (compacted at 3)'), seg(1, mine, 'caught up')])], coveredRevs: [7], history });
    expect(r.problems.map((p) => p.kind)).toEqual(['canceled']);
  });

  test('member histories are compared event by event', () => {
    expect(compareHistories([{ member: 'm1', events: history }, { member: 'm2', events: [...history] }])).toEqual([]);
    const d = compareHistories([{ member: 'm1', events: history }, { member: 'm2', events: history.slice(0, 5) }]);
    expect(d).toHaveLength(1);
    expect(d[0]).toContain('differ at event 5');
  });
});

describe('acknowledged writes', () => {
  const acked = (key: string, value: string | null, rev: number): AckedWrite => ({ key: P + key, value, rev, ackMs: 0, source: 'test' });

  test('acknowledged writes in the history, and superseded ones, pass', () => {
    const r = checkAckedWrites([acked('a', 'v1', 2), acked('b', 'v2', 4), acked('a', null, 5), acked('a', 'v3', 7)], history, stateFromHistory(history));
    expect(r.lost).toEqual([]);
  });

  test('a lost write: acknowledged but not in the history', () => {
    const r = checkAckedWrites([acked('b', 'v9', 8)], history, stateFromHistory(history));
    expect(r.ok).toBe(false);
    expect(r.lost[0].why).toContain('not in the history');
  });

  test('a lost write: the final state went back to an older write', () => {
    const state = stateFromHistory(history);
    state.set(P + 'a', { value: 'v1', modRev: 2 });
    const r = checkAckedWrites([acked('a', 'v3', 7)], history, state);
    expect(r.ok).toBe(false);
    expect(r.lost[0].why).toContain('older write');
  });

  test('a key gone without a later delete is a lost write', () => {
    const state = stateFromHistory(history);
    state.delete(P + 'b');
    const r = checkAckedWrites([acked('b', 'v2', 4)], history, state);
    expect(r.ok).toBe(false);
    expect(r.lost[0].why).toContain('without a later delete');
  });
});

describe('lease checker', () => {
  const electionMs = 1000;
  const slackMs = 500;
  function lease(id: number, over: Partial<LeaseRecord>): LeaseRecord {
    return { id, key: `/chaos/lease/exp/${id}`, ttlSec: 2, grantInvokeMs: 0, grantAckMs: 10, putAckMs: 20, putStatus: 'ok', keepAlive: false, keepAlives: [], ...over };
  }
  function obs(t0: number, t1: number, keys: string[]): LeaseObservation {
    return { member: 0, invokeMs: t0, completeMs: t1, keys: new Set(keys) };
  }

  test('a key gone within TTL + election timeout + slack passes', () => {
    const l = lease(1, {});
    const r = checkLeases({ leases: [l], observations: [obs(100, 110, [l.key]), obs(3000, 3010, [l.key]), obs(3600, 3610, [])], termRises: [], electionMs, slackMs });
    expect(r.ok).toBe(true);
    expect(r.expiryChecked).toBe(1);
  });

  test('a lease key outliving its TTL bound fails', () => {
    const l = lease(1, {});
    const r = checkLeases({ leases: [l], observations: [obs(3400, 3410, []), obs(3600, 3610, [l.key])], termRises: [], electionMs, slackMs });
    expect(r.ok).toBe(false);
    expect(r.problems[0].kind).toBe('outlived');
  });

  test('a new leader restarts the bound', () => {
    const l = lease(1, {});
    const r = checkLeases({ leases: [l], observations: [obs(3600, 3610, [l.key]), obs(6000, 6010, [])], termRises: [3000], electionMs, slackMs });
    expect(r.ok).toBe(true);
  });

  test('a leader fault that began before the deadline moves it past the fault', () => {
    const l = lease(1, {});
    // The leader was paused from 3.0 s to 6.0 s: nobody could revoke meanwhile.
    const observations = [obs(8000, 8010, [l.key]), obs(12_000, 12_010, [])];
    expect(checkLeases({ leases: [l], observations, termRises: [], electionMs, slackMs }).ok).toBe(false);
    expect(checkLeases({ leases: [l], observations, termRises: [], disruptions: [{ startMs: 3000, endMs: 6000 }], electionMs, slackMs }).ok).toBe(true);
    // A fault that began after the deadline changes nothing.
    expect(checkLeases({ leases: [l], observations, termRises: [], disruptions: [{ startMs: 4000, endMs: 6000 }], electionMs, slackMs }).ok).toBe(false);
  });

  test('a kept-alive key that disappears while renewed fails', () => {
    const l = lease(2, { keepAlive: true, key: '/chaos/lease/keep/2', keepAlives: [{ sentMs: 1000, ackMs: 1010, ttlSec: 2, member: 0 }, { sentMs: 2000, ackMs: 2010, ttlSec: 2, member: 0 }] });
    const good = checkLeases({ leases: [l], observations: [obs(1500, 1510, [l.key]), obs(3900, 3950, [l.key]), obs(4100, 4110, [])], termRises: [], electionMs, slackMs });
    expect(good.ok).toBe(true);
    const bad = checkLeases({ leases: [l], observations: [obs(2500, 2510, [])], termRises: [], electionMs, slackMs });
    expect(bad.ok).toBe(false);
    expect(bad.problems[0].kind).toBe('expired early');
  });

  test('a keep-alive answered "gone" while the lease should live fails', () => {
    const l = lease(3, { keepAlive: true, keepAlives: [{ sentMs: 1000, ackMs: 1010, ttlSec: 2, member: 0 }], lost: { sentMs: 1500, ackMs: 1510, member: 0 } });
    const r = checkLeases({ leases: [l], observations: [], termRises: [], electionMs, slackMs });
    expect(r.problems.map((p) => p.kind)).toEqual(['expired early']);
  });
});

describe('append checker', () => {
  const op = (elem: string, keys: string[], committed: boolean | undefined): AppendOp => ({ client: 1, keys, elem, invokeMs: 0, completeMs: 1, status: committed === undefined ? 'unknown' : 'ok', ...(committed !== undefined ? { committed } : {}) });

  test('consistent lists pass', () => {
    const ops = [op('e1', ['a'], true), op('e2', ['a', 'b'], true), op('e3', ['b'], undefined), op('e4', ['b'], false)];
    const r = checkAppends(ops, new Map([['a', 'e1 e2'], ['b', 'e2 e3']]));
    expect(r.problems).toEqual([]);
  });

  test('a duplicate, a lost committed element, half an atomic append, and opposite orders are found', () => {
    const ops = [op('e1', ['a', 'b'], true), op('e2', ['a', 'b'], true), op('e3', ['a'], true), op('e4', ['a', 'b'], undefined)];
    const r = checkAppends(ops, new Map([['a', 'e1 e2 e2 e4'], ['b', 'e2 e1']]));
    expect(r.ok).toBe(false);
    const text = r.problems.join('\n');
    expect(text).toContain('e2 appears twice');
    expect(text).toContain('committed element e3 is missing');
    expect(text).toContain('e4 is in a but not in b');
    expect(text).toContain('the other way round');
  });
});
