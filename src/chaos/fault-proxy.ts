// The fault-injecting network between members: for each member a TCP proxy on 127.0.0.1
// that its peers reach it through (its advertised peer URL is the proxy's port; it listens
// on its own port behind it). The proxy finds which member opened each connection (see
// socket-owner.ts), and applies the rule of each directed pair to the bytes going that way:
//
//   pass   bytes go through;
//   delay  each chunk is held delayMs (+ up to jitterMs) before it goes on, order kept;
//   drop   nothing goes through: bytes wait, unread, as behind a link that loses every
//          packet while TCP keeps retransmitting; when the rule is lifted they go on;
//   cut    connections between the pair are reset, and new ones refused.
//
// A connection carries both directions (requests one way, answers the other), so a rule on
// a->b applies to the a->b bytes of every connection between a and b, whoever opened it.

import * as net from 'node:net';
import { connectionOwner } from './socket-owner';

export type LinkRule = { kind: 'pass' } | { kind: 'delay'; delayMs: number; jitterMs: number } | { kind: 'drop' } | { kind: 'cut' };

const PASS: LinkRule = Object.freeze({ kind: 'pass' });

export const proxyLimits = Object.freeze({
  /** Attempts to find a connection's owner before it is refused. */
  ownerLookupAttempts: 4,
  ownerLookupRetryMs: 25,
  /** Bytes held per direction of one connection (delayed or dropped) before reading stops. */
  heldBytesMax: 4 * 1024 * 1024,
});

function pairKey(from: number, to: number): string {
  return `${from}>${to}`;
}

/** One direction of one connection. */
class Pipe {
  private queue: { chunk: Buffer; releaseAtMs: number }[] = [];
  private heldBytes = 0;
  private lastReleaseAtMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingDrain = false;

  constructor(
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
    private readonly rule: () => LinkRule,
  ) {
    src.on('data', (chunk: Buffer) => this.push(chunk));
  }

  private push(chunk: Buffer): void {
    const r = this.rule();
    let releaseAtMs = 0;
    if (r.kind === 'delay') releaseAtMs = Math.max(this.lastReleaseAtMs, Date.now() + r.delayMs + Math.floor(Math.random() * (r.jitterMs + 1)));
    this.lastReleaseAtMs = releaseAtMs;
    this.queue.push({ chunk, releaseAtMs });
    this.heldBytes += chunk.length;
    this.flush();
  }

  /** Writes what the rule lets through now; pauses reading while too much is held. */
  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const r = this.rule();
    if (r.kind === 'cut') return;
    if (r.kind !== 'drop') {
      while (this.queue.length > 0 && !this.waitingDrain) {
        const head = this.queue[0];
        const wait = head.releaseAtMs - Date.now();
        if (wait > 0) {
          this.timer = setTimeout(() => this.flush(), wait);
          break;
        }
        this.queue.shift();
        this.heldBytes -= head.chunk.length;
        if (this.dst.destroyed) return;
        if (!this.dst.write(head.chunk)) {
          this.waitingDrain = true;
          this.dst.once('drain', () => {
            this.waitingDrain = false;
            this.flush();
          });
        }
      }
    }
    const stop = r.kind === 'drop' || this.heldBytes > proxyLimits.heldBytesMax || this.waitingDrain;
    if (stop && !this.src.isPaused()) this.src.pause();
    else if (!stop && this.src.isPaused()) this.src.resume();
  }

  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.queue = [];
  }
}

class ProxiedConnection {
  private readonly pipes: Pipe[];

  constructor(
    readonly from: number,
    readonly to: number,
    private readonly client: net.Socket,
    private readonly upstream: net.Socket,
    network: FaultNetwork,
  ) {
    this.pipes = [new Pipe(client, upstream, () => network.rule(from, to)), new Pipe(upstream, client, () => network.rule(to, from))];
    // The client socket starts paused (pauseOnConnect): the rules decide when it reads.
    for (const p of this.pipes) p.flush();
  }

  /** The rules changed: cut, or let held bytes go on. */
  reapply(cut: boolean): void {
    if (cut) {
      this.destroy();
      return;
    }
    for (const p of this.pipes) p.flush();
  }

  destroy(): void {
    for (const p of this.pipes) p.dispose();
    for (const s of [this.client, this.upstream]) {
      if (s.destroyed) continue;
      if (typeof s.resetAndDestroy === 'function' && s.readyState === 'open') s.resetAndDestroy();
      else s.destroy();
    }
  }
}

