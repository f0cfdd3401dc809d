// Auth on the serving side, as etcd 3.4 does it (etcdserver/v3_server.go, v3rpc/auth.go,
// maintenance.go, watch.go):
//
//   * Who a call runs as (etcd's AuthInfoFromCtx): the `token` metadata (or
//     `authorization`) names a simple token; an unknown or expired one is
//     ErrGRPCInvalidAuthToken whether auth is enabled or not. Without a token, and with
//     --client-cert-auth, the CN of the verified client certificate is the user. Otherwise
//     nobody (and with auth enabled, permission checks answer ErrGRPCUserEmpty).
//   * A token issued on another member is valid here once this member applied the entry
//     that issued it: a token names that entry's index, and a lookup waits for it.
//   * Reads (Range, read-only Txn, Watch creation) are checked on the member serving them;
//     writes carry the proposer's user and auth revision through Raft and are checked when
//     applied (see kv-checks.ts), where an auth change in between gives
//     ErrGRPCAuthOldRevision and clients authenticate again.
//   * Auth management (every Auth call but Authenticate) goes through Raft, reads included,
//     and needs the root role when applied. Membership changes need it at the API layer.
//     Hash, HashKV, Defragment and Snapshot need it too, and answer with the auth store's
//     own errors (gRPC UNKNOWN "auth: ..."), as etcd 3.4's maintenance server does. Alarm
//     only validates the token (UNKNOWN "auth: invalid auth token"). Status, MemberList,
//     MoveLeader, Compact, LeaseGrant, the lease keep-alive, time-to-live and list need
//     nothing more than a valid token, as in etcd 3.4.
//   * Authenticate: a linearizable read, the password checked here (off the event loop),
//     then an entry through Raft that assigns the token on every member; if the auth
//     revision moved meanwhile (say the password changed), again.

import * as grpc from '@grpc/grpc-js';
import { randomInt } from 'node:crypto';
import type { RaftNode } from '../../raft';
import { AuthInfo, AuthRequest, AuthResult, AuthStore, checkTxnPermissions, ClientIdentity, hashPassword, LeaseKeys, PermissionRecord, tokenIndex, tokenLimits, verifyPassword } from '../auth';
import * as errors from '../errors';
import type * as pb from '../proto';
import type { ApplyResult, KvStateMachine } from './applier';
import type { InternalRequest } from './requests';

export const authLimits = Object.freeze({
  /** Authenticate retries when the auth revision moved between the password check and the token's entry. */
  authenticateAttemptsMax: 5,
});

/** What the auth operations need from the server. */
export interface AuthHost {
  readonly raft: RaftNode;
  readonly sm: KvStateMachine;
  header(revision?: number): pb.ResponseHeader;
  propose(r: InternalRequest, auth?: AuthInfo): Promise<Extract<ApplyResult, { ok: true }>>;
  linearizableReadIndex(timeoutMs?: number): Promise<void>;
  requestTimeoutMs(): number;
}

/** A call with metadata and, on TLS, the peer's certificate. */
interface CallLike {
  metadata: { get(key: string): Array<string | Buffer>; has?(key: string): boolean };
  getAuthContext?: () => { sslPeerCertificate?: { subject?: { CN?: string | string[] } } } | null;
}

/** The proposer of a write from a client that presented no credentials. */
const NOBODY: AuthInfo = Object.freeze({ username: '', revision: 0 });

/** What a call presented: its token, and its client certificate's CN (verified by the TLS layer, which refuses unverified ones). */
export function identityOf(call: CallLike): ClientIdentity {
  const token = firstValue(call, 'token') ?? firstValue(call, 'authorization');
  let commonName: string | undefined;
  try {
    const cn = call.getAuthContext?.()?.sslPeerCertificate?.subject?.CN;
    commonName = Array.isArray(cn) ? cn[0] : cn;
  } catch {
    commonName = undefined;
  }
  return { token, commonName: commonName === '' ? undefined : commonName };
}

function firstValue(call: CallLike, key: string): string | undefined {
  // Most calls carry neither key: answered without building a list.
  if (call.metadata.has?.(key) === false) return undefined;
  const v = call.metadata.get(key)[0];
  return v === undefined ? undefined : String(v);
}

/** grpc-go's names of the status codes, for texts in etcd's "rpc error: code = X desc = Y" form. */
const GO_CODE_NAMES = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
];

