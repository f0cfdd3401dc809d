// Put's request and response encoded by hand: the most frequent call, and protobufjs's
// generic path (decode, then toObject with defaults; fromObject, then encode) made a fifth
// of a leader's allocation under a write load. The shapes are exactly those protobufjs
// gives (see PROTO_LOADER_OPTIONS in ../proto.ts); tests/grpc/kv-wire.test.ts checks
// both ways against protobufjs. Field numbers are those of proto/etcd/rpc.proto and
// kv.proto. Like grpc-go, the encoder leaves out fields equal to their default.

import { ProtoReader } from '../../grpc/proto-reader';
import { ProtoWriter } from '../../grpc/proto-writer';
import type * as pb from '../proto';

const EMPTY = Buffer.alloc(0);
const writer = new ProtoWriter();
const headerWriter = new ProtoWriter();
const kvWriter = new ProtoWriter();

/** PutRequest { key = 1, value = 2, lease = 3, prev_kv = 4, ignore_value = 5, ignore_lease = 6 }. */
export function decodePutRequest(buf: Buffer): pb.PutRequest {
  const r = new ProtoReader(buf);
  const m: pb.PutRequest = { key: EMPTY, value: EMPTY, lease: 0, prev_kv: false, ignore_value: false, ignore_lease: false };
  while (!r.done) {
    const tag = r.tag();
    // As protobufjs's generated decoders: a known field number is read as its type
    // whatever the wire type says.
    switch (tag >>> 3) {
      case 1:
        m.key = r.bytes();
        break;
      case 2:
        m.value = r.bytes();
        break;
      case 3:
        m.lease = r.int64();
        break;
      case 4:
        m.prev_kv = r.bool();
        break;
      case 5:
        m.ignore_value = r.bool();
        break;
      case 6:
        m.ignore_lease = r.bool();
        break;
      default:
        r.skipType(tag & 7);
    }
  }
  return m;
}

/** ResponseHeader { cluster_id = 1, member_id = 2, revision = 3, raft_term = 4 }. */
export function encodeResponseHeader(h: pb.ResponseHeader): Buffer {
  return headerWriter.int(1, h.cluster_id).int(2, h.member_id).int(3, h.revision).int(4, h.raft_term).finish();
}

/** KeyValue { key = 1, create_revision = 2, mod_revision = 3, version = 4, value = 5, lease = 6 }. */
export function encodeKeyValue(kv: pb.KeyValue): Buffer {
  return kvWriter.bytes(1, kv.key).int(2, kv.create_revision).int(3, kv.mod_revision).int(4, kv.version).bytes(5, kv.value).int(6, kv.lease).finish();
}

/** PutResponse { header = 1, prev_kv = 2 }. */
export function encodePutResponse(res: pb.PutResponse): Buffer {
  // Sub-messages are encoded first: the writers are shared.
  const header = res.header === null || res.header === undefined ? undefined : encodeResponseHeader(res.header);
  const prev = res.prev_kv === null || res.prev_kv === undefined ? undefined : encodeKeyValue(res.prev_kv);
  if (header !== undefined) writer.lengthDelimited(1, header);
  if (prev !== undefined) writer.lengthDelimited(2, prev);
  return writer.finish();
}
