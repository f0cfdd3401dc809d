// The peer transport: Raft messages and snapshots over plain TCP (TLS for https peer URLs)
// in the framing of peer-wire.ts. One long-lived connection to each peer carries its
// messages; each snapshot gets a connection of its own. The peer port is shared with a
// gRPC server (src/grpc/server.ts) for the services members ask each other over it.
//
// Messages queued during one turn of the event loop go out in one socket write per peer. A peer whose socket
// does not drain is dropped from (Raft probes it again and retransmits), and a connection
// that breaks is reported so that a follower of that peer may start a pre-vote at once.

import * as net from 'node:net';
import * as tls from 'node:tls';
import { GrpcServer } from '../grpc/server';
import type { MethodDefinition } from '../grpc/server';
import { Emitter } from './event';
import { decodeMessage, encodeMessage } from './message-codec';
import {
  decodeAck,
  decodeHello,
  decodeRefusal,
  encodeAck,
  encodeHello,
  encodeRefusal,
  frame,
  FrameKind,
  frameHeader,
  FrameReader,
  Hello,
  PREFACE,
  Purpose,
  RefusalCode,
} from './peer-wire';
import { Logger, silentLogger } from './raft-node';
import { SnapshotSource, Transport, TransportHandler } from './transport';
import { Message, NodeId } from './types';

export const transportLimits = Object.freeze({
  /** Messages waiting for a connection to one peer before new ones are dropped (Raft retransmits). */
  queuedMessagesMax: 8192,
  /** Bytes written to one peer's socket and not yet sent before new messages are dropped. */
  unsentBytesMax: 16 * 1024 * 1024,
  /** The largest frame accepted (a message with many entries, a snapshot piece). */
  frameBytesMax: 64 * 1024 * 1024,
  /** Snapshot pieces received and not yet taken by the state machine before reading pauses. */
  snapshotChunksQueuedMax: 16,
  /** A connection attempt that has not completed by then is given up. */
  connectTimeoutMs: 5000,
  /** An accepted connection that has not said who it is by then is closed. */
  helloTimeoutMs: 10_000,
  reconnectDelayMsMin: 50,
  reconnectDelayMsMax: 1000,
  keepAliveMs: 10_000,
});

/** etcd's words, logged by a member its peers refuse because it was removed. */
export const removedMemberReason = 'the member has been permanently removed from the cluster';

function address(url: string): { host: string; port: number; secure: boolean } {
  const u = new URL(url);
  return { host: u.hostname === 'localhost' ? '127.0.0.1' : u.hostname, port: Number(u.port), secure: u.protocol === 'https:' };
}

/** A connection this member opened: TCP, or TLS for https peers. */
function dial(url: string, tlsOptions: tls.ConnectionOptions | undefined): net.Socket {
  const a = address(url);
  const socket = a.secure ? tls.connect({ ...tlsOptions, host: a.host, port: a.port, servername: net.isIP(a.host) ? undefined : a.host }) : net.connect({ host: a.host, port: a.port });
  socket.setNoDelay(true);
  socket.setKeepAlive(true, transportLimits.keepAliveMs);
  return socket;
}

/** The event that says the connection is up: 'secureConnect' for TLS, 'connect' otherwise. */
function connectEvent(socket: net.Socket): string {
  return socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect';
}

class Peer {
  private socket: net.Socket | undefined;
  private connected = false;
  /** Encoded messages (frame header and body) waiting for the connection. */
  private queue: Buffer[] = [];
  private queuedMessages = 0;
  private reconnectDelayMs: number = transportLimits.reconnectDelayMsMin;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private reportedDown = false;

  constructor(
    private readonly t: TcpTransport,
    readonly id: NodeId,
    readonly url: string,
  ) {}

  enqueue(m: Message): void {
    if (this.closed) return;
    if (this.queuedMessages >= transportLimits.queuedMessagesMax) {
      this.t.dropped++;
      this.down();
      return;
    }
    const body = encodeMessage(m);
    this.queue.push(frameHeader(FrameKind.Msg, body.length), body);
    this.queuedMessages++;
  }

