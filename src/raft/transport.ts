// How a Raft node talks to its peers. The TCP implementation is in tcp-transport.ts; the
// local one below connects nodes of one process (tests).

import { Message, NodeId, SnapshotMetadata } from './types';

/** What the node gives the transport to deliver what it receives. */
export interface TransportHandler {
  /** A message from a peer. */
  step(m: Message): void;
  /** A snapshot from the leader: `m` is its MsgSnap (metadata only), `chunks` the state. */
  receiveSnapshot(m: Message, chunks: AsyncIterable<Uint8Array>): Promise<void>;
  /** The transport lost its connection to a peer (messages may have been dropped). */
  reportUnreachable(id: NodeId): void;
  /**
   * The connection to a peer broke: a connection error or a refused reconnect, not an idle
   * stream ending. A follower of that peer may then start a pre-vote at once.
   */
  reportConnectionLost(id: NodeId): void;
}

export interface SnapshotSource {
  metadata: SnapshotMetadata;
  chunks(): AsyncIterable<Uint8Array>;
  /** Releases the point-in-time view. */
  close(): void;
}

export interface Transport {
  start(handler: TransportHandler): Promise<void>;
  /** Queues messages for their peers; never blocks, may drop under back-pressure. */
  send(messages: Message[]): void;
  /** Streams a snapshot to m.to; resolves true once the peer has received all of it. */
  sendSnapshot(m: Message, source: SnapshotSource): Promise<boolean>;
  addPeer(id: NodeId, url: string): void;
  removePeer(id: NodeId): void;
  stop(): Promise<void>;
}

/** Nodes of one process, for tests: messages are delivered asynchronously, in order per pair. */
export class LocalHub {
  private readonly handlers = new Map<NodeId, TransportHandler>();
  /** Pairs `from-to` whose messages are dropped. */
  readonly cut = new Set<string>();

  transport(id: NodeId): Transport {
    const hub = this;
    return {
      async start(handler) {
        hub.handlers.set(id, handler);
      },
      send(messages) {
        for (const m of messages) {
          if (hub.cut.has(`${m.from}-${m.to}`)) continue;
          setImmediate(() => hub.handlers.get(m.to)?.step(m));
        }
      },
      async sendSnapshot(m, source) {
        const h = hub.handlers.get(m.to);
        if (!h || hub.cut.has(`${m.from}-${m.to}`)) return false;
        await h.receiveSnapshot(m, source.chunks());
        return true;
      },
      addPeer() {},
      removePeer() {},
      async stop() {
        hub.handlers.delete(id);
      },
    };
  }

  isolate(id: NodeId, ids: NodeId[]): void {
    for (const o of ids) {
      if (o === id) continue;
      this.cut.add(`${id}-${o}`);
      this.cut.add(`${o}-${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }
}
