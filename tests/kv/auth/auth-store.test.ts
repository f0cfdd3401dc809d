// The auth store alone: etcd 3.4's permission rules (range_perm_cache.go) and auth
// management semantics (auth/store.go), deterministic apply, persistence round trip,
// simple tokens and password hashes.

import { AuthStore, hashPassword, RangePermissions, SimpleTokens, tokenIndex, verifyPassword } from '../../../src/kv/auth';
import type { AuthInfo } from '../../../src/kv/auth';
import { isEtcdError } from '../../../src/kv/errors';

const b = (s: string): Buffer => Buffer.from(s);
const none = new Uint8Array(0);

function kindOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (isEtcdError(e)) return e.kind;
    throw e;
  }
}

describe('RangePermissions', () => {
  const perms = new RangePermissions([
    { permType: 'READ', key: b('foo'), rangeEnd: none },
    { permType: 'READWRITE', key: b('pre/'), rangeEnd: b('pre0') },
    { permType: 'WRITE', key: b('w1'), rangeEnd: b('w3') },
    { permType: 'READ', key: b('a'), rangeEnd: b('c') },
    { permType: 'READ', key: b('c'), rangeEnd: b('e') },
    { permType: 'READ', key: b('z'), rangeEnd: b('\0') },
  ]);

  test('a single key needs a permission interval containing it', () => {
    expect(perms.permits('READ', b('foo'), none)).toBe(true);
    expect(perms.permits('WRITE', b('foo'), none)).toBe(false);
    expect(perms.permits('READ', b('foo0'), none)).toBe(false);
    expect(perms.permits('READ', b('pre/x'), none)).toBe(true);
    expect(perms.permits('WRITE', b('w2'), none)).toBe(true);
    expect(perms.permits('WRITE', b('w3'), none)).toBe(false);
    expect(perms.permits('READ', b('zzz'), none)).toBe(true);
  });

  test('a range needs the union of the permissions to cover it (touching intervals merge)', () => {
    expect(perms.permits('READ', b('pre/'), b('pre0'))).toBe(true);
    expect(perms.permits('READ', b('pre'), b('pre0'))).toBe(false);
    expect(perms.permits('READ', b('a'), b('e'))).toBe(true);
    expect(perms.permits('READ', b('a'), b('e\0'))).toBe(false);
    expect(perms.permits('READ', b('z'), b('\0'))).toBe(true);
    expect(perms.permits('READ', b('y'), b('\0'))).toBe(false);
    // [foo, foo\0) is the key itself.
    expect(perms.permits('READ', b('foo'), b('foo\0'))).toBe(true);
  });
});

