// For the operations tests (membership at runtime, snapshots, defrag, quota): etcdctl with
// JSON output, extra member processes joining a StoreCluster, a continuous write load that
// records every acknowledged write, and the check that no acknowledged write was lost.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as pb from '../../src/kv/proto';
import { etcdctl, freePort, MemberProcess, StoreCluster } from './cluster';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns something other than undefined; throws after timeoutMs. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await sleep(intervalMs);
  }
}

/** etcdctl's error text for a failed command (its last stderr line). */
export function etcdctlError(endpoints: string, args: string[]): string {
  try {
    etcdctl(endpoints, args);
  } catch (e) {
    const stderr = String((e as { stderr?: string }).stderr ?? e);
    const lines = stderr.trim().split('\n');
    return lines[lines.length - 1];
  }
  throw new Error(`etcdctl ${args.join(' ')} succeeded; expected it to fail`);
}

export function endpointOf(m: MemberProcess): string {
  return m.clientUrl.replace('http://', '');
}

export function runningEndpoints(c: StoreCluster): string {
  return c.members
    .filter((m) => m.proc)
    .map(endpointOf)
    .join(',');
}

export interface ListedMember {
  ID: number;
  name?: string;
  peerURLs: string[];
  clientURLs?: string[];
  isLearner?: boolean;
}

export function memberList(endpoints: string): ListedMember[] {
  return (JSON.parse(etcdctl(endpoints, ['member', 'list', '-w', 'json'])) as { members: ListedMember[] }).members;
}

export function hexId(id: number): string {
  return BigInt(id).toString(16);
}

export interface EndpointStatus {
  Endpoint: string;
  Status: { header: { member_id: number; revision: number; cluster_id: number }; leader: number; dbSize: number; raftIndex: number; raftAppliedIndex?: number; isLearner?: boolean; errors?: string[] };
}

export function endpointStatus(endpoints: string): EndpointStatus[] {
  return JSON.parse(etcdctl(endpoints, ['endpoint', 'status', '-w', 'json'])) as EndpointStatus[];
}

/** The member the cluster's leader is, by its process index. */
export function leaderIndex(c: StoreCluster): number {
  const st = endpointStatus(runningEndpoints(c));
  const leader = st[0].Status.leader;
  const s = st.find((x) => x.Status.header.member_id === leader);
  if (!s) throw new Error('leader not among the running endpoints');
  return c.members.findIndex((m) => endpointOf(m) === s.Endpoint);
}

/** The id of the member at process index i. */
export function memberIdOf(c: StoreCluster, i: number): number {
  return endpointStatus(endpointOf(c.members[i]))[0].Status.header.member_id;
}

/**
 * A new member process for cluster c, not started: ports picked, args for joining with
 * --initial-cluster-state=existing and the given --initial-cluster (as `member add`
 * prints it), the cluster's other flags kept. Returns its index in c.members.
 */
export async function newJoiningMember(c: StoreCluster, name: string, initialCluster: (peerUrl: string) => string): Promise<number> {
  const m: MemberProcess = {
    name,
    clientUrl: `http://127.0.0.1:${await freePort()}`,
    peerUrl: `http://127.0.0.1:${await freePort()}`,
    metricsUrl: `http://127.0.0.1:${await freePort()}`,
    dataDir: path.join(c.dir, name),
    logFile: path.join(c.dir, `${name}.log`),
    proc: undefined,
    args: [],
  };
  const own = new Set(['--name', '--data-dir', '--listen-client-urls', '--advertise-client-urls', '--listen-peer-urls', '--initial-advertise-peer-urls', '--initial-cluster', '--initial-cluster-state', '--listen-metrics-urls']);
  const kept = c.members[0].args.filter((a) => !own.has(a.split('=')[0]));
  m.args = [
    `--name=${name}`,
    `--data-dir=${m.dataDir}`,
    `--listen-client-urls=${m.clientUrl}`,
    `--advertise-client-urls=${m.clientUrl}`,
    `--listen-peer-urls=${m.peerUrl}`,
    `--initial-advertise-peer-urls=${m.peerUrl}`,
    `--initial-cluster=${initialCluster(m.peerUrl)}`,
    '--initial-cluster-state=existing',
    `--listen-metrics-urls=${m.metricsUrl}`,
    ...kept,
  ];
  c.members.push(m);
  return c.members.length - 1;
}

/** `member add` output: the lines etcdctl prints for starting the new member. */
export function parseMemberAdd(out: string): { id: number; initialCluster: string } {
  const id = /Member\s+([0-9a-f]+) added/.exec(out);
  const ic = /ETCD_INITIAL_CLUSTER="([^"]*)"/.exec(out);
  if (!id || !ic) throw new Error(`unexpected member add output: ${out}`);
  return { id: Number(BigInt(`0x${id[1]}`)), initialCluster: ic[1] };
}

/** Waits until process i has exited by itself. */
export async function waitExit(c: StoreCluster, i: number, timeoutMs: number): Promise<void> {
  const p = c.members[i].proc;
  if (!p) return;
  if (p.exitCode === null && p.signalCode === null) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise<void>((r) => p.once('exit', () => r())), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }
  if (p.exitCode === null && p.signalCode === null) throw new Error(`member ${c.members[i].name} still running after ${timeoutMs} ms`);
  c.members[i].proc = undefined;
}

