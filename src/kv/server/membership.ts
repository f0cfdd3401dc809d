// The cluster's members as the state machine knows them (etcd's RaftCluster): ids, names,
// peer and client URLs, learners. Changed only by applied Raft entries, so every member
// agrees; persisted with the store's metadata.

import { computeClusterId, computeMemberId } from './ids';
import { MemberUrls } from './config';

export interface Member {
  id: number;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

export interface MembershipState {
  clusterId: number;
  members: Member[];
  /** Ids of removed members: they may never come back (etcd refuses them too). */
  removed: number[];
}

export class Membership {
  clusterId: number;
  private members = new Map<number, Member>();
  private removed = new Set<number>();

  constructor(state: MembershipState) {
    this.clusterId = state.clusterId;
    for (const m of state.members) this.members.set(m.id, { ...m, peerUrls: [...m.peerUrls], clientUrls: [...m.clientUrls] });
    for (const id of state.removed) this.removed.add(id);
  }

  /** The initial membership of a new cluster, from --initial-cluster and --initial-cluster-token. */
  static initial(cluster: MemberUrls[], token: string): Membership {
    const members = cluster.map((m) => ({ id: computeMemberId(m.peerUrls, token), name: m.name, peerUrls: m.peerUrls, clientUrls: [], isLearner: false }));
    return new Membership({ clusterId: computeClusterId(members.map((m) => m.id)), members, removed: [] });
  }

  state(): MembershipState {
    return { clusterId: this.clusterId, members: this.list(), removed: [...this.removed].sort((a, b) => a - b) };
  }

  list(): Member[] {
    return [...this.members.values()].sort((a, b) => a.id - b.id).map((m) => ({ ...m, peerUrls: [...m.peerUrls], clientUrls: [...m.clientUrls] }));
  }

  get(id: number): Member | undefined {
    return this.members.get(id);
  }

  byName(name: string): Member | undefined {
    return [...this.members.values()].find((m) => m.name === name);
  }

  isRemoved(id: number): boolean {
    return this.removed.has(id);
  }

  add(m: Member): void {
    this.members.set(m.id, { ...m });
  }

  remove(id: number): void {
    this.members.delete(id);
    this.removed.add(id);
  }

  promote(id: number): void {
    const m = this.members.get(id);
    if (m) m.isLearner = false;
  }

  setAttributes(id: number, attrs: { name?: string; clientUrls?: string[] }): void {
    const m = this.members.get(id);
    if (!m) return;
    if (attrs.name !== undefined) m.name = attrs.name;
    if (attrs.clientUrls !== undefined) m.clientUrls = [...attrs.clientUrls];
  }

  setPeerUrls(id: number, peerUrls: string[]): void {
    const m = this.members.get(id);
    if (m) m.peerUrls = [...peerUrls];
  }
}
