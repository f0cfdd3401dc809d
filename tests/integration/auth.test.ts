// Issue 4, auth: a real 3-process skiff cluster driven by Debian's etcdctl 3.4 and a raw
// gRPC client. Users, roles, read/write/readwrite permissions on keys, ranges and
// prefixes, the exact errors etcd 3.4.23 gives for denied requests (checked by hand
// against etcd 3.4.23), simple tokens used on every member, token invalidation, auth state
// surviving a member restart, and auth disable.
//
// The tests run in order against one cluster. etcdctl or the build missing: a failure on
// CI (CI=true), a skip with a warning elsewhere.

import * as grpc from '@grpc/grpc-js';
import { Etcd3, EtcdAuthenticationFailedError, EtcdPermissionDeniedError } from 'etcd3';
import * as pb from '../../src/kv/proto';
import { requireTool, StoreCluster } from '../helpers/cluster';
import { etcdctlOk, EtcdctlResult, runEtcdctl, stopAllEtcdctl } from '../helpers/etcdctl';

jest.setTimeout(60_000);

const available = requireTool('etcdctl', 'apt-get install etcd-client');
const describeIf = available ? describe : describe.skip;

const ROOT = ['--user', 'root:rootpw'];
const ALICE = ['--user', 'alice:alicepw'];

/**
 * etcdctl's failure shape: `Error: <message>` last on stderr, a non-zero exit (1, or 2 when
 * authenticating failed); the gRPC code in the retry warning when there is one.
 */
function expectError(r: EtcdctlResult, message: string, grpcCode?: string): void {
  expect({ failed: r.code === 1 || r.code === 2, stdout: r.stdout, lastLine: r.stderr.trimEnd().split('\n').pop() }).toEqual({ failed: true, stdout: '', lastLine: `Error: ${message}` });
  if (grpcCode) expect(r.stderr).toContain(`rpc error: code = ${grpcCode} desc = ${message}`);
}

function tokenMd(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('token', token);
  return md;
}

