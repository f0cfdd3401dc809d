// The benchmark's gRPC client (bench/grpc-client.ts over bench/h2-connection.ts) against
// node:http2's server, an independent HTTP/2 implementation: unary answers with trailers
// and trailers-only, answers larger than the receive windows (the client must send
// WINDOW_UPDATEs), requests larger than the server's windows (the client must wait for
// them), header blocks that use the server's dynamic table, resets, deadlines, streams,
// and a connection that breaks and is made again on the next call.

import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { Connection, GrpcCallError, grpcStatus } from '../../bench/grpc-client';
import { connectionWindowBytes } from '../../bench/h2-connection';

function grpcFrame(msg: Buffer): Buffer {
  const f = Buffer.allocUnsafe(5 + msg.length);
  f[0] = 0;
  f.writeUInt32BE(msg.length, 1);
  msg.copy(f, 5);
  return f;
}

function body(stream: http2.ServerHttp2Stream): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

describe('bench gRPC client', () => {
  let server: http2.Http2Server;
  let endpoint: string;
  const sessions = new Set<http2.ServerHttp2Session>();

  beforeAll(async () => {
    // A small server window: a large request must wait for WINDOW_UPDATEs.
    server = http2.createServer({ settings: { initialWindowSize: 16 * 1024 }, maxSessionMemory: 64 });
    server.on('session', (s) => {
      sessions.add(s);
      s.on('close', () => sessions.delete(s));
    });
    server.on('stream', (stream, headers) => {
      stream.on('error', () => undefined); // resets the tests ask for
      const path = headers[':path'];
      if (headers['content-type'] !== 'application/grpc' || headers.te !== 'trailers') {
        stream.respond({ ':status': 415 }, { endStream: true });
        return;
      }
      void body(stream).then((req) => {
        if (stream.destroyed) return;
        const msg = req.subarray(5);
        switch (path) {
          case '/echo':
            stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-echo-length': String(msg.length) }, { waitForTrailers: true });
            stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': '' }));
            stream.end(grpcFrame(msg));
            return;
          case '/big': {
            const n = msg.readUInt32BE(0);
            stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
            stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
            stream.end(grpcFrame(Buffer.alloc(n, 0x61)));
            return;
          }
          case '/fail':
            stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'not%20here' }, { endStream: true });
            return;
          case '/reset':
            stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
            return;
          case '/hang':
            return;
          case '/drop':
            stream.session?.destroy();
            return;
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const s of sessions) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('makes unary calls, many at once on one connection', async () => {
    const c = new Connection(endpoint);
    try {
      await c.connect();
      const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => c.unary('/echo', grpcFrame(Buffer.from(`message ${i}`)))));
      answers.forEach((a, i) => expect(a.toString()).toBe(`message ${i}`));
    } finally {
      c.close();
    }
  });

  it('sends requests larger than the server windows and receives answers larger than its own', async () => {
    const c = new Connection(endpoint);
    try {
      const big = Buffer.alloc(200_000, 0x62);
      expect((await c.unary('/echo', grpcFrame(big))).equals(big)).toBe(true);
      const n = Buffer.alloc(4);
      n.writeUInt32BE(3 << 20, 0); // three times a stream window
      let total = 0;
      for (let i = 0; i < 6; i++) {
        const a = await c.unary('/big', grpcFrame(n));
        expect(a.length).toBe(3 << 20);
        expect(a.every((b) => b === 0x61)).toBe(true);
        total += a.length;
      }
      expect(total).toBeGreaterThan(connectionWindowBytes); // the connection window was refilled too
    } finally {
      c.close();
    }
  });

  it('reports trailers-only failures, resets and deadlines as gRPC errors', async () => {
    const c = new Connection(endpoint);
    try {
      await expect(c.unary('/fail', grpcFrame(Buffer.from('x')))).rejects.toMatchObject({ code: 5, details: 'not here' });
      await expect(c.unary('/reset', grpcFrame(Buffer.from('x')))).rejects.toMatchObject({ code: grpcStatus.UNAVAILABLE });
      await expect(c.unary('/hang', grpcFrame(Buffer.from('x')), 100)).rejects.toMatchObject({ code: grpcStatus.DEADLINE_EXCEEDED });
      // The connection is still good after all of that.
      expect((await c.unary('/echo', grpcFrame(Buffer.from('after')))).toString()).toBe('after');
    } finally {
      c.close();
    }
  });

  it('fails the calls of a broken connection and connects again on the next call', async () => {
    const c = new Connection(endpoint);
    try {
      const hanging = c.unary('/hang', grpcFrame(Buffer.from('x'))).catch((e: unknown) => e);
      const err = await c.unary('/drop', grpcFrame(Buffer.from('x'))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GrpcCallError);
      expect((err as GrpcCallError).code).toBe(grpcStatus.UNAVAILABLE);
      expect(await hanging).toMatchObject({ code: grpcStatus.UNAVAILABLE });
      expect((await c.unary('/echo', grpcFrame(Buffer.from('again')))).toString()).toBe('again');
    } finally {
      c.close();
    }
  });

  it('fails calls to an endpoint where nothing listens', async () => {
    const probe = http2.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const c = new Connection(`http://127.0.0.1:${port}`);
    try {
      await expect(c.unary('/echo', grpcFrame(Buffer.from('x')))).rejects.toMatchObject({ code: grpcStatus.UNAVAILABLE });
      await expect(c.connect(1000)).rejects.toThrow();
    } finally {
      c.close();
    }
  });

  it('streams messages both ways and cancels', async () => {
    const streamServer = http2.createServer();
    streamServer.on('stream', (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      // Echo every request message back twice, as one DATA chunk holding two frames.
      let pending = Buffer.alloc(0);
      stream.on('data', (c: Buffer) => {
        pending = Buffer.concat([pending, c]);
        while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
          const f = pending.subarray(0, 5 + pending.readUInt32BE(1));
          pending = pending.subarray(f.length);
          stream.write(Buffer.concat([f, f]));
        }
      });
      stream.on('error', () => undefined);
    });
    await new Promise<void>((r) => streamServer.listen(0, '127.0.0.1', r));
    const c = new Connection(`http://127.0.0.1:${(streamServer.address() as AddressInfo).port}`);
    try {
      const got: string[] = [];
      let closed: GrpcCallError | undefined | 'open' = 'open';
      const s = c.stream('/watch', {
        onMessage: (m) => got.push(m.toString()),
        onClose: (e) => {
          closed = e;
        },
      });
      s.write(grpcFrame(Buffer.from('a')));
      s.write(grpcFrame(Buffer.from('b')));
      const deadline = Date.now() + 5000;
      while (got.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(got).toEqual(['a', 'a', 'b', 'b']);
      expect(closed).toBe('open');
      s.cancel();
      expect(closed).toBeInstanceOf(GrpcCallError);
    } finally {
      c.close();
      await new Promise<void>((r) => streamServer.close(() => r()));
    }
  });
});
