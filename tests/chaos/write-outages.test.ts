// The lease bound also restarts after a stretch with no acknowledged write: without a quorum
// no revoke commits, whoever leads (seen in a long skiff run: a voter re-added with empty data
// had not caught up when the other follower was killed; two 3 s leases lived on through
// 9 s and 17 s with nothing committed, and went once writes did).

import { expiryDeadlineMs, writeOutages } from '../../src/chaos/lease-checker';

describe('writeOutages', () => {
  test('gaps longer than the minimum between acknowledged writes, in time order', () => {
    expect(writeOutages([100, 5000, 200, 300, 9000, 9100], 1000)).toEqual([
      { startMs: 300, endMs: 5000 },
      { startMs: 5000, endMs: 9000 },
    ]);
    expect(writeOutages([], 1000)).toEqual([]);
    expect(writeOutages([2500], 1000, 0)).toEqual([{ startMs: 0, endMs: 2500 }]);
  });

  test('a lease granted before an outage must be gone TTL + bound after its end, not before', () => {
    const lease = { id: 1, key: '/l/1', ttlSec: 3, grantInvokeMs: 487_977, grantAckMs: 487_988, putStatus: 'ok', keepAlive: false, keepAlives: [] } as never;
    const bound = 2500;
    expect(expiryDeadlineMs(lease, [], bound)).toBe(487_988 + 3000 + bound);
    const outages = writeOutages([490_000, 491_379, 500_264, 501_693, 518_480], 1000);
    expect(expiryDeadlineMs(lease, [], bound, outages)).toBe(518_480 + 3000 + bound);
  });
});
