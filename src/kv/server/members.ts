// Membership at runtime: the Cluster service's MemberAdd, MemberRemove, MemberUpdate and
// MemberPromote with etcd 3.4's semantics.
//
//   * Checked when proposed, on the leader (a follower forwards the call to it, as etcd
//     forwards MemberPromote): the strict reconfiguration check (a change may not leave
//     fewer started members than a quorum, counting as started only the members that
//     published themselves and that the leader heard from within an election timeout),
//     and a learner's readiness for promotion (its match index at least 90% of the
//     leader's).
//   * Checked again when applied, on every member alike (etcd's
//     ValidateConfigurationChange): duplicate ids and peer URLs, unknown or removed
//     members, promoting a voter, more than one learner. A refused change leaves Raft's
//     configuration as it was; the proposer gets the error.
//
// A change goes through Raft as a ConfChangeV2 with one change, its context naming the
// operation and, for an add, the member (so every member learns its name and URLs).

import * as grpc from '@grpc/grpc-js';
import type { ConfChangeSingle, ConfChangeV2, Logger, RaftNode } from '../../raft';
import { isRaftError, None } from '../../raft';
import * as errors from '../errors';
import * as pb from '../proto';
import type { ApplyResult, KvStateMachine } from './applier';
import { hostPort, ServerConfig } from './config';
import { computeMemberId, idToHex } from './ids';
import type { Member, Membership } from './membership';
import { ConfChangeContext, decodeConfContext, encodeConfContext, InternalRequest } from './requests';
import { memberClientCredentials } from './tls';

export const memberLimits = Object.freeze({
  /** etcd 3.4's maxLearners. */
  learnersMax: 1,
  /** A learner is ready for promotion once its match index is this share of the leader's (etcd's readyPercent). */
  learnerReadyShare: 0.9,
  /** A proposed change not applied within this long is proposed again (the leader may have dropped it). */
  reproposeIntervalMs: 1000,
});

/** What the member operations need from the server. */
export interface MemberHost {
  readonly memberId: number;
  readonly config: ServerConfig;
  readonly raft: RaftNode;
  readonly sm: KvStateMachine;
  readonly log: Logger;
  header(revision?: number): pb.ResponseHeader;
  propose(r: InternalRequest): Promise<Extract<ApplyResult, { ok: true }>>;
  nextRequestId(): number;
  /** When the transport last heard from member id (ms since the epoch), 0 if never. */
  heardFromMs(id: number): number;
  requestTimeoutMs(): number;
  waitForLeader(timeoutMs: number): Promise<void>;
}

export function toPbMember(m: Member): pb.Member {
  return { ID: m.id, name: m.name, peerURLs: [...m.peerUrls], clientURLs: [...m.clientUrls], isLearner: m.isLearner };
}

/** etcd's types.NewURLs for member URLs: absolute http(s) URLs with a host and port, no path; sorted. */
export function parseMemberUrls(urls: string[]): string[] {
  if (urls.length === 0) throw errors.ErrGRPCMemberBadURLs;
  const out: string[] = [];
  for (const s of urls) {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw errors.ErrGRPCMemberBadURLs;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:' && u.protocol !== 'unix:' && u.protocol !== 'unixs:') throw errors.ErrGRPCMemberBadURLs;
    if (u.hostname === '' || u.port === '') throw errors.ErrGRPCMemberBadURLs;
    if (u.pathname !== '/' && u.pathname !== '') throw errors.ErrGRPCMemberBadURLs;
    out.push(`${u.protocol}//${u.host}`);
  }
  return out.sort();
}

/**
 * etcd's ValidateConfigurationChange, for a ConfChange about to be applied: the error the
 * proposer gets, or undefined. Changes without an operation in their context (a new
 * cluster's bootstrap entries written before contexts existed) are not judged.
 */
