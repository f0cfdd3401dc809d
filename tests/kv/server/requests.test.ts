// The Raft log's request envelope: the binary form of a put and the msgpackr form of
// everything else, and logs written before the binary form existed.

import { Packr } from 'msgpackr';
import { decodeEnvelope, encodeEnvelope, Envelope, PlainPut, readPlainPut } from '../../../src/kv/server/requests';

const put = (over: Partial<{ key: Buffer; value: Buffer; lease: number; prev_kv: boolean; ignore_value: boolean; ignore_lease: boolean }> = {}) => ({
  key: Buffer.from('k1'),
  value: Buffer.from('v1'),
  lease: 0,
  prev_kv: false,
  ignore_value: false,
  ignore_lease: false,
  ...over,
});

describe('request envelope', () => {
  test('a put round-trips through the binary form, every flag and a large lease and member id', () => {
    const cases = [
      put(),
      put({ prev_kv: true }),
      put({ ignore_value: true, value: Buffer.alloc(0) }),
      put({ ignore_lease: true, lease: 0 }),
      put({ lease: 2 ** 53 - 1, prev_kv: true, ignore_value: true, ignore_lease: true }),
      put({ key: Buffer.from([0, 255, 0x80]), value: Buffer.alloc(70000, 7) }),
    ];
    for (const req of cases) {
      const env: Envelope = { m: 0x1347b1a18fd4f4, n: 123456789012, r: { op: 'put', req } };
      const data = encodeEnvelope(env);
      expect(data[0]).toBe(0xc1);
      expect(decodeEnvelope(data)).toEqual(env);
    }
  });

  test('a put decodes from a plain Uint8Array view in the middle of a larger buffer', () => {
    const env: Envelope = { m: 7, n: 8, r: { op: 'put', req: put({ lease: 42 }) } };
    const data = encodeEnvelope(env);
    const big = new Uint8Array(data.length + 20);
    big.set(data, 10);
    expect(decodeEnvelope(new Uint8Array(big.buffer, 10, data.length))).toEqual(env);
  });

  test('a put with auth information round-trips through the binary form, the empty user of a client without credentials included', () => {
    const auths = [
      { username: '', revision: 0 },
      { username: 'root', revision: 3 },
      { username: 'ünïcode-user', revision: 2 ** 40 },
    ];
    for (const a of auths) {
      const env: Envelope = { m: 1, n: 2, r: { op: 'put', req: put({ prev_kv: true, key: Buffer.from([1, 2]), value: Buffer.alloc(300, 1) }) }, a };
      const data = encodeEnvelope(env);
      expect(data[0]).toBe(0xc1);
      expect(decodeEnvelope(data)).toEqual(env);
    }
  });

  test('requests other than put stay msgpackr-encoded', () => {
    const del: Envelope = { m: 1, n: 3, r: { op: 'deleteRange', req: { key: Buffer.from('a'), range_end: Buffer.from('b'), prev_kv: false } }, a: { username: 'u', revision: 1 } };
    const data = encodeEnvelope(del);
    expect(data[0]).not.toBe(0xc1);
    expect(decodeEnvelope(data)).toEqual(del);
  });

  test('a put written by the msgpackr form (logs from before the binary one) still decodes', () => {
    const env: Envelope = { m: 5, n: 6, r: { op: 'put', req: put({ lease: 9 }) } };
    const old = new Packr({ useRecords: false, moreTypes: false }).pack(env);
    expect(decodeEnvelope(old)).toEqual(env);
  });

  test('a truncated or unknown binary entry fails with a clear error', () => {
    const data = Buffer.from(encodeEnvelope({ m: 1, n: 1, r: { op: 'put', req: put() } }));
    expect(() => decodeEnvelope(data.subarray(0, 20))).toThrow(/undecodable log entry/);
    const unknown = Buffer.from(data);
    unknown[1] = 9;
    expect(() => decodeEnvelope(unknown)).toThrow(/binary kind 9/);
    const badKey = Buffer.from(data);
    badKey.writeUInt32LE(1000, 27);
    expect(() => decodeEnvelope(badKey)).toThrow(/key of 1000 bytes/);
    const withAuth = Buffer.from(encodeEnvelope({ m: 1, n: 1, r: { op: 'put', req: put() }, a: { username: 'alice', revision: 4 } }));
    expect(() => decodeEnvelope(withAuth.subarray(0, 36))).toThrow(/auth information cut short/);
    const badUser = Buffer.from(withAuth);
    badUser.writeUInt32LE(500, 31 + 8);
    expect(() => decodeEnvelope(badUser)).toThrow(/username of 500 bytes/);
  });
});

describe('plain puts read in place', () => {
  const fresh = (): PlainPut => ({ m: 0, n: 0, keyStr: '', buf: Buffer.alloc(0), valueStart: 0 });

  test('a put with no flags and no lease gives its ids, key and value, with or without auth information', () => {
    for (const a of [undefined, { username: '', revision: 0 }, { username: 'ünïcode-user', revision: 9 }]) {
      const req = put({ key: Buffer.from([0, 255, 0x80, 0x41]), value: Buffer.alloc(300, 5) });
      const data = encodeEnvelope(a ? { m: 0x1347b1a18fd4f4, n: 77, r: { op: 'put', req }, a } : { m: 0x1347b1a18fd4f4, n: 77, r: { op: 'put', req } });
      // In the middle of a larger buffer, as entries are.
      const big = Buffer.alloc(data.length + 20);
      big.set(data, 10);
      const out = fresh();
      expect(readPlainPut(new Uint8Array(big.buffer, big.byteOffset + 10, data.length), out)).toBe(true);
      expect([out.m, out.n]).toEqual([0x1347b1a18fd4f4, 77]);
      expect(Buffer.from(out.keyStr, 'latin1')).toEqual(req.key);
      expect(out.buf.subarray(out.valueStart)).toEqual(req.value);
    }
  });

  test('anything else is left to decodeEnvelope', () => {
    const refused = [put({ prev_kv: true }), put({ ignore_value: true }), put({ ignore_lease: true }), put({ lease: 5 })].map((req) => encodeEnvelope({ m: 1, n: 2, r: { op: 'put', req } }));
    refused.push(encodeEnvelope({ m: 1, n: 3, r: { op: 'deleteRange', req: { key: Buffer.from('a'), range_end: Buffer.alloc(0), prev_kv: false } } }));
    const plain = encodeEnvelope({ m: 1, n: 4, r: { op: 'put', req: put() } });
    refused.push(plain.subarray(0, 20)); // cut short
    for (const data of refused) expect(readPlainPut(data, fresh())).toBe(false);
  });
});
