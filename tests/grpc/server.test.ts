// The gRPC server on our own HTTP/2, driven by @grpc/grpc-js's client (a real gRPC peer),
// node:http2 (for what grpc-js will not send) and raw sockets (protocol errors).

import * as grpc from '@grpc/grpc-js';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { HeaderList } from '../../src/grpc/hpack';
import { CallMetadata, CallStream, GrpcServer, ServerCall, Status, encodeGrpcMessage, parseTimeout } from '../../src/grpc/server';

type Msg = Record<string, unknown>;

const json = {
  serialize: (v: Msg): Buffer => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer): Msg => JSON.parse(b.toString('utf8')) as Msg,
};

function method(name: string, requestStream: boolean, responseStream: boolean) {
  return {
    path: `/test.Echo/${name}`,
    requestStream,
    responseStream,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  };
}

const service = {
  Echo: method('Echo', false, false),
  Fail: method('Fail', false, false),
  Hang: method('Hang', false, false),
  Stream: method('Stream', false, true),
  Bidi: method('Bidi', true, true),
  Sum: method('Sum', true, false),
  Now: method('Now', false, false),
};

type TestClient = grpc.Client & Record<keyof typeof service, (...args: unknown[]) => unknown>;
const Client = grpc.makeGenericClientConstructor(service, 'Echo') as unknown as new (address: string, creds: grpc.ChannelCredentials, options?: object) => TestClient;

let server: GrpcServer;
let port: number;
let client: TestClient;
const cancelled: string[] = [];
/** What the Now handler saw its socket take: after answering, and after flushPending() when asked to. */
const nowWrites: Array<{ answered: number; after: number }> = [];

beforeAll(async () => {
  server = new GrpcServer({
    maxReceiveMessageLength: 1024 * 1024,
    http1: (req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ path: req.url }));
    },
  });
  server.addService(service, {
    Echo: (call: ServerCall, cb: (e: unknown, v?: Msg) => void) => {
      const req = call.request as Msg;
      cb(null, { ...req, token: call.metadata.get('token').map(String), bin: call.metadata.get('blob-bin').map((b) => (b as Buffer).toString('hex')), peer: call.getPeer() });
    },
    Fail: (call: ServerCall, cb: (e: unknown) => void) => {
      const req = call.request as { code: number; details: string };
      cb({ code: req.code, details: req.details });
    },
    Hang: (call: ServerCall) => {
      call.on('cancelled', () => cancelled.push(String((call.request as Msg).id)));
    },
    Stream: (call: ServerCall) => {
      const { count, size } = call.request as { count: number; size: number };
      let i = 0;
      const pump = (): void => {
        while (i < count) {
          const ok = call.write({ i, pad: 'x'.repeat(size) });
          i++;
          if (!ok) {
            call.once('drain', pump);
            return;
          }
        }
        call.end();
      };
      pump();
    },
    Bidi: (call: ServerCall) => {
      call.on('data', (m: Msg) => {
        if (m.fail) {
          call.emit('error', { code: Status.FAILED_PRECONDITION, details: 'asked to fail' });
          return;
        }
        if (m.pause) {
          call.pause();
          setTimeout(() => call.resume(), 50);
        }
        call.write({ echo: m.n });
      });
      call.on('end', () => call.end());
    },
    Now: (call: ServerCall, cb: (e: unknown, v?: Msg) => void) => {
      const socket = (call as unknown as { socket: net.Socket }).socket;
      const before = socket.bytesWritten;
      cb(null, { ok: true });
      const answered = socket.bytesWritten - before;
      if ((call.request as Msg).flush) server.flushPending();
      nowWrites.push({ answered, after: socket.bytesWritten - before });
    },
    Sum: (call: ServerCall, cb: (e: unknown, v?: Msg) => void) => {
      let sum = 0;
      call.on('data', (m: { n: number }) => (sum += m.n));
      call.on('end', () => cb(null, { sum }));
    },
  });
  port = await server.listen('127.0.0.1', 0);
  client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 });
});

afterAll(async () => {
  client?.close();
  await server?.shutdown(100);
});

function unaryCall(name: keyof typeof service, req: Msg, md = new grpc.Metadata(), options: grpc.CallOptions = {}): Promise<Msg> {
  return new Promise((resolve, reject) => {
    (client[name] as (r: Msg, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, v?: Msg) => void) => void)(req, md, options, (e, v) => (e ? reject(e) : resolve(v!)));
  });
}

