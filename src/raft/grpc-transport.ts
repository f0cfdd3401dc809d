// The peer transport over gRPC (proto/raft/peer.proto): one long-lived client stream per
// peer carrying batches of encoded Raft messages (message-codec.ts), and one call per snapshot
// streaming it in chunks. Messages queued in one event-loop turn go out as one batch.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeMessage, encodeMessage } from './message-codec';
import { Logger, silentLogger } from './raft-node';
import { SnapshotSource, Transport, TransportHandler } from './transport';
import { Message, NodeId } from './types';

export const transportLimits = Object.freeze({
  /** Messages waiting for one peer before new ones are dropped (Raft retransmits). */
  queuedMessagesMax: 8192,
  /** Messages in one batch on the wire. */
  batchMessagesMax: 1024,
  /** gRPC message size for batches and snapshot chunks. */
  grpcMessageBytesMax: 64 * 1024 * 1024,
  reconnectDelayMsMin: 50,
  reconnectDelayMsMax: 1000,
});

function protoDir(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'proto'))) return path.join(dir, 'proto');
    const up = path.dirname(dir);
    if (up === dir) throw new Error('proto directory not found');
    dir = up;
  }
}

interface PeerServiceClient extends grpc.Client {
  Stream(callback: (err: grpc.ServiceError | null, res?: unknown) => void): grpc.ClientWritableStream<unknown>;
  SendSnapshot(callback: (err: grpc.ServiceError | null, res?: { received_bytes: number }) => void): grpc.ClientWritableStream<unknown>;
}

let cached: { service: grpc.ServiceDefinition; Client: new (addr: string, creds: grpc.ChannelCredentials, opts?: object) => PeerServiceClient } | undefined;

function loadPeerService(): NonNullable<typeof cached> {
  if (cached) return cached;
  const def = protoLoader.loadSync(path.join(protoDir(), 'raft', 'peer.proto'), { keepCase: true, longs: Number, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { skiff: { raft: { RaftPeer: grpc.ServiceClientConstructor } } };
  const ctor = pkg.skiff.raft.RaftPeer;
  cached = { service: ctor.service, Client: ctor as unknown as NonNullable<typeof cached>['Client'] };
  return cached;
}

export { decodeMessage, encodeMessage };

interface Route {
  cluster_id: number;
  from: number;
  to: number;
}

class Peer {
  private client: PeerServiceClient | undefined;
  private stream: grpc.ClientWritableStream<unknown> | undefined;
  private queue: Buffer[] = [];
  private reconnectDelayMs: number = transportLimits.reconnectDelayMsMin;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private reportedDown = false;

  constructor(
    private readonly t: GrpcTransport,
    readonly id: NodeId,
    readonly url: string,
  ) {}

  private address(): string {
    const u = new URL(this.url);
    return `${u.hostname === 'localhost' ? '127.0.0.1' : u.hostname}:${u.port}`;
  }

  private getClient(): PeerServiceClient {
    if (!this.client) {
      const { Client } = loadPeerService();
      this.client = new Client(this.address(), this.t.channelCredentials, {
        'grpc.max_send_message_length': transportLimits.grpcMessageBytesMax,
        'grpc.max_receive_message_length': transportLimits.grpcMessageBytesMax,
        'grpc.initial_reconnect_backoff_ms': transportLimits.reconnectDelayMsMin,
        'grpc.max_reconnect_backoff_ms': transportLimits.reconnectDelayMsMax,
        'grpc.keepalive_time_ms': 10_000,
      });
    }
    return this.client;
  }

  enqueue(m: Message): void {
    if (this.closed) return;
    if (this.queue.length >= transportLimits.queuedMessagesMax) {
      this.t.dropped++;
      this.down();
      return;
    }
    this.queue.push(encodeMessage(m));
  }

  private openStream(): grpc.ClientWritableStream<unknown> | undefined {
    if (this.stream) return this.stream;
    if (this.reconnectTimer) return undefined;
    const stream = this.getClient().Stream((err) => {
      if (this.stream === stream) this.stream = undefined;
      if (!this.closed && err) {
        this.t.log.debug({ peer: this.id, err: err.message }, 'peer stream ended');
        this.down();
        // The peer's process is gone or unreachable: the connection dropped or was refused
        // (UNAVAILABLE), or the peer's server reset our stream as it shut down (CANCELLED;
        // this side cancels only in close(), after which nothing is reported).
        if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.CANCELLED) this.t.handler?.reportConnectionLost(this.id);
        this.scheduleReconnect();
      }
    });
    stream.on('error', () => undefined); // reported through the callback
    this.stream = stream;
    return stream;
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer || this.closed) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect();
    }, this.reconnectDelayMs);
    this.reconnectDelayMs = Math.min(this.reconnectDelayMs * 2, transportLimits.reconnectDelayMsMax);
  }

  private down(): void {
    // Messages in flight may be lost: Raft goes back to probing this peer.
    if (!this.reportedDown) {
      this.reportedDown = true;
      this.t.handler?.reportUnreachable(this.id);
    }
  }

  /**
   * Opens the stream without waiting for a message: followers seldom talk to each other,
   * and a pre-vote after the leader died must not wait for a connection to be set up.
   */
  connect(): void {
    if (this.closed) return;
    this.openStream();
    this.flush();
  }

  flush(): void {
    if (this.closed || this.queue.length === 0) return;
    const stream = this.openStream();
    if (!stream) return;
    while (this.queue.length > 0) {
      const messages = this.queue.splice(0, transportLimits.batchMessagesMax);
      const route: Route = { cluster_id: this.t.clusterId, from: this.t.id, to: this.id };
      const ok = stream.write({ messages, route });
      if (!ok) {
        // Back-pressure: wait for the stream to drain before writing more.
        stream.once('drain', () => this.flush());
        return;
      }
    }
    if (this.reportedDown) {
      this.reportedDown = false;
      this.reconnectDelayMs = transportLimits.reconnectDelayMsMin;
    }
  }

  sendSnapshot(m: Message, source: SnapshotSource): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let sent = 0;
      const call = this.getClient().SendSnapshot((err, res) => {
        if (err) {
          this.t.log.warn({ peer: this.id, err: err.message }, 'snapshot stream failed');
          resolve(false);
        } else {
          resolve((res?.received_bytes ?? 0) === sent);
        }
      });
      call.on('error', () => undefined);
      const write = (chunk: unknown): Promise<void> =>
        new Promise((res) => {
          if (call.write(chunk)) res();
          else call.once('drain', () => res());
        });
      void (async () => {
        try {
          const route: Route = { cluster_id: this.t.clusterId, from: this.t.id, to: this.id };
          await write({ header: { route, message: encodeMessage(m), data_bytes: 0 } });
          for await (const c of source.chunks()) {
            sent += c.byteLength;
            await write({ data: Buffer.from(c.buffer, c.byteOffset, c.byteLength) });
          }
          call.end();
        } catch (e) {
          this.t.log.warn({ peer: this.id, err: String(e) }, 'snapshot read failed');
          call.cancel();
        }
      })();
    });
  }

  close(): void {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.stream?.end();
    this.stream = undefined;
    this.client?.close();
    this.queue = [];
  }
}

