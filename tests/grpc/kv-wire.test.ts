// The hand-written Put codecs agree with protobufjs (the codec of every other call) on
// etcd's own .proto files: a request decodes to the same object, malformed requests fail
// alike, and a hand-encoded response decodes to what protobufjs's encoding decodes to.

import * as fc from 'fast-check';
import * as pb from '../../src/kv/proto';
import { decodePutRequest, encodePutResponse } from '../../src/kv/server/kv-wire';

const put = pb.serviceDefinition('KV').Put!;
const generic = (b: Buffer): unknown => put.requestDeserialize(b);
const decodeResponse = (b: Buffer): unknown => put.responseDeserialize(b);

const bytes = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
const int64 = fc.oneof(fc.constant(0), fc.integer({ min: -(2 ** 31), max: 2 ** 31 }), fc.maxSafeInteger(), fc.constant(-1), fc.constant(Number.MAX_SAFE_INTEGER), fc.constant(-Number.MAX_SAFE_INTEGER));
const putRequest = fc.record({ key: bytes, value: bytes, lease: int64, prev_kv: fc.boolean(), ignore_value: fc.boolean(), ignore_lease: fc.boolean() });
const nonNegative = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 ** 31 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
const header = fc.record({ cluster_id: nonNegative, member_id: nonNegative, revision: nonNegative, raft_term: nonNegative });
const keyValue = fc.record({ key: bytes, create_revision: nonNegative, mod_revision: nonNegative, version: nonNegative, value: bytes, lease: int64 });

/** A plain object with plain Buffers, for comparing decoded messages. */
const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

describe('PutRequest decoding', () => {
  test('agrees with protobufjs on every request protobufjs encodes', () => {
    fc.assert(
      fc.property(putRequest, (req) => {
        const wire = put.requestSerialize(req as never);
        expect(plain(decodePutRequest(wire))).toEqual(plain(generic(wire)));
      }),
      { seed: 5, numRuns: 500 },
    );
  });

  test('repeated fields (the last wins), unknown fields of every wire type and a field in a group are read alike', () => {
    const wire = Buffer.concat([
      Buffer.from([0x0a, 0x01, 0x61]), // key "a"
      Buffer.from([0x38, 0x96, 0x01]), // field 7 varint (unknown)
      Buffer.from([0x41, 1, 2, 3, 4, 5, 6, 7, 8]), // field 8 fixed64
      Buffer.from([0x4d, 1, 2, 3, 4]), // field 9 fixed32
      Buffer.from([0x52, 0x02, 0x00, 0x01]), // field 10 bytes
      Buffer.from([0x5b, 0x08, 0x01, 0x5c]), // field 11 group holding a varint
      Buffer.from([0x0a, 0x02, 0x62, 0x63]), // key "bc" again: wins
      Buffer.from([0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // lease -1
      Buffer.from([0x20, 0x02]), // prev_kv = 2: true
    ]);
    const got = decodePutRequest(wire);
    expect(plain(got)).toEqual(plain(generic(wire)));
    expect(got.key.toString()).toBe('bc');
    expect(got.lease).toBe(-1);
    expect(got.prev_kv).toBe(true);
  });

  test('random bytes: when both decode, they agree; a failure is an Error', () => {
    // protobufjs is laxer than grpc-go on malformed varints: it reads a varint of more than
    // five bytes where it wants 32 bits by skipping ten bytes blindly, and takes a varint
    // cut short by the end of the message as complete. This decoder reads varints as
    // grpc-go does, so on such input only one of the two fails.
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 30 }), (a) => {
        const wire = Buffer.from(a);
        let want: unknown;
        let got: unknown;
        try {
          want = plain(generic(wire));
        } catch {
          want = undefined;
        }
        try {
          got = plain(decodePutRequest(wire));
        } catch (e) {
          expect(e).toBeInstanceOf(Error);
          return;
        }
        if (want !== undefined) expect(got).toEqual(want);
      }),
      { seed: 11, numRuns: 5000 },
    );
  });

  test('a truncated message fails with protobufjs error text', () => {
    const wire = put.requestSerialize({ key: Buffer.from('key'), value: Buffer.from('value') } as never);
    const cut = wire.subarray(0, wire.length - 2);
    expect(() => generic(cut)).toThrow(/index out of range/);
    expect(() => decodePutRequest(cut)).toThrow(/index out of range/);
    expect(() => decodePutRequest(Buffer.from([0x3f]))).toThrow('invalid wire type 7 at offset 1');
    expect(() => generic(Buffer.from([0x3f]))).toThrow('invalid wire type 7 at offset 1');
  });
});

describe('PutResponse encoding', () => {
  test('decodes to what protobufjs encodes, with and without prev_kv and header', () => {
    fc.assert(
      fc.property(fc.option(header, { nil: null }), fc.option(keyValue, { nil: null }), (h, prev) => {
        const res: pb.PutResponse = { header: h, prev_kv: prev };
        expect(plain(decodeResponse(encodePutResponse(res)))).toEqual(plain(decodeResponse(put.responseSerialize(res as never))));
      }),
      { seed: 5, numRuns: 500 },
    );
  });

  test('default fields are left out as grpc-go does: an all-zero header is an empty sub-message', () => {
    expect([...encodePutResponse({ header: { cluster_id: 0, member_id: 0, revision: 0, raft_term: 0 }, prev_kv: null })]).toEqual([0x0a, 0x00]);
    expect([...encodePutResponse({ header: null, prev_kv: null })]).toEqual([]);
  });
});