describe('unary calls', () => {
  test('a request and its answer, with metadata and the peer address', async () => {
    const md = new grpc.Metadata();
    md.set('token', 'secret');
    md.set('blob-bin', Buffer.from([0, 1, 254]));
    const res = await unaryCall('Echo', { hello: 'world' }, md);
    expect(res).toMatchObject({ hello: 'world', token: ['secret'], bin: ['0001fe'] });
    expect(res.peer).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  test('errors arrive with their code and text, non-ASCII and % included', async () => {
    await expect(unaryCall('Fail', { code: Status.INVALID_ARGUMENT, details: 'etcdserver: key is not provided' })).rejects.toMatchObject({
      code: Status.INVALID_ARGUMENT,
      details: 'etcdserver: key is not provided',
    });
    await expect(unaryCall('Fail', { code: Status.UNKNOWN, details: '100% naïve\nline' })).rejects.toMatchObject({ code: Status.UNKNOWN, details: '100% naïve\nline' });
  });

  test('an answer goes to the socket at the end of the turn, or at once on flushPending()', async () => {
    nowWrites.length = 0;
    expect(await unaryCall('Now', { flush: false })).toEqual({ ok: true });
    expect(await unaryCall('Now', { flush: true })).toEqual({ ok: true });
    expect(await unaryCall('Now', { flush: false })).toEqual({ ok: true });
    expect(nowWrites.map((w) => w.answered)).toEqual([0, 0, 0]);
    expect(nowWrites[0]!.after).toBe(0);
    expect(nowWrites[1]!.after).toBeGreaterThan(0);
    expect(nowWrites[2]!.after).toBe(0);
  });

  test('many calls at once on one connection', async () => {
    const results = await Promise.all(Array.from({ length: 2000 }, (_, i) => unaryCall('Echo', { i })));
    expect(results.map((r) => r.i)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
  });

  test('a large request and a large answer (beyond every flow-control window)', async () => {
    const big = 'y'.repeat(900 * 1024);
    const res = await unaryCall('Echo', { big });
    expect(res.big).toBe(big);
  });

  test('a request over the limit: RESOURCE_EXHAUSTED with grpc-go text, and the connection goes on', async () => {
    const e = await unaryCall('Echo', { big: 'z'.repeat(1024 * 1024 + 10) }).catch((x: grpc.ServiceError) => x);
    expect(e).toMatchObject({ code: Status.RESOURCE_EXHAUSTED });
    expect((e as grpc.ServiceError).details).toMatch(/^grpc: received message larger than max \(\d+ vs\. 1048576\)$/);
    await expect(unaryCall('Echo', { after: true })).resolves.toMatchObject({ after: true });
  });

  test('unknown methods and services: UNIMPLEMENTED as grpc-go words it', async () => {
    const md = new grpc.Metadata();
    const call = (path: string): Promise<grpc.ServiceError> =>
      new Promise((resolve) => {
        client.makeUnaryRequest(path, json.serialize, json.deserialize, {}, md, {}, (e) => resolve(e!));
      });
    expect(await call('/test.Echo/Nope')).toMatchObject({ code: Status.UNIMPLEMENTED, details: 'unknown method Nope for service test.Echo' });
    expect(await call('/other.Svc/X')).toMatchObject({ code: Status.UNIMPLEMENTED, details: 'unknown service other.Svc' });
  });

  test('a client cancel or deadline reaches the handler as cancelled', async () => {
    const e = await unaryCall('Hang', { id: 'deadline' }, new grpc.Metadata(), { deadline: Date.now() + 200 }).catch((x: grpc.ServiceError) => x);
    expect(e).toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    await waitFor(() => cancelled.includes('deadline'));
    const call = (client.Hang as (r: Msg, cb: () => void) => grpc.ClientUnaryCall)({ id: 'cancel' }, () => undefined);
    await new Promise((r) => setTimeout(r, 50));
    call.cancel();
    await waitFor(() => cancelled.includes('cancel'));
  });
});

describe('streams', () => {
  test('server streaming with flow control: 8 MiB to a client that reads', async () => {
    const call = (client.Stream as (r: Msg) => grpc.ClientReadableStream<Msg>)({ count: 128, size: 64 * 1024 });
    const seen: number[] = [];
    await new Promise<void>((resolve, reject) => {
      call.on('data', (m: Msg) => {
        seen.push(m.i as number);
        // A slow reader now and then, so that the server's windows run out.
        if (seen.length % 32 === 0) {
          call.pause();
          setTimeout(() => call.resume(), 30);
        }
      });
      call.on('end', resolve);
      call.on('error', reject);
    });
    expect(seen).toEqual(Array.from({ length: 128 }, (_, i) => i));
  });

  test('bidi: answers in order, pause and resume, end', async () => {
    const call = (client.Bidi as () => grpc.ClientDuplexStream<Msg, Msg>)();
    const got: number[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (m: Msg) => got.push(m.echo as number));
      call.on('end', resolve);
      call.on('error', reject);
    });
    for (let n = 0; n < 200; n++) call.write({ n, pause: n % 50 === 0 });
    call.end();
    await done;
    expect(got).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  test('bidi: a handler ends the call with a status by emitting error', async () => {
    const call = (client.Bidi as () => grpc.ClientDuplexStream<Msg, Msg>)();
    const e = await new Promise<grpc.ServiceError>((resolve) => {
      call.on('data', () => undefined);
      call.on('error', resolve);
      call.write({ n: 1 });
      call.write({ fail: true });
    });
    expect(e).toMatchObject({ code: Status.FAILED_PRECONDITION, details: 'asked to fail' });
  });

  test('client streaming', async () => {
    const res = await new Promise<Msg>((resolve, reject) => {
      const call = (client.Sum as (cb: (e: grpc.ServiceError | null, v?: Msg) => void) => grpc.ClientWritableStream<Msg>)((e, v) => (e ? reject(e) : resolve(v!)));
      for (let n = 1; n <= 100; n++) call.write({ n });
      call.end();
    });
    expect(res).toEqual({ sum: 5050 });
  });
});

describe('a call\'s events', () => {
  function fakeCall(): { call: ServerCall; sent: HeaderList[]; ended: () => number } {
    const sent: HeaderList[] = [];
    let ended = 0;
    const stream: CallStream = {
      sink: undefined,
      headersSent: false,
      sendHeaders: (h) => void sent.push(h),
      sendData: () => true,
      sendTrailers: (t) => void sent.push(t),
      reset: () => undefined,
      setPaused: () => undefined,
    };
    const fakeServer = { callEnded: () => void ended++, maxReceiveMessageLength: 1024 } as unknown as GrpcServer;
    const route = { method: method('Bidi', true, true), handler: () => undefined };
    const call = new ServerCall(fakeServer, stream, route, new CallMetadata([]), new net.Socket(), undefined);
    stream.sink = call;
    return { call, sent, ended: () => ended };
  }

  test('listeners come and go (on, once, off, removeAllListeners) and get what is emitted', () => {
    const { call } = fakeCall();
    const got: string[] = [];
    const onData = (m: Msg): void => void got.push(`data ${m.n}`);
    expect(call.listenerCount('data')).toBe(0);
    expect(call.emit('data', { n: 0 })).toBe(false);
    call.on('data', onData).once('drain', () => got.push('drain'));
    expect(call.listenerCount('data')).toBe(1);
    call.streamData(Buffer.concat([Buffer.from([0, 0, 0, 0, 7]), Buffer.from('{"n":1}')]));
    call.streamDrain();
    call.streamDrain();
    call.off('data', onData);
    call.streamData(Buffer.concat([Buffer.from([0, 0, 0, 0, 7]), Buffer.from('{"n":2}')]));
    call.on('end', () => got.push('end'));
    call.removeAllListeners('end');
    call.streamEnd();
    expect(got).toEqual(['data 1', 'drain']);
  });

  test('error ends the call with its status once, then reaches the listeners; without any it is no exception', () => {
    const a = fakeCall();
    const seen: unknown[] = [];
    a.call.on('error', (e) => seen.push(e));
    expect(a.call.emit('error', { code: Status.FAILED_PRECONDITION, details: 'asked to fail' })).toBe(true);
    expect(seen).toEqual([{ code: Status.FAILED_PRECONDITION, details: 'asked to fail' }]);
    expect(a.sent).toEqual([
      [
        [':status', '200'],
        ['content-type', 'application/grpc'],
        ['grpc-status', '9'],
        ['grpc-message', 'asked to fail'],
      ],
    ]);
    expect(a.ended()).toBe(1);
    const b = fakeCall();
    expect(b.call.emit('error', { message: 'boom' })).toBe(true);
    expect(b.sent[0]).toContainEqual(['grpc-status', String(Status.UNKNOWN)]);
    expect(b.sent[0]).toContainEqual(['grpc-message', 'boom']);
  });

  test('an abort cancels the call: cancelled is emitted once', () => {
    const { call, ended } = fakeCall();
    let cancelled = 0;
    call.on('cancelled', () => cancelled++);
    call.streamAbort(8);
    call.streamAbort(8);
    expect([cancelled, call.cancelled, ended()]).toEqual([1, true, 1]);
  });
});

describe('the wire', () => {
  test('an :authority that is a URL (etcdctl 3.4 with http:// endpoints) is served', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const body = json.serialize({ via: 'url authority' });
      const frame = Buffer.alloc(5 + body.length);
      frame.writeUInt32BE(body.length, 1);
      body.copy(frame, 5);
      const req = session.request({
        ':method': 'POST',
        ':path': '/test.Echo/Echo',
        ':authority': `http://127.0.0.1:${port}`,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      const chunks: Buffer[] = [];
      const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => req.on('trailers', resolve));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.end(frame);
      const t = await trailers;
      expect(t['grpc-status']).toBe('0');
      const all = Buffer.concat(chunks);
      expect(json.deserialize(all.subarray(5))).toMatchObject({ via: 'url authority' });
    } finally {
      session.close();
    }
  });

  test('a non-gRPC HTTP/2 request gets 415', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const req = session.request({ ':method': 'POST', ':path': '/test.Echo/Echo', 'content-type': 'text/plain' });
      const status = await new Promise<number>((resolve) => req.on('response', (h) => resolve(Number(h[':status']))));
      req.close();
      expect(status).toBe(415);
    } finally {
      session.close();
    }
  });

  test('HTTP/1.1 on the same port', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/health' }, (res) => {
          let s = '';
          res.on('data', (c: Buffer) => (s += c.toString()));
          res.on('end', () => resolve(s));
        })
        .on('error', reject);
    });
    expect(JSON.parse(body)).toEqual({ path: '/health' });
  });

  test('a bad preface or a malformed frame: GOAWAY and the connection closes', async () => {
    // A frame on a bad stream id right after a good preface: PROTOCOL_ERROR.
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
    const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
    const dataOnZero = Buffer.from([0, 0, 1, 0, 0, 0, 0, 0, 0, 0x61]);
    const received = await rawExchange(Buffer.concat([preface, settings, dataOnZero]));
    const goaway = findFrame(received, 7);
    expect(goaway).toBeDefined();
    expect(goaway!.readUInt32BE(4)).toBe(1); // PROTOCOL_ERROR
  });

  test('PING is answered with an ACK carrying the same payload', async () => {
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
    const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
    const ping = Buffer.concat([Buffer.from([0, 0, 8, 6, 0, 0, 0, 0, 0]), Buffer.from('12345678')]);
    const received = await rawExchange(Buffer.concat([preface, settings, ping]), 300);
    const ack = findFrame(received, 6, 1);
    expect(ack?.toString()).toBe('12345678');
  });

  test('grpc-timeout and grpc-message encodings', () => {
    expect(parseTimeout('5S')).toBe(5000);
    expect(parseTimeout('250m')).toBe(250);
    expect(parseTimeout('2M')).toBe(120000);
    expect(parseTimeout('1000000u')).toBe(1000);
    expect(parseTimeout('bad')).toBeUndefined();
    expect(encodeGrpcMessage('plain text')).toBe('plain text');
    expect(encodeGrpcMessage('50% é')).toBe('50%25 %C3%A9');
  });
});

/** Writes bytes on a fresh connection and collects what comes back until it closes (or `ms`). */
function rawExchange(bytes: Buffer, ms = 2000): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    const done = (): void => {
      clearTimeout(t);
      s.destroy();
      resolve(Buffer.concat(chunks));
    };
    const t = setTimeout(done, ms);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('close', done);
    s.on('error', done);
  });
}

/** The payload of the first frame of `type` (and flags, when given) in a byte stream. */
function findFrame(b: Buffer, type: number, flags?: number): Buffer | undefined {
  for (let off = 0; off + 9 <= b.length; ) {
    const len = (b[off]! << 16) | (b[off + 1]! << 8) | b[off + 2]!;
    if (b[off + 3] === type && (flags === undefined || b[off + 4] === flags)) return b.subarray(off + 9, off + 9 + len);
    off += 9 + len;
  }
  return undefined;
}

async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