  /** Opens the connection without waiting for a message: a pre-vote after the leader died must not wait for one. */
  connect(): void {
    if (this.closed || this.socket !== undefined || this.reconnectTimer !== undefined) return;
    const socket = dial(this.url, this.t.clientTls);
    this.socket = socket;
    const timer = setTimeout(() => socket.destroy(new Error('connect timeout')), transportLimits.connectTimeoutMs);
    timer.unref();
    let refused: { code: RefusalCode; reason: string } | undefined;
    let broken = false;
    socket.once(connectEvent(socket), () => {
      clearTimeout(timer);
      if (this.socket !== socket) return;
      this.connected = true;
      socket.write(Buffer.concat([PREFACE, encodeHello({ purpose: Purpose.Messages, clusterId: this.t.clusterId, from: this.t.id, to: this.id })]));
      this.flush();
    });
    const reader = new FrameReader(transportLimits.frameBytesMax, (kind, payload) => {
      if (kind === FrameKind.Error) refused = decodeRefusal(payload);
      else socket.destroy(new Error(`unexpected frame ${kind} on a messages connection`));
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (e) {
        socket.destroy(e as Error);
      }
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      broken = true;
      this.t.log.debug({ peer: this.id, err: e.message }, 'peer connection failed');
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.connected = false;
      if (this.closed) return;
      this.down();
      if (refused !== undefined) {
        this.t.log.warn({ peer: this.id, reason: refused.reason }, 'peer refused the connection');
        if (refused.code === RefusalCode.Removed) this.t.onRemoved.fire(refused.reason);
      } else {
        // Refused, reset, or ended by the other side: its process is gone or unreachable.
        this.t.log.debug({ peer: this.id, failed: broken }, 'peer connection lost');
        this.t.handler?.reportConnectionLost(this.id);
      }
      this.scheduleReconnect();
    });
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

  /** Writes what is queued as one write, if connected; drops it if the socket is not draining. */
  flush(): void {
    if (this.closed || this.queue.length === 0) return;
    const socket = this.socket;
    if (socket === undefined || !this.connected) {
      this.connect();
      return;
    }
    const parts = this.queue;
    this.queue = [];
    this.queuedMessages = 0;
    if (socket.writableLength > transportLimits.unsentBytesMax) {
      this.t.dropped += parts.length / 2;
      this.down();
      return;
    }
    socket.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    if (this.reportedDown) {
      this.reportedDown = false;
      this.reconnectDelayMs = transportLimits.reconnectDelayMsMin;
    }
  }

  /** Streams a snapshot on a connection of its own; resolves true once the peer took all of it in. */
  sendSnapshot(m: Message, source: SnapshotSource): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const socket = dial(this.url, this.t.clientTls);
      this.t.snapshotSockets.add(socket);
      let sent = 0;
      let result = false;
      const reader = new FrameReader(transportLimits.frameBytesMax, (kind, payload) => {
        if (kind === FrameKind.Ack) result = decodeAck(payload) === sent;
        else if (kind === FrameKind.Error) this.t.log.warn({ peer: this.id, reason: decodeRefusal(payload).reason }, 'peer refused the snapshot');
        socket.end();
      });
      socket.on('data', (chunk: Buffer) => {
        try {
          reader.push(chunk);
        } catch (e) {
          socket.destroy(e as Error);
        }
      });
      socket.on('error', (e) => this.t.log.warn({ peer: this.id, err: e.message }, 'snapshot connection failed'));
      socket.on('close', () => {
        this.t.snapshotSockets.delete(socket);
        resolve(result);
      });
      const write = (b: Buffer): Promise<void> =>
        new Promise((res, rej) => {
          if (socket.destroyed) {
            rej(new Error('snapshot connection closed'));
            return;
          }
          if (socket.write(b)) res();
          else {
            const onDrain = (): void => {
              socket.off('close', onClose);
              res();
            };
            const onClose = (): void => {
              socket.off('drain', onDrain);
              rej(new Error('snapshot connection closed'));
            };
            socket.once('drain', onDrain);
            socket.once('close', onClose);
          }
        });
      socket.once(connectEvent(socket), () => {
        void (async () => {
          try {
            await write(Buffer.concat([PREFACE, encodeHello({ purpose: Purpose.Snapshot, clusterId: this.t.clusterId, from: this.t.id, to: this.id }), frame(FrameKind.Snap, encodeMessage(m))]));
            for await (const c of source.chunks()) {
              sent += c.byteLength;
              await write(frame(FrameKind.Data, c));
            }
            await write(frame(FrameKind.End));
          } catch (e) {
            this.t.log.warn({ peer: this.id, err: String(e) }, 'sending the snapshot failed');
            socket.destroy();
          }
        })();
      });
    });
  }

  close(): void {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.socket?.destroy();
    this.socket = undefined;
    this.queue = [];
    this.queuedMessages = 0;
  }
}

