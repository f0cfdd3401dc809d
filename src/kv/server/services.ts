// The etcd v3 gRPC services: each handler translates a call into an EtcdServer method and
// its result (or error) back into etcd's wire shapes. Semantics live in EtcdServer.

import * as grpc from '@grpc/grpc-js';
import * as errors from '../errors';
import type { MvccEvent } from '../mvcc';
import * as pb from '../proto';
import type { WatchRequest, WatchResponse } from '../watch';
import type { EtcdServer } from './etcd-server';
import { toPbKv } from './txn';

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;

/** A unary handler from an async (or sync) function; errors become etcd's gRPC statuses. */
function unary<Req, Res>(fn: (req: Req) => Promise<Res> | Res): Unary<Req, Res> {
  return (call, callback) => {
    let p: Promise<Res>;
    try {
      p = Promise.resolve(fn(call.request));
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

function toPbEvent(e: MvccEvent): pb.Event {
  return { type: e.type, kv: toPbKv(e.kv), prev_kv: e.prevKv ? toPbKv(e.prevKv) : null };
}

export function registerServices(server: grpc.Server, s: EtcdServer): void {
  pb.addService(server, 'KV', {
    Range: unary((r: pb.RangeRequest) => s.range(r)),
    Put: unary((r: pb.PutRequest) => s.put(r)),
    DeleteRange: unary((r: pb.DeleteRangeRequest) => s.deleteRange(r)),
    Txn: unary((r: pb.TxnRequest) => s.txn(r)),
    Compact: unary((r: pb.CompactionRequest) => s.compact(r)),
  } as unknown as pb.ServiceImplementation<'KV'>);

  pb.addService(server, 'Watch', {
    Watch: (call: grpc.ServerDuplexStream<WatchRequest, pb.WatchResponse>) => watchCall(s, call),
  } as unknown as pb.ServiceImplementation<'Watch'>);

  pb.addService(server, 'Lease', {
    LeaseGrant: unary((r: pb.LeaseGrantRequest) => s.leaseGrant(r)),
    LeaseRevoke: unary((r: pb.LeaseRevokeRequest) => s.leaseRevoke(r)),
    LeaseKeepAlive: (call: grpc.ServerDuplexStream<pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse>) => keepAliveCall(s, call),
    LeaseTimeToLive: unary((r: pb.LeaseTimeToLiveRequest) => s.leaseTimeToLive(r)),
    LeaseLeases: unary(() => s.leaseLeases()),
  } as unknown as pb.ServiceImplementation<'Lease'>);

  pb.addService(server, 'Cluster', {
    MemberAdd: unary((r: pb.MemberAddRequest) => s.members.add(r)),
    MemberRemove: unary((r: pb.MemberRemoveRequest) => s.members.remove(r)),
    MemberUpdate: unary((r: pb.MemberUpdateRequest) => s.members.update(r)),
    MemberList: unary(() => s.memberList()),
    MemberPromote: unary((r: pb.MemberPromoteRequest) => s.members.promote(r)),
  } as unknown as pb.ServiceImplementation<'Cluster'>);

  pb.addService(server, 'Maintenance', {
    Alarm: unary((r: pb.AlarmRequest) => s.alarm(r)),
    Status: unary(() => s.status()),
    Defragment: unary(() => s.maintenance.defragment()),
    Hash: unary(() => s.hash()),
    HashKV: unary((r: pb.HashKVRequest) => s.hashKV(r)),
    Snapshot: (call: grpc.ServerWritableStream<pb.SnapshotRequest, pb.SnapshotResponse>) => snapshotCall(s, call),
    MoveLeader: unary((r: pb.MoveLeaderRequest) => s.maintenance.moveLeader(r)),
    Downgrade: pb.unimplemented('Maintenance', 'Downgrade'),
  } as unknown as pb.ServiceImplementation<'Maintenance'>);

  pb.addService(server, 'Health', {
    Check: unary(() => ({ status: 'SERVING' })),
    Watch: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      call.write({ status: 'SERVING' });
    },
  } as unknown as pb.ServiceImplementation<'Health'>);
}

/** Maintenance.Snapshot: the chunks go out as the client takes them; a failure ends the call with its status. */
function snapshotCall(s: EtcdServer, call: grpc.ServerWritableStream<pb.SnapshotRequest, pb.SnapshotResponse>): void {
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
  s.maintenance.snapshot(write).then(
    () => call.end(),
    (e: unknown) => {
      if (!cancelled) call.emit('error', errors.toServiceError(e));
    },
  );
}

/** One Watch stream: requests go to the hub's stream; its responses get a header and go out. */
function watchCall(s: EtcdServer, call: grpc.ServerDuplexStream<WatchRequest, pb.WatchResponse>): void {
  let paused = false;
  const stream = s.watchHub.newStream({
    send: (resp: WatchResponse) =>
      call.write({
        header: s.header(resp.revision),
        watch_id: resp.watch_id,
        created: resp.created,
        canceled: resp.canceled,
        compact_revision: resp.compact_revision,
        cancel_reason: resp.cancel_reason,
        fragment: resp.fragment,
        // The hub already dropped prevKv for watchers that did not ask for it.
        events: resp.events.map(toPbEvent),
      }),
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
  call.on('data', (req: WatchRequest) => {
    if (!stream.request(req)) {
      paused = true;
      call.pause();
    }
  });
  const end = (): void => stream.close();
  call.on('end', () => {
    end();
    call.end();
  });
  call.on('cancelled', end);
  call.on('error', end);
}

function keepAliveCall(s: EtcdServer, call: grpc.ServerDuplexStream<pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse>): void {
  // Answers go out in request order.
  let chain = Promise.resolve();
  let ended = false;
  call.on('data', (req: pb.LeaseKeepAliveRequest) => {
    chain = chain.then(async () => {
      try {
        const resp = await s.leaseRenew(req.ID);
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