describe('AuthStore', () => {
  const root: AuthInfo = { username: 'root', revision: 0 };
  let s: AuthStore;
  let index = 0;
  const apply = (req: Parameters<AuthStore['apply']>[0], ai?: AuthInfo): ReturnType<AuthStore['apply']> => s.apply(req, ai && { ...ai, revision: s.revision }, ++index);

  beforeEach(() => {
    s = new AuthStore();
    index = 0;
  });

  test('auth enable needs the root user with the root role (which need not exist as a role)', () => {
    expect(kindOf(() => apply({ kind: 'authEnable' }))).toBe('ErrGRPCRootUserNotExist');
    apply({ kind: 'userAdd', name: 'root', password: 'h', noPassword: false });
    expect(kindOf(() => apply({ kind: 'authEnable' }))).toBe('ErrGRPCRootRoleNotExist');
    apply({ kind: 'userGrantRole', user: 'root', role: 'root' });
    const rev = s.revision;
    apply({ kind: 'authEnable' });
    expect(s.isEnabled).toBe(true);
    expect(s.revision).toBe(rev);
    // Now management needs root.
    expect(kindOf(() => apply({ kind: 'roleAdd', name: 'r' }, { username: '', revision: 0 }))).toBe('ErrGRPCUserEmpty');
    expect(kindOf(() => apply({ kind: 'roleAdd', name: 'r' }, { username: 'ghost', revision: 1 }))).toBe('ErrGRPCUserNotFound');
    apply({ kind: 'roleAdd', name: 'r' }, root);
    apply({ kind: 'userAdd', name: 'u', password: 'h', noPassword: false }, root);
    apply({ kind: 'userGrantRole', user: 'u', role: 'r' }, root);
    expect(kindOf(() => apply({ kind: 'roleAdd', name: 'x' }, { username: 'u', revision: 1 }))).toBe('ErrGRPCPermissionDenied');
    expect(kindOf(() => apply({ kind: 'userDelete', name: 'root' }, root))).toBe('ErrGRPCInvalidAuthMgmt');
    expect(kindOf(() => apply({ kind: 'roleDelete', role: 'root' }, root))).toBe('ErrGRPCInvalidAuthMgmt');
    expect(kindOf(() => apply({ kind: 'userRevokeRole', name: 'root', role: 'root' }, root))).toBe('ErrGRPCInvalidAuthMgmt');
  });

  test('permission checks: no user, old revision, unknown user, root, roles', () => {
    apply({ kind: 'userAdd', name: 'root', password: 'h', noPassword: false });
    apply({ kind: 'userGrantRole', user: 'root', role: 'root' });
    apply({ kind: 'userAdd', name: 'u', password: 'h', noPassword: false });
    apply({ kind: 'roleAdd', name: 'r' });
    apply({ kind: 'roleGrantPermission', name: 'r', perm: { permType: 'READ', key: b('k'), rangeEnd: none } });
    apply({ kind: 'userGrantRole', user: 'u', role: 'r' });
    // Disabled: everything passes.
    expect(kindOf(() => s.checkPut(undefined, b('x')))).toBeUndefined();
    apply({ kind: 'authEnable' });
    const rev = s.revision;
    expect(kindOf(() => s.checkRange(undefined, b('k'), none))).toBe('ErrGRPCUserEmpty');
    expect(kindOf(() => s.checkRange({ username: 'u', revision: rev - 1 }, b('k'), none))).toBe('ErrGRPCAuthOldRevision');
    expect(kindOf(() => s.checkRange({ username: 'ghost', revision: rev }, b('k'), none))).toBe('ErrGRPCPermissionDenied');
    expect(kindOf(() => s.checkRange({ username: 'u', revision: rev }, b('k'), none))).toBeUndefined();
    expect(kindOf(() => s.checkPut({ username: 'u', revision: rev }, b('k')))).toBe('ErrGRPCPermissionDenied');
    expect(kindOf(() => s.checkDeleteRange({ username: 'root', revision: rev }, b('a'), b('\0')))).toBeUndefined();
    // Granting WRITE on the same key replaces READ (etcd updates the existing permission).
    apply({ kind: 'roleGrantPermission', name: 'r', perm: { permType: 'WRITE', key: b('k'), rangeEnd: none } }, root);
    expect(s.revision).toBe(rev + 1);
    expect(kindOf(() => s.checkRange({ username: 'u', revision: s.revision }, b('k'), none))).toBe('ErrGRPCPermissionDenied');
    expect(kindOf(() => s.checkPut({ username: 'u', revision: s.revision }, b('k')))).toBeUndefined();
    expect(kindOf(() => apply({ kind: 'roleRevokePermission', role: 'r', key: b('k'), rangeEnd: b('l') }, root))).toBe('ErrGRPCPermissionNotGranted');
    apply({ kind: 'roleRevokePermission', role: 'r', key: b('k'), rangeEnd: none }, root);
    expect(kindOf(() => s.checkPut({ username: 'u', revision: s.revision }, b('k')))).toBe('ErrGRPCPermissionDenied');
  });

  test('role delete removes the role from its users; lists are sorted', () => {
    for (const n of ['b', 'a', 'c']) apply({ kind: 'userAdd', name: n, password: '', noPassword: true });
    apply({ kind: 'roleAdd', name: 'r2' });
    apply({ kind: 'roleAdd', name: 'r1' });
    apply({ kind: 'userGrantRole', user: 'a', role: 'r2' });
    apply({ kind: 'userGrantRole', user: 'a', role: 'r1' });
    expect(apply({ kind: 'userGet', name: 'a' })).toEqual({ kind: 'roles', roles: ['r1', 'r2'] });
    expect(apply({ kind: 'userList' })).toEqual({ kind: 'users', users: ['a', 'b', 'c'] });
    apply({ kind: 'roleDelete', role: 'r2' });
    expect(apply({ kind: 'userGet', name: 'a' })).toEqual({ kind: 'roles', roles: ['r1'] });
    expect(apply({ kind: 'roleList' })).toEqual({ kind: 'roles', roles: ['r1'] });
    expect(kindOf(() => apply({ kind: 'userAdd', name: '', password: '', noPassword: true }))).toBe('ErrGRPCUserEmpty');
    expect(kindOf(() => apply({ kind: 'roleAdd', name: '' }))).toBe('ErrGRPCRoleEmpty');
  });

  test('authenticate assigns "<prefix>.<index>"; password change and user delete drop tokens', () => {
    apply({ kind: 'userAdd', name: 'root', password: 'h', noPassword: false });
    apply({ kind: 'userGrantRole', user: 'root', role: 'root' });
    apply({ kind: 'userAdd', name: 'np', password: '', noPassword: true });
    expect(kindOf(() => apply({ kind: 'authenticate', name: 'root', tokenPrefix: 'abc' }))).toBe('ErrGRPCAuthNotEnabled');
    apply({ kind: 'authEnable' });
    expect(kindOf(() => apply({ kind: 'authenticate', name: 'np', tokenPrefix: 'abc' }))).toBe('ErrGRPCAuthFailed');
    const r = apply({ kind: 'authenticate', name: 'root', tokenPrefix: 'abcdefghijklmnop' });
    expect(r).toEqual({ kind: 'token', token: `abcdefghijklmnop.${index}` });
    const token = (r as { token: string }).token;
    expect(tokenIndex(token)).toBe(index);
    expect(s.tokens.lookup(token)).toBe('root');
    apply({ kind: 'userChangePassword', name: 'root', password: 'h2' }, root);
    expect(s.tokens.lookup(token)).toBeUndefined();
    apply({ kind: 'authDisable' }, root);
    expect(s.isEnabled).toBe(false);
  });

  test('state round trip (what goes out with every flush and in snapshots)', () => {
    apply({ kind: 'userAdd', name: 'root', password: 'h', noPassword: false });
    apply({ kind: 'userGrantRole', user: 'root', role: 'root' });
    apply({ kind: 'roleAdd', name: 'r' });
    apply({ kind: 'roleGrantPermission', name: 'r', perm: { permType: 'READWRITE', key: b('p/'), rangeEnd: b('p0') } });
    apply({ kind: 'authEnable' });
    const copy = new AuthStore();
    copy.restore(structuredClone(s.state()));
    expect(copy.state()).toEqual(s.state());
    expect(copy.isEnabled).toBe(true);
    expect(copy.revision).toBe(s.revision);
  });
});

describe('SimpleTokens', () => {
  test('expire after the TTL unless used', () => {
    let now = 0;
    const t = new SimpleTokens({ ttlMs: 1000, now: () => now });
    t.assign('a.1', 'u');
    t.assign('b.2', 'v');
    now = 900;
    expect(t.lookup('a.1')).toBe('u');
    now = 1500;
    expect(t.lookup('a.1')).toBe('u');
    expect(t.lookup('b.2')).toBeUndefined();
    t.invalidateUser('u');
    expect(t.lookup('a.1')).toBeUndefined();
  });
});

test('password hashes: salted, verified, malformed refused', async () => {
  const h1 = await hashPassword('secret');
  const h2 = await hashPassword('secret');
  expect(h1).not.toBe(h2);
  expect(await verifyPassword('secret', h1)).toBe(true);
  expect(await verifyPassword('Secret', h1)).toBe(false);
  expect(await verifyPassword('secret', 'garbage')).toBe(false);
});
