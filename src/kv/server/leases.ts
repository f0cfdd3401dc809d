// The Lease service's semantics (etcd 3.4): grant and revoke go through Raft; keep-alives
// are answered by the leader's lessor (a follower forwards them to the leader's client URL,
// as etcd does); time-to-live is asked of the leader; expired leases are revoked by the
// leader only.

import * as grpc from '@grpc/grpc-js';
import { Logger, None, RaftNode, StateType } from '../../raft';
import { AuthAdmin } from './auth-admin';
import { ClientIdentity } from '../auth';
import * as errors from '../errors';
import { expiredLeasesPerCheckMax, isLeaseError, Lessor } from '../lease';
import * as pb from '../proto';
import { ApplyResult, KvStateMachine, mapLeaseError } from './applier';
import { hostPort, ServerConfig } from './config';
import { idToHex } from './ids';
import { leaseGrantCost, Maintenance } from './maintenance';
import { StoreMetrics } from './metrics';
import { InternalRequest } from './requests';
import { memberClientCredentials } from './tls';
import type { AuthInfo } from '../auth';

export const leaseLimits = Object.freeze({
  /** A keep-alive or time-to-live forwarded to the leader waits this long for its answer. */
  forwardTimeoutMs: 5000,
});

/** What the lease operations need from the server. */
export interface LeaseHost {
  readonly memberId: number;
  readonly config: ServerConfig;
  readonly raft: RaftNode;
  readonly sm: KvStateMachine;
  readonly lessor: Lessor;
  readonly metrics: StoreMetrics;
  readonly maintenance: Maintenance;
  readonly auth: AuthAdmin;
  readonly log: Logger;
  header(revision?: number): pb.ResponseHeader;
  propose(r: InternalRequest, auth?: AuthInfo): Promise<Extract<ApplyResult, { ok: true }>>;
  requestTimeoutMs(): number;
  waitForLeader(timeoutMs: number): Promise<void>;
}

export class LeaseOps {
  /** A clock-seeded counter: lease ids must not repeat across restarts. */
  private idSeq = (Date.now() % 2 ** 32) * 256;
  private leaderLease: { url: string; client: pb.ServiceClient<'Lease'> } | undefined;

  constructor(private readonly host: LeaseHost) {}

  /** On the leader: proposes revokes of the leases that expired (called periodically). */
  revokeExpired(): void {
    // A leader that was paused (SIGSTOP, a stuck disk) comes back with every lease expired
    // by its clock, and may step down while its revokes are on their way: forwarded to the
    // next leader, which kept those leases alive, they would end them (etcd#15247). So only
    // the Raft core's leader revokes, naming its term, and the applier ignores the revoke
    // in an entry of any other term.
    const core = this.host.raft.rn.raft;
    if (!this.host.raft.isLeader() || core.state !== StateType.Leader) return;
    const leaderTerm = core.term;
    for (const id of this.host.lessor.expired(expiredLeasesPerCheckMax)) {
      this.host.propose({ op: 'leaseRevoke', req: { ID: id }, leaderTerm }).then(
        () => this.host.metrics.leasesRevoked.inc(),
        (e: unknown) => this.host.log.debug({ lease: idToHex(id), err: String(e) }, 'revoking an expired lease failed; will retry'),
      );
    }
  }


  private nextId(): number {
    // 13 bits of the member id, 40 bits of a clock-seeded counter: unique per member and
    // below 2^53, so that ids stay exact on the wire.
    this.idSeq = (this.idSeq + 1) % 2 ** 40;
    return (this.host.memberId % 8192) * 2 ** 40 + this.idSeq || 1;
  }

  async grant(req: pb.LeaseGrantRequest, client?: ClientIdentity): Promise<pb.LeaseGrantResponse> {
    if (!pb.isWireSafeId(req.ID)) throw errors.ErrGRPCLeaseNotFound;
    await this.host.maintenance.checkQuota(leaseGrantCost());
    const id = req.ID === 0 ? this.nextId() : req.ID;
    const res = await this.host.propose({ op: 'leaseGrant', req: { ID: id, TTL: req.TTL } }, await this.host.auth.proposer(client));
    if (res.resp.op !== 'leaseGrant') throw new Error('assertion failed: lease grant result');
    this.host.metrics.leasesGranted.inc();
    return { header: this.host.header(res.revision), ID: res.resp.id, TTL: res.resp.ttl, error: '' };
  }

