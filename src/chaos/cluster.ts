// The cluster under test: `skiff store` or Debian's etcd, one process per member, each with
// its own data directory, started with etcd's flags. Every member's advertised peer URL is
// its fault proxy's port (the same in every member's --initial-cluster); it listens on its
// own peer port behind the proxy. Clients reach members directly.
//
// Every process is started so it can be stopped by pid: stopAll() at the end, and
// killAllNow() (synchronous) from exit and signal handlers.

import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FaultNetwork } from './fault-proxy';
import { memberProcess, repoRoot } from '../cli/member-process';
import { CHAOS_PORTS, portPicker } from './ports';

export type StoreKind = 'skiff' | 'etcd';

export interface ChaosMember {
  index: number;
  name: string;
  clientPort: number;
  peerPort: number;
  proxyPort: number;
  metricsPort: number;
  dataDir: string;
  logFile: string;
  proc: ChildProcess | undefined;
  paused: boolean;
  /** Exits the harness caused (kill) or expected (a removed etcd member stops itself). */
  expectExit: boolean;
  /** How it joined: a member added back (MemberAdd) is always started 'existing' after that. */
  joinState?: 'new' | 'existing';
}

/**
 * The --initial-cluster-state of a start: the one asked for, else the one the member last
 * joined with. A member wiped and added back must never start 'new': killed before it wrote
 * anything, it would bootstrap a second cluster from the initial member list (same cluster
 * id) on empty data, and a few such members make a quorum of their own.
 */
export function startState(m: Pick<ChaosMember, 'joinState'>, requested?: 'new' | 'existing'): 'new' | 'existing' {
  if (requested !== undefined) m.joinState = requested;
  return m.joinState ?? 'new';
}

export interface ClusterOptions {
  kind: StoreKind;
  nodes: number;
  dir: string;
  heartbeatMs: number;
  electionMs: number;
  network: FaultNetwork;
  log: (line: string) => void;
  /** Extra flags for every member. */
  flags?: string[];
}

export interface UnexpectedExit {
  member: string;
  atMs: number;
  code: number | null;
  signal: string | null;
  logTail: string;
}

export { repoRoot };

/** Ports for members and proxies (ports.ts). */
export const portRange = CHAOS_PORTS;
export const freePort = portPicker(CHAOS_PORTS);

/** Every pid any cluster started and has not seen exit (for the exit handlers). */
const livePids = new Set<number>();