export function confChangeError(membership: Membership, change: ConfChangeV2): errors.EtcdError | undefined {
  const ctx = decodeConfContext(change.context);
  if (ctx?.op === undefined || change.changes.length !== 1) return undefined;
  const id = change.changes[0].nodeId;
  if (membership.isRemoved(id)) return errors.ErrGRPCMemberNotFound;
  const existing = membership.get(id);
  switch (ctx.op) {
    case 'add': {
      if (existing) return errors.ErrGRPCMemberExist;
      const used = new Set(membership.list().flatMap((m) => m.peerUrls));
      if ((ctx.member?.peerUrls ?? []).some((u) => used.has(u))) return errors.ErrGRPCPeerURLExist;
      if (ctx.member?.isLearner && membership.list().filter((m) => m.isLearner).length + 1 > memberLimits.learnersMax) return errors.ErrGRPCTooManyLearners;
      return undefined;
    }
    case 'promote':
      if (!existing) return errors.ErrGRPCMemberNotFound;
      if (!existing.isLearner) return errors.ErrGRPCMemberNotLearner;
      return undefined;
    case 'remove':
      return existing ? undefined : errors.ErrGRPCMemberNotFound;
  }
}

/** etcd's validation of ConfChangeUpdateNode: the member exists; no other member has the URLs. */
export function memberUpdateError(membership: Membership, id: number, peerUrls: string[]): errors.EtcdError | undefined {
  if (membership.isRemoved(id) || !membership.get(id)) return errors.ErrGRPCMemberNotFound;
  const used = new Set(membership.list().filter((m) => m.id !== id).flatMap((m) => m.peerUrls));
  return peerUrls.some((u) => used.has(u)) ? errors.ErrGRPCPeerURLExist : undefined;
}

type ClusterCall = 'MemberAdd' | 'MemberRemove' | 'MemberPromote';

export class MemberAdmin {
  private leaderClient: { url: string; client: pb.ServiceClient<'Cluster'> } | undefined;

  constructor(private readonly s: MemberHost) {}

  private members(): Member[] {
    return this.s.sm.membership.list();
  }

  /** etcd's ClusterServer header: cluster id, member id and raft term, no revision. */
  private header(): pb.ResponseHeader {
    return { ...this.s.header(), revision: 0 };
  }

  private membersResponse(): { header: pb.ResponseHeader; members: pb.Member[] } {
    return { header: this.header(), members: this.members().map(toPbMember) };
  }

  // ---- the four operations ----

  // `forward`: the caller's credentials (its auth token), for a call forwarded to the leader.

  async add(req: pb.MemberAddRequest, forward?: grpc.Metadata): Promise<pb.MemberAddResponse> {
    const peerUrls = parseMemberUrls(req.peerURLs);
    const forwarded = await this.onLeader('MemberAdd', req, forward);
    if (forwarded) return forwarded as pb.MemberAddResponse;
    const id = computeMemberId(peerUrls, '', Math.floor(Date.now() / 1000));
    const member: Member = { id, name: '', peerUrls, clientUrls: [], isLearner: req.isLearner };
    this.mayAdd(member);
    await this.configure({ type: req.isLearner ? 'addLearner' : 'addNode', nodeId: id }, { op: 'add', member });
    this.s.log.info({ id: idToHex(id), peerUrls, learner: req.isLearner }, 'added member');
    return { ...this.membersResponse(), member: toPbMember(member) };
  }

  async remove(req: pb.MemberRemoveRequest, forward?: grpc.Metadata): Promise<pb.MemberRemoveResponse> {
    const forwarded = await this.onLeader('MemberRemove', req, forward);
    if (forwarded) return forwarded as pb.MemberRemoveResponse;
    this.mayRemove(req.ID);
    await this.configure({ type: 'removeNode', nodeId: req.ID }, { op: 'remove' });
    this.s.log.info({ id: idToHex(req.ID) }, 'removed member');
    return this.membersResponse();
  }

