// Per-member gRPC clients for integration tests against a StoreCluster: each member's
// Maintenance and KV services on its own client URL (no balancing, so a test knows which
// member answered), and the questions tests keep asking: who leads, have the members
// converged, do their HashKVs agree. Every wait is bounded by time.

import * as grpc from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import * as pb from '../../src/kv/proto';
import type { StoreCluster } from './cluster';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `http://127.0.0.1:2379` -> `127.0.0.1:2379`. */
export function grpcAddress(clientUrl: string): string {
  return clientUrl.replace(/^https?:\/\//, '');
}

/** Reconnect quickly after a member restarts (grpc-js defaults back off up to 120 s). */
export const fastReconnectOptions: grpc.ClientOptions = Object.freeze({
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.min_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 500,
});

/** Polls `probe` until it returns a value other than undefined; throws after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, opts: { timeoutMs: number; intervalMs?: number }): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await sleep(opts.intervalMs ?? 100);
  }
}

/** One member's clients. */
export interface MemberClient {
  index: number;
  kv: pb.ServiceClient<'KV'>;
  maintenance: pb.ServiceClient<'Maintenance'>;
}

/**
 * Clients for every member of a cluster, by index. They survive restarts of the members
 * (grpc-js reconnects); close() them in afterAll.
 */
export class MemberClients {
  readonly members: MemberClient[];

  constructor(private readonly cluster: StoreCluster) {
    this.members = cluster.members.map((m, index) => ({
      index,
      kv: pb.createClient('KV', grpcAddress(m.clientUrl), undefined, fastReconnectOptions),
      maintenance: pb.createClient('Maintenance', grpcAddress(m.clientUrl), undefined, fastReconnectOptions),
    }));
  }

  /** Indexes of the members whose process runs. */
  running(): number[] {
    return this.cluster.members.flatMap((m, i) => (m.proc ? [i] : []));
  }

  status(i: number, timeoutMs = 1000): Promise<pb.StatusResponse> {
    return pb.callUnary(this.members[i].maintenance, 'Status', {}, { deadline: Date.now() + timeoutMs });
  }

  hashKV(i: number, revision: number, timeoutMs = 5000): Promise<pb.HashKVResponse> {
    return pb.callUnary(this.members[i].maintenance, 'HashKV', { revision }, { deadline: Date.now() + timeoutMs });
  }

  /** A serializable (local) range on member i. */
  rangeLocal(i: number, req: pb.Wire<pb.RangeRequest>, timeoutMs = 5000): Promise<pb.RangeResponse> {
    return pb.callUnary(this.members[i].kv, 'Range', { ...req, serializable: true }, { deadline: Date.now() + timeoutMs });
  }

  put(i: number, key: string, value: string, timeoutMs: number): Promise<pb.PutResponse> {
    return pb.callUnary(this.members[i].kv, 'Put', { key: Buffer.from(key), value: Buffer.from(value) }, { deadline: Date.now() + timeoutMs });
  }

  /**
   * The running member that is leader by its own Status (and whose term no other running
   * member has passed), with its member id and term.
   */
  async findLeader(timeoutMs = 10_000): Promise<{ index: number; id: number; term: number }> {
    return waitFor(
      'a leader',
      async () => {
        const statuses = await Promise.all(this.running().map(async (i) => ({ i, s: await this.status(i).catch(() => undefined) })));
        const maxTerm = Math.max(0, ...statuses.map((x) => x.s?.raftTerm ?? 0));
        for (const { i, s } of statuses) {
          if (s && s.leader !== 0 && s.header?.member_id === s.leader && s.raftTerm === maxTerm) return { index: i, id: s.leader, term: s.raftTerm };
        }
        return undefined;
      },
      { timeoutMs, intervalMs: 50 },
    );
  }

  /** Member ids by index, from each member's own Status header. */
  async memberIds(timeoutMs = 10_000): Promise<number[]> {
    const ids: number[] = [];
    for (let i = 0; i < this.members.length; i++) {
      ids.push(await waitFor(`member ${i}'s id`, async () => (await this.status(i)).header?.member_id, { timeoutMs }));
    }
    return ids;
  }

  /**
   * Waits until every running member reports the same revision and applied index, twice in
   * a row `stableMs` apart (nothing in flight). Returns that revision.
   */
  async waitConverged(timeoutMs = 20_000, stableMs = 300): Promise<number> {
    let prev = '';
    return waitFor(
      'the members to converge',
      async () => {
        const st = await Promise.all(this.running().map((i) => this.status(i)));
        const revs = new Set(st.map((s) => s.header?.revision));
        const applied = new Set(st.map((s) => s.raftAppliedIndex));
        if (revs.size !== 1 || applied.size !== 1) {
          prev = '';
          return undefined;
        }
        const key = `${[...revs][0]}/${[...applied][0]}`;
        if (key !== prev) {
          prev = key;
          return undefined;
        }
        return st[0].header!.revision;
      },
      { timeoutMs, intervalMs: stableMs },
    );
  }

  close(): void {
    for (const m of this.members) {
      m.kv.close();
      m.maintenance.close();
    }
  }
}

/**
 * Kills (SIGKILL, by pid) every `skiff store` or `etcd` process that is a child of this test
 * process. A safety net for afterAll: StoreCluster.start() does not hand back its cluster
 * when a member fails to become healthy, and a member left running keeps Jest from exiting.
 */
export function killStrayMembers(): number[] {
  let out = '';
  try {
    out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  } catch {
    return []; // no children
  }
  const killed: number[] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (!m || !(/\bbin\/skiff store\b/.test(m[2]) || /^etcd\s/.test(m[2]))) continue;
    try {
      process.kill(Number(m[1]), 'SIGKILL');
      killed.push(Number(m[1]));
    } catch {
      // already gone
    }
  }
  return killed;
}
