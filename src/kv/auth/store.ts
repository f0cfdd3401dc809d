// The auth store: users, roles, their key permissions, whether auth is enabled, and the
// auth revision, with etcd 3.4's semantics (auth/store.go) and errors. Changed only by
// apply(), in log order, identically on every member; its state goes out with every flush
// of the state machine and in snapshots. The simple tokens are per member (tokens.ts).
//
// Permission checks (etcd's isOpPermitted / IsAdminPermitted), when auth is enabled:
//   * no user (revision 0)                         ErrGRPCUserEmpty
//   * credentials checked before the last change   ErrGRPCAuthOldRevision
//   * unknown user                                 ErrGRPCPermissionDenied (admin: ErrGRPCUserNotFound)
//   * the root role                                everything
//   * otherwise the merged permissions of the user's roles (range-perms.ts).

import * as errors from '../errors';
import { RangePermissions } from './range-perms';
import { SimpleTokens } from './tokens';
import { AuthInfo, AuthRequest, AuthResult, AuthState, PermissionRecord, RoleRecord, rootRole, rootUser, UserRecord } from './types';

function byName<T extends { name: string }>(a: T, b: T): number {
  return Buffer.compare(Buffer.from(a.name), Buffer.from(b.name));
}

function sortStrings(s: string[]): string[] {
  return [...s].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

const noAuth: AuthInfo = { username: '', revision: 0 };

export class AuthStore {
  readonly tokens: SimpleTokens;
  private enabled = false;
  private rev = 1;
  private users = new Map<string, UserRecord>();
  private roles = new Map<string, RoleRecord>();
  /** Merged permissions by user name; cleared by every change. */
  private permCache = new Map<string, RangePermissions>();
  private stateCache: AuthState | undefined;

  constructor(opts: { tokenTtlMs?: number; now?: () => number } = {}) {
    this.tokens = new SimpleTokens({ ttlMs: opts.tokenTtlMs, now: opts.now });
  }

  get isEnabled(): boolean {
    return this.enabled;
  }

  get revision(): number {
    return this.rev;
  }

  /** Replaces the whole state (open, snapshot restore). Tokens of users that no longer exist go. */
  restore(state: AuthState | undefined): void {
    this.enabled = state?.enabled ?? false;
    this.rev = state?.revision ?? 1;
    this.users = new Map((state?.users ?? []).map((u) => [u.name, { ...u, roles: [...u.roles] }]));
    this.roles = new Map(
      (state?.roles ?? []).map((r) => [r.name, { name: r.name, perms: r.perms.map((p) => ({ permType: p.permType, key: Buffer.from(p.key), rangeEnd: Buffer.from(p.rangeEnd) })) }]),
    );
    this.changed(false);
    if (!this.enabled) this.tokens.clear();
  }

  /** The state to persist (cached between changes: it goes out with every flush). */
  state(): AuthState {
    this.stateCache ??= {
      enabled: this.enabled,
      revision: this.rev,
      users: [...this.users.values()].sort(byName).map((u) => ({ ...u, roles: [...u.roles] })),
      roles: [...this.roles.values()].sort(byName).map((r) => ({ name: r.name, perms: r.perms.map((p) => ({ ...p })) })),
    };
    return this.stateCache;
  }

  user(name: string): UserRecord | undefined {
    return this.users.get(name);
  }

  private changed(bumpRevision: boolean): void {
    if (bumpRevision) this.rev++;
    this.permCache.clear();
    this.stateCache = undefined;
  }

  // ---- checks ----

  private isOpPermitted(ai: AuthInfo | undefined, permType: 'READ' | 'WRITE', key: Uint8Array, rangeEnd: Uint8Array): void {
    if (!this.enabled) return;
    const info = ai ?? noAuth;
    if (info.revision === 0) throw errors.ErrGRPCUserEmpty;
    if (info.revision < this.rev) throw errors.ErrGRPCAuthOldRevision;
    const user = this.users.get(info.username);
    if (!user) throw errors.ErrGRPCPermissionDenied;
    if (user.roles.includes(rootRole)) return;
    let perms = this.permCache.get(user.name);
    if (!perms) {
      perms = new RangePermissions(user.roles.flatMap((r) => this.roles.get(r)?.perms ?? []));
      this.permCache.set(user.name, perms);
    }
    if (!perms.permits(permType, key, rangeEnd)) throw errors.ErrGRPCPermissionDenied;
  }

  checkRange(ai: AuthInfo | undefined, key: Uint8Array, rangeEnd: Uint8Array): void {
    this.isOpPermitted(ai, 'READ', key, rangeEnd);
  }

  checkPut(ai: AuthInfo | undefined, key: Uint8Array): void {
    this.isOpPermitted(ai, 'WRITE', key, new Uint8Array(0));
  }

  checkDeleteRange(ai: AuthInfo | undefined, key: Uint8Array, rangeEnd: Uint8Array): void {
    this.isOpPermitted(ai, 'WRITE', key, rangeEnd);
  }

  /** etcd's IsAdminPermitted: the user has the root role (anyone while auth is disabled). */
  checkAdmin(ai: AuthInfo | undefined): void {
    if (!this.enabled) return;
    if (!ai || ai.username === '') throw errors.ErrGRPCUserEmpty;
    const user = this.users.get(ai.username);
    if (!user) throw errors.ErrGRPCUserNotFound;
    if (!user.roles.includes(rootRole)) throw errors.ErrGRPCPermissionDenied;
  }

  // ---- apply ----

  /**
   * Applies one auth request. `ai` is who proposed it (undefined: the server itself);
   * `index` is the Raft index of its entry. Throws etcd's errors.
   */
  apply(req: AuthRequest, ai: AuthInfo | undefined, index: number): AuthResult {
    if (req.kind !== 'authenticate' && ai !== undefined) this.checkAdmin(ai);
    switch (req.kind) {
      case 'authEnable': {
        if (this.enabled) return { kind: 'done' };
        const root = this.users.get(rootUser);
        if (!root) throw errors.ErrGRPCRootUserNotExist;
        if (!root.roles.includes(rootRole)) throw errors.ErrGRPCRootRoleNotExist;
        this.enabled = true;
        this.changed(false);
        return { kind: 'done' };
      }
      case 'authDisable': {
        if (!this.enabled) return { kind: 'done' };
        this.enabled = false;
        this.tokens.clear();
        this.changed(true);
        return { kind: 'done' };
      }
      case 'authenticate': {
        if (!this.enabled) throw errors.ErrGRPCAuthNotEnabled;
        const user = this.users.get(req.name);
        if (!user || user.noPassword) throw errors.ErrGRPCAuthFailed;
        const token = `${req.tokenPrefix}.${index}`;
        this.tokens.assign(token, user.name);
        return { kind: 'token', token };
      }
      case 'userAdd': {
        if (req.name.length === 0) throw errors.ErrGRPCUserEmpty;
        if (this.users.has(req.name)) throw errors.ErrGRPCUserAlreadyExist;
        this.users.set(req.name, { name: req.name, password: req.noPassword ? '' : req.password, roles: [], noPassword: req.noPassword });
        this.changed(true);
        return { kind: 'done' };
      }
      case 'userDelete': {
        if (this.enabled && req.name === rootUser) throw errors.ErrGRPCInvalidAuthMgmt;
        if (!this.users.delete(req.name)) throw errors.ErrGRPCUserNotFound;
        this.tokens.invalidateUser(req.name);
        this.changed(true);
        return { kind: 'done' };
      }
      case 'userChangePassword': {
        const user = this.users.get(req.name);
        if (!user) throw errors.ErrGRPCUserNotFound;
        this.users.set(req.name, { ...user, password: req.password });
        this.tokens.invalidateUser(req.name);
        this.changed(true);
        return { kind: 'done' };
      }
      case 'userGrantRole': {
        const user = this.users.get(req.user);
        if (!user) throw errors.ErrGRPCUserNotFound;
        // The root role may be granted before it was added as a role (as in etcd).
        if (req.role !== rootRole && !this.roles.has(req.role)) throw errors.ErrGRPCRoleNotFound;
        if (user.roles.includes(req.role)) return { kind: 'done' };
        this.users.set(user.name, { ...user, roles: sortStrings([...user.roles, req.role]) });
        this.changed(true);
        return { kind: 'done' };
      }
      case 'userRevokeRole': {
        if (this.enabled && req.name === rootUser && req.role === rootRole) throw errors.ErrGRPCInvalidAuthMgmt;
        const user = this.users.get(req.name);
        if (!user) throw errors.ErrGRPCUserNotFound;
        if (!user.roles.includes(req.role)) throw errors.ErrGRPCRoleNotGranted;
        this.users.set(user.name, { ...user, roles: user.roles.filter((r) => r !== req.role) });
        this.changed(true);
        return { kind: 'done' };
      }
      case 'userGet': {
        const user = this.users.get(req.name);
        if (!user) throw errors.ErrGRPCUserNotFound;
        return { kind: 'roles', roles: [...user.roles] };
      }
      case 'userList':
        return { kind: 'users', users: sortStrings([...this.users.keys()]) };
      case 'roleAdd': {
        if (req.name.length === 0) throw errors.ErrGRPCRoleEmpty;
        if (this.roles.has(req.name)) throw errors.ErrGRPCRoleAlreadyExist;
        this.roles.set(req.name, { name: req.name, perms: [] });
        this.changed(true);
        return { kind: 'done' };
      }
      case 'roleGet': {
        const role = this.roles.get(req.role);
        if (!role) throw errors.ErrGRPCRoleNotFound;
        return { kind: 'perms', perms: role.perms.map((p) => ({ ...p })) };
      }
      case 'roleList':
        return { kind: 'roles', roles: sortStrings([...this.roles.keys()]) };
      case 'roleDelete': {
        if (this.enabled && req.role === rootRole) throw errors.ErrGRPCInvalidAuthMgmt;
        if (!this.roles.delete(req.role)) throw errors.ErrGRPCRoleNotFound;
        for (const u of [...this.users.values()]) {
          if (u.roles.includes(req.role)) this.users.set(u.name, { ...u, roles: u.roles.filter((r) => r !== req.role) });
        }
        this.changed(true);
        return { kind: 'done' };
      }
      case 'roleGrantPermission': {
        const role = this.roles.get(req.name);
        if (!role) throw errors.ErrGRPCRoleNotFound;
        const p = req.perm;
        const perms = role.perms.map((x) => ({ ...x }));
        const same = perms.find((x) => bytesEqual(x.key, p.key) && bytesEqual(x.rangeEnd, p.rangeEnd));
        if (same) same.permType = p.permType;
        else perms.push({ permType: p.permType, key: Buffer.from(p.key), rangeEnd: Buffer.from(p.rangeEnd) });
        // A stable sort by key only, as etcd's permSlice.
        perms.sort((a, b) => Buffer.compare(a.key, b.key));
        this.roles.set(role.name, { name: role.name, perms });
        this.changed(true);
        return { kind: 'done' };
      }
      case 'roleRevokePermission': {
        const role = this.roles.get(req.role);
        if (!role) throw errors.ErrGRPCRoleNotFound;
        const kept = role.perms.filter((x: PermissionRecord) => !bytesEqual(x.key, req.key) || !bytesEqual(x.rangeEnd, req.rangeEnd));
        if (kept.length === role.perms.length) throw errors.ErrGRPCPermissionNotGranted;
        this.roles.set(role.name, { name: role.name, perms: kept });
        this.changed(true);
        return { kind: 'done' };
      }
    }
  }
}