  async promote(req: pb.MemberPromoteRequest, forward?: grpc.Metadata): Promise<pb.MemberPromoteResponse> {
    const forwarded = await this.onLeader('MemberPromote', req, forward);
    if (forwarded) return forwarded as pb.MemberPromoteResponse;
    this.mayPromote(req.ID);
    await this.configure({ type: 'addNode', nodeId: req.ID }, { op: 'promote' });
    this.s.log.info({ id: idToHex(req.ID) }, 'promoted member');
    return this.membersResponse();
  }

  /** New peer URLs: no Raft configuration change (etcd's ConfChangeUpdateNode is one Raft ignores). */
  async update(req: pb.MemberUpdateRequest): Promise<pb.MemberUpdateResponse> {
    const peerUrls = parseMemberUrls(req.peerURLs);
    await this.s.propose({ op: 'memberUpdate', memberId: req.ID, peerUrls });
    this.s.log.info({ id: idToHex(req.ID), peerUrls }, 'updated member peer URLs');
    return this.membersResponse();
  }

  // ---- strict reconfiguration checks (on the leader) ----

  /** etcd's IsStarted (published its name), and the leader heard from it lately. */
  private isStarted(m: Member, now: number): boolean {
    if (m.name === '') return false;
    return m.id === this.s.memberId || now - this.s.heardFromMs(m.id) <= this.s.config.electionTimeoutMs;
  }

  private isConnected(m: Member, now: number): boolean {
    return m.id === this.s.memberId || now - this.s.heardFromMs(m.id) <= this.s.config.electionTimeoutMs;
  }

  private voters(): Member[] {
    return this.members().filter((m) => !m.isLearner);
  }

  private mayAdd(member: Member): void {
    const now = Date.now();
    const voters = this.voters();
    if (!member.isLearner) {
      const nmembers = voters.length + 1;
      const nstarted = voters.filter((m) => this.isStarted(m, now)).length;
      const oneMemberRestore = nstarted === 1 && nmembers === 2;
      if (!oneMemberRestore && nstarted < Math.floor(nmembers / 2) + 1) {
        this.s.log.warn({ started: nstarted, members: nmembers }, 'rejecting member add; started members would be fewer than a quorum');
        throw errors.ErrGRPCMemberNotEnoughStarted;
      }
    }
    if (!voters.every((m) => this.isConnected(m, now))) {
      this.s.log.warn({}, 'rejecting member add; not connected to every voting member');
      throw errors.ErrGRPCUnhealthy;
    }
  }

  private mayRemove(id: number): void {
    const target = this.s.sm.membership.get(id);
    if (target?.isLearner) return; // no quorum to protect
    const now = Date.now();
    const others = this.voters().filter((m) => m.id !== id);
    const nstarted = others.filter((m) => this.isStarted(m, now)).length;
    if (nstarted < Math.floor(others.length / 2) + 1) {
      this.s.log.warn({ started: nstarted, members: others.length }, 'rejecting member remove; started members would be fewer than a quorum');
      throw errors.ErrGRPCMemberNotEnoughStarted;
    }
    // A member that is down is not part of the active quorum: safe to remove.
    if (target && !this.isConnected(target, now)) return;
    const voters = this.voters();
    const active = voters.filter((m) => this.isConnected(m, now)).length;
    if (active - 1 < 1 + Math.floor((voters.length - 1) / 2)) {
      this.s.log.warn({ active }, 'rejecting member remove; it would break the active quorum');
      throw errors.ErrGRPCUnhealthy;
    }
  }

  private mayPromote(id: number): void {
    this.checkLearnerReady(id);
    const now = Date.now();
    const voters = this.voters();
    const nmembers = voters.length + 1; // the learner counts toward the future quorum
    const nstarted = voters.filter((m) => this.isStarted(m, now)).length + 1; // and as started
    if (nstarted < Math.floor(nmembers / 2) + 1) {
      this.s.log.warn({ started: nstarted, members: nmembers }, 'rejecting member promote; started members would be fewer than a quorum');
      throw errors.ErrGRPCMemberNotEnoughStarted;
    }
  }