/** Waits until member i answers /health with 200. */
export async function waitMemberHealthy(c: StoreCluster, i: number, timeoutMs = 20_000): Promise<void> {
  const m = c.members[i];
  await waitFor(
    `${m.name} healthy`,
    async () => {
      const res = await fetch(`${m.metricsUrl}/health`);
      return res.status === 200 ? true : undefined;
    },
    timeoutMs,
  ).catch((e: unknown) => {
    throw new Error(`${String(e)}\nlog of ${m.name}:\n${fs.existsSync(m.logFile) ? fs.readFileSync(m.logFile, 'utf8').slice(-3000) : ''}`);
  });
}

// ---- clients ----

const clientOptions = { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 500 };

export function kvClient(m: MemberProcess): pb.ServiceClient<'KV'> {
  return pb.createClient('KV', endpointOf(m), undefined, clientOptions);
}

/** Every key and value under prefix on member m, read locally there (serializable). */
export async function readAll(m: MemberProcess, prefix: string): Promise<Map<string, string>> {
  const client = kvClient(m);
  try {
    const key = Buffer.from(prefix);
    const end = Buffer.from(prefix);
    end[end.length - 1]++;
    const res = await pb.callUnary(client, 'Range', { key, range_end: end, serializable: true }, { deadline: Date.now() + 10_000 });
    return new Map(res.kvs.map((kv) => [kv.key.toString(), kv.value.toString()]));
  } finally {
    client.close();
  }
}

/**
 * A continuous write load: `writers` loops each putting fresh keys `<prefix><n>` through
 * the members it is given (failing over to the next on an error), recording every put
 * that was acknowledged and the longest time between two acknowledgements.
 */
export class WriteLoad {
  readonly acked = new Map<string, string>();
  failures = 0;
  longestGapMs = 0;
  private lastAckMs = Date.now();
  private running = true;
  private seq = 0;
  private readonly loops: Promise<void>[] = [];
  private readonly clients = new Map<string, pb.ServiceClient<'KV'>>();

  constructor(
    private readonly targets: () => MemberProcess[],
    private readonly prefix: string,
    writers: number,
    private readonly valueBytes = 64,
  ) {
    for (let w = 0; w < writers; w++) this.loops.push(this.loop(w));
  }

  private client(m: MemberProcess): pb.ServiceClient<'KV'> {
    let c = this.clients.get(m.clientUrl);
    if (!c) {
      c = kvClient(m);
      this.clients.set(m.clientUrl, c);
    }
    return c;
  }

  private async loop(w: number): Promise<void> {
    let target = w;
    while (this.running) {
      const n = this.seq++;
      const key = `${this.prefix}${String(n).padStart(8, '0')}`;
      const value = `${n}:`.padEnd(this.valueBytes, 'x');
      for (let attempt = 0; this.running; attempt++) {
        const members = this.targets();
        const m = members[target % members.length];
        try {
          await pb.callUnary(this.client(m), 'Put', { key: Buffer.from(key), value: Buffer.from(value) }, { deadline: Date.now() + 3000 });
          this.acked.set(key, value);
          const now = Date.now();
          this.longestGapMs = Math.max(this.longestGapMs, now - this.lastAckMs);
          this.lastAckMs = now;
          break;
        } catch {
          // Outcome unknown: not counted; the same key and value are put again elsewhere.
          this.failures++;
          target++;
          await sleep(20);
        }
      }
    }
  }

  /** Acknowledged writes so far. */
  get count(): number {
    return this.acked.size;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.longestGapMs = Math.max(this.longestGapMs, 0);
    for (const c of this.clients.values()) c.close();
  }
}

/**
 * Every acknowledged key with its value on every given member (a follower may still be
 * applying the last ones: each member gets up to timeoutMs to show them all); returns the
 * number checked.
 */
export async function expectAllAcked(members: MemberProcess[], prefix: string, acked: Map<string, string>, timeoutMs = 10_000): Promise<number> {
  for (const m of members) {
    let missing: string[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const stored = await readAll(m, prefix);
      missing = [];
      for (const [k, v] of acked) if (stored.get(k) !== v) missing.push(k);
      if (missing.length === 0 || Date.now() > deadline) break;
      await sleep(200);
    }
    if (missing.length > 0) throw new Error(`${m.name} lost ${missing.length} acknowledged writes, e.g. ${missing.slice(0, 5).join(', ')}`);
  }
  return acked.size;
}

/** Puts `count` keys quickly (many in flight) through member m. */
export async function preload(m: MemberProcess, prefix: string, count: number, inflight = 32): Promise<Map<string, string>> {
  const client = kvClient(m);
  const acked = new Map<string, string>();
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: inflight }, async () => {
        for (;;) {
          const n = next++;
          if (n >= count) return;
          const key = `${prefix}${String(n).padStart(8, '0')}`;
          const value = `v${n}`;
          await pb.callUnary(client, 'Put', { key: Buffer.from(key), value: Buffer.from(value) }, { deadline: Date.now() + 10_000 });
          acked.set(key, value);
        }
      }),
    );
  } finally {
    client.close();
  }
  return acked;
}
