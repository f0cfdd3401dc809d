// Real store processes for integration and compatibility tests: a cluster of `skiff store`
// (or Debian's `etcd`, same flags) on 127.0.0.1 with free ports and temporary data
// directories. Every process is started so it can be stopped by pid, and stop() ends them
// all; call it in afterAll even when a test failed.

import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { portPicker, testPorts } from '../../src/chaos/ports';

import { memberProcess, repoRoot, skiffBin } from '../../src/cli/member-process';

export { repoRoot, skiffBin };

export type StoreKind = 'skiff' | 'etcd';

/** A free port for a member (below the ephemeral range; this jest worker's own slice). */
export const freePort = portPicker(testPorts());

/** Whether a program is on PATH. */
export function hasProgram(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * For tests that need a tool (etcd, etcdctl): in CI a missing tool fails the test with a
 * clear message; elsewhere the caller may skip. Returns whether the tool is there.
 */
export function requireTool(name: string, installHint: string): boolean {
  if (hasProgram(name)) return true;
  if (process.env.CI === 'true') throw new Error(`${name} is not installed (CI=true): ${installHint}`);
  // eslint-disable-next-line no-console
  console.warn(`${name} is not installed; skipping (${installHint})`);
  return false;
}

/** The build output the skiff binary runs from; tests need `npm run build` first (npm test does it). */
export function requireBuild(): void {
  if (!fs.existsSync(path.join(repoRoot, 'dist', 'src', 'cli', 'main.js'))) {
    throw new Error('dist/ is missing: run `npm run build` (npm test builds first)');
  }
}

export interface MemberProcess {
  name: string;
  clientUrl: string;
  peerUrl: string;
  metricsUrl: string;
  dataDir: string;
  logFile: string;
  proc: ChildProcess | undefined;
  args: string[];
}

export interface ClusterOptions {
  kind?: StoreKind;
  members?: number;
  /** Extra flags for every member, etcd style (`--snapshot-count=100`). */
  flags?: string[];
  heartbeatMs?: number;
  electionMs?: number;
  /** URL schemes of the client and peer URLs (https needs the TLS flags in `flags`); metrics stay http. */
  clientScheme?: 'http' | 'https';
  peerScheme?: 'http' | 'https';
  /** Node flags for skiff members (`--cpu-prof`); ignored for etcd. */
  nodeArgs?: string[];
}

export class StoreCluster {
  readonly kind: StoreKind;
  readonly members: MemberProcess[] = [];
  readonly dir: string;
  private readonly nodeArgs: string[];

  private constructor(kind: StoreKind, dir: string, nodeArgs: string[]) {
    this.kind = kind;
    this.dir = dir;
    this.nodeArgs = nodeArgs;
  }

  static async start(opts: ClusterOptions = {}): Promise<StoreCluster> {
    const kind = opts.kind ?? 'skiff';
    if (kind === 'skiff') requireBuild();
    const n = opts.members ?? 3;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${kind}-cluster-`));
    const c = new StoreCluster(kind, dir, opts.nodeArgs ?? []);
    for (let i = 1; i <= n; i++) {
      const name = `m${i}`;
      c.members.push({
        name,
        clientUrl: `${opts.clientScheme ?? 'http'}://127.0.0.1:${await freePort()}`,
        peerUrl: `${opts.peerScheme ?? 'http'}://127.0.0.1:${await freePort()}`,
        metricsUrl: `http://127.0.0.1:${await freePort()}`,
        dataDir: path.join(dir, name),
        logFile: path.join(dir, `${name}.log`),
        proc: undefined,
        args: [],
      });
    }
    const initialCluster = c.members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
    for (const m of c.members) {
      m.args = [
        `--name=${m.name}`,
        `--data-dir=${m.dataDir}`,
        `--listen-client-urls=${m.clientUrl}`,
        `--advertise-client-urls=${m.clientUrl}`,
        `--listen-peer-urls=${m.peerUrl}`,
        `--initial-advertise-peer-urls=${m.peerUrl}`,
        `--initial-cluster=${initialCluster}`,
        `--initial-cluster-state=new`,
        `--initial-cluster-token=test-${path.basename(dir)}`,
        `--listen-metrics-urls=${m.metricsUrl}`,
        `--heartbeat-interval=${opts.heartbeatMs ?? 100}`,
        `--election-timeout=${opts.electionMs ?? 1000}`,
        ...(opts.flags ?? []),
      ];
    }
    for (let i = 0; i < n; i++) c.spawnMember(i);
    try {
      await c.waitHealthy();
    } catch (e) {
      // The caller never gets the cluster to stop it: stop what was started here.
      await c.stop(); // the error carries the log tail already
      throw e;
    }
    return c;
  }

  /** Endpoints as etcdctl takes them. */
  endpoints(): string {
    return this.members.map((m) => m.clientUrl.replace('http://', '')).join(',');
  }

  spawnMember(i: number): void {
    const m = this.members[i];
    const out = fs.openSync(m.logFile, 'a');
    const { command, args, env } = this.kind === 'skiff' ? memberProcess(m.args, this.nodeArgs) : { command: 'etcd', args: m.args, env: process.env };
    m.proc = spawn(command, args, { stdio: ['ignore', out, out], env });
    fs.closeSync(out);
  }

  pid(i: number): number | undefined {
    return this.members[i].proc?.pid;
  }

  /** Sends a signal to member i (SIGKILL for kill -9) and waits for it to exit. */
  async kill(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.members[i].proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(signal);
    await exited;
    this.members[i].proc = undefined;
  }

  async restart(i: number): Promise<void> {
    await this.kill(i, 'SIGKILL');
    this.spawnMember(i);
  }

  /** Waits until every running member answers /health with 200. */
  async waitHealthy(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const m of this.members) {
      if (!m.proc) continue;
      for (;;) {
        try {
          const res = await fetch(`${m.metricsUrl}/health`);
          if (res.status === 200) break;
        } catch {
          // not up yet
        }
        if (Date.now() > deadline) throw new Error(`member ${m.name} not healthy within ${timeoutMs} ms; log:\n${this.log(m.name).slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  log(name: string): string {
    const m = this.members.find((x) => x.name === name);
    return m && fs.existsSync(m.logFile) ? fs.readFileSync(m.logFile, 'utf8') : '';
  }

  /** Stops every member by pid (SIGKILL after a grace period) and removes the data. */
  async stop(opts: { keepData?: boolean } = {}): Promise<void> {
    await Promise.all(
      this.members.map(async (m, i) => {
        const p = m.proc;
        if (!p || p.exitCode !== null || p.signalCode !== null) return;
        const exited = new Promise<void>((r) => p.once('exit', () => r()));
        p.kill('SIGTERM');
        const t = setTimeout(() => p.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
        this.members[i].proc = undefined;
      }),
    );
    if (!opts.keepData) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs etcdctl (API v3) against endpoints; returns stdout, throws with stderr on failure. */
export function etcdctl(endpoints: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  return execFileSync('etcdctl', [`--endpoints=${endpoints}`, ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
    input: opts.input,
    timeout: opts.timeoutMs ?? 15_000,
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}
