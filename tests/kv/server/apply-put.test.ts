// Puts that ask for nothing but the write (no prev_kv, no ignore flags, no lease) are applied
// from the entry's bytes without a request object while auth is off (readPlainPut). They must
// do what the decoded path does: same store, same results, leases detached, NOSPACE refused.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AuthInfo } from '../../../src/kv/auth';
import type { EtcdError } from '../../../src/kv/errors';
import { Lessor } from '../../../src/kv/lease';
import type * as pb from '../../../src/kv/proto';
import { ApplyResult, KvStateMachine } from '../../../src/kv/server/applier';
import { encodeEnvelope, InternalRequest } from '../../../src/kv/server/requests';
import { EntryType, silentLogger } from '../../../src/raft';

const b = (s: string): Buffer => Buffer.from(s);
const client: AuthInfo = { username: '', revision: 0 };

describe('plain puts applied in place', () => {
  const dirs: string[] = [];
  const sms: KvStateMachine[] = [];

  async function open(): Promise<{ sm: KvStateMachine; lessor: Lessor; apply: (r: InternalRequest, a?: AuthInfo) => Promise<ApplyResult> }> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-apply-put-'));
    dirs.push(dir);
    const lessor = new Lessor({ minLeaseTtlSeconds: 1 });
    const sm = await KvStateMachine.open({ dir, memberId: 1, lessor, logger: silentLogger, initialMembership: { clusterId: 1, members: [], removed: [] } });
    sms.push(sm);
    let index = 0;
    let seq = 0;
    const apply = (r: InternalRequest, a?: AuthInfo): Promise<ApplyResult> => {
      const n = ++seq;
      const result = sm.wait.register(n);
      sm.apply([{ entry: { term: 1, index: ++index, type: EntryType.Normal, data: encodeEnvelope(a ? { m: 1, n, r, a } : { m: 1, n, r }) } }]);
      return result;
    };
    return { sm, lessor, apply };
  }
  const put = (key: string, value: string, extra: Partial<pb.PutRequest> = {}): InternalRequest => ({
    op: 'put',
    req: { key: b(key), value: b(value), lease: 0, prev_kv: false, ignore_value: false, ignore_lease: false, ...extra },
  });

  afterAll(async () => {
    for (const sm of sms) await sm.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  test('the same store and results as puts that take the decoded path', async () => {
    const fast = await open();
    const slow = await open();
    for (let i = 0; i < 60; i++) {
      const key = `k${(i * 7) % 13}`;
      const value = `v${i}`.repeat(1 + (i % 5));
      const r1 = await fast.apply(put(key, value), i % 2 === 0 ? client : undefined);
      // prev_kv sends a put down the decoded path; its result differs only by the previous kv.
      const r2 = await slow.apply(put(key, value, { prev_kv: true }), client);
      expect(r1.ok && r2.ok).toBe(true);
      if (r1.ok && r2.ok) {
        expect(r1.revision).toBe(r2.revision);
        expect(r1.resp).toEqual({ op: 'put', resp: { header: null, prev_kv: null } });
      }
    }
    const all = (sm: KvStateMachine) => sm.store.range({ key: b('\0'), rangeEnd: b('\0') });
    expect(all(fast.sm)).toEqual(all(slow.sm));
    expect(fast.sm.store.revision).toBe(61);
  });

  test('overwriting a leased key without a lease detaches it: revoking the lease leaves it', async () => {
    const { sm, lessor, apply } = await open();
    expect((await apply({ op: 'leaseGrant', req: { ID: 77, TTL: 60 } })).ok).toBe(true);
    expect((await apply(put('held', 'a', { lease: 77 }), client)).ok).toBe(true);
    expect(lessor.timeToLive(77, true).keys.map((k) => Buffer.from(k).toString())).toEqual(['held']);
    expect((await apply(put('held', 'b'), client)).ok).toBe(true);
    expect(lessor.timeToLive(77, true).keys).toEqual([]);
    expect((await apply({ op: 'leaseRevoke', req: { ID: 77 } })).ok).toBe(true);
    const kvs = sm.store.range({ key: b('held') }).kvs;
    expect(kvs.map((kv) => [Buffer.from(kv.value).toString(), kv.lease])).toEqual([['b', 0]]);
  });

  test('a NOSPACE alarm refuses them, writing nothing', async () => {
    const { sm, apply } = await open();
    expect((await apply({ op: 'alarm', req: { action: 'ACTIVATE', memberID: 1, alarm: 'NOSPACE' } })).ok).toBe(true);
    const r = await apply(put('x', 'y'), client);
    expect(r.ok ? undefined : (r.error as EtcdError).kind).toBe('ErrGRPCNoSpace');
    expect(sm.store.range({ key: b('x') }).kvs).toEqual([]);
  });
});
