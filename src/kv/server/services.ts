// The etcd v3 gRPC services: each handler translates a call into an EtcdServer method and
// its result (or error) back into etcd's wire shapes. Semantics live in EtcdServer.

import * as grpc from '@grpc/grpc-js';
import type { CallMetadata, GrpcServer, ServerCall, StatusError } from '../../grpc/server';
import * as errors from '../errors';
import * as pb from '../proto';
import type { WatchRequest, WatchResponse } from '../watch';
import { identityOf } from './auth-admin';
import type { EtcdServer } from './etcd-server';
import { decodePutRequest, encodePutResponse } from './kv-wire';
import { encodeWatchResponseFramed } from './watch-wire';

type Unary<Res> = (call: ServerCall, callback: (error: StatusError | null, value?: Res) => void) => void;

/** A unary handler from an async (or sync) function; errors become etcd's gRPC statuses. */
function unary<Req, Res>(fn: (req: Req, call: ServerCall) => Promise<Res> | Res): Unary<Res> {
  return (call, callback) => {
    let p: Promise<Res>;
    try {
      p = Promise.resolve(fn(call.request as Req, call));
    } catch (e) {
      callback(errors.toServiceError(e));
      return;
    }
    p.then(
      (res) => callback(null, res),
      (e: unknown) => callback(errors.toServiceError(e)),
    );
  };
}

/** Put without a promise in its common case (EtcdServer.putThen): the most frequent call. */
function putHandler(s: EtcdServer): Unary<pb.PutResponse> {
  return (call, callback) => {
    // Called from the apply of the entry (Wait.listen): it must not throw into the applier.
    const reply = (e: unknown, res: pb.PutResponse | undefined): void => {
      try {
        if (e !== undefined) callback(errors.toServiceError(e));
        else callback(null, res);
      } catch (err) {
        try {
          call.sendStatus(grpc.status.INTERNAL, String(err));
        } catch {
          // Nothing left to answer on.
        }
      }
    };
    let id: ReturnType<typeof identityOf>;
    try {
      id = identityOf(call);
    } catch (e) {
      reply(e, undefined);
      return;
    }
    s.putThen(call.request as pb.PutRequest, id, reply);
  };
}