  /** etcd's isLearnerReady: the learner's match index is at least 90% of the leader's. Unknown ids pass (refused when applied). */
  private checkLearnerReady(id: number): void {
    const progress = this.s.raft.rn.status().progress;
    if (!progress) throw errors.ErrGRPCNotLeader;
    const learner = progress.get(id);
    const leader = progress.get(this.s.memberId);
    if (!learner || !leader) return;
    if (learner.match < leader.match * memberLimits.learnerReadyShare) throw errors.ErrGRPCLearnerNotReady;
  }

  // ---- proposing ----

  /**
   * Proposes one configuration change and waits until this member applied it. The leader
   * drops a change while another is pending (it becomes an empty entry): a change not
   * applied within reproposeIntervalMs is proposed again with the same request id, so
   * whichever copy applies first answers and later copies are refused as duplicates.
   */
  private async configure(change: ConfChangeSingle, ctx: Omit<ConfChangeContext, 'm' | 'n'>): Promise<void> {
    const n = this.s.nextRequestId();
    const cc: ConfChangeV2 = { transition: 'auto', changes: [change], context: encodeConfContext({ m: this.s.memberId, n, ...ctx }) };
    const deadline = Date.now() + this.s.requestTimeoutMs();
    const wait = this.s.sm.wait;
    const result = wait.register(n);
    let timer: NodeJS.Timeout | undefined;
    try {
      for (;;) {
        try {
          this.s.raft.proposeConfChange(cc);
        } catch (e) {
          if (!isRaftError(e, 'ERR_PROPOSAL_DROPPED')) throw e;
        }
        const left = deadline - Date.now();
        if (left <= 0) throw this.s.raft.leader === None ? errors.ErrGRPCNoLeader : errors.ErrGRPCTimeout;
        const res = await Promise.race([
          result,
          new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), Math.min(left, memberLimits.reproposeIntervalMs)))),
        ]);
        clearTimeout(timer);
        if (res === undefined) {
          if (this.s.raft.leader === None) await this.s.waitForLeader(Math.max(0, deadline - Date.now()));
          continue;
        }
        if (!res.ok) throw res.error;
        return;
      }
    } catch (e) {
      wait.fail(n, e instanceof Error ? e : new Error(String(e)));
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * On the leader: undefined (go on here). Elsewhere: the call answered by the leader, whose
   * view of who is connected and caught up the checks need.
   */
  private async onLeader(method: ClusterCall, req: object, forward?: grpc.Metadata): Promise<object | undefined> {
    const deadline = Date.now() + this.s.requestTimeoutMs();
    if (this.s.raft.leader === None) await this.s.waitForLeader(this.s.requestTimeoutMs());
    if (this.s.raft.isLeader()) return undefined;
    const leader = this.s.sm.membership.get(this.s.raft.leader);
    const url = leader?.clientUrls[0];
    if (!url) throw errors.ErrGRPCNoLeader;
    if (this.leaderClient?.url !== url) {
      this.leaderClient?.client.close();
      const { host, port } = hostPort(url);
      this.leaderClient = { url, client: pb.createClient('Cluster', `${host}:${port}`, memberClientCredentials(url, this.s.config.clientTls, this.s.config.peerTls)) };
    }
    try {
      const client = this.leaderClient.client;
      const res = await pb.callUnary(client, method, req as never, { deadline, ...(forward ? { metadata: forward } : {}) });
      return { ...(res as object), header: this.header() };
    } catch (e) {
      throw errors.fromServiceError(e as grpc.ServiceError) ?? e;
    }
  }

  close(): void {
    this.leaderClient?.client.close();
    this.leaderClient = undefined;
  }
}
