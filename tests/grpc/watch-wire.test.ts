// The hand-encoded WatchResponse decodes, with etcd's own .proto files, to what the
// protobufjs encoding of the same response decodes to.

import * as fc from 'fast-check';
import type { KeyValue, MvccEvent } from '../../src/kv/mvcc';
import * as pb from '../../src/kv/proto';
import { encodeWatchResponse, encodeWatchResponseFramed } from '../../src/kv/server/watch-wire';
import type { WatchResponse } from '../../src/kv/watch';

const watch = pb.serviceDefinition('Watch').Watch!;
const decode = (b: Buffer): unknown => watch.responseDeserialize(b);

function kv(key: string, rev: number, extra: Partial<KeyValue> = {}): KeyValue {
  return { key: Buffer.from(key), createRevision: rev, modRevision: rev, version: 1, value: Buffer.from(`v${rev}`), lease: 0, ...extra };
}

function viaProtobufjs(header: pb.ResponseHeader, resp: WatchResponse): unknown {
  const toPb = (k: KeyValue): pb.KeyValue => ({ key: Buffer.from(k.key), create_revision: k.createRevision, mod_revision: k.modRevision, version: k.version, value: Buffer.from(k.value), lease: k.lease });
  const msg = {
    header,
    watch_id: resp.watch_id,
    created: resp.created,
    canceled: resp.canceled,
    compact_revision: resp.compact_revision,
    cancel_reason: resp.cancel_reason,
    fragment: resp.fragment,
    events: resp.events.map((e) => ({ type: e.type, kv: toPb(e.kv), prev_kv: e.prevKv ? toPb(e.prevKv) : null })),
  };
  return decode(watch.responseSerialize(msg as never));
}

const header: pb.ResponseHeader = { cluster_id: 0x1c7a3a2b5d9e01, member_id: 2 ** 52 + 7, revision: 42, raft_term: 3 };
const base: WatchResponse = { watch_id: 0, created: false, canceled: false, compact_revision: 0, cancel_reason: '', fragment: false, events: [], revision: 42 };

describe('encodeWatchResponse', () => {
  test('created, canceled with a reason, compacted, fragment, negative and large ids', () => {
    for (const resp of [
      { ...base, created: true, watch_id: 5 },
      { ...base, canceled: true, compact_revision: 17, cancel_reason: 'mvcc: required revision has been compacted — ünïcode', watch_id: 2 ** 40 },
      { ...base, watch_id: -1, canceled: true, created: true },
      { ...base, fragment: true, watch_id: 1 },
      { ...base, watch_id: 0 },
    ]) {
      expect(decode(encodeWatchResponse(header, resp))).toEqual(viaProtobufjs(header, resp));
    }
  });

  test('events: puts and deletes, prev_kv, leases, empty values, shared between responses', () => {
    const put: MvccEvent = { type: 'PUT', kv: kv('a', 10, { lease: 0x694d7a1b2c3d, version: 3, createRevision: 8 }), prevKv: kv('a', 9) };
    const del: MvccEvent = { type: 'DELETE', kv: { key: Buffer.from('b'), createRevision: 0, modRevision: 11, version: 0, value: Buffer.alloc(0), lease: 0 } };
    const stripped: MvccEvent = { type: put.type, kv: put.kv };
    const r1 = { ...base, watch_id: 1, events: [put, del] };
    const r2 = { ...base, watch_id: 2, events: [stripped, del] };
    // Twice each: the second time the events come from the cache.
    for (const r of [r1, r2, r1, r2]) expect(decode(encodeWatchResponse(header, r))).toEqual(viaProtobufjs(header, r));
  });

  test('random responses agree with protobufjs', () => {
    const bytes = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
    const kvArb = fc.record({
      key: bytes.filter((b) => b.length > 0),
      createRevision: fc.integer({ min: 0, max: 2 ** 40 }),
      modRevision: fc.integer({ min: 1, max: 2 ** 40 }),
      version: fc.integer({ min: 0, max: 1000 }),
      value: bytes,
      lease: fc.integer({ min: 0, max: 2 ** 53 - 1 }),
    });
    const ev = fc.record({ type: fc.constantFrom('PUT' as const, 'DELETE' as const), kv: kvArb, prevKv: fc.option(kvArb, { nil: undefined }) }).map((e) => (e.prevKv === undefined ? { type: e.type, kv: e.kv } : e) as MvccEvent);
    fc.assert(
      fc.property(fc.array(ev, { maxLength: 5 }), fc.integer({ min: -1, max: 2 ** 50 }), fc.boolean(), (events, watchId, fragment) => {
        const resp = { ...base, watch_id: watchId, fragment, events };
        expect(decode(encodeWatchResponse(header, resp))).toEqual(viaProtobufjs(header, resp));
      }),
      { seed: 7, numRuns: 300 },
    );
  });

  test('headers of different revisions, terms and members in turn each encode as their own (the last one is reused)', () => {
    const headers: pb.ResponseHeader[] = [header, { ...header, revision: 43 }, { ...header, revision: 43 }, { ...header, revision: 43, raft_term: 4 }, { ...header, member_id: 9 }, header];
    const resp = { ...base, watch_id: 3, events: [{ type: 'PUT' as const, kv: kv('k', 42) }] };
    for (const h of headers) expect(decode(encodeWatchResponse(h, resp))).toEqual(viaProtobufjs(h, resp));
  });

  test('the framed form is the gRPC prefix (uncompressed, length) and the same bytes', () => {
    const resp = { ...base, watch_id: 300, events: [{ type: 'PUT' as const, kv: kv('k', 42, { value: Buffer.alloc(400, 9) }) }] };
    const plain = encodeWatchResponse(header, resp);
    const framed = encodeWatchResponseFramed(header, resp);
    expect(framed[0]).toBe(0);
    expect(framed.readUInt32BE(1)).toBe(plain.length);
    expect(framed.subarray(5)).toEqual(plain);
  });
});