export interface TcpTransportOptions {
  id: NodeId;
  clusterId: number;
  /** host:port to listen on for peers. */
  listen: { host: string; port: number };
  peers: Map<NodeId, string>;
  logger?: Logger;
  /** TLS for the listener (https peer URLs). */
  serverTls?: tls.TlsOptions;
  /** TLS for connections to https peers: CA to verify them, this member's certificate. */
  clientTls?: tls.ConnectionOptions;
  /** Whether a member id was removed from the cluster: its connections are refused. */
  isRemoved?: (id: NodeId) => boolean;
  /** An accepted connection that has not sent HELLO by then is closed (default transportLimits.helloTimeoutMs). */
  helloTimeoutMs?: number;
}

export class TcpTransport implements Transport {
  readonly id: NodeId;
  clusterId: number;
  readonly log: Logger;
  handler: TransportHandler | undefined;
  readonly clientTls: tls.ConnectionOptions | undefined;
  /** Fired when a peer refuses this member because it was removed from the cluster. */
  readonly onRemoved = new Emitter<string>();
  readonly snapshotSockets = new Set<net.Socket>();
  private readonly server: GrpcServer;
  private readonly peers = new Map<NodeId, Peer>();
  /** When traffic from each peer last arrived (ms since the epoch). */
  private readonly lastHeardMs = new Map<NodeId, number>();
  private boundPort = 0;
  private started = false;
  /** Messages dropped because a peer was not keeping up or not connected. */
  dropped = 0;

  constructor(private readonly opts: TcpTransportOptions) {
    this.id = opts.id;
    this.clusterId = opts.clusterId;
    this.log = opts.logger ?? silentLogger;
    this.clientTls = opts.clientTls;
    this.server = new GrpcServer({
      maxReceiveMessageLength: 4 * 1024 * 1024,
      raw: { preface: PREFACE, accept: (socket, head) => this.accept(socket, head) },
      onError: (e) => this.log.warn({ err: String(e) }, 'peer port error'),
    });
    for (const [id, url] of opts.peers) if (id !== opts.id) this.addPeer(id, url);
  }

  get port(): number {
    return this.boundPort;
  }

  /** Serves a gRPC service on the peer port (a grpc-js service definition); call before start(). */
  addService(service: Record<string, MethodDefinition>, implementation: Record<string, unknown>): void {
    this.server.addService(service, implementation);
  }

  async start(handler: TransportHandler): Promise<void> {
    this.handler = handler;
    this.boundPort = await this.server.listen(this.opts.listen.host, this.opts.listen.port, this.opts.serverTls);
    this.started = true;
    for (const p of this.peers.values()) p.connect();
  }

  private refusal(h: Hello): Buffer | undefined {
    if (h.clusterId !== 0 && this.clusterId !== 0 && h.clusterId !== this.clusterId) return encodeRefusal(RefusalCode.Mismatch, `cluster id mismatch: ${h.clusterId} != ${this.clusterId}`);
    if (h.to !== 0 && h.to !== this.id) return encodeRefusal(RefusalCode.Mismatch, `member id mismatch: to ${h.to}, this is ${this.id}`);
    if (this.opts.isRemoved?.(h.from)) {
      this.log.warn({ from: h.from }, 'rejected a connection from a removed member');
      return encodeRefusal(RefusalCode.Removed, removedMemberReason);
    }
    return undefined;
  }

