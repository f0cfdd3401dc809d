// gRPC clients of the members: one channel per member, shared by the typed service clients
// of src/kv/proto.ts, with fast reconnects (a killed member comes back on the same port).
// The Cluster service also gets a client that decodes 64-bit ids as strings: etcd's member
// ids do not fit a JS number, and MemberRemove needs them exact.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as pb from '../kv/proto';

export const clientLimits = Object.freeze({
  reconnectBackoffMsMin: 100,
  reconnectBackoffMsMax: 1000,
  /** etcd refuses pings more often than every 5 s (grpc-keepalive-min-time). */
  keepaliveMs: 5000,
  keepaliveTimeoutMs: 2000,
});

const channelOptions: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': clientLimits.reconnectBackoffMsMin,
  'grpc.max_reconnect_backoff_ms': clientLimits.reconnectBackoffMsMax,
  'grpc.keepalive_time_ms': clientLimits.keepaliveMs,
  'grpc.keepalive_timeout_ms': clientLimits.keepaliveTimeoutMs,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
};

export interface ExactMember {
  ID: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

type ExactClusterClient = grpc.Client & {
  MemberList(req: object, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: (e: grpc.ServiceError | null, r?: { members: ExactMember[] }) => void): void;
  MemberRemove(req: { ID: string }, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: (e: grpc.ServiceError | null, r?: { members: ExactMember[] }) => void): void;
  MemberAdd(req: { peerURLs: string[]; isLearner: boolean }, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: (e: grpc.ServiceError | null, r?: { member: ExactMember | null; members: ExactMember[] }) => void): void;
};

let exactClusterCtor: grpc.ServiceClientConstructor | undefined;

function exactClusterConstructor(): grpc.ServiceClientConstructor {
  if (exactClusterCtor === undefined) {
    const def = protoLoader.loadSync([...pb.ETCD_PROTO_FILES], { ...pb.PROTO_LOADER_OPTIONS, longs: String, includeDirs: [pb.protoDir()] });
    exactClusterCtor = grpc.makeClientConstructor(def['etcdserverpb.Cluster'] as grpc.ServiceDefinition, 'etcdserverpb.Cluster');
  }
  return exactClusterCtor;
}

export class MemberClients {
  readonly channel: grpc.Channel;
  readonly kv: pb.ServiceClient<'KV'>;
  readonly watch: pb.ServiceClient<'Watch'>;
  readonly lease: pb.ServiceClient<'Lease'>;
  readonly maintenance: pb.ServiceClient<'Maintenance'>;
  private readonly exactCluster: ExactClusterClient;

  constructor(readonly address: string) {
    const creds = grpc.credentials.createInsecure();
    this.channel = new grpc.Channel(address, creds, channelOptions);
    const opts: grpc.ClientOptions = { channelOverride: this.channel };
    this.kv = pb.createClient('KV', address, creds, opts);
    this.watch = pb.createClient('Watch', address, creds, opts);
    this.lease = pb.createClient('Lease', address, creds, opts);
    this.maintenance = pb.createClient('Maintenance', address, creds, opts);
    const Ctor = exactClusterConstructor();
    this.exactCluster = new Ctor(address, creds, opts) as unknown as ExactClusterClient;
  }

  private exact<R>(method: 'MemberList' | 'MemberRemove' | 'MemberAdd', req: object, timeoutMs: number): Promise<R> {
    return new Promise((resolve, reject) => {
      const fn = this.exactCluster[method] as unknown as (req: object, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: (e: grpc.ServiceError | null, r?: R) => void) => void;
      fn.call(this.exactCluster, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (e, r) => (e ? reject(e) : r === undefined ? reject(new Error('empty response')) : resolve(r)));
    });
  }

  memberList(timeoutMs: number): Promise<{ members: ExactMember[] }> {
    return this.exact('MemberList', { linearizable: false }, timeoutMs);
  }

  memberRemove(id: string, timeoutMs: number): Promise<{ members: ExactMember[] }> {
    return this.exact('MemberRemove', { ID: id }, timeoutMs);
  }

  memberAdd(peerUrls: string[], timeoutMs: number): Promise<{ member: ExactMember | null; members: ExactMember[] }> {
    return this.exact('MemberAdd', { peerURLs: peerUrls, isLearner: false }, timeoutMs);
  }

  close(): void {
    for (const c of [this.kv, this.watch, this.lease, this.maintenance, this.exactCluster]) c.close();
    this.channel.close();
  }
}

/** One MemberClients per member, in member order. */
export class ClientPool {
  readonly members: MemberClients[];

  constructor(addresses: readonly string[]) {
    this.members = addresses.map((a) => new MemberClients(a));
  }

  get size(): number {
    return this.members.length;
  }

  close(): void {
    for (const m of this.members) m.close();
  }
}

/** A deadline for callUnary, `ms` from now. */
export function deadline(ms: number): Date {
  return new Date(Date.now() + ms);
}

export function grpcCode(e: unknown): number | undefined {
  const c = (e as { code?: unknown }).code;
  return typeof c === 'number' ? c : undefined;
}

/** A short text for an error: the gRPC status name and details. */
export function errorText(e: unknown): string {
  const code = grpcCode(e);
  const name = code !== undefined ? (grpc.status[code] ?? String(code)) : 'ERROR';
  const details = (e as { details?: string }).details ?? (e as Error).message ?? String(e);
  return `${name}: ${details}`.slice(0, 200);
}

/** The key range of a prefix (etcd's prefix end: last byte + 1, carrying). */
export function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] < 0xff) {
      const out = Buffer.from(b.subarray(0, i + 1));
      out[i]++;
      return out;
    }
  }
  return Buffer.from([0]);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));