  async revoke(req: pb.LeaseRevokeRequest, id?: ClientIdentity): Promise<pb.LeaseRevokeResponse> {
    const res = await this.host.propose({ op: 'leaseRevoke', req }, await this.host.auth.proposer(id));
    this.host.metrics.leasesRevoked.inc();
    return { header: this.host.header(res.revision) };
  }

  private leaderClient(): pb.ServiceClient<'Lease'> {
    const leader = this.host.sm.membership.get(this.host.raft.leader);
    const url = leader?.clientUrls[0];
    if (!url) throw errors.ErrGRPCNoLeader;
    if (this.leaderLease?.url !== url) {
      this.leaderLease?.client.close();
      const { host, port } = hostPort(url);
      this.leaderLease = { url, client: pb.createClient('Lease', `${host}:${port}`, memberClientCredentials(url, this.host.config.clientTls, this.host.config.peerTls)) };
    }
    return this.leaderLease.client;
  }

  /** Keep-alive: on the leader, renews; on a follower, forwarded to the leader (as etcd does). */
  async renew(id: number): Promise<pb.LeaseKeepAliveResponse> {
    const deadline = Date.now() + this.host.requestTimeoutMs();
    for (;;) {
      if (this.host.raft.isLeader()) {
        try {
          const ttl = this.host.lessor.renew(id);
          return { header: this.host.header(), ID: id, TTL: ttl };
        } catch (e) {
          if (isLeaseError(e, 'ERR_LEASE_NOT_FOUND')) return { header: this.host.header(), ID: id, TTL: 0 };
          if (isLeaseError(e, 'ERR_LEASE_EXPIRED')) {
            // Revoke pending: wait for it to settle (etcd's Renew waits on the revoke).
            const outcome = await this.host.lessor.whenExpiredSettles(id);
            if (outcome === 'revoked') return { header: this.host.header(), ID: id, TTL: 0 };
            continue;
          }
          if (!isLeaseError(e, 'ERR_NOT_PRIMARY')) throw mapLeaseError(e);
        }
      } else if (this.host.raft.leader !== None) {
        return this.forwardKeepAlive(id);
      }
      if (Date.now() > deadline) throw errors.ErrGRPCNoLeader;
      await this.host.waitForLeader(Math.min(100, deadline - Date.now()));
    }
  }

  private forwardKeepAlive(id: number): Promise<pb.LeaseKeepAliveResponse> {
    const client = this.leaderClient();
    return new Promise((resolve, reject) => {
      const call = (client as unknown as { LeaseKeepAlive(opts: object): grpc.ClientDuplexStream<pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse> }).LeaseKeepAlive({
        deadline: Date.now() + leaseLimits.forwardTimeoutMs,
      });
      call.on('data', (resp: pb.LeaseKeepAliveResponse) => {
        resolve({ ...resp, header: this.host.header() });
        call.end();
      });
      call.on('error', (e: Error) => reject(errors.fromServiceError(e) ?? errors.ErrGRPCNoLeader));
      call.on('end', () => reject(errors.ErrGRPCNoLeader));
      call.write({ ID: id });
    });
  }

  async timeToLive(req: pb.LeaseTimeToLiveRequest): Promise<pb.LeaseTimeToLiveResponse> {
    if (!this.host.raft.isLeader() && this.host.raft.leader !== None) {
      // The remaining TTL is known on the leader only: ask it (as etcd does).
      try {
        const resp = await pb.callUnary(this.leaderClient(), 'LeaseTimeToLive', req, { deadline: Date.now() + leaseLimits.forwardTimeoutMs });
        return { ...resp, header: this.host.header() };
      } catch (e) {
        const mapped = errors.fromServiceError(e as grpc.ServiceError);
        if (mapped) throw mapped;
        // Leader unreachable: answer from local state.
      }
    }
    try {
      const t = this.host.lessor.timeToLive(req.ID, req.keys);
      return { header: this.host.header(), ID: req.ID, TTL: t.ttlSeconds, grantedTTL: t.grantedTtlSeconds, keys: t.keys.map((k) => Buffer.from(k)) };
    } catch (e) {
      if (isLeaseError(e, 'ERR_LEASE_NOT_FOUND')) return { header: this.host.header(), ID: req.ID, TTL: -1, grantedTTL: 0, keys: [] };
      throw mapLeaseError(e);
    }
  }

  list(): pb.LeaseLeasesResponse {
    return { header: this.host.header(), leases: this.host.lessor.leases().map((l) => ({ ID: l.id })) };
  }

  close(): void {
    this.leaderLease?.client.close();
    this.leaderLease = undefined;
  }
}
