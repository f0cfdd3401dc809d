// WatchResponse encoded by hand, each event once for every watcher that gets it: a write
// that 100 watchers see is encoded one time, and each watcher's response is its own small
// head (header, watch id, flags) followed by the shared event bytes. Protobuf allows
// this: a message's fields may come in any order, and a repeated field's elements are
// just consecutive fields. Field numbers are those of proto/etcd/rpc.proto and kv.proto.

import { ProtoWriter } from '../../grpc/proto-writer';
import type { KeyValue, MvccEvent } from '../mvcc';
import type * as pb from '../proto';
import type { WatchResponse } from '../watch';
import { encodeResponseHeader } from './kv-wire';

const writer = new ProtoWriter();
const kvWriter = new ProtoWriter();
const eventWriter = new ProtoWriter();
const fieldWriter = new ProtoWriter();

/**
 * The encoded `events` field (number 11) of one event. Keyed by the event, or by its kv when
 * it carries no prevKv: a watcher without prev_kv gets a copy of the event without it (see
 * Watcher.project), which encodes the same as every other copy of that kv.
 */
const encodedEvents = new WeakMap<object, Buffer>();

function keyValue(kv: KeyValue): Buffer {
  // KeyValue { key = 1, create_revision = 2, mod_revision = 3, version = 4, value = 5, lease = 6 }
  return kvWriter.bytes(1, kv.key).int(2, kv.createRevision).int(3, kv.modRevision).int(4, kv.version).bytes(5, kv.value).int(6, kv.lease).finish();
}

function eventField(ev: MvccEvent): Buffer {
  const cacheKey: object = ev.prevKv === undefined ? ev.kv : ev;
  let out = encodedEvents.get(cacheKey);
  if (out !== undefined) return out;
  // Event { type = 1 (PUT = 0, DELETE = 1), kv = 2, prev_kv = 3 }
  eventWriter.int(1, ev.type === 'DELETE' ? 1 : 0).lengthDelimited(2, keyValue(ev.kv));
  if (ev.prevKv !== undefined) eventWriter.lengthDelimited(3, keyValue(ev.prevKv));
  const event = eventWriter.finish();
  out = fieldWriter.lengthDelimited(11, event).finish();
  encodedEvents.set(cacheKey, out);
  return out;
}

/** The last header encoded: a revision's events go to every watcher with the same header. */
let lastHeader: pb.ResponseHeader = { cluster_id: -1, member_id: -1, revision: -1, raft_term: -1 };
let lastHeaderBytes: Buffer = Buffer.alloc(0);

/** The encoded ResponseHeader, the last one's bytes again when it is the same. */
function responseHeader(h: pb.ResponseHeader): Buffer {
  const l = lastHeader;
  if (h.revision === l.revision && h.raft_term === l.raft_term && h.member_id === l.member_id && h.cluster_id === l.cluster_id) return lastHeaderBytes;
  lastHeaderBytes = encodeResponseHeader(h);
  lastHeader = { cluster_id: h.cluster_id, member_id: h.member_id, revision: h.revision, raft_term: h.raft_term };
  return lastHeaderBytes;
}

function writeResponse(header: pb.ResponseHeader, resp: WatchResponse): ProtoWriter {
  // WatchResponse { header = 1, watch_id = 2, created = 3, canceled = 4,
  //                 compact_revision = 5, cancel_reason = 6, fragment = 7, events = 11 }
  writer
    .lengthDelimited(1, responseHeader(header))
    .int(2, resp.watch_id)
    .bool(3, resp.created)
    .bool(4, resp.canceled)
    .int(5, resp.compact_revision)
    .string(6, resp.cancel_reason)
    .bool(7, resp.fragment);
  for (const ev of resp.events) writer.raw(eventField(ev));
  return writer;
}

/** The bytes of one WatchResponse. */
export function encodeWatchResponse(header: pb.ResponseHeader, resp: WatchResponse): Buffer {
  return writeResponse(header, resp).finish();
}

/** The bytes of one WatchResponse as a gRPC message (with its 5-byte prefix), for ServerCall.writeFramed. */
export function encodeWatchResponseFramed(header: pb.ResponseHeader, resp: WatchResponse): Buffer {
  return writeResponse(header, resp).finishFramed();
}