/** Sends SIGKILL to every member process still alive (synchronous: for exit and signal handlers). */
export function killAllNow(): void {
  for (const pid of livePids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  livePids.clear();
}

export class ChaosCluster {
  readonly members: ChaosMember[] = [];
  readonly unexpectedExits: UnexpectedExit[] = [];

  private constructor(readonly o: ClusterOptions) {}

  static async start(o: ClusterOptions): Promise<ChaosCluster> {
    const c = new ChaosCluster(o);
    fs.mkdirSync(o.dir, { recursive: true });
    for (let i = 0; i < o.nodes; i++) {
      const name = `m${i + 1}`;
      const peerPort = await freePort();
      const m: ChaosMember = {
        index: i,
        name,
        clientPort: await freePort(),
        peerPort,
        proxyPort: await o.network.addProxy(i, peerPort, await freePort()),
        metricsPort: await freePort(),
        dataDir: path.join(o.dir, name),
        logFile: path.join(o.dir, `${name}.log`),
        proc: undefined,
        paused: false,
        expectExit: false,
      };
      c.members.push(m);
    }
    for (let i = 0; i < o.nodes; i++) c.spawn(i, 'new');
    return c;
  }

  get kind(): StoreKind {
    return this.o.kind;
  }

  address(i: number): string {
    return `127.0.0.1:${this.members[i].clientPort}`;
  }

  peerUrl(i: number): string {
    return `http://127.0.0.1:${this.members[i].proxyPort}`;
  }

  initialCluster(): string {
    return this.members.map((m, i) => `${m.name}=${this.peerUrl(i)}`).join(',');
  }

  private args(i: number, state: 'new' | 'existing'): string[] {
    const m = this.members[i];
    return [
      `--name=${m.name}`,
      `--data-dir=${m.dataDir}`,
      `--listen-client-urls=http://127.0.0.1:${m.clientPort}`,
      `--advertise-client-urls=http://127.0.0.1:${m.clientPort}`,
      `--listen-peer-urls=http://127.0.0.1:${m.peerPort}`,
      `--initial-advertise-peer-urls=${this.peerUrl(i)}`,
      `--initial-cluster=${this.initialCluster()}`,
      `--initial-cluster-state=${state}`,
      `--initial-cluster-token=chaos-${path.basename(this.o.dir)}`,
      `--listen-metrics-urls=http://127.0.0.1:${m.metricsPort}`,
      `--heartbeat-interval=${this.o.heartbeatMs}`,
      `--election-timeout=${this.o.electionMs}`,
      ...(this.o.flags ?? []),
    ];
  }

  /** Starts member i's process (on its existing data unless the data dir was wiped). */
  spawn(i: number, requested?: 'new' | 'existing'): void {
    const m = this.members[i];
    const state = startState(m, requested);
    if (m.proc !== undefined) throw new Error(`member ${m.name} already runs (pid ${m.proc.pid})`);
    const out = fs.openSync(m.logFile, 'a');
    fs.writeSync(out, `\n==== chaos: start ${m.name} (${state}) at ${new Date().toISOString()}\n`);
    const args = this.args(i, state);
    const launch = this.o.kind === 'skiff' ? memberProcess(args) : { command: 'etcd', args, env: process.env };
    const proc = spawn(launch.command, launch.args, { stdio: ['ignore', out, out], env: launch.env });
    fs.closeSync(out);
    m.proc = proc;
    m.paused = false;
    m.expectExit = false;
    const pid = proc.pid;
    if (pid !== undefined) livePids.add(pid);
    this.o.network.setPid(i, pid);
    proc.on('exit', (code, signal) => {
      if (pid !== undefined) livePids.delete(pid);
      if (m.proc === proc) {
        m.proc = undefined;
        this.o.network.setPid(i, undefined);
        if (!m.expectExit) {
          const tail = this.logTail(i, 2000);
          this.unexpectedExits.push({ member: m.name, atMs: performance.now(), code, signal, logTail: tail });
          this.o.log(`member ${m.name} exited by itself (code ${code}, signal ${signal}); log tail:\n${tail}`);
        }
      }
    });
  }

  isRunning(i: number): boolean {
    return this.members[i].proc !== undefined;
  }

  /** Running and not paused. */
  isUp(i: number): boolean {
    return this.members[i].proc !== undefined && !this.members[i].paused;
  }

  pid(i: number): number | undefined {
    return this.members[i].proc?.pid;
  }

  /** kill -9, and waits for the exit. */
  async kill(i: number): Promise<void> {
    const m = this.members[i];
    const p = m.proc;
    if (p === undefined) return;
    m.expectExit = true;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGKILL');
    await exited;
    m.paused = false;
  }

  pause(i: number): void {
    const m = this.members[i];
    if (m.proc === undefined || m.paused) return;
    m.proc.kill('SIGSTOP');
    m.paused = true;
  }

  resume(i: number): void {
    const m = this.members[i];
    if (m.proc === undefined || !m.paused) return;
    m.proc.kill('SIGCONT');
    m.paused = false;
  }

  /** The member's data is gone (before it joins again as a new member). */
  wipe(i: number): void {
    fs.rmSync(this.members[i].dataDir, { recursive: true, force: true });
  }

  /** The member is removed from the cluster: an etcd member stops by itself then. */
  expectExit(i: number): void {
    this.members[i].expectExit = true;
  }

  /** Whether member i answers /health with 200 (etcd and skiff: a leader is known). */
  async healthy(i: number, timeoutMs = 1000): Promise<boolean> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.members[i].metricsPort}/health`, { signal: AbortSignal.timeout(timeoutMs) });
      await res.text();
      return res.status === 200;
    } catch {
      return false;
    }
  }

  /** Waits until every running member is healthy; false on timeout. */
  async waitHealthy(timeoutMs: number, which: readonly number[] = this.members.map((_, i) => i)): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    for (const i of which) {
      while (this.isRunning(i) && !(await this.healthy(i))) {
        if (performance.now() > deadline) return false;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    return true;
  }

  logTail(i: number, bytes: number): string {
    try {
      const text = fs.readFileSync(this.members[i].logFile, 'utf8');
      return text.slice(-bytes);
    } catch {
      return '';
    }
  }

  /** Stops every member: SIGCONT if paused, then SIGKILL; waits for the exits. */
  async stopAll(): Promise<void> {
    await Promise.all(
      this.members.map(async (m, i) => {
        if (m.proc === undefined) return;
        if (m.paused) this.resume(i);
        await this.kill(i);
      }),
    );
  }
}
