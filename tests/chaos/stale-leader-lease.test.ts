// A leader paused (SIGSTOP) longer than the election timeout comes back with every lease
// expired by its clock; a revoke it proposes just as it steps down is forwarded to the new
// leader, which kept those leases alive meanwhile (etcd#15247). The chaos harness found it
// in skiff (`npm run chaos -- --seed 102 --duration 60`: the raft log showed the revokes
// of two kept-alive leases proposed by the deposed leader of term 4, committed in term 5).
// The revoke of an expired lease now names the term its proposer led in, and the applier
// ignores it in an entry of another term.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Lessor } from '../../src/kv/lease';
import { ApplyResult, KvStateMachine } from '../../src/kv/server/applier';
import { encodeEnvelope, InternalRequest } from '../../src/kv/server/requests';
import { EntryType, silentLogger } from '../../src/raft';

test('the revoke of an expired lease applies only in an entry of the term its proposer led in', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-stale-revoke-'));
  const lessor = new Lessor({ minLeaseTtlSeconds: 1 });
  const sm = await KvStateMachine.open({ dir, memberId: 1, lessor, logger: silentLogger, initialMembership: { clusterId: 1, members: [], removed: [] } });
  let index = 0;
  let seq = 0;
  const apply = (term: number, r: InternalRequest): Promise<ApplyResult> => {
    const n = ++seq;
    const result = sm.wait.register(n);
    sm.apply([{ entry: { term, index: ++index, type: EntryType.Normal, data: encodeEnvelope({ m: 1, n, r }) } }]);
    return result;
  };
  const key = Buffer.from('/k');
  const keyExists = (): boolean => sm.store.range({ key }).kvs.length === 1;
  try {
    for (const id of [7, 8]) {
      expect((await apply(4, { op: 'leaseGrant', req: { ID: id, TTL: 5 } })).ok).toBe(true);
    }
    expect((await apply(4, { op: 'put', req: { key, value: Buffer.from('v'), lease: 7, prev_kv: false, ignore_value: false, ignore_lease: false } })).ok).toBe(true);
    // Proposed by the leader of term 4, forwarded to and committed by the leader of term 5: ignored.
    const stale = await apply(5, { op: 'leaseRevoke', req: { ID: 7 }, leaderTerm: 4 });
    expect(stale.ok).toBe(false);
    expect(keyExists()).toBe(true);
    expect(lessor.lookup(7)).toBeDefined();
    // The leader of term 5 revoking it: applied.
    expect((await apply(5, { op: 'leaseRevoke', req: { ID: 7 }, leaderTerm: 5 })).ok).toBe(true);
    expect(keyExists()).toBe(false);
    // A client's LeaseRevoke names no term: applied in any.
    expect((await apply(6, { op: 'leaseRevoke', req: { ID: 8 } })).ok).toBe(true);
    expect(lessor.lookup(8)).toBeUndefined();
  } finally {
    await sm.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
