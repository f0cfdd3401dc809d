// The benchmark's hand-written protobuf encoders and decoders agree with protobufjs on the
// etcd protos: what bench/wire.ts writes decodes to the same message, and it reads what
// protobufjs writes.

import { messageType } from '../../src/kv/grpc-codec';
import {
  decodeHeaderRevision,
  decodeRangeResponse,
  decodeStatusResponse,
  decodeWatchResponse,
  encodePut,
  encodeRange,
  encodeWatchCreate,
  FrameSplitter,
  prefixRangeEnd,
} from '../../bench/wire';

function unframe(frame: Buffer): Buffer {
  expect(frame[0]).toBe(0);
  expect(frame.readUInt32BE(1)).toBe(frame.length - 5);
  return frame.subarray(5);
}

function encode(name: string, obj: Record<string, unknown>): Buffer {
  const t = messageType(name);
  return Buffer.from(t.encode(t.fromObject(obj)).finish());
}

function decode(name: string, bytes: Uint8Array): Record<string, unknown> {
  const t = messageType(name);
  return t.toObject(t.decode(bytes), { longs: Number, bytes: Buffer, defaults: true }) as Record<string, unknown>;
}

describe('bench/wire', () => {
  test('PutRequest', () => {
    const value = Buffer.alloc(300, 7);
    const m = decode('etcdserverpb.PutRequest', unframe(encodePut(Buffer.from('k1'), value)));
    expect((m.key as Buffer).toString()).toBe('k1');
    expect(Buffer.compare(m.value as Buffer, value)).toBe(0);
  });

  test('RangeRequest', () => {
    const m = decode(
      'etcdserverpb.RangeRequest',
      unframe(encodeRange({ key: Buffer.from('a'), rangeEnd: Buffer.from('b'), limit: 300, serializable: true, keysOnly: true })),
    );
    expect(m).toMatchObject({ limit: 300, serializable: true, keys_only: true });
    expect((m.range_end as Buffer).toString()).toBe('b');
    const single = decode('etcdserverpb.RangeRequest', unframe(encodeRange({ key: Buffer.from('a') })));
    expect(single).toMatchObject({ limit: 0, serializable: false, keys_only: false });
    expect((single.range_end as Buffer).length).toBe(0);
  });

  test('WatchRequest create', () => {
    const m = decode('etcdserverpb.WatchRequest', unframe(encodeWatchCreate(Buffer.from('/p/'), prefixRangeEnd(Buffer.from('/p/')), 200)));
    const c = m.create_request as Record<string, unknown>;
    expect((c.key as Buffer).toString()).toBe('/p/');
    expect((c.range_end as Buffer).toString()).toBe('/p0');
    expect(c.start_revision).toBe(200);
  });

  test('responses', () => {
    const header = { cluster_id: 1, member_id: '18446744073709551557', revision: 1234567, raft_term: 3 };
    expect(decodeHeaderRevision(encode('etcdserverpb.PutResponse', { header }))).toBe(1234567);
    const st = decodeStatusResponse(encode('etcdserverpb.StatusResponse', { header, version: '3.4.23', leader: '18446744073709551557', raftIndex: 99 }));
    expect(st).toEqual({ memberId: 18446744073709551557n, leader: 18446744073709551557n, version: '3.4.23', raftIndex: 99 });
    const kv = { key: Buffer.from('k'), create_revision: 5, mod_revision: 9, version: 2, value: Buffer.alloc(10) };
    const rr = decodeRangeResponse(encode('etcdserverpb.RangeResponse', { header, kvs: [kv, { ...kv, key: Buffer.from('l') }], more: true, count: 7 }));
    expect(rr.revision).toBe(1234567);
    expect(rr.kvs.map((x) => [x.key.toString(), x.modRevision, x.valueBytes])).toEqual([
      ['k', 9, 10],
      ['l', 9, 10],
    ]);
    expect(rr).toMatchObject({ more: true, count: 7 });
    const wbytes = encode('etcdserverpb.WatchResponse', { header, watch_id: 3, created: true, events: [{ type: 'PUT', kv }, { type: 'DELETE', kv: { ...kv, key: Buffer.from('zz'), mod_revision: 10 } }] });
    const w = decodeWatchResponse(wbytes);
    expect(w).toMatchObject({ watchId: 3, created: true, canceled: false });
    expect(w.events.map((e) => [e.type, wbytes.subarray(e.keyStart, e.keyEnd).toString(), e.modRevision])).toEqual([
      [0, 'k', 9],
      [1, 'zz', 10],
    ]);
    const canceled = decodeWatchResponse(encode('etcdserverpb.WatchResponse', { header, canceled: true, compact_revision: 4, cancel_reason: 'gone' }));
    expect(canceled).toMatchObject({ canceled: true, compactRevision: 4, cancelReason: 'gone' });
  });

  test('FrameSplitter reassembles messages split anywhere', () => {
    const msgs = [encodePut(Buffer.from('a'), Buffer.alloc(70000, 1)), encodePut(Buffer.from('b'), Buffer.alloc(3, 2)), encodePut(Buffer.from('c'), Buffer.alloc(0))];
    const all = Buffer.concat(msgs);
    for (const step of [1, 4, 5, 6, 1000, all.length]) {
      const got: Buffer[] = [];
      const s = new FrameSplitter((m) => got.push(Buffer.from(m)));
      for (let o = 0; o < all.length; o += step) s.push(all.subarray(o, o + step));
      expect(got.map((g) => g.length)).toEqual(msgs.map((m) => m.length - 5));
      expect(s.pendingBytes()).toBe(0);
    }
  });

  test('prefixRangeEnd', () => {
    expect(prefixRangeEnd(Buffer.from('ab')).toString()).toBe('ac');
    expect([...prefixRangeEnd(Buffer.from([0x61, 0xff]))]).toEqual([0x62]);
    expect([...prefixRangeEnd(Buffer.from([0xff]))]).toEqual([0]);
  });
});
