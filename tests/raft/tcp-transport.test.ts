// The peer transport on its own: framing across arbitrary chunk boundaries, message order,
// refusals (wrong cluster, wrong member, a removed member), snapshots with their
// acknowledgement and a snapshot cut off half-way, loss of a peer's connection, TLS, and
// gRPC on the same port.

import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfState, Message, NodeId } from '../../src/raft';
import { FrameKind, FrameReader, frame, PREFACE, encodeHello, Purpose } from '../../src/raft/peer-wire';
import { removedMemberReason, TcpTransport, TcpTransportOptions } from '../../src/raft/tcp-transport';
import { SnapshotSource, TransportHandler } from '../../src/raft/transport';
import { peerMembersService, fetchClusterView } from '../../src/kv/server/peer-members';
import { freePort, requireTool } from '../helpers/cluster';
import { makeTestCerts } from '../helpers/tls-certs';

function msg(from: NodeId, to: NodeId, index: number, data = ''): Message {
  return {
    type: 'MsgApp',
    to,
    from,
    term: 1,
    logTerm: 1,
    index,
    commit: 0,
    reject: false,
    rejectHint: 0,
    entries: data === '' ? [] : [{ term: 1, index: index + 1, type: 0, data: Buffer.from(data) }],
  };
}

const confState: ConfState = { voters: [1, 2], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };

function snapMessage(from: NodeId, to: NodeId): Message {
  return { ...msg(from, to, 0), type: 'MsgSnap', snapshot: { data: new Uint8Array(0), metadata: { index: 10, term: 1, confState } } };
}

/** Records what a transport delivers. */
class Recorder implements TransportHandler {
  messages: Message[] = [];
  snapshots: { m: Message; data: Buffer }[] = [];
  snapshotErrors: string[] = [];
  unreachable: NodeId[] = [];
  lost: NodeId[] = [];
  /** Set to make the state machine read slowly. */
  chunkDelayMs = 0;
  /** Snapshots whose reading started. */
  started = 0;

  step(m: Message): void {
    this.messages.push(m);
  }

  async receiveSnapshot(m: Message, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Uint8Array[] = [];
    this.started++;
    try {
      for await (const c of chunks) {
        parts.push(c);
        if (this.chunkDelayMs > 0) await new Promise((r) => setTimeout(r, this.chunkDelayMs));
      }
    } catch (e) {
      this.snapshotErrors.push((e as Error).message);
      throw e;
    }
    this.snapshots.push({ m, data: Buffer.concat(parts) });
  }

  reportUnreachable(id: NodeId): void {
    this.unreachable.push(id);
  }

  reportConnectionLost(id: NodeId): void {
    this.lost.push(id);
  }
}

function source(pieces: Buffer[]): SnapshotSource {
  return {
    metadata: { index: 10, term: 1, confState },
    async *chunks() {
      for (const p of pieces) yield p;
    },
    close() {},
  };
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('FrameReader', () => {
  test('cuts frames out of any split of the byte stream', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 10 }), (payloads, cuts) => {
        const bytes = Buffer.concat(payloads.map((p) => frame(FrameKind.Msg, p)));
        const got: Buffer[] = [];
        const r = new FrameReader(1024, (kind, p) => {
          expect(kind).toBe(FrameKind.Msg);
          got.push(p);
        });
        let o = 0;
        for (let i = 0; o < bytes.length; i++) {
          const n = cuts[i % cuts.length]!;
          r.push(bytes.subarray(o, o + n));
          o += n;
        }
        expect(got.map((b) => [...b])).toEqual(payloads.map((p) => [...p]));
      }),
    );
  });

  test('a frame over the limit is an error', () => {
    const r = new FrameReader(100, () => undefined);
    expect(() => r.push(frame(FrameKind.Data, Buffer.alloc(200)))).toThrow(/limit 100/);
  });

  test('a large frame arriving in many pieces is joined once', () => {
    const payload = Buffer.alloc(1 << 20, 7);
    const bytes = frame(FrameKind.Data, payload);
    let got: Buffer | undefined;
    const r = new FrameReader(2 << 20, (_k, p) => (got = p));
    for (let o = 0; o < bytes.length; o += 1000) r.push(bytes.subarray(o, o + 1000));
    expect(got?.equals(payload)).toBe(true);
  });
});