export interface GrpcTransportOptions {
  id: NodeId;
  clusterId: number;
  /** host:port to listen on for peers. */
  listen: { host: string; port: number };
  peers: Map<NodeId, string>;
  logger?: Logger;
  serverCredentials?: grpc.ServerCredentials;
  channelCredentials?: grpc.ChannelCredentials;
}

export class GrpcTransport implements Transport {
  readonly id: NodeId;
  clusterId: number;
  readonly log: Logger;
  handler: TransportHandler | undefined;
  readonly channelCredentials: grpc.ChannelCredentials;
  private readonly server: grpc.Server;
  private readonly peers = new Map<NodeId, Peer>();
  /** When a batch from each peer last arrived (ms since the epoch). */
  private readonly lastHeardMs = new Map<NodeId, number>();
  private boundPort = 0;
  private started = false;
  /** Messages dropped because a peer's queue was full. */
  dropped = 0;

  constructor(private readonly opts: GrpcTransportOptions) {
    this.id = opts.id;
    this.clusterId = opts.clusterId;
    this.log = opts.logger ?? silentLogger;
    this.channelCredentials = opts.channelCredentials ?? grpc.credentials.createInsecure();
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': transportLimits.grpcMessageBytesMax,
      'grpc.max_send_message_length': transportLimits.grpcMessageBytesMax,
    });
    for (const [id, url] of opts.peers) if (id !== opts.id) this.addPeer(id, url);
  }

  get port(): number {
    return this.boundPort;
  }

  private routeError(route: Route | undefined): string | undefined {
    if (!route) return undefined;
    if (route.cluster_id !== 0 && this.clusterId !== 0 && route.cluster_id !== this.clusterId) return `cluster id mismatch: ${route.cluster_id} != ${this.clusterId}`;
    if (route.to !== 0 && route.to !== this.id) return `member id mismatch: to ${route.to}, this is ${this.id}`;
    return undefined;
  }

  async start(handler: TransportHandler): Promise<void> {
    this.handler = handler;
    const { service } = loadPeerService();
    this.server.addService(service, {
      Stream: (call: grpc.ServerReadableStream<{ messages: Buffer[]; route?: Route }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        let batches = 0;
        let messages = 0;
        let failed = false;
        call.on('data', (batch: { messages: Buffer[]; route?: Route }) => {
          if (failed) return;
          const err = this.routeError(batch.route);
          if (err) {
            failed = true;
            callback({ code: grpc.status.FAILED_PRECONDITION, details: err });
            return;
          }
          batches++;
          if (batch.route && batch.route.from !== 0) this.lastHeardMs.set(batch.route.from, Date.now());
          for (const b of batch.messages) {
            messages++;
            this.handler?.step(decodeMessage(b));
          }
        });
        call.on('end', () => {
          if (!failed) callback(null, { batches, messages });
        });
        call.on('error', () => undefined);
      },
      SendSnapshot: (call: grpc.ServerReadableStream<{ header?: { route?: Route; message: Buffer }; data?: Buffer }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        let received = 0;
        let header: Message | undefined;
        // Chunks are handed to the state machine as they arrive, through a small queue.
        const queue: Buffer[] = [];
        let ended = false;
        let wake: (() => void) | undefined;
        const chunks: AsyncIterable<Uint8Array> = {
          async *[Symbol.asyncIterator]() {
            for (;;) {
              if (queue.length > 0) {
                yield queue.shift()!;
                continue;
              }
              if (ended) return;
              await new Promise<void>((r) => (wake = r));
              wake = undefined;
            }
          },
        };
        let done: Promise<void> | undefined;
        call.on('data', (c: { header?: { route?: Route; message: Buffer }; data?: Buffer }) => {
          if (c.header) {
            const err = this.routeError(c.header.route);
            if (err) {
              callback({ code: grpc.status.FAILED_PRECONDITION, details: err });
              call.destroy();
              return;
            }
            header = decodeMessage(c.header.message);
            done = this.handler!.receiveSnapshot(header, chunks);
          } else if (c.data) {
            received += c.data.length;
            queue.push(c.data);
            wake?.();
          }
        });
        call.on('end', () => {
          ended = true;
          wake?.();
          if (!done) {
            callback({ code: grpc.status.INVALID_ARGUMENT, details: 'snapshot without header' });
            return;
          }
          done.then(
            () => callback(null, { received_bytes: received }),
            (e: unknown) => callback({ code: grpc.status.INTERNAL, details: String(e) }),
          );
        });
        call.on('error', () => {
          ended = true;
          wake?.();
        });
      },
    });
    const creds = this.opts.serverCredentials ?? grpc.ServerCredentials.createInsecure();
    this.boundPort = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`${this.opts.listen.host}:${this.opts.listen.port}`, creds, (err, port) => (err ? reject(err) : resolve(port))),
    );
    this.started = true;
    for (const p of this.peers.values()) p.connect();
  }

  /** Queues the messages and writes each peer's share as one batch right away (one batch per Ready). */
  send(messages: Message[]): void {
    const touched = new Set<Peer>();
    for (const m of messages) {
      const p = this.peers.get(m.to);
      if (!p) continue;
      p.enqueue(m);
      touched.add(p);
    }
    for (const p of touched) p.flush();
  }

  sendSnapshot(m: Message, source: SnapshotSource): Promise<boolean> {
    const p = this.peers.get(m.to);
    if (!p) return Promise.resolve(false);
    return p.sendSnapshot(m, source);
  }

  /** Serves another service on the peer port; call before start(). */
  addService(service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
    this.server.addService(service, implementation);
  }

  /** When traffic from peer `id` last arrived (ms since the epoch), 0 if never (etcd's ActiveSince). */
  heardFromMs(id: NodeId): number {
    return this.lastHeardMs.get(id) ?? 0;
  }

  addPeer(id: NodeId, url: string): void {
    if (id === this.id) return;
    const old = this.peers.get(id);
    if (old && old.url === url) return;
    old?.close();
    const p = new Peer(this, id, url);
    this.peers.set(id, p);
    if (this.started) p.connect();
  }

  removePeer(id: NodeId): void {
    this.peers.get(id)?.close();
    this.peers.delete(id);
    this.lastHeardMs.delete(id);
  }

  /** Ids of the peers messages are sent to. */
  peerIds(): NodeId[] {
    return [...this.peers.keys()];
  }

  async stop(): Promise<void> {
    for (const p of this.peers.values()) p.close();
    this.peers.clear();
    // Peers' streams into this member never end on their own: no grace period.
    this.server.forceShutdown();
  }
}