interface MemberProxy {
  member: number;
  server: net.Server;
  port: number;
  targetPort: number;
}

export interface FaultNetworkStats {
  connections: number;
  refused: number;
  unidentified: number;
}

export class FaultNetwork {
  private readonly rules = new Map<string, LinkRule>();
  private readonly proxies = new Map<number, MemberProxy>();
  private readonly pids = new Map<number, number>();
  private readonly conns = new Set<ProxiedConnection>();
  private closed = false;
  readonly stats: FaultNetworkStats = { connections: 0, refused: 0, unidentified: 0 };

  constructor(private readonly log: (line: string) => void = () => {}) {}

  /** The member a process runs (for telling who opened a connection). */
  setPid(member: number, pid: number | undefined): void {
    for (const [p, m] of this.pids) if (m === member) this.pids.delete(p);
    if (pid !== undefined) this.pids.set(pid, member);
  }

  /** Starts the proxy in front of a member's peer port; returns the port peers use. */
  async addProxy(member: number, targetPort: number, port = 0): Promise<number> {
    const server = net.createServer({ pauseOnConnect: true }, (socket) => void this.accept(member, socket));
    server.on('error', (e) => this.log(`proxy for member ${member}: ${String(e)}`));
    const bound = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
    });
    this.proxies.set(member, { member, server, port: bound, targetPort });
    return bound;
  }

  proxyPort(member: number): number {
    const p = this.proxies.get(member);
    if (p === undefined) throw new Error(`no proxy for member ${member}`);
    return p.port;
  }

  rule(from: number, to: number): LinkRule {
    return this.rules.get(pairKey(from, to)) ?? PASS;
  }

  /** Sets the rule of one directed pair and applies it to the connections open now. */
  setRule(from: number, to: number, rule: LinkRule): void {
    if (rule.kind === 'pass') this.rules.delete(pairKey(from, to));
    else this.rules.set(pairKey(from, to), rule);
    this.reapply();
  }

  /** Both directions between every two members in different groups get `rule`. */
  partition(groups: readonly (readonly number[])[], rule: LinkRule): void {
    for (let g = 0; g < groups.length; g++) {
      for (let h = 0; h < groups.length; h++) {
        if (g === h) continue;
        for (const a of groups[g]) for (const b of groups[h]) this.rules.set(pairKey(a, b), rule);
      }
    }
    this.reapply();
  }

  /** Every pair back to pass. */
  heal(): void {
    this.rules.clear();
    this.reapply();
  }

  describeRules(): string {
    return [...this.rules].map(([k, r]) => `${k}:${r.kind}${r.kind === 'delay' ? `(${r.delayMs}ms)` : ''}`).join(' ') || 'none';
  }

  private isCut(a: number, b: number): boolean {
    return this.rule(a, b).kind === 'cut' || this.rule(b, a).kind === 'cut';
  }

  private reapply(): void {
    for (const c of [...this.conns]) c.reapply(this.isCut(c.from, c.to));
  }

  private async accept(to: number, client: net.Socket): Promise<void> {
    client.on('error', () => {});
    const proxy = this.proxies.get(to);
    const peerPort = client.remotePort;
    if (proxy === undefined || peerPort === undefined || this.closed) {
      client.destroy();
      return;
    }
    let from: number | undefined;
    for (let attempt = 0; attempt < proxyLimits.ownerLookupAttempts && from === undefined; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, proxyLimits.ownerLookupRetryMs));
      from = await connectionOwner(peerPort, proxy.port, this.pids);
    }
    if (from === undefined) {
      this.stats.unidentified++;
      client.destroy();
      return;
    }
    if (this.isCut(from, to) || this.closed) {
      this.stats.refused++;
      client.destroy();
      return;
    }
    const upstream = net.connect({ host: '127.0.0.1', port: proxy.targetPort });
    upstream.on('error', () => {});
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    const conn = new ProxiedConnection(from, to, client, upstream, this);
    this.conns.add(conn);
    this.stats.connections++;
    const end = (): void => {
      if (!this.conns.delete(conn)) return;
      conn.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    upstream.once('connect', () => conn.reapply(this.isCut(from as number, to)));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of [...this.conns]) c.destroy();
    this.conns.clear();
    await Promise.all([...this.proxies.values()].map((p) => new Promise<void>((r) => p.server.close(() => r()))));
    this.proxies.clear();
  }
}