describe('TcpTransport', () => {
  const transports: TcpTransport[] = [];
  const sockets: net.Socket[] = [];

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    for (const t of transports.splice(0)) await t.stop();
  });

  async function pair(opts: { a?: Partial<TcpTransportOptions>; b?: Partial<TcpTransportOptions>; scheme?: string } = {}): Promise<{ a: TcpTransport; b: TcpTransport; ra: Recorder; rb: Recorder; urls: Map<NodeId, string> }> {
    const scheme = opts.scheme ?? 'http';
    const urls = new Map<NodeId, string>([
      [1, `${scheme}://127.0.0.1:${await freePort()}`],
      [2, `${scheme}://127.0.0.1:${await freePort()}`],
    ]);
    const make = (id: NodeId, extra: Partial<TcpTransportOptions> | undefined): TcpTransport => {
      const t = new TcpTransport({ id, clusterId: 7, listen: { host: '127.0.0.1', port: Number(new URL(urls.get(id)!).port) }, peers: urls, ...extra });
      transports.push(t);
      return t;
    };
    const a = make(1, opts.a);
    const b = make(2, opts.b);
    const ra = new Recorder();
    const rb = new Recorder();
    await a.start(ra);
    await b.start(rb);
    return { a, b, ra, rb, urls };
  }

  test('messages arrive in order, including ones sent before the connection was up', async () => {
    const { a, b, ra, rb } = await pair();
    for (let i = 0; i < 500; i++) a.send([msg(1, 2, i, `entry ${i}`)]);
    a.send(Array.from({ length: 500 }, (_, i) => msg(1, 2, 500 + i)));
    b.send([msg(2, 1, 0, 'back')]);
    await waitFor(() => rb.messages.length === 1000 && ra.messages.length === 1);
    expect(rb.messages.map((m) => m.index)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(Buffer.from(rb.messages[3]!.entries[0]!.data).toString()).toBe('entry 3');
    expect(ra.messages[0]!.from).toBe(2);
    expect(b.heardFromMs(1)).toBeGreaterThan(Date.now() - 5000);
  });

  test('a peer whose process goes away is reported lost, and reached again when it is back', async () => {
    const { a, b, ra, urls } = await pair();
    a.send([msg(1, 2, 1)]);
    await waitFor(() => b.heardFromMs(1) > 0);
    await b.stop();
    await waitFor(() => ra.lost.includes(2));
    expect(ra.unreachable).toContain(2);
    const b2 = new TcpTransport({ id: 2, clusterId: 7, listen: { host: '127.0.0.1', port: Number(new URL(urls.get(2)!).port) }, peers: urls });
    transports.push(b2);
    const rb2 = new Recorder();
    await b2.start(rb2);
    // Raft sends again after a probe; the transport reconnects on its own.
    await waitFor(() => {
      a.send([msg(1, 2, 2)]);
      return rb2.messages.length > 0;
    });
  });

  test('a peer that reads nothing: its messages are dropped past the unsent-bytes bound, and Raft is told', async () => {
    const port = await freePort();
    const held: net.Socket[] = [];
    const deaf = net.createServer((sock) => {
      held.push(sock);
      sock.pause(); // accepts and never reads (a paused process)
    });
    await new Promise<void>((r) => deaf.listen(port, '127.0.0.1', () => r()));
    try {
      const urls = new Map<NodeId, string>([[2, `http://127.0.0.1:${port}`]]);
      const t = new TcpTransport({ id: 1, clusterId: 7, listen: { host: '127.0.0.1', port: await freePort() }, peers: urls });
      transports.push(t);
      const r = new Recorder();
      await t.start(r);
      const big = 'x'.repeat(1 << 20);
      await waitFor(() => {
        t.send([msg(1, 2, 1, big)]);
        return t.dropped > 0;
      }, 20_000);
      expect(r.unreachable).toContain(2);
      expect(r.messages).toEqual([]);
    } finally {
      for (const sock of held) sock.destroy();
      deaf.close();
    }
  });

  test('an accepted connection that never says who it is is closed', async () => {
    const port = await freePort();
    const t = new TcpTransport({ id: 1, clusterId: 7, listen: { host: '127.0.0.1', port }, peers: new Map(), helloTimeoutMs: 100 });
    transports.push(t);
    await t.start(new Recorder());
    const s = net.connect({ host: '127.0.0.1', port });
    sockets.push(s);
    await new Promise((r) => s.once('connect', r));
    s.write(PREFACE); // the preface, then silence
    const t0 = Date.now();
    await new Promise((r) => s.once('close', r));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(50);
  });

  test('connections naming another cluster or another member are refused', async () => {
    const { b, rb, urls } = await pair();
    const wrong = new TcpTransport({ id: 3, clusterId: 8, listen: { host: '127.0.0.1', port: await freePort() }, peers: urls });
    transports.push(wrong);
    await wrong.start(new Recorder());
    wrong.send([msg(3, 2, 1)]);
    // A member that thinks member 1 is at member 2's address.
    const confused = new TcpTransport({ id: 4, clusterId: 7, listen: { host: '127.0.0.1', port: await freePort() }, peers: new Map([[1, urls.get(2)!]]) });
    transports.push(confused);
    const rc = new Recorder();
    await confused.start(rc);
    confused.send([msg(4, 1, 1)]);
    await waitFor(() => rc.unreachable.includes(1));
    await new Promise((r) => setTimeout(r, 100));
    expect(rb.messages).toEqual([]);
    expect(b.heardFromMs(3)).toBe(0);
  });

  test('a removed member is told so and its messages are not stepped', async () => {
    const removed = new Set<NodeId>([1]);
    const { a, rb } = await pair({ b: { isRemoved: (id) => removed.has(id) } });
    const reasons: string[] = [];
    a.onRemoved.on((r) => reasons.push(r));
    a.send([msg(1, 2, 1)]);
    await waitFor(() => reasons.length > 0);
    expect(reasons[0]).toBe(removedMemberReason);
    expect(rb.messages).toEqual([]);
  });

  test('a snapshot is streamed in pieces, taken in and acknowledged', async () => {
    const { a, rb } = await pair();
    rb.chunkDelayMs = 1; // slower than the network: reading pauses and resumes
    const pieces = Array.from({ length: 100 }, (_, i) => Buffer.alloc(10_000 + i, i));
    const ok = await a.sendSnapshot(snapMessage(1, 2), source(pieces));
    expect(ok).toBe(true);
    expect(rb.snapshots).toHaveLength(1);
    expect(rb.snapshots[0]!.m.snapshot?.metadata.index).toBe(10);
    expect(rb.snapshots[0]!.data.equals(Buffer.concat(pieces))).toBe(true);
  });

  test('a snapshot cut off half-way fails on both sides instead of being taken in short', async () => {
    const { urls, rb } = await pair();
    // A sender that dies after half the data: raw bytes on the wire.
    const port = Number(new URL(urls.get(2)!).port);
    const s = net.connect({ host: '127.0.0.1', port });
    sockets.push(s);
    await new Promise((r) => s.once('connect', r));
    s.write(Buffer.concat([PREFACE, encodeHello({ purpose: Purpose.Snapshot, clusterId: 7, from: 1, to: 2 })]));
    const { encodeMessage } = await import('../../src/raft/message-codec');
    s.write(frame(FrameKind.Snap, encodeMessage(snapMessage(1, 2))));
    s.write(frame(FrameKind.Data, Buffer.alloc(1000)));
    await waitFor(() => rb.started === 1);
    s.destroy();
    await waitFor(() => rb.snapshotErrors.length === 1);
    expect(rb.snapshotErrors[0]).toMatch(/closed before the end/);
    expect(rb.snapshots).toEqual([]);

    // And the sending side: the receiver goes away mid-stream.
    const { a, b } = await pair();
    let stopped = false;
    const slow: SnapshotSource = {
      metadata: { index: 10, term: 1, confState },
      async *chunks() {
        for (let i = 0; i < 1000; i++) {
          if (i === 5 && !stopped) {
            stopped = true;
            await b.stop();
          }
          yield Buffer.alloc(100_000);
          await new Promise((r) => setTimeout(r, 1));
        }
      },
      close() {},
    };
    expect(await a.sendSnapshot(snapMessage(1, 2), slow)).toBe(false);
  });

  test('the peer port serves gRPC next to the Raft streams', async () => {
    const urls = new Map<NodeId, string>([[1, `http://127.0.0.1:${await freePort()}`]]);
    const t = new TcpTransport({ id: 1, clusterId: 7, listen: { host: '127.0.0.1', port: Number(new URL(urls.get(1)!).port) }, peers: urls });
    transports.push(t);
    const svc = peerMembersService(() => ({ clusterId: 7, memberId: 1, membership: { clusterId: 7, members: [], removed: [5] }, appliedIndex: 42 }));
    t.addService(svc.service as never, svc.implementation);
    await t.start(new Recorder());
    const view = await fetchClusterView(urls.get(1)!, 2000, grpc.credentials.createInsecure());
    expect(view).toMatchObject({ clusterId: 7, memberId: 1, appliedIndex: 42, membership: { removed: [5] } });
  });

  test('over TLS with certificates verified both ways', async () => {
    if (!requireTool('openssl', 'apt-get install openssl')) return;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'transport-tls-'));
    try {
      const certs = makeTestCerts(dir, []);
      const serverTls = { cert: fs.readFileSync(certs.member.cert), key: fs.readFileSync(certs.member.key), ca: fs.readFileSync(certs.ca), requestCert: true, rejectUnauthorized: true };
      const clientTls = { cert: fs.readFileSync(certs.member.cert), key: fs.readFileSync(certs.member.key), ca: fs.readFileSync(certs.ca) };
      const { a, b, rb } = await pair({ scheme: 'https', a: { serverTls, clientTls }, b: { serverTls, clientTls } });
      a.send([msg(1, 2, 1, 'secret')]);
      await waitFor(() => rb.messages.length === 1);
      expect(await a.sendSnapshot(snapMessage(1, 2), source([Buffer.from('state')]))).toBe(true);
      expect(rb.snapshots[0]!.data.toString()).toBe('state');

      // A member without a certificate the other trusts gets nothing through.
      const strangerUrls = new Map<NodeId, string>([[2, `https://127.0.0.1:${b.port}`]]);
      const stranger = new TcpTransport({ id: 9, clusterId: 7, listen: { host: '127.0.0.1', port: await freePort() }, peers: strangerUrls, clientTls: { cert: fs.readFileSync(certs.stranger.cert), key: fs.readFileSync(certs.stranger.key), ca: fs.readFileSync(certs.ca) } });
      transports.push(stranger);
      const rs = new Recorder();
      await stranger.start(rs);
      stranger.send([msg(9, 2, 1)]);
      await waitFor(() => rs.unreachable.includes(2));
      expect(rb.messages).toHaveLength(1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