describeIf('auth on a 3-member skiff cluster (etcdctl)', () => {
  let cluster: StoreCluster | undefined;
  let ep = '';
  /** One endpoint per member: requests go to followers too. */
  const member = (i: number): string => cluster!.members[i].clientUrl.replace('http://', '');
  const ctl = (args: string[], opts: { at?: number; input?: string } = {}): Promise<EtcdctlResult> => runEtcdctl(opts.at === undefined ? ep : member(opts.at), args, { input: opts.input });
  const ok = (args: string[], opts: { at?: number; input?: string } = {}): Promise<string> => etcdctlOk(opts.at === undefined ? ep : member(opts.at), args, { input: opts.input });
  const clients: grpc.Client[] = [];
  const client = <S extends pb.EtcdServiceName>(name: S, i: number): pb.ServiceClient<S> => {
    const c = pb.createClient(name, member(i));
    clients.push(c);
    return c;
  };
  const authenticate = async (i: number, name: string, password: string): Promise<string> => (await pb.callUnary(client('Auth', i), 'Authenticate', { name, password })).token;

  beforeAll(async () => {
    cluster = await StoreCluster.start({ kind: 'skiff', members: 3 });
    ep = cluster.endpoints();
  }, 30_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await stopAllEtcdctl();
    await cluster?.stop();
  });

  test('auth enable needs a root user with the root role; etcdctl adds the role itself', async () => {
    expectError(await ctl(['auth', 'enable']), 'etcdserver: root user does not exist', 'FailedPrecondition');
    expect(await ok(['user', 'add', 'root:rootpw'])).toBe('User root created\n');
    // The server answers "root user does not have root role"; etcdctl then adds the role,
    // grants it and enables (as with etcd).
    const raw = await pb.callUnary(client('Auth', 0), 'AuthEnable', {}).catch((e: grpc.ServiceError) => e);
    expect(raw).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: 'etcdserver: root user does not have root role' });
    expect(await ok(['auth', 'enable'])).toBe('Authentication Enabled\n');
    expect(await ok(['user', 'get', 'root', ...ROOT])).toBe('User: root\nRoles: root\n');
    // Enabling again is a no-op.
    expect(await ok(['auth', 'enable', ...ROOT], { at: 2 })).toBe('Authentication Enabled\n');
  });

  test('without credentials: user name is empty; a wrong password: authentication failed', async () => {
    expectError(await ctl(['get', 'foo']), 'etcdserver: user name is empty', 'InvalidArgument');
    expectError(await ctl(['put', 'foo', 'bar']), 'etcdserver: user name is empty', 'InvalidArgument');
    expectError(await ctl(['user', 'list']), 'etcdserver: user name is empty', 'InvalidArgument');
    expectError(await ctl(['get', 'foo', '--user', 'root:wrong']), 'etcdserver: authentication failed, invalid user ID or password', 'InvalidArgument');
    expectError(await ctl(['get', 'foo', '--user', 'nobody:x']), 'etcdserver: authentication failed, invalid user ID or password', 'InvalidArgument');
    // etcd 3.4 checks only the token (if any) for these.
    expect(await ok(['member', 'list'])).toContain('started, m1');
    expect(await ok(['lease', 'grant', '60'])).toMatch(/^lease [0-9a-f]{16} granted with TTL\(60s\)\n$/);
    expect(await ok(['endpoint', 'status', '--endpoints', member(0)])).toContain('3.4.23');
    // Maintenance calls that need root answer with the auth store's own text (UNKNOWN).
    const hash = await runEtcdctl(member(0), ['endpoint', 'hashkv']);
    expect(hash.code).toBe(1);
    expect(hash.stderr).toContain('rpc error: code = Unknown desc = auth: user name is empty');
  });

  test('users, roles and permissions (managed through different members)', async () => {
    expect(await ok(['user', 'add', 'alice:alicepw', ...ROOT], { at: 1 })).toBe('User alice created\n');
    expect(await ok(['user', 'add', 'bob:bobpw', ...ROOT], { at: 2 })).toBe('User bob created\n');
    expect(await ok(['role', 'add', 'app', ...ROOT], { at: 0 })).toBe('Role app created\n');
    expect(await ok(['role', 'grant-permission', 'app', 'read', 'cfg', ...ROOT], { at: 1 })).toBe('Role app updated\n');
    expect(await ok(['role', 'grant-permission', 'app', 'readwrite', '--prefix', 'app/', ...ROOT], { at: 2 })).toBe('Role app updated\n');
    expect(await ok(['role', 'grant-permission', 'app', 'write', 'w1', 'w3', ...ROOT])).toBe('Role app updated\n');
    expect(await ok(['role', 'grant-permission', 'app', 'read', '--from-key', 'z', ...ROOT])).toBe('Role app updated\n');
    expect(await ok(['user', 'grant-role', 'alice', 'app', ...ROOT])).toBe('Role app is granted to user alice\n');
    expect(await ok(['role', 'get', 'app', ...ROOT], { at: 2 })).toBe(
      'Role app\nKV Read:\n\t[app/, app0) (prefix app/)\n\tcfg\n\t[z, <open ended>\nKV Write:\n\t[app/, app0) (prefix app/)\n\t[w1, w3)\n',
    );
    expect(await ok(['user', 'get', 'alice', ...ROOT])).toBe('User: alice\nRoles: app\n');
    expect(await ok(['user', 'list', ...ROOT])).toBe('alice\nbob\nroot\n');
    expect(await ok(['role', 'list', ...ROOT])).toBe('app\nroot\n');
    expect(await ok(['put', 'cfg', 'v1', ...ROOT])).toBe('OK\n');
    expect(await ok(['put', 'other', 'o', ...ROOT])).toBe('OK\n');

    // Management errors.
    expectError(await ctl(['user', 'add', 'alice:x', ...ROOT]), 'etcdserver: user name already exists', 'FailedPrecondition');
    expectError(await ctl(['role', 'add', 'app', ...ROOT]), 'etcdserver: role name already exists', 'FailedPrecondition');
    expectError(await ctl(['user', 'get', 'ghost', ...ROOT]), 'etcdserver: user name not found', 'FailedPrecondition');
    expectError(await ctl(['role', 'get', 'ghost', ...ROOT]), 'etcdserver: role name not found', 'FailedPrecondition');
    expectError(await ctl(['user', 'grant-role', 'alice', 'ghost', ...ROOT]), 'etcdserver: role name not found', 'FailedPrecondition');
    expectError(await ctl(['user', 'revoke-role', 'alice', 'root', ...ROOT]), 'etcdserver: role is not granted to the user', 'FailedPrecondition');
    expectError(await ctl(['role', 'revoke-permission', 'app', 'nokey', ...ROOT]), 'etcdserver: permission is not granted to the role', 'FailedPrecondition');
    expectError(await ctl(['user', 'delete', 'root', ...ROOT]), 'etcdserver: invalid auth management', 'InvalidArgument');
    expectError(await ctl(['role', 'delete', 'root', ...ROOT]), 'etcdserver: invalid auth management', 'InvalidArgument');
    expectError(await ctl(['user', 'revoke-role', 'root', 'root', ...ROOT]), 'etcdserver: invalid auth management', 'InvalidArgument');
  });

  test('read, write and readwrite on keys, ranges and prefixes', async () => {
    // read on cfg
    expect(await ok(['get', 'cfg', ...ALICE], { at: 1 })).toBe('cfg\nv1\n');
    expectError(await ctl(['put', 'cfg', 'x', ...ALICE]), 'etcdserver: permission denied', 'PermissionDenied');
    expectError(await ctl(['get', 'other', ...ALICE], { at: 2 }), 'etcdserver: permission denied', 'PermissionDenied');
    // readwrite on the prefix app/
    expect(await ok(['put', 'app/a', '1', ...ALICE], { at: 2 })).toBe('OK\n');
    expect(await ok(['put', 'app/b', '2', ...ALICE], { at: 0 })).toBe('OK\n');
    expect(await ok(['get', 'app/', '--prefix', ...ALICE], { at: 1 })).toBe('app/a\n1\napp/b\n2\n');
    expectError(await ctl(['get', 'app', '--prefix', ...ALICE]), 'etcdserver: permission denied', 'PermissionDenied');
    expect(await ok(['del', 'app/b', '--prev-kv', ...ALICE])).toBe('1\napp/b\n2\n');
    // write-only on [w1, w3)
    expect(await ok(['put', 'w2', 'x', ...ALICE])).toBe('OK\n');
    expectError(await ctl(['get', 'w2', ...ALICE]), 'etcdserver: permission denied', 'PermissionDenied');
    expect(await ok(['del', 'w1', 'w3', ...ALICE])).toBe('1\n');
    expectError(await ctl(['del', 'w1', 'w3', '--prev-kv', ...ALICE]), 'etcdserver: permission denied', 'PermissionDenied');
    expectError(await ctl(['put', 'w2', 'y', '--prev-kv', ...ALICE]), 'etcdserver: permission denied', 'PermissionDenied');
    expectError(await ctl(['put', 'w3', 'y', ...ALICE]), 'etcdserver: permission denied', 'PermissionDenied');
    // read from z on
    expect(await ok(['get', 'z', '--from-key', ...ALICE])).toBe('');
    expectError(await ctl(['get', 'y', '--from-key', ...ALICE]), 'etcdserver: permission denied', 'PermissionDenied');
    // a user without roles
    expectError(await ctl(['get', 'cfg', '--user', 'bob:bobpw']), 'etcdserver: permission denied', 'PermissionDenied');
    // root reads everything
    expect(await ok(['get', '', '--prefix', '--keys-only', ...ROOT])).toBe('app/a\n\ncfg\n\nother\n\n');
  });

  test('txn: every compare and both branches are checked, also on the read-only path', async () => {
    const denied = await ctl(['txn', ...ALICE], { input: 'value("cfg") = "v1"\n\nput app/t ok\n\nget other\n\n' });
    expectError(denied, 'etcdserver: permission denied', 'PermissionDenied');
    const compareDenied = await ctl(['txn', ...ALICE], { input: 'value("other") = "o"\n\nput app/t ok\n\n\n' });
    expectError(compareDenied, 'etcdserver: permission denied', 'PermissionDenied');
    expect(await ok(['txn', ...ALICE], { input: 'value("cfg") = "v1"\n\nput app/t ok\n\nget cfg\n\n' })).toBe('SUCCESS\n\nOK\n');
    expect(await ok(['txn', ...ALICE], { input: '\nget cfg\n\n\n', at: 1 })).toBe('SUCCESS\n\ncfg\nv1\n');
    expectError(await ctl(['txn', ...ALICE], { input: '\nget other\n\n\n', at: 2 }), 'etcdserver: permission denied', 'PermissionDenied');
  });

  test('watch needs read permission: a denied watch is canceled by the server', async () => {
    const r = await ctl(['watch', 'other', ...ALICE]);
    expect(r).toEqual({
      code: 5,
      stdout: '',
      stderr: 'watch was canceled (rpc error: code = PermissionDenied desc = etcdserver: permission denied)\nError: watch is canceled by the server\n',
    });
    // A permitted watch sees events.
    const token = await authenticate(1, 'alice', 'alicepw');
    const call = client('Watch', 2).Watch(tokenMd(token));
    const got: pb.WatchResponse[] = [];
    call.on('data', (resp: pb.WatchResponse) => got.push(resp));
    call.on('error', () => undefined);
    call.write({ create_request: { key: Buffer.from('app/w') } });
    call.write({ create_request: { key: Buffer.from('other') } });
    const deadline = Date.now() + 5000;
    while (got.length < 2 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    expect(await ok(['put', 'app/w', 'seen', ...ROOT])).toBe('OK\n');
    while (!got.some((g) => g.events.length > 0) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    call.end();
    expect(got[0]).toMatchObject({ created: true, canceled: false });
    expect(got[1]).toMatchObject({ watch_id: -1, created: true, canceled: true, cancel_reason: 'rpc error: code = PermissionDenied desc = etcdserver: permission denied' });
    expect(got.find((g) => g.events.length > 0)?.events[0].kv?.value.toString()).toBe('seen');
  });

  test('leases: revoking needs write permission on every attached key', async () => {
    const out = await ok(['lease', 'grant', '60', ...ALICE]);
    const id = /^lease ([0-9a-f]{16}) granted/.exec(out)![1];
    expect(await ok(['put', 'secret/leased', 'v', `--lease=${id}`, ...ROOT])).toBe('OK\n');
    expectError(await ctl(['lease', 'revoke', id, ...ALICE]), 'failed to revoke lease (etcdserver: permission denied)');
    // Attaching a key to that lease is refused too: the user could not revoke it.
    expectError(await ctl(['put', 'app/l', 'v', `--lease=${id}`, ...ALICE]), 'etcdserver: permission denied', 'PermissionDenied');
    expect(await ok(['lease', 'revoke', id, ...ROOT])).toBe(`lease ${id} revoked\n`);
  });

  test('the npm etcd3 client authenticates and gets the same answers', async () => {
    const hosts = cluster!.members.map((m) => m.clientUrl);
    const alice = new Etcd3({ hosts, auth: { username: 'alice', password: 'alicepw' } });
    const wrong = new Etcd3({ hosts, auth: { username: 'alice', password: 'nope' } });
    const root = new Etcd3({ hosts: hosts[1], auth: { username: 'root', password: 'rootpw' } });
    try {
      await alice.put('app/e3').value('v');
      expect(await alice.get('app/e3').string()).toBe('v');
      await expect(alice.get('other').string()).rejects.toBeInstanceOf(EtcdPermissionDeniedError);
      await expect(wrong.get('app/e3').string()).rejects.toBeInstanceOf(EtcdAuthenticationFailedError);
      expect((await root.getUsers()).map((u) => u.name).sort()).toEqual(['alice', 'bob', 'root']);
      expect(await root.role('app').permissions()).toEqual(
        expect.arrayContaining([expect.objectContaining({ permission: 'Read', range: expect.objectContaining({ start: Buffer.from('cfg') }) as unknown })]),
      );
    } finally {
      alice.close();
      wrong.close();
      root.close();
    }
  });

  test('admin operations need the root role', async () => {
    expectError(await ctl(['user', 'list', ...ALICE]), 'etcdserver: permission denied', 'PermissionDenied');
    expectError(await ctl(['role', 'add', 'x', ...ALICE]), 'etcdserver: permission denied', 'PermissionDenied');
    expectError(await ctl(['auth', 'disable', ...ALICE]), 'etcdserver: permission denied', 'PermissionDenied');
    expectError(await ctl(['member', 'add', 'x', '--peer-urls=http://127.0.0.1:1', ...ALICE]), 'etcdserver: permission denied', 'PermissionDenied');
    expectError(await ctl(['member', 'add', 'x', '--peer-urls=http://127.0.0.1:1']), 'etcdserver: user name is empty', 'InvalidArgument');
    const hash = await runEtcdctl(member(1), ['endpoint', 'hashkv', ...ALICE]);
    expect(hash.stderr).toContain('rpc error: code = Unknown desc = auth: permission denied');
    const hashRoot = await etcdctlOk(member(1), ['endpoint', 'hashkv', ...ROOT]);
    expect(hashRoot).toMatch(/^127\.0\.0\.1:\d+, \d+\n$/);
  });

  test('simple tokens: issued on one member, valid on every member; invalid and revoked tokens refused', async () => {
    const token = await authenticate(0, 'alice', 'alicepw');
    expect(token).toMatch(/^[A-Za-z]{16}\.\d+$/);
    for (const i of [0, 1, 2]) {
      const res = await pb.callUnary(client('KV', i), 'Range', { key: Buffer.from('cfg') }, { metadata: tokenMd(token) });
      expect(res.kvs.map((kv) => kv.value.toString())).toEqual(['v1']);
    }
    const bogus = await pb.callUnary(client('KV', 1), 'Range', { key: Buffer.from('cfg') }, { metadata: tokenMd('bogus') }).catch((e: grpc.ServiceError) => e);
    expect(bogus).toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: 'etcdserver: invalid auth token' });
    const notEnabledAuth = await pb.callUnary(client('Auth', 2), 'Authenticate', { name: 'alice', password: 'nope' }).catch((e: grpc.ServiceError) => e);
    expect(notEnabledAuth).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: 'etcdserver: authentication failed, invalid user ID or password' });
    // A password change invalidates the user's tokens on every member.
    expect(await ok(['user', 'passwd', 'alice', '--interactive=false', ...ROOT], { input: 'alicepw2\n' })).toBe('Password updated\n');
    for (const i of [0, 1, 2]) {
      const e = await pb.callUnary(client('KV', i), 'Range', { key: Buffer.from('cfg') }, { metadata: tokenMd(token) }).catch((err: grpc.ServiceError) => err);
      expect(e).toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: 'etcdserver: invalid auth token' });
    }
    expectError(await ctl(['get', 'cfg', ...ALICE]), 'etcdserver: authentication failed, invalid user ID or password', 'InvalidArgument');
    expect(await ok(['get', 'cfg', '--print-value-only', '--user', 'alice:alicepw2'])).toBe('v1\n');
  });

  test('revoking a permission or a role takes effect at once', async () => {
    const alice = ['--user', 'alice:alicepw2'];
    expect(await ok(['role', 'revoke-permission', 'app', 'cfg', ...ROOT])).toBe('Permission of key cfg is revoked from role app\n');
    expectError(await ctl(['get', 'cfg', ...alice]), 'etcdserver: permission denied', 'PermissionDenied');
    expect(await ok(['get', 'app/a', '--print-value-only', ...alice])).toBe('1\n');
    expect(await ok(['user', 'revoke-role', 'alice', 'app', ...ROOT])).toBe('Role app is revoked from user alice\n');
    expectError(await ctl(['get', 'app/a', ...alice]), 'etcdserver: permission denied', 'PermissionDenied');
    expect(await ok(['user', 'grant-role', 'alice', 'app', ...ROOT])).toBe('Role app is granted to user alice\n');
    expect(await ok(['user', 'delete', 'bob', ...ROOT])).toBe('User bob deleted\n');
    expectError(await ctl(['get', 'app/a', '--user', 'bob:bobpw']), 'etcdserver: authentication failed, invalid user ID or password', 'InvalidArgument');
  });

  test('auth state survives a member restart (persisted with the store)', async () => {
    await cluster!.restart(1);
    await cluster!.waitHealthy();
    expectError(await ctl(['get', 'app/a'], { at: 1 }), 'etcdserver: user name is empty', 'InvalidArgument');
    expect(await ok(['get', 'app/a', '--print-value-only', '--user', 'alice:alicepw2'], { at: 1 })).toBe('1\n');
    expectError(await ctl(['get', 'other', '--user', 'alice:alicepw2'], { at: 1 }), 'etcdserver: permission denied', 'PermissionDenied');
  });

  test('auth disable (root only): everything is open again', async () => {
    expect(await ok(['auth', 'disable', ...ROOT], { at: 2 })).toBe('Authentication Disabled\n');
    expect(await ok(['get', 'other', '--print-value-only'])).toBe('o\n');
    expect(await ok(['put', 'open', 'yes'])).toBe('OK\n');
    const e = await pb.callUnary(client('Auth', 1), 'Authenticate', { name: 'root', password: 'rootpw' }).catch((err: grpc.ServiceError) => err);
    expect(e).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: 'etcdserver: authentication is not enabled' });
    // etcdctl with --user still works: it ignores "not enabled".
    expect(await ok(['get', 'open', '--print-value-only', ...ROOT])).toBe('yes\n');
  });
});
