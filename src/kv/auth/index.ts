// The auth store (users, roles, key permissions, simple tokens) with etcd 3.4's semantics.

export { AuthStore } from './store';
export { SimpleTokens, tokenIndex, tokenLimits } from './tokens';
export { hashPassword, verifyPassword, passwordLimits } from './password';
export { RangePermissions } from './range-perms';
export { applyDenied, checkTxnRequest as checkTxnPermissions } from './kv-checks';
export type { LeaseKeys } from './kv-checks';
export { rootRole, rootUser } from './types';
export type { AuthInfo, AuthRequest, AuthResult, AuthState, ClientIdentity, PermissionRecord, RoleRecord, UserRecord } from './types';