  /** A peer's connection, after the preface: HELLO, then messages or one snapshot. */
  private accept(socket: net.Socket, head: Buffer): void {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, transportLimits.keepAliveMs);
    let hello: Hello | undefined;
    let snapshot: InboundSnapshot | undefined;
    const helloTimer = setTimeout(() => {
      if (hello === undefined) socket.destroy();
    }, this.opts.helloTimeoutMs ?? transportLimits.helloTimeoutMs);
    helloTimer.unref();
    const refuse = (b: Buffer): void => {
      socket.end(b);
      hello = undefined;
    };
    const reader = new FrameReader(transportLimits.frameBytesMax, (kind, payload) => {
      if (socket.writableEnded) return;
      if (hello === undefined) {
        if (kind !== FrameKind.Hello) return refuse(encodeRefusal(RefusalCode.Protocol, `expected HELLO, got frame ${kind}`));
        hello = decodeHello(payload);
        const r = this.refusal(hello);
        if (r !== undefined) return refuse(r);
        if (hello.purpose === Purpose.Snapshot) snapshot = new InboundSnapshot(socket);
        return;
      }
      this.lastHeardMs.set(hello.from, Date.now());
      if (hello.purpose === Purpose.Messages) {
        if (kind !== FrameKind.Msg) return refuse(encodeRefusal(RefusalCode.Protocol, `unexpected frame ${kind} on a messages connection`));
        this.handler?.step(decodeMessage(payload));
        return;
      }
      const s = snapshot!;
      if (kind === FrameKind.Snap && s.done === undefined) {
        s.done = this.handler!.receiveSnapshot(decodeMessage(payload), s.chunks());
        s.done.then(
          () => socket.end(encodeAck(s.received)),
          (e: unknown) => {
            this.log.warn({ from: hello?.from, err: String(e) }, 'taking in a snapshot failed');
            refuse(encodeRefusal(RefusalCode.Snapshot, String(e)));
          },
        );
      } else if (kind === FrameKind.Data && s.done !== undefined) {
        s.push(payload);
      } else if (kind === FrameKind.End && s.done !== undefined) {
        s.end();
      } else {
        refuse(encodeRefusal(RefusalCode.Protocol, `unexpected frame ${kind} on a snapshot connection`));
      }
    });
    const onData = (chunk: Buffer): void => {
      try {
        reader.push(chunk);
      } catch (e) {
        this.log.warn({ err: String(e) }, 'bad peer frame; closing the connection');
        socket.destroy();
      }
    };
    socket.on('data', onData);
    socket.on('close', () => {
      clearTimeout(helloTimer);
      snapshot?.abort();
    });
    onData(head.subarray(PREFACE.length));
  }

  /**
   * Writes the messages at once, each peer's share in one write. The node sends one Ready's
   * messages per call, right before it writes its own log (on this thread), so they must not
   * wait for the end of the turn: followers would start their fsync after the leader's.
   */
  send(messages: Message[]): void {
    const to = new Set<Peer>();
    for (const m of messages) {
      const p = this.peers.get(m.to);
      if (!p) continue;
      p.enqueue(m);
      to.add(p);
    }
    for (const p of to) p.flush();
  }

  sendSnapshot(m: Message, source: SnapshotSource): Promise<boolean> {
    const p = this.peers.get(m.to);
    if (!p) return Promise.resolve(false);
    return p.sendSnapshot(m, source);
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
    for (const s of this.snapshotSockets) s.destroy();
    // Peers' connections into this member never end on their own: no grace period.
    this.server.forceShutdown();
  }
}

/** A snapshot being received: its pieces go to the state machine as they arrive, with back-pressure. */
class InboundSnapshot {
  done: Promise<void> | undefined;
  received = 0;
  ended = false;
  private readonly queue: Buffer[] = [];
  private failed: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly socket: net.Socket) {}

  push(b: Buffer): void {
    this.received += b.length;
    this.queue.push(b);
    if (this.queue.length >= transportLimits.snapshotChunksQueuedMax) this.socket.pause();
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  /** The connection closed: a snapshot not yet complete fails instead of being taken in short. */
  abort(): void {
    if (!this.ended) this.failed = new Error('snapshot connection closed before the end of the data');
    this.wake?.();
  }

  async *chunks(): AsyncGenerator<Uint8Array> {
    for (;;) {
      if (this.queue.length > 0) {
        const b = this.queue.shift()!;
        if (this.queue.length < transportLimits.snapshotChunksQueuedMax / 2) this.socket.resume();
        yield b;
        continue;
      }
      if (this.ended) return;
      if (this.failed) throw this.failed;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }
}
