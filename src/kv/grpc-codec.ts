// Encoding and decoding single protobuf messages outside a gRPC call (for example to
// keep an etcd request in a raft entry, or in tests), with exactly the conversions the
// gRPC services use (PROTO_LOADER_OPTIONS in proto.ts): the same bytes on the wire, the
// same decoded shapes.

import * as protobuf from 'protobufjs';
import * as path from 'node:path';
import { ETCD_PROTO_FILES, protoDir } from './proto';
import type * as pb from './proto';

/** Conversion options matching PROTO_LOADER_OPTIONS. */
const TO_OBJECT_OPTIONS: protobuf.IConversionOptions = {
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
};

let rootCached: protobuf.Root | undefined;

/** The protobufjs root of the etcd protos (loaded once, with keepCase as proto-loader does). */
export function etcdProtoRoot(): protobuf.Root {
  if (rootCached === undefined) {
    const dir = protoDir();
    const root = new protobuf.Root();
    root.resolvePath = (_origin: string, target: string): string =>
      path.isAbsolute(target) ? target : path.join(dir, target);
    root.loadSync([...ETCD_PROTO_FILES], { keepCase: true });
    root.resolveAll();
    rootCached = root;
  }
  return rootCached;
}

/** Decoded shape of each message, by fully qualified name. */
export interface MessageShapes {
  'mvccpb.KeyValue': pb.KeyValue;
  'mvccpb.Event': pb.Event;
  'authpb.Permission': pb.Permission;
  'etcdserverpb.ResponseHeader': pb.ResponseHeader;
  'etcdserverpb.RangeRequest': pb.RangeRequest;
  'etcdserverpb.RangeResponse': pb.RangeResponse;
  'etcdserverpb.PutRequest': pb.PutRequest;
  'etcdserverpb.PutResponse': pb.PutResponse;
  'etcdserverpb.DeleteRangeRequest': pb.DeleteRangeRequest;
  'etcdserverpb.DeleteRangeResponse': pb.DeleteRangeResponse;
  'etcdserverpb.RequestOp': pb.RequestOp;
  'etcdserverpb.ResponseOp': pb.ResponseOp;
  'etcdserverpb.Compare': pb.Compare;
  'etcdserverpb.TxnRequest': pb.TxnRequest;
  'etcdserverpb.TxnResponse': pb.TxnResponse;
  'etcdserverpb.CompactionRequest': pb.CompactionRequest;
  'etcdserverpb.CompactionResponse': pb.CompactionResponse;
  'etcdserverpb.WatchRequest': pb.WatchRequest;
  'etcdserverpb.WatchCreateRequest': pb.WatchCreateRequest;
  'etcdserverpb.WatchCancelRequest': pb.WatchCancelRequest;
  'etcdserverpb.WatchResponse': pb.WatchResponse;
  'etcdserverpb.LeaseGrantRequest': pb.LeaseGrantRequest;
  'etcdserverpb.LeaseGrantResponse': pb.LeaseGrantResponse;
  'etcdserverpb.LeaseRevokeRequest': pb.LeaseRevokeRequest;
  'etcdserverpb.LeaseCheckpointRequest': pb.LeaseCheckpointRequest;
  'etcdserverpb.LeaseKeepAliveRequest': pb.LeaseKeepAliveRequest;
  'etcdserverpb.LeaseKeepAliveResponse': pb.LeaseKeepAliveResponse;
  'etcdserverpb.LeaseTimeToLiveRequest': pb.LeaseTimeToLiveRequest;
  'etcdserverpb.LeaseTimeToLiveResponse': pb.LeaseTimeToLiveResponse;
  'etcdserverpb.LeaseLeasesResponse': pb.LeaseLeasesResponse;
  'etcdserverpb.Member': pb.Member;
  'etcdserverpb.MemberAddRequest': pb.MemberAddRequest;
  'etcdserverpb.MemberListResponse': pb.MemberListResponse;
  'etcdserverpb.AlarmRequest': pb.AlarmRequest;
  'etcdserverpb.AlarmResponse': pb.AlarmResponse;
  'etcdserverpb.StatusResponse': pb.StatusResponse;
  'etcdserverpb.HashKVResponse': pb.HashKVResponse;
  'etcdserverpb.SnapshotResponse': pb.SnapshotResponse;
  'etcdserverpb.AuthenticateRequest': pb.AuthenticateRequest;
  'etcdserverpb.AuthRoleGrantPermissionRequest': pb.AuthRoleGrantPermissionRequest;
}

export type MessageName = keyof MessageShapes;

const types = new Map<string, protobuf.Type>();

/** The protobufjs Type of a message (for field introspection, e.g. in tests). */
export function messageType(name: string): protobuf.Type {
  let type = types.get(name);
  if (type === undefined) {
    type = etcdProtoRoot().lookupType(name);
    types.set(name, type);
  }
  return type;
}

/** Encodes a message; throws on a value that does not fit its field (as grpc-js would). */
export function encodeMessage<N extends MessageName>(name: N, value: pb.Wire<MessageShapes[N]>): Buffer {
  const type = messageType(name);
  const bytes = type.encode(type.fromObject(value as Record<string, unknown>)).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function decodeMessage<N extends MessageName>(name: N, bytes: Uint8Array): MessageShapes[N] {
  const type = messageType(name);
  return type.toObject(type.decode(bytes), TO_OBJECT_OPTIONS) as MessageShapes[N];
}
