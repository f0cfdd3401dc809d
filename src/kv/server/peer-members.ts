// The membership as a member has applied it, served on the peer URLs
// (proto/skiff/peer-members.proto), and the two uses of it: a member joining an existing
// cluster finds its id and the cluster's id (etcd's GetClusterFromRemotePeers and
// ValidateClusterAndAssignIDs), and a member cut off from the leader finds out whether it
// was removed.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as path from 'node:path';
import { protoDir } from '../proto';
import { hostPort } from './config';
import type { Member, MembershipState } from './membership';

interface WireMember {
  id: number;
  name: string;
  peer_urls: string[];
  client_urls: string[];
  is_learner: boolean;
}

interface WireMembers {
  cluster_id: number;
  member_id: number;
  members: WireMember[];
  removed: number[];
  applied_index: number;
}

/** One member's view of the cluster. */
export interface ClusterView {
  clusterId: number;
  /** The member that answered. */
  memberId: number;
  membership: MembershipState;
  appliedIndex: number;
}

type MembersClient = grpc.Client & {
  Members(req: object, options: Partial<grpc.CallOptions>, callback: (err: grpc.ServiceError | null, res?: WireMembers) => void): grpc.ClientUnaryCall;
};

let loaded: { service: grpc.ServiceDefinition; Client: grpc.ServiceClientConstructor } | undefined;

function load(): NonNullable<typeof loaded> {
  if (loaded) return loaded;
  const def = protoLoader.loadSync(path.join(protoDir(), 'skiff', 'peer-members.proto'), { keepCase: true, longs: Number, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { skiff: { members: { PeerMembers: grpc.ServiceClientConstructor } } };
  const ctor = pkg.skiff.members.PeerMembers;
  loaded = { service: ctor.service, Client: ctor };
  return loaded;
}

function toWire(v: ClusterView): WireMembers {
  return {
    cluster_id: v.clusterId,
    member_id: v.memberId,
    members: v.membership.members.map((m) => ({ id: m.id, name: m.name, peer_urls: m.peerUrls, client_urls: m.clientUrls, is_learner: m.isLearner })),
    removed: v.membership.removed,
    applied_index: v.appliedIndex,
  };
}

function fromWire(w: WireMembers): ClusterView {
  const members: Member[] = w.members.map((m) => ({ id: m.id, name: m.name, peerUrls: m.peer_urls, clientUrls: m.client_urls, isLearner: m.is_learner }));
  return { clusterId: w.cluster_id, memberId: w.member_id, membership: { clusterId: w.cluster_id, members, removed: w.removed }, appliedIndex: w.applied_index };
}

/** The service definition and implementation to add to the peer transport's server. */
export function peerMembersService(view: () => ClusterView): { service: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation } {
  return {
    service: load().service,
    implementation: {
      Members: (_call: grpc.ServerUnaryCall<object, WireMembers>, callback: grpc.sendUnaryData<WireMembers>) => callback(null, toWire(view())),
    },
  };
}

/** Asks the member at peerUrl for its view of the cluster (with the peer transport's credentials). */
export function fetchClusterView(peerUrl: string, timeoutMs: number, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()): Promise<ClusterView> {
  const { host, port } = hostPort(peerUrl);
  const client = new (load().Client)(`${host}:${port}`, credentials) as unknown as MembersClient;
  return new Promise<ClusterView>((resolve, reject) => {
    client.Members({}, { deadline: Date.now() + timeoutMs }, (err, res) => {
      client.close();
      if (err || !res) reject(err ?? new Error('empty answer'));
      else resolve(fromWire(res));
    });
  });
}

function sameUrls(a: string[], b: string[]): boolean {
  const norm = (l: string[]): string => l.map((u) => new URL(u).href).sort().join(',');
  return norm(a) === norm(b);
}

/**
 * For a member started with --initial-cluster-state=existing: asks the other members of
 * --initial-cluster for the cluster, and finds this member in it by its peer URLs (it must
 * have been added with `member add` first). Retries until timeoutMs.
 */
export async function discoverCluster(opts: {
  selfPeerUrls: string[];
  peerUrls: string[];
  timeoutMs: number;
  attemptTimeoutMs: number;
  credentials?: grpc.ChannelCredentials;
}): Promise<ClusterView & { selfId: number }> {
  const deadline = Date.now() + opts.timeoutMs;
  const failures: string[] = [];
  let notListed: string | undefined;
  for (;;) {
    // Every peer at once: one that has not applied the latest changes may list this member
    // under the id of an earlier incarnation that was removed since (see chooseSelf).
    const answers = await Promise.allSettled(opts.peerUrls.map((url) => fetchClusterView(url, opts.attemptTimeoutMs, opts.credentials)));
    const views: ClusterView[] = [];
    answers.forEach((a, i) => {
      if (a.status === 'fulfilled') views.push(a.value);
      else failures.push(`${opts.peerUrls[i]}: ${a.reason instanceof Error ? a.reason.message : String(a.reason)}`);
    });
    const chosen = chooseSelf(views, opts.selfPeerUrls);
    if (chosen) return chosen;
    const last = views[views.length - 1];
    // A member that has not applied the `member add` yet does not list us: ask again.
    if (last) notListed = `member with peer URLs ${opts.selfPeerUrls.join(',')} is not in the existing cluster (${last.membership.members.map((m) => m.peerUrls.join(',')).join('; ')}): add it with \`member add\` first`;
    if (Date.now() > deadline) {
      if (notListed) throw new Error(notListed);
      throw new Error(`cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs (${failures.slice(-opts.peerUrls.length).join('; ')})`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * This member's id and the view to join with, from the peers' answers: the most advanced
 * view (highest applied index) that lists this member's peer URLs under an id no view knows
 * as removed. A peer behind on the log may still list a removed earlier incarnation of this
 * member (same peer URLs, old id); joining under that id, the member would never be let in.
 */
export function chooseSelf(views: readonly ClusterView[], selfPeerUrls: string[]): (ClusterView & { selfId: number }) | undefined {
  const removed = new Set(views.flatMap((v) => v.membership.removed));
  let best: (ClusterView & { selfId: number }) | undefined;
  for (const view of views) {
    const self = view.membership.members.find((m) => sameUrls(m.peerUrls, selfPeerUrls));
    if (self === undefined || removed.has(self.id)) continue;
    if (best === undefined || view.appliedIndex > best.appliedIndex) best = { ...view, selfId: self.id };
  }
  return best;
}