export function registerServices(server: GrpcServer, s: EtcdServer): void {
  pb.addService(server, 'KV', {
    Range: unary((r: pb.RangeRequest, c) => s.range(r, identityOf(c))),
    Put: putHandler(s),
    DeleteRange: unary((r: pb.DeleteRangeRequest, c) => s.deleteRange(r, identityOf(c))),
    Txn: unary((r: pb.TxnRequest, c) => s.txn(r, identityOf(c))),
    Compact: unary((r: pb.CompactionRequest, c) => s.compact(r, identityOf(c))),
  } as unknown as pb.ServiceImplementation<'KV'>,
  { Put: { requestDeserialize: decodePutRequest, responseSerialize: encodePutResponse as (v: never) => Buffer } },
  );

  pb.addService(server, 'Watch', {
    Watch: (call: ServerCall) => watchCall(s, call),
  } as unknown as pb.ServiceImplementation<'Watch'>);

  pb.addService(server, 'Lease', {
    LeaseGrant: unary((r: pb.LeaseGrantRequest, c) => s.leases.grant(r, identityOf(c))),
    LeaseRevoke: unary((r: pb.LeaseRevokeRequest, c) => s.leases.revoke(r, identityOf(c))),
    LeaseKeepAlive: (call: ServerCall) => keepAliveCall(s, call),
    LeaseTimeToLive: unary((r: pb.LeaseTimeToLiveRequest) => s.leases.timeToLive(r)),
    LeaseLeases: unary(() => s.leases.list()),
  } as unknown as pb.ServiceImplementation<'Lease'>);

  pb.addService(server, 'Cluster', {
    // Membership changes need the root role (checked here, as etcd does in its API layer);
    // a call forwarded to the leader carries the caller's token.
    MemberAdd: unary(async (r: pb.MemberAddRequest, c) => (await s.auth.checkAdmin(identityOf(c)), s.members.add(r, forwardedCredentials(c)))),
    MemberRemove: unary(async (r: pb.MemberRemoveRequest, c) => (await s.auth.checkAdmin(identityOf(c)), s.members.remove(r, forwardedCredentials(c)))),
    MemberUpdate: unary(async (r: pb.MemberUpdateRequest, c) => (await s.auth.checkAdmin(identityOf(c)), s.members.update(r))),
    MemberList: unary(() => s.memberList()),
    MemberPromote: unary(async (r: pb.MemberPromoteRequest, c) => (await s.auth.checkAdmin(identityOf(c)), s.members.promote(r, forwardedCredentials(c)))),
  } as unknown as pb.ServiceImplementation<'Cluster'>);

  pb.addService(server, 'Maintenance', {
    // etcd 3.4: Alarm only validates the token; Defragment, Hash, HashKV and Snapshot need
    // the root role; Status and MoveLeader nothing.
    Alarm: unary(async (r: pb.AlarmRequest, c) => (await s.auth.checkToken(identityOf(c)), s.alarm(r))),
    Status: unary(() => s.status()),
    Defragment: unary(async (_r: pb.DefragmentRequest, c) => (await s.auth.checkMaintenance(identityOf(c)), s.maintenance.defragment())),
    Hash: unary(async (_r: pb.HashRequest, c) => (await s.auth.checkMaintenance(identityOf(c)), s.hash())),
    HashKV: unary(async (r: pb.HashKVRequest, c) => (await s.auth.checkMaintenance(identityOf(c)), s.hashKV(r))),
    Snapshot: (call: ServerCall) => snapshotCall(s, call),
    MoveLeader: unary((r: pb.MoveLeaderRequest) => s.maintenance.moveLeader(r)),
    Downgrade: pb.unimplemented('Maintenance', 'Downgrade'),
  } as unknown as pb.ServiceImplementation<'Maintenance'>);

  const a = s.auth;
  pb.addService(server, 'Auth', {
    AuthEnable: unary((_r: pb.AuthEnableRequest, c) => a.authEnable(identityOf(c))),
    AuthDisable: unary((_r: pb.AuthDisableRequest, c) => a.authDisable(identityOf(c))),
    // etcd 3.5+; etcd 3.4 never registered it.
    AuthStatus: pb.unimplemented('Auth', 'AuthStatus'),
    Authenticate: unary((r: pb.AuthenticateRequest) => a.authenticate(r)),
    UserAdd: unary((r: pb.AuthUserAddRequest, c) => a.userAdd(identityOf(c), r)),
    UserGet: unary((r: pb.AuthUserGetRequest, c) => a.userGet(identityOf(c), r)),
    UserList: unary((_r: pb.AuthUserListRequest, c) => a.userList(identityOf(c))),
    UserDelete: unary((r: pb.AuthUserDeleteRequest, c) => a.userDelete(identityOf(c), r)),
    UserChangePassword: unary((r: pb.AuthUserChangePasswordRequest, c) => a.userChangePassword(identityOf(c), r)),
    UserGrantRole: unary((r: pb.AuthUserGrantRoleRequest, c) => a.userGrantRole(identityOf(c), r)),
    UserRevokeRole: unary((r: pb.AuthUserRevokeRoleRequest, c) => a.userRevokeRole(identityOf(c), r)),
    RoleAdd: unary((r: pb.AuthRoleAddRequest, c) => a.roleAdd(identityOf(c), r)),
    RoleGet: unary((r: pb.AuthRoleGetRequest, c) => a.roleGet(identityOf(c), r)),
    RoleList: unary((_r: pb.AuthRoleListRequest, c) => a.roleList(identityOf(c))),
    RoleDelete: unary((r: pb.AuthRoleDeleteRequest, c) => a.roleDelete(identityOf(c), r)),
    RoleGrantPermission: unary((r: pb.AuthRoleGrantPermissionRequest, c) => a.roleGrantPermission(identityOf(c), r)),
    RoleRevokePermission: unary((r: pb.AuthRoleRevokePermissionRequest, c) => a.roleRevokePermission(identityOf(c), r)),
  } as unknown as pb.ServiceImplementation<'Auth'>);

  pb.addService(server, 'Health', {
    Check: unary(() => ({ status: 'SERVING' })),
    Watch: (call: ServerCall) => {
      call.write({ status: 'SERVING' });
    },
  } as unknown as pb.ServiceImplementation<'Health'>);
}

