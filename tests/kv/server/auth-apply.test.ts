// Auth in the state machine: permission checks when a write is applied (with the auth
// revision its proposer saw), auth requests applied in log order, the auth state saved
// with the store and carried by snapshots to another member.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AuthInfo, AuthRequest } from '../../../src/kv/auth';
import type { EtcdError } from '../../../src/kv/errors';
import { Lessor } from '../../../src/kv/lease';
import type * as pb from '../../../src/kv/proto';
import { ApplyResult, KvStateMachine } from '../../../src/kv/server/applier';
import { encodeEnvelope, InternalRequest } from '../../../src/kv/server/requests';
import { EntryType, silentLogger } from '../../../src/raft';

const b = (s: string): Buffer => Buffer.from(s);
const confState = { voters: [1], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };

describe('KvStateMachine with auth', () => {
  const dirs: string[] = [];
  const sms: KvStateMachine[] = [];
  let index = 0;
  let seq = 0;

  async function open(): Promise<KvStateMachine> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-auth-sm-'));
    dirs.push(dir);
    const sm = await KvStateMachine.open({ dir, memberId: 1, lessor: new Lessor({ minLeaseTtlSeconds: 1 }), logger: silentLogger, initialMembership: { clusterId: 1, members: [], removed: [] } });
    sms.push(sm);
    return sm;
  }

  /** Applies one request proposed by member 1 as `a` and returns its result. */
  async function apply(sm: KvStateMachine, r: InternalRequest, a?: AuthInfo): Promise<ApplyResult> {
    const n = ++seq;
    const result = sm.wait.register(n);
    sm.apply([{ entry: { term: 1, index: ++index, type: EntryType.Normal, data: encodeEnvelope(a ? { m: 1, n, r, a } : { m: 1, n, r }) } }]);
    return result;
  }
  const auth = (sm: KvStateMachine, req: AuthRequest, a?: AuthInfo): Promise<ApplyResult> => apply(sm, { op: 'auth', req }, a);
  const errorKind = (r: ApplyResult): string | undefined => (r.ok ? undefined : (r.error as EtcdError).kind);
  const put = (key: string, extra: Partial<pb.PutRequest> = {}): pb.PutRequest => ({ key: b(key), value: b('v'), lease: 0, prev_kv: false, ignore_value: false, ignore_lease: false, ...extra });

  afterAll(async () => {
    for (const sm of sms) await sm.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  test('writes are checked when applied; the auth revision of the proposer must be current', async () => {
    const sm = await open();
    await auth(sm, { kind: 'userAdd', name: 'root', password: 'h', noPassword: false });
    await auth(sm, { kind: 'userGrantRole', user: 'root', role: 'root' });
    await auth(sm, { kind: 'userAdd', name: 'u', password: 'h', noPassword: false });
    await auth(sm, { kind: 'roleAdd', name: 'r' });
    await auth(sm, { kind: 'roleGrantPermission', name: 'r', perm: { permType: 'READWRITE', key: b('a/'), rangeEnd: b('a0') } });
    await auth(sm, { kind: 'userGrantRole', user: 'u', role: 'r' });
    expect((await auth(sm, { kind: 'authEnable' })).ok).toBe(true);
    const rev = sm.auth.revision;
    const u: AuthInfo = { username: 'u', revision: rev };
    expect((await apply(sm, { op: 'put', req: put('a/1') }, u)).ok).toBe(true);
    expect(errorKind(await apply(sm, { op: 'put', req: put('b') }, u))).toBe('ErrGRPCPermissionDenied');
    expect(errorKind(await apply(sm, { op: 'put', req: put('a/1') }, { username: '', revision: 0 }))).toBe('ErrGRPCUserEmpty');
    // The server's own requests (no proposer) are not checked.
    expect((await apply(sm, { op: 'put', req: put('b') })).ok).toBe(true);
    // An auth change between proposing and applying: the old revision is refused.
    await auth(sm, { kind: 'roleAdd', name: 'r2' }, { username: 'root', revision: rev });
    expect(errorKind(await apply(sm, { op: 'put', req: put('a/2') }, u))).toBe('ErrGRPCAuthOldRevision');
    const now: AuthInfo = { username: 'u', revision: sm.auth.revision };
    // Nested txn ops are checked too.
    const txn: pb.TxnRequest = {
      compare: [],
      success: [{ request: 'request_txn', request_txn: { compare: [], success: [{ request: 'request_put', request_put: put('b') }], failure: [] } }],
      failure: [],
    };
    expect(errorKind(await apply(sm, { op: 'txn', req: txn }, now))).toBe('ErrGRPCPermissionDenied');
    expect(sm.store.range({ key: b('a/2') }).kvs).toHaveLength(0);
    expect(sm.store.range({ key: b('a/1') }).kvs).toHaveLength(1);
    // Auth management by a non-root user is refused when applied.
    expect(errorKind(await auth(sm, { kind: 'userList' }, now))).toBe('ErrGRPCPermissionDenied');
  });

  test('the auth state goes out with the store and in snapshots', async () => {
    const a = await open();
    await auth(a, { kind: 'userAdd', name: 'root', password: 'h', noPassword: false });
    await auth(a, { kind: 'userGrantRole', user: 'root', role: 'root' });
    await auth(a, { kind: 'roleAdd', name: 'r' });
    await auth(a, { kind: 'roleGrantPermission', name: 'r', perm: { permType: 'READ', key: b('k'), rangeEnd: b('\0') } });
    await auth(a, { kind: 'authEnable' });
    // A snapshot needs a configuration: apply a bootstrap conf change first.
    a.apply([{ entry: { term: 1, index: ++index, type: EntryType.ConfChange, data: new Uint8Array(0) }, confChange: { change: { transition: 'auto', changes: [{ type: 'addNode', nodeId: 1 }], context: '' }, confState } }]);
    await a.sync();
    const src = await a.openSnapshot();
    const bSm = await open();
    await bSm.stageSnapshot(src.metadata, src.chunks());
    await bSm.restoreStaged(src.metadata);
    expect(bSm.auth.state()).toEqual(a.auth.state());
    expect(bSm.auth.isEnabled).toBe(true);
    expect(bSm.auth.revision).toBe(a.auth.revision);
  });
});