/** A gRPC error as Go's status.Error(...).Error() prints it (etcd's watch cancel reasons). */
export function goStatusText(e: errors.EtcdError): string {
  return `rpc error: code = ${GO_CODE_NAMES[e.code] ?? 'Unknown'} desc = ${e.details}`;
}

/** The auth store's own error texts, sent as UNKNOWN where etcd 3.4 does not map them. */
const RAW_AUTH_TEXTS: Partial<Record<errors.EtcdErrorKind, string>> = {
  ErrGRPCUserEmpty: 'auth: user name is empty',
  ErrGRPCUserNotFound: 'auth: user name not found',
  ErrGRPCPermissionDenied: 'auth: permission denied',
  ErrGRPCInvalidAuthToken: 'auth: invalid auth token',
  ErrGRPCAuthOldRevision: 'auth: revision in header is old',
};

function rawAuthError(e: unknown): unknown {
  if (!(e instanceof errors.EtcdError)) return e;
  const details = RAW_AUTH_TEXTS[e.kind];
  if (details === undefined) return e;
  return Object.assign(new Error(details), { code: grpc.status.UNKNOWN, details });
}

/** etcd 3.4's CheckPassword error for a user added with --no-password. */
function noPasswordUserError(): Error {
  const details = 'auth: authentication failed, password was given for no password user';
  return Object.assign(new Error(details), { code: grpc.status.UNKNOWN, details });
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

function tokenPrefix(): string {
  let s = '';
  for (let i = 0; i < tokenLimits.prefixLetters; i++) s += LETTERS[randomInt(LETTERS.length)];
  return s;
}

function toPbPerm(p: PermissionRecord): pb.Permission {
  return { permType: p.permType, key: Buffer.from(p.key), range_end: Buffer.from(p.rangeEnd) };
}

export class AuthAdmin {
  constructor(
    private readonly s: AuthHost,
    /** --client-cert-auth: a verified client certificate's CN is the user. */
    private readonly clientCertAuth: boolean,
  ) {}

  private get store(): AuthStore {
    return this.s.sm.auth;
  }

  /** Resolves once this member applied index `index`; false after timeoutMs. */
  private waitApplied(index: number, timeoutMs: number): Promise<boolean> {
    if (this.s.sm.applied().index >= index) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        sub.dispose();
        resolve(ok);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      const sub = this.s.raft.onApplied.on(() => {
        if (this.s.sm.applied().index >= index) done(true);
      });
    });
  }

  /** etcd's AuthInfoFromCtx: who the call runs as; undefined for nobody. Throws ErrGRPCInvalidAuthToken. */
  async authInfo(id: ClientIdentity): Promise<AuthInfo | undefined> {
    if (id.token !== undefined) {
      const index = tokenIndex(id.token);
      if (index === undefined) throw errors.ErrGRPCInvalidAuthToken;
      if (!(await this.waitApplied(index, this.s.requestTimeoutMs()))) throw errors.ErrGRPCInvalidAuthToken;
      const user = this.store.tokens.lookup(id.token);
      if (user === undefined) throw errors.ErrGRPCInvalidAuthToken;
      return { username: user, revision: this.store.revision };
    }
    if (this.clientCertAuth && id.commonName !== undefined) return { username: id.commonName, revision: this.store.revision };
    return undefined;
  }

  /** Auth is off and there is no token to validate: nothing to check (the common case, kept cheap). */
  private open(id: ClientIdentity): boolean {
    return !this.store.isEnabled && id.token === undefined;
  }

  /** Who a write is proposed as: undefined for the server's own requests, "nobody" for a client without credentials. */
  async proposer(id: ClientIdentity | undefined): Promise<AuthInfo | undefined> {
    const now = this.proposerNow(id);
    if (now !== null) return now;
    return (await this.authInfo(id!)) ?? NOBODY;
  }

  /** proposer() without a promise when there is no token to validate (the common case); null when there is one. */
  proposerNow(id: ClientIdentity | undefined): AuthInfo | undefined | null {
    if (id === undefined) return undefined;
    if (id.token !== undefined) return null;
    if (this.clientCertAuth && id.commonName !== undefined) return { username: id.commonName, revision: this.store.revision };
    return NOBODY;
  }

  /** Range: READ on [key, range_end), on this member. */
  async checkRange(id: ClientIdentity | undefined, key: Uint8Array, rangeEnd: Uint8Array): Promise<void> {
    if (id === undefined || this.open(id)) return;
    const ai = await this.authInfo(id);
    this.store.checkRange(ai, key, rangeEnd);
  }

  /** A read-only Txn: READ on every compare and every range of both branches. */
  async checkTxnRead(id: ClientIdentity | undefined, req: pb.TxnRequest): Promise<void> {
    if (id === undefined || this.open(id)) return;
    const ai = await this.authInfo(id);
    const noLeaseKeys: LeaseKeys = () => [];
    checkTxnPermissions(this.store, ai, req, noLeaseKeys);
  }

  /** Membership changes: the root role (etcd's checkMembershipOperationPermission). */
  async checkAdmin(id: ClientIdentity): Promise<void> {
    this.store.checkAdmin(await this.authInfo(id));
  }

  /** Hash, HashKV, Defragment, Snapshot: the root role, with the auth store's own errors. */
  async checkMaintenance(id: ClientIdentity): Promise<void> {
    try {
      this.store.checkAdmin(await this.authInfo(id));
    } catch (e) {
      throw rawAuthError(e);
    }
  }

  /** Alarm: only a valid token, with the auth store's own error. */
  async checkToken(id: ClientIdentity): Promise<void> {
    try {
      await this.authInfo(id);
    } catch (e) {
      throw rawAuthError(e);
    }
  }

  /**
   * For a Watch stream: once the stream's credentials are resolved, a synchronous check of
   * each watch created on it, giving the cancel reason etcd sends, or undefined when allowed.
   */
  async watchChecker(id: ClientIdentity): Promise<(key: Uint8Array, rangeEnd: Uint8Array) => string | undefined> {
    let ai: AuthInfo | undefined;
    let failure: errors.EtcdError | undefined;
    try {
      ai = await this.authInfo(id);
    } catch (e) {
      if (!(e instanceof errors.EtcdError)) throw e;
      failure = e;
    }
    return (key, rangeEnd) => {
      try {
        if (failure) throw failure;
        // A token is looked up again for each watch (it may have expired or been revoked).
        const now = id.token !== undefined ? this.lookupSync(id) : ai;
        this.store.checkRange(now, key, rangeEnd);
        return undefined;
      } catch (e) {
        if (e instanceof errors.EtcdError) return goStatusText(e);
        throw e;
      }
    };
  }

  private lookupSync(id: ClientIdentity): AuthInfo | undefined {
    const user = id.token === undefined ? undefined : this.store.tokens.lookup(id.token);
    if (user === undefined) throw errors.ErrGRPCInvalidAuthToken;
    return { username: user, revision: this.store.revision };
  }

  // ---- the Auth service ----

  private async run(id: ClientIdentity | undefined, req: AuthRequest): Promise<{ revision: number; result: AuthResult }> {
    const ai = await this.proposer(id);
    const res = await this.s.propose({ op: 'auth', req }, ai);
    if (res.resp.op !== 'auth') throw new Error('assertion failed: auth result');
    return { revision: res.revision, result: res.resp.result };
  }

  private async headerOnly(id: ClientIdentity | undefined, req: AuthRequest): Promise<pb.AuthHeaderResponse> {
    const { revision } = await this.run(id, req);
    return { header: this.s.header(revision) };
  }

  authEnable(id: ClientIdentity): Promise<pb.AuthHeaderResponse> {
    return this.headerOnly(id, { kind: 'authEnable' });
  }

  authDisable(id: ClientIdentity): Promise<pb.AuthHeaderResponse> {
    return this.headerOnly(id, { kind: 'authDisable' });
  }

  /** etcd's CheckPassword: the auth revision the password was checked at. */
  private async checkPassword(name: string, password: string): Promise<number> {
    const store = this.store;
    if (!store.isEnabled) throw errors.ErrGRPCAuthNotEnabled;
    const revision = store.revision;
    const user = store.user(name);
    if (!user) throw errors.ErrGRPCAuthFailed;
    if (user.noPassword) throw noPasswordUserError();
    if (!(await verifyPassword(password, user.password))) throw errors.ErrGRPCAuthFailed;
    return revision;
  }

  async authenticate(req: pb.AuthenticateRequest): Promise<pb.AuthenticateResponse> {
    await this.s.linearizableReadIndex();
    for (let attempt = 1; ; attempt++) {
      const checked = await this.checkPassword(req.name, req.password);
      const { revision, result } = await this.run(undefined, { kind: 'authenticate', name: req.name, tokenPrefix: tokenPrefix() });
      if (result.kind !== 'token') throw new Error('assertion failed: authenticate result');
      if (checked === this.store.revision) return { header: this.s.header(revision), token: result.token };
      if (attempt >= authLimits.authenticateAttemptsMax) throw errors.ErrGRPCAuthOldRevision;
    }
  }

  async userAdd(id: ClientIdentity, req: pb.AuthUserAddRequest): Promise<pb.AuthHeaderResponse> {
    if (req.name.length === 0) throw errors.ErrGRPCUserEmpty;
    const noPassword = req.options?.no_password === true;
    // Hashed here, before proposing: applying stays deterministic (the salt is random).
    const password = noPassword ? '' : await hashPassword(req.password);
    return this.headerOnly(id, { kind: 'userAdd', name: req.name, password, noPassword });
  }

  userDelete(id: ClientIdentity, req: pb.AuthUserDeleteRequest): Promise<pb.AuthHeaderResponse> {
    return this.headerOnly(id, { kind: 'userDelete', name: req.name });
  }

  async userChangePassword(id: ClientIdentity, req: pb.AuthUserChangePasswordRequest): Promise<pb.AuthHeaderResponse> {
    const password = await hashPassword(req.password);
    return this.headerOnly(id, { kind: 'userChangePassword', name: req.name, password });
  }

  userGrantRole(id: ClientIdentity, req: pb.AuthUserGrantRoleRequest): Promise<pb.AuthHeaderResponse> {
    return this.headerOnly(id, { kind: 'userGrantRole', user: req.user, role: req.role });
  }

  userRevokeRole(id: ClientIdentity, req: pb.AuthUserRevokeRoleRequest): Promise<pb.AuthHeaderResponse> {
    return this.headerOnly(id, { kind: 'userRevokeRole', name: req.name, role: req.role });
  }

  async userGet(id: ClientIdentity, req: pb.AuthUserGetRequest): Promise<pb.AuthUserGetResponse> {
    const { revision, result } = await this.run(id, { kind: 'userGet', name: req.name });
    return { header: this.s.header(revision), roles: result.kind === 'roles' ? result.roles : [] };
  }

  async userList(id: ClientIdentity): Promise<pb.AuthUserListResponse> {
    const { revision, result } = await this.run(id, { kind: 'userList' });
    return { header: this.s.header(revision), users: result.kind === 'users' ? result.users : [] };
  }

  roleAdd(id: ClientIdentity, req: pb.AuthRoleAddRequest): Promise<pb.AuthHeaderResponse> {
    return this.headerOnly(id, { kind: 'roleAdd', name: req.name });
  }

  async roleGet(id: ClientIdentity, req: pb.AuthRoleGetRequest): Promise<pb.AuthRoleGetResponse> {
    const { revision, result } = await this.run(id, { kind: 'roleGet', role: req.role });
    return { header: this.s.header(revision), perm: result.kind === 'perms' ? result.perms.map(toPbPerm) : [] };
  }

  async roleList(id: ClientIdentity): Promise<pb.AuthRoleListResponse> {
    const { revision, result } = await this.run(id, { kind: 'roleList' });
    return { header: this.s.header(revision), roles: result.kind === 'roles' ? result.roles : [] };
  }

  roleDelete(id: ClientIdentity, req: pb.AuthRoleDeleteRequest): Promise<pb.AuthHeaderResponse> {
    return this.headerOnly(id, { kind: 'roleDelete', role: req.role });
  }

  roleGrantPermission(id: ClientIdentity, req: pb.AuthRoleGrantPermissionRequest): Promise<pb.AuthHeaderResponse> {
    // etcd 3.4 crashes on a missing permission; 3.5 refuses it with this error.
    if (!req.perm) throw errors.ErrGRPCPermissionNotGiven;
    const perm: PermissionRecord = { permType: req.perm.permType, key: req.perm.key, rangeEnd: req.perm.range_end };
    return this.headerOnly(id, { kind: 'roleGrantPermission', name: req.name, perm });
  }

  roleRevokePermission(id: ClientIdentity, req: pb.AuthRoleRevokePermissionRequest): Promise<pb.AuthHeaderResponse> {
    return this.headerOnly(id, { kind: 'roleRevokePermission', role: req.role, key: req.key, rangeEnd: req.range_end });
  }
}
