// The auth store's records, requests and results. Records are what the store persists with
// every flush of the state machine (and ships in snapshots); requests are what goes through
// Raft (passwords arrive already hashed); results go back to the proposing member.

import type { PermissionType } from '../proto';

export const rootUser = 'root';
export const rootRole = 'root';

/** Who a request runs as: a user name and the auth revision seen when its credentials were checked. */
export interface AuthInfo {
  username: string;
  /** 0 for "no user" (no token and no client certificate). */
  revision: number;
}

/** What a client presented with a call: a token (metadata `token`) and a verified client certificate's CN. */
export interface ClientIdentity {
  token: string | undefined;
  commonName: string | undefined;
}

export interface UserRecord {
  name: string;
  /** A password hash (see password.ts); empty for a user without a password. */
  password: string;
  /** Sorted. */
  roles: string[];
  noPassword: boolean;
}

export interface PermissionRecord {
  permType: PermissionType;
  key: Uint8Array;
  rangeEnd: Uint8Array;
}

export interface RoleRecord {
  name: string;
  /** Sorted by key (etcd's permSlice order). */
  perms: PermissionRecord[];
}

/** The persisted state; users and roles sorted by name. */
export interface AuthState {
  enabled: boolean;
  /** Bumped by every change of users, roles or permissions; starts at 1. */
  revision: number;
  users: UserRecord[];
  roles: RoleRecord[];
}

export type AuthRequest =
  | { kind: 'authEnable' }
  | { kind: 'authDisable' }
  /** The token is "<tokenPrefix>.<raft index of this entry>". */
  | { kind: 'authenticate'; name: string; tokenPrefix: string }
  | { kind: 'userAdd'; name: string; password: string; noPassword: boolean }
  | { kind: 'userDelete'; name: string }
  | { kind: 'userChangePassword'; name: string; password: string }
  | { kind: 'userGrantRole'; user: string; role: string }
  | { kind: 'userRevokeRole'; name: string; role: string }
  | { kind: 'userGet'; name: string }
  | { kind: 'userList' }
  | { kind: 'roleAdd'; name: string }
  | { kind: 'roleGet'; role: string }
  | { kind: 'roleList' }
  | { kind: 'roleDelete'; role: string }
  | { kind: 'roleGrantPermission'; name: string; perm: PermissionRecord }
  | { kind: 'roleRevokePermission'; role: string; key: Uint8Array; rangeEnd: Uint8Array };

export type AuthResult =
  | { kind: 'done' }
  | { kind: 'token'; token: string }
  | { kind: 'roles'; roles: string[] }
  | { kind: 'users'; users: string[] }
  | { kind: 'perms'; perms: PermissionRecord[] };