/** The caller's token, to pass along with a call forwarded to the leader. */
function forwardedCredentials(call: { metadata: CallMetadata }): grpc.Metadata | undefined {
  const token = call.metadata.get('token')[0] ?? call.metadata.get('authorization')[0];
  if (token === undefined) return undefined;
  const md = new grpc.Metadata();
  md.set('token', String(token));
  return md;
}

/** Maintenance.Snapshot: the chunks go out as the client takes them; a failure ends the call with its status. */
function snapshotCall(s: EtcdServer, call: ServerCall): void {
  let cancelled = false;
  let abandon: (() => void) | undefined;
  call.on('cancelled', () => {
    cancelled = true;
    abandon?.();
  });
  const write = (resp: pb.SnapshotResponse): Promise<void> =>
    new Promise((resolve, reject) => {
      if (cancelled) {
        reject(new Error('snapshot call cancelled'));
        return;
      }
      if (call.write(resp)) {
        resolve();
        return;
      }
      abandon = () => reject(new Error('snapshot call cancelled'));
      call.once('drain', () => {
        abandon = undefined;
        resolve();
      });
    });
  s.auth
    .checkMaintenance(identityOf(call))
    .then(() => s.maintenance.snapshot(write))
    .then(
    () => call.end(),
    (e: unknown) => {
      if (!cancelled) call.emit('error', errors.toServiceError(e));
    },
  );
}

/** One Watch stream: requests go to the hub's stream; its responses get a header and go out. */
function watchCall(s: EtcdServer, call: ServerCall): void {
  let paused = false;
  const stream = s.watchHub.newStream({
    // Each event is encoded once for every watcher that gets it (watch-wire.ts).
    send: (resp: WatchResponse) => call.writeFramed(encodeWatchResponseFramed(s.header(resp.revision), resp)),
    onDrain: (listener) => {
      const l = (): void => {
        listener();
        // Requests were paused while the stream could not take more: resume reading them.
        if (paused && stream.acceptsRequests) {
          paused = false;
          call.resume();
        }
      };
      call.on('drain', l);
      return { dispose: () => call.off('drain', l) };
    },
  });
  const handle = (req: WatchRequest): void => {
    const create = req.request_union === 'create_request' ? req.create_request : undefined;
    const reason = create ? check?.(create.key ?? empty, create.range_end ?? empty) : undefined;
    if (reason !== undefined) {
      // etcd 3.4.23: a watch the user may not read is answered created-and-canceled, id -1.
      call.write({ header: s.header(), watch_id: -1, created: true, canceled: true, compact_revision: 0, cancel_reason: reason, fragment: false, events: [] });
      return;
    }
    if (!stream.request(req)) {
      paused = true;
      call.pause();
    }
  };
  // Requests wait (the call paused) until the stream's credentials are resolved: a token
  // may name an entry this member has not applied yet.
  const empty = new Uint8Array(0);
  let check: ((key: Uint8Array, rangeEnd: Uint8Array) => string | undefined) | undefined;
  const early: WatchRequest[] = [];
  s.auth.watchChecker(identityOf(call)).then(
    (c) => {
      check = c;
      for (const r of early.splice(0)) handle(r);
      if (!paused) call.resume();
    },
    (e: unknown) => call.emit('error', errors.toServiceError(e)),
  );
  call.on('data', (req: WatchRequest) => {
    if (check === undefined) {
      early.push(req);
      call.pause();
      return;
    }
    handle(req);
  });
  // A client that half-closes keeps its watches (as etcd's server ignores the end of the
  // request stream); the stream ends when the client cancels or goes away.
  const end = (): void => stream.close();
  call.on('cancelled', end);
  call.on('error', end);
}

function keepAliveCall(s: EtcdServer, call: ServerCall): void {
  // Answers go out in request order.
  let chain = Promise.resolve();
  let ended = false;
  call.on('data', (req: pb.LeaseKeepAliveRequest) => {
    chain = chain.then(async () => {
      try {
        const resp = await s.leases.renew(req.ID);
        if (!ended) call.write(resp);
      } catch (e) {
        if (!ended) {
          ended = true;
          call.emit('error', errors.toServiceError(e));
        }
      }
    });
  });
  call.on('end', () => {
    void chain.then(() => {
      if (!ended) {
        ended = true;
        call.end();
      }
    });
  });
  call.on('cancelled', () => (ended = true));
  call.on('error', () => (ended = true));
}
