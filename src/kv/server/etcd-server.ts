// One member of the store: Raft node, state machine, lessor, watch hub, and the etcd v3
// gRPC services on its client URLs. The methods here are the services' semantics (the
// service files only translate calls); writes go through Raft and return once applied on
// this member; linearizable reads wait for a ReadIndex round; serializable reads are local.

import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { GrpcServer } from '../../grpc/server';
import { ConfState, DiskStorage, Emitter, isRaftError, TcpTransport, LeaderChange, Logger, None, RaftNode, StateType } from '../../raft';
import { AuthInfo, AuthStore, ClientIdentity } from '../auth';
import * as errors from '../errors';
import { Lessor, minLeaseTtlSecondsFor, expiredCheckIntervalMs } from '../lease';
import { isMvccError } from '../mvcc';
import * as pb from '../proto';
import { WatchHub, watchResponseBytesMaxFor } from '../watch';
import { ApplyResult, KvStateMachine } from './applier';
import { AuthAdmin } from './auth-admin';
import { AutoCompactor } from './compactor';
import { hostPort, parseRetentionMs, ServerConfig } from './config';
import { idToHex } from './ids';
import { Maintenance, putCost, txnCost } from './maintenance';
import { Identity, loadIdentity, peerChannelCredentials } from './identity';
import { LeaseOps } from './leases';
import { StoreSource } from './store-source';
import { MemberAdmin } from './members';
import { Membership, MembershipState } from './membership';
import { StoreMetrics } from './metrics';
import { fetchClusterView, peerMembersService } from './peer-members';
import { encodeConfContext, encodeEnvelope, InternalRequest } from './requests';
import { Gateway } from './gateway';
import { registerServices } from './services';
import { connectionTlsOptions, serverTlsOptions } from './tls';
import { checkPutRequest, checkRangeRequest, checkTxnRequest, doRange, isTxnReadOnly, readOnlyTxn } from './txn';

/** A proposal's result once applied, when it succeeded. */
type Applied = Extract<ApplyResult, { ok: true }>;

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

export const serverVersion = '3.4.23';
export const clusterVersion = '3.4.0';

/** Sizes and periods of the server, kept together. */
export const serverLimits = Object.freeze({
  /** Pending proposals of this member (etcd's maxPendingProposals-like bound, on bytes too). */
  pendingProposalsMax: 10_000,
  /** A member that applied its own removal stops this long after (etcd waits as long). */
  removedStopDelayMs: 1000,
  /** A member without a leader for this many election timeouts asks its peers whether it was removed. */
  removalCheckElectionTimeouts: 3,
});

const removedStopDelayMs = serverLimits.removedStopDelayMs;

function removalCheckIntervalMs(config: ServerConfig): number {
  return serverLimits.removalCheckElectionTimeouts * config.electionTimeoutMs;
}


export class EtcdServer {
  readonly memberId: number;
  readonly clusterId: number;
  readonly raft: RaftNode;
  readonly sm: KvStateMachine;
  readonly lessor: Lessor;
  readonly watchHub: WatchHub;
  readonly metrics = new StoreMetrics();
  readonly log: Logger;
  /** Resolves once the server has stopped. */
  readonly closed: Promise<void>;
  readonly onStop = new Emitter<void>();
  private resolveClosed!: () => void;
  private grpcServer: GrpcServer | undefined;
  private httpServers: http.Server[] = [];
  private readonly storage: DiskStorage;
  private readonly transport: TcpTransport;
  private readonly source: StoreSource;
  private seq: number;
  private timers: NodeJS.Timeout[] = [];
  private compactor: AutoCompactor | undefined;
  private stopping = false;
  /** The one timer that fails proposals past their request timeout, and when it fires. */
  private proposalTimer: NodeJS.Timeout | undefined;
  private proposalTimerAt = 0;
  private removed = false;
  private checkingRemoved = false;
  private leaderSeenMs = Date.now();
  private published = false;
  private readonly leaderWaiters = new Set<() => void>();
  /** Cluster.MemberAdd/Remove/Update/Promote. */
  readonly members: MemberAdmin;
  /** The Lease service: grant, revoke, keep-alive, time-to-live, list, and expiry. */
  readonly leases: LeaseOps;
  /** Maintenance.Snapshot/Defragment/MoveLeader and the space quota. */
  readonly maintenance: Maintenance;
  /** The Auth service, who calls run as, and the permission checks made before proposing. */
  readonly auth: AuthAdmin;
  /** Bound addresses of the client listeners (after start). */
  readonly clientAddresses: string[] = [];

  private constructor(
    readonly config: ServerConfig,
    parts: { identity: Identity; raft: RaftNode; sm: KvStateMachine; lessor: Lessor; storage: DiskStorage; transport: TcpTransport; logger: Logger },
  ) {
    this.memberId = parts.identity.memberId;
    this.clusterId = parts.identity.clusterId;
    this.raft = parts.raft;
    this.sm = parts.sm;
    this.lessor = parts.lessor;
    this.storage = parts.storage;
    this.transport = parts.transport;
    this.log = parts.logger;
    this.closed = new Promise((r) => (this.resolveClosed = r));
    // Request ids and lease ids must not repeat across restarts: start from the clock.
    this.seq = Date.now() * 1000;
    this.members = new MemberAdmin(this);
    this.maintenance = new Maintenance(this);
    this.auth = new AuthAdmin(this, config.clientTls?.clientCertAuth ?? false);
    this.leases = new LeaseOps(this);
    this.source = new StoreSource(this.sm.store);
    this.watchHub = new WatchHub({ source: this.source, responseBytesMax: watchResponseBytesMaxFor(config.maxRequestBytes) });
    this.sm.holdNotifications = () => this.watchHub.holdEvents();
    this.sm.onRestore.on((store) => {
      this.source.swap(store);
      this.watchHub.restored();
    });
    this.metrics.serverVersion.set({ server_version: serverVersion }, 1);
  }

  /** Opens (or creates) the member's data and starts serving. */
  static async start(config: ServerConfig, logger: Logger): Promise<EtcdServer> {
    const memberDir = path.join(config.dataDir, 'member');
    await fs.promises.mkdir(memberDir, { recursive: true });
    const identity = await loadIdentity(memberDir, config, logger);
    const initial = Membership.initial(config.initialCluster, config.initialClusterToken);
    // The membership is built by applying the log from its first entry (a new cluster's
    // bootstrap entries describe its founding members), as every member does the same.
    const unapplied: MembershipState = { clusterId: identity.clusterId, members: [], removed: [] };
    const electionTicks = Math.max(2, Math.round(config.electionTimeoutMs / config.heartbeatIntervalMs));
    const lessor = new Lessor({ minLeaseTtlSeconds: minLeaseTtlSecondsFor({ electionTimeoutMs: config.electionTimeoutMs, heartbeatIntervalMs: config.heartbeatIntervalMs }) });
    const auth = new AuthStore({ tokenTtlMs: config.authTokenTtlMs });
    const sm = await KvStateMachine.open({ dir: memberDir, memberId: identity.memberId, lessor, logger, initialMembership: unapplied, auth });
    const storage = await DiskStorage.open(path.join(memberDir, 'raft'), { mode: process.env.SKIFF_RAFT_LOG_WRITES === 'background' ? 'background' : 'inline' });
    if (storage.isEmpty() && config.initialClusterState === 'new' && sm.applied().index === 0) {
      const voters = initial.list().map((m) => m.id);
      const contexts = new Map(initial.list().map((m) => [m.id, encodeConfContext({ m: 0, n: 0, op: 'add', member: m })]));
      await storage.bootstrap({ voters, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false }, contexts);
      logger.info({ members: voters.map(idToHex), cluster: idToHex(identity.clusterId) }, 'bootstrapped a new cluster');
    }
    const peers = new Map<number, string>();
    for (const p of identity.joinedPeers ?? []) peers.set(p.id, p.peerUrl);
    // Until the bootstrap entries are applied, the founding members are known from the flags.
    if (sm.membership.list().length === 0 && !identity.joinedPeers) for (const m of initial.list()) peers.set(m.id, m.peerUrls[0]);
    for (const m of sm.membership.list()) peers.set(m.id, m.peerUrls[0]);
    for (const id of sm.membership.state().removed) peers.delete(id);
    const transport = new TcpTransport({
      id: identity.memberId,
      clusterId: identity.clusterId,
      listen: hostPort(config.listenPeerUrls[0]),
      peers,
      logger,
      serverTls: serverTlsOptions(config.listenPeerUrls[0], config.peerTls),
      clientTls: connectionTlsOptions(config.peerTls),
      isRemoved: (id) => sm.membership.isRemoved(id),
    });
    const raft = new RaftNode({
      id: identity.memberId,
      storage,
      stateMachine: sm,
      transport,
      tickMs: config.heartbeatIntervalMs,
      electionTimeoutTicks: electionTicks,
      heartbeatIntervalTicks: 1,
      snapshotEntriesCount: config.snapshotCount,
      logger,
    });
    const server = new EtcdServer(config, { identity, raft, sm, lessor, storage, transport, logger });
    const pm = peerMembersService(() => ({ clusterId: server.clusterId, memberId: server.memberId, membership: sm.membership.state(), appliedIndex: sm.applied().index }));
    transport.addService(pm.service, pm.implementation);
    await server.serve();
    return server;
  }

  private async serve(): Promise<void> {
    this.raft.onLeaderChange.on((c) => this.leaderChanged(c));
    this.transport.onRemoved.on(() => this.removedFromCluster());
    this.raft.onFailure.on((e) => {
      this.log.error({ err: String(e) }, 'raft failed; stopping the member');
      void this.stop();
    });
    this.sm.onConfChange.on(() => this.syncPeers());
    this.raft.onApplied.on(() => this.afterApply());
    this.raft.onFsync.on((s) => this.metrics.walFsyncSeconds.observe(s));
    // Responses to what was applied go out before the log write that follows the apply.
    this.raft.beforeBlockingWrite.on(() => this.grpcServer?.flushPending());
    this.sm.onBackendCommit.on((s) => this.metrics.backendCommitSeconds.observe(s));
    await this.raft.start();
    await this.startGrpc();
    await this.startHttp();
    this.timers.push(setInterval(() => this.leases.revokeExpired(), expiredCheckIntervalMs));
    this.timers.push(setInterval(() => this.updateMetrics(), 1000));
    this.timers.push(setInterval(() => this.sm.auth.tokens.sweep(), 10_000));
    this.timers.push(setInterval(() => void this.checkRemovedWhileCutOff(), removalCheckIntervalMs(this.config)));
    for (const t of this.timers) t.unref();
    this.startCompactor();
    this.log.info({ id: idToHex(this.memberId), cluster: idToHex(this.clusterId), client: this.clientAddresses }, 'serving client requests');
  }

  private async startGrpc(): Promise<void> {
    const maxReceive = this.config.maxRequestBytes + errors.GRPC_OVERHEAD_BYTES;
    // The client port answers HTTP/1.1 too, as etcd's does: the JSON gateway (/v3/...), and
    // /health, /version, /metrics.
    let gateway: Gateway | undefined;
    const server = new GrpcServer({
      maxReceiveMessageLength: maxReceive,
      http1: (req, res) => {
        if (!gateway?.handle(req, res)) void this.handleHttp(req, res);
      },
      onError: (e) => this.log.error({ err: e }, 'client connection closed on an internal error'),
    });
    registerServices(server, this);
    gateway = new Gateway(server, maxReceive);
    this.grpcServer = server;
    for (const url of this.config.listenClientUrls) {
      const { host, port } = hostPort(url);
      const bound = await server.listen(host, port, serverTlsOptions(url, this.config.clientTls));
      this.clientAddresses.push(`${host}:${bound}`);
    }
  }

  private async startHttp(): Promise<void> {
    for (const url of this.config.listenMetricsUrls) {
      const { host, port } = hostPort(url);
      const srv = http.createServer((req, res) => void this.handleHttp(req, res));
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(port, host, () => resolve());
      });
      this.httpServers.push(srv);
    }
  }

  private async handleHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/metrics') {
      this.updateMetrics();
      res.writeHead(200, { 'Content-Type': this.metrics.registry.contentType });
      res.end(await this.metrics.registry.metrics());
      return;
    }
    if (url.pathname === '/health') {
      const health = await this.health();
      res.writeHead(health.ok ? 200 : 503, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(health.ok ? { health: 'true', reason: '' } : { health: 'false', reason: health.reason }));
      return;
    }
    if (url.pathname === '/version') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ etcdserver: serverVersion, etcdcluster: clusterVersion }));
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('404 page not found\n');
  }

  /** etcd's /health: a leader exists, no alarm is raised, and a linearizable read succeeds. */
  async health(): Promise<{ ok: boolean; reason: string }> {
    if (this.sm.alarms.length > 0) return { ok: false, reason: `ALARM ${this.sm.alarms.map((a) => a.alarm).join(',')}` };
    if (this.raft.leader === None) return { ok: false, reason: 'RAFT NO LEADER' };
    try {
      await this.linearizableReadIndex(Math.min(this.requestTimeoutMs(), 2000));
      return { ok: true, reason: '' };
    } catch (e) {
      return { ok: false, reason: `QGET ERROR ${e instanceof Error ? e.message : String(e)}` };
    }
  }

  /** etcd's request timeout: 5 s plus two election timeouts. */
  requestTimeoutMs(): number {
    return 5000 + 2 * this.config.electionTimeoutMs;
  }

  header(revision = this.sm.store.revision): pb.ResponseHeader {
    return { cluster_id: this.clusterId, member_id: this.memberId, revision, raft_term: this.raft.rn.raft.term };
  }

  // ---- leader changes, leases, publishing, membership ----

  private leaderChanged(c: LeaderChange): void {
    this.metrics.hasLeader.set(c.lead === None ? 0 : 1);
    this.metrics.isLeader.set(c.state === StateType.Leader ? 1 : 0);
    if (c.lead !== None) this.metrics.leaderChanges.inc();
    if (c.state === StateType.Leader) {
      // A new leader gives every lease its full TTL again, plus an election timeout.
      this.lessor.promote(this.config.electionTimeoutMs);
    } else if (this.lessor.isPrimary) {
      this.lessor.demote();
    }
    if (c.lead !== None) {
      for (const w of [...this.leaderWaiters]) w();
      this.leaderWaiters.clear();
      if (!this.published) void this.publish();
    }
  }

  /** Announces this member's name and client URLs to the cluster (etcd's publish). */
  private async publish(): Promise<void> {
    this.published = true;
    try {
      await this.propose({ op: 'memberAttributes', memberId: this.memberId, name: this.config.name, clientUrls: this.config.advertiseClientUrls });
      this.log.info({ name: this.config.name, clientUrls: this.config.advertiseClientUrls }, 'published member attributes');
    } catch (e) {
      this.published = false;
      this.log.warn({ err: String(e) }, 'publish failed; will retry on the next leader change');
      const t = setTimeout(() => {
        if (!this.published && !this.stopping) void this.publish();
      }, 1000);
      t.unref();
    }
  }

  private syncPeers(): void {
    const membership = this.sm.membership;
    for (const m of membership.list()) {
      if (m.id !== this.memberId && m.peerUrls.length > 0) this.transport.addPeer(m.id, m.peerUrls[0]);
    }
    for (const id of this.transport.peerIds()) if (membership.isRemoved(id)) this.transport.removePeer(id);
    if (membership.isRemoved(this.memberId)) this.removedFromCluster();
  }

  /** etcd: a member that applies its own removal stops (after a moment, so that answers get out). */
  private removedFromCluster(): void {
    if (this.stopping || this.removed) return;
    this.removed = true;
    this.log.warn({ id: idToHex(this.memberId) }, 'the member has been permanently removed from the cluster');
    const t = setTimeout(() => void this.stop(), removedStopDelayMs);
    t.unref();
  }

  /**
   * A removed member may never see its removal committed (the leader stops replicating to
   * it): one that has had no leader for a while asks its peers, and stops if they say it
   * was removed.
   */
  private async checkRemovedWhileCutOff(): Promise<void> {
    if (this.raft.leader !== None) {
      this.leaderSeenMs = Date.now();
      return;
    }
    if (this.stopping || this.checkingRemoved || Date.now() - this.leaderSeenMs < removalCheckIntervalMs(this.config)) return;
    this.checkingRemoved = true;
    try {
      for (const m of this.sm.membership.list()) {
        if (m.id === this.memberId || m.peerUrls.length === 0) continue;
        try {
          const view = await fetchClusterView(m.peerUrls[0], this.config.electionTimeoutMs, peerChannelCredentials(this.config));
          if (view.clusterId === this.clusterId && view.membership.removed.includes(this.memberId)) {
            this.removedFromCluster();
            return;
          }
        } catch {
          // unreachable: ask the next one
        }
      }
    } finally {
      this.checkingRemoved = false;
    }
  }

  /** A fresh id for a request waiting on its Raft entry (proposals and conf changes share them). */
  nextRequestId(): number {
    return ++this.seq;
  }

  /** When the peer transport last heard from member id (ms since the epoch), 0 if never. */
  heardFromMs(id: number): number {
    return this.transport.heardFromMs(id);
  }

  private afterApply(): void {
    this.metrics.proposalsApplied.set(this.raft.applied);
    this.metrics.proposalsCommitted.set(this.raft.rn.raft.raftLog.committed);
  }

  private startCompactor(): void {
    const retention = this.config.autoCompactionRetention;
    if (retention === '0' || retention === '') return;
    this.compactor =
      this.config.autoCompactionMode === 'revision'
        ? new AutoCompactor({ mode: 'revision', keepRevisions: Number(retention) })
        : new AutoCompactor({ mode: 'periodic', retentionMs: parseRetentionMs(retention) });
    const c = this.compactor;
    const t = setInterval(() => {
      if (!this.raft.isLeader()) return;
      const rev = c.target(Date.now(), this.sm.store.revision);
      if (rev > this.sm.store.compactRevision) {
        this.compact({ revision: rev, physical: false }).then(
          () => this.log.info({ revision: rev }, 'auto compaction done'),
          (e: unknown) => this.log.debug({ revision: rev, err: String(e) }, 'auto compaction skipped'),
        );
      }
    }, c.checkIntervalMs());
    t.unref();
    this.timers.push(t);
  }

  private updateMetrics(): void {
    const w = this.watchHub.metrics();
    this.metrics.watchers.set(w.watchers);
    this.metrics.slowWatchers.set(w.slowWatchers);
    this.metrics.watchStreams.set(w.streams);
    this.metrics.keysTotal.set(this.sm.store.indexedKeyCount);
    const values = this.sm.store.valueStats();
    this.metrics.valueBytes.set({ kind: 'live' }, values.liveBytes);
    this.metrics.valueBytes.set({ kind: 'slabs' }, values.slabBytes);
    this.metrics.dbTotalSizeBytes.set(this.sm.store.dbSizeBytes());
    this.metrics.proposalsPending.set(this.sm.wait.size);
  }

  // ---- proposing and reading ----

  waitForLeader(timeoutMs: number): Promise<void> {
    if (this.raft.leader !== None) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.leaderWaiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, timeoutMs);
      this.leaderWaiters.add(done);
    });
  }

  /**
   * Proposes a request and waits until it is applied on this member. `auth` is the client
   * it is proposed for (its permissions are checked when applied); none for the server's own.
   */
  propose(r: InternalRequest, auth?: AuthInfo): Promise<Applied> {
    return new Promise((resolve, reject) => this.proposeThen(r, auth, (e, res) => (e !== undefined ? reject(e) : resolve(res!))));
  }

  /**
   * propose() without a promise: `done` is called once, with the result or the failure,
   * synchronously from the apply of the entry when it is applied (see Wait.listen); it must
   * not throw. The put path uses it: a put is the most frequent call.
   */
  proposeThen(r: InternalRequest, auth: AuthInfo | undefined, done: (err: Error | undefined, res: Applied | undefined) => void): void {
    if (this.stopping) return done(errors.ErrGRPCStopped, undefined);
    const n = ++this.seq;
    const data = encodeEnvelope(auth ? { m: this.memberId, n, r, a: auth } : { m: this.memberId, n, r });
    if (data.byteLength > this.config.maxRequestBytes) return done(errors.ErrGRPCRequestTooLarge, undefined);
    if (this.sm.wait.size >= serverLimits.pendingProposalsMax) return done(errors.ErrGRPCRequestTooManyRequests, undefined);
    const deadline = Date.now() + this.requestTimeoutMs();
    this.sm.wait.listen(n, deadline, (e, res) => {
      if (e !== undefined) done(e, undefined);
      else if (!res!.ok) {
        this.metrics.proposalsFailed.inc();
        done(res!.error, undefined);
      } else done(undefined, res!);
    });
    this.armProposalTimer(deadline);
    try {
      this.raft.propose(data);
    } catch (e) {
      if (isRaftError(e, 'ERR_PROPOSAL_DROPPED')) this.proposeWhenLeader(n, data, deadline).catch((err: unknown) => this.sm.wait.fail(n, toError(err)));
      else this.sm.wait.fail(n, toError(e));
    }
  }

  /**
   * A proposal dropped for lack of a leader (an election is going on) is proposed again as
   * soon as there is one: it never reached any log, so this cannot apply it twice. Gives up
   * when its waiter is gone (timed out, or the server stopping).
   */
  private async proposeWhenLeader(n: number, data: Uint8Array, deadline: number): Promise<void> {
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw this.raft.leader === None ? errors.ErrGRPCNoLeader : errors.ErrGRPCTimeout;
      await this.waitForLeader(Math.min(left, 50));
      if (this.raft.leader !== None) await new Promise((res) => setTimeout(res, 5));
      if (!this.sm.wait.has(n)) return;
      try {
        this.raft.propose(data);
        return;
      } catch (e) {
        if (!isRaftError(e, 'ERR_PROPOSAL_DROPPED')) throw e;
      }
    }
  }

  /** Makes sure the proposal timer fires by `deadline`: one timer for every pending proposal. */
  private armProposalTimer(deadline: number): void {
    if (this.proposalTimer !== undefined && this.proposalTimerAt <= deadline) return;
    clearTimeout(this.proposalTimer);
    this.proposalTimerAt = deadline;
    this.proposalTimer = setTimeout(() => this.expireProposals(), Math.max(0, deadline - Date.now()));
  }

  /** Fails the proposals whose request timeout passed (NoLeader while there is none, as etcd). */
  private expireProposals(): void {
    this.proposalTimer = undefined;
    const next = this.sm.wait.expire(Date.now(), () => (this.raft.leader === None ? errors.ErrGRPCNoLeader : errors.ErrGRPCTimeout));
    if (next !== undefined && !this.stopping) this.armProposalTimer(next);
  }

  async linearizableReadIndex(timeoutMs = this.requestTimeoutMs()): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.raft.leader === None ? errors.ErrGRPCNoLeader : errors.ErrGRPCTimeout), timeoutMs);
    });
    try {
      await Promise.race([this.raft.readIndex(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- KV ----

  // A client's call passes its identity (`id`); the server's own calls pass none and are
  // not checked.

  async range(req: pb.RangeRequest, id?: ClientIdentity): Promise<pb.RangeResponse> {
    checkRangeRequest(req);
    if (!req.serializable) await this.linearizableReadIndex();
    await this.auth.checkRange(id, req.key, req.range_end);
    const store = this.sm.store;
    return doRange(store, req, this.header(store.revision));
  }

  async put(req: pb.PutRequest, id?: ClientIdentity): Promise<pb.PutResponse> {
    checkPutRequest(req);
    const cost = putCost(req);
    if (!this.maintenance.withinQuota(cost)) await this.maintenance.checkQuota(cost);
    const ai = this.auth.proposerNow(id);
    return this.putResponse(await this.propose({ op: 'put', req }, ai !== null ? ai : await this.auth.proposer(id)));
  }

  /**
   * put() for the gRPC handler: the most frequent call. Its common case (within quota, no
   * token to validate) makes no promise: `done` is called from the entry's apply. It must not
   * throw.
   */
  putThen(req: pb.PutRequest, id: ClientIdentity | undefined, done: (err: unknown, res: pb.PutResponse | undefined) => void): void {
    let ai: AuthInfo | undefined | null;
    try {
      checkPutRequest(req);
      ai = this.maintenance.withinQuota(putCost(req)) ? this.auth.proposerNow(id) : null;
    } catch (e) {
      return done(e, undefined);
    }
    if (ai === null) {
      this.put(req, id).then((res) => done(undefined, res), (e: unknown) => done(e, undefined));
      return;
    }
    this.proposeThen({ op: 'put', req }, ai, (e, res) => {
      if (e !== undefined) return done(e, undefined);
      let out: pb.PutResponse;
      try {
        out = this.putResponse(res!);
      } catch (err) {
        return done(err, undefined);
      }
      done(undefined, out);
    });
  }

  private putResponse(res: Applied): pb.PutResponse {
    if (res.resp.op !== 'put') throw new Error('assertion failed: put result');
    // The applier made this response for this proposal alone.
    const out = res.resp.resp;
    out.header = this.header(res.revision);
    return out;
  }


  async deleteRange(req: pb.DeleteRangeRequest, id?: ClientIdentity): Promise<pb.DeleteRangeResponse> {
    if (req.key.length === 0) throw errors.ErrGRPCEmptyKey;
    const res = await this.propose({ op: 'deleteRange', req }, await this.auth.proposer(id));
    if (res.resp.op !== 'deleteRange') throw new Error('assertion failed: delete result');
    return { ...res.resp.resp, header: this.header(res.revision) };
  }

  async txn(req: pb.TxnRequest, id?: ClientIdentity): Promise<pb.TxnResponse> {
    checkTxnRequest(req, this.config.maxTxnOps);
    if (isTxnReadOnly(req)) {
      // Served like a range: read index, then evaluated on the local store.
      await this.linearizableReadIndex();
      await this.auth.checkTxnRead(id, req);
      const store = this.sm.store;
      const rev = store.revision;
      return readOnlyTxn(store, req, this.header(rev), { cluster_id: 0, member_id: 0, revision: rev, raft_term: 0 });
    }
    const cost = txnCost(req);
    if (cost > 0) await this.maintenance.checkQuota(cost);
    const res = await this.propose({ op: 'txn', req }, await this.auth.proposer(id));
    if (res.resp.op !== 'txn') throw new Error('assertion failed: txn result');
    return { ...res.resp.resp, header: this.header(res.revision) };
  }

  async compact(req: pb.CompactionRequest, id?: ClientIdentity): Promise<pb.CompactionResponse> {
    const res = await this.propose({ op: 'compaction', req }, await this.auth.proposer(id));
    return { header: this.header(res.revision) };
  }

  // ---- Cluster ----

  memberList(): pb.MemberListResponse {
    return {
      // etcd's ClusterServer fills only cluster id, member id and raft term: no revision.
      header: { ...this.header(), revision: 0 },
      members: this.sm.membership.list().map((m) => ({ ID: m.id, name: m.name, peerURLs: m.peerUrls, clientURLs: m.clientUrls, isLearner: m.isLearner })),
    };
  }

  // ---- Maintenance ----

  status(): pb.StatusResponse {
    const r = this.raft.rn.raft;
    const dbSize = this.sm.store.dbSizeBytes();
    return {
      header: this.header(),
      version: serverVersion,
      dbSize,
      leader: r.lead,
      raftIndex: r.raftLog.committed,
      raftTerm: r.term,
      raftAppliedIndex: this.raft.applied,
      errors: this.sm.alarms.map((a) => `memberID:${a.memberId} alarm:${a.alarm} `),
      dbSizeInUse: dbSize,
      isLearner: this.sm.membership.get(this.memberId)?.isLearner ?? false,
    } as pb.StatusResponse;
  }

  hashKV(req: pb.HashKVRequest): pb.HashKVResponse {
    try {
      const h = this.sm.store.hashKV(req.revision);
      return { header: this.header(h.revision), hash: h.hash, compact_revision: h.compactRevision } as pb.HashKVResponse;
    } catch (e) {
      if (isMvccError(e, 'ERR_COMPACTED')) throw errors.ErrGRPCCompacted;
      if (isMvccError(e, 'ERR_FUTURE_REV')) throw errors.ErrGRPCFutureRev;
      throw e;
    }
  }

  hash(): pb.HashResponse {
    const h = this.sm.store.hashKV(0);
    return { header: this.header(), hash: h.hash };
  }

  /** etcd 3.4's Alarm answers carry no header (its applier fills none, and no layer adds one). */
  async alarm(req: pb.AlarmRequest): Promise<pb.AlarmResponse> {
    if (req.action === 'GET') {
      const alarms = this.sm.alarms.filter((a) => req.alarm === 'NONE' || a.alarm === req.alarm);
      return { header: null, alarms: alarms.map((a) => ({ memberID: a.memberId, alarm: a.alarm })) };
    }
    const res = await this.propose({ op: 'alarm', req });
    if (res.resp.op !== 'alarm') throw new Error('assertion failed: alarm result');
    return { header: null, alarms: res.resp.alarms.map((a) => ({ memberID: a.memberId, alarm: a.alarm })) };
  }

  /** The configuration this member runs with (for tests and status). */
  confState(): ConfState | undefined {
    return this.sm.applied().confState;
  }

  async stop(): Promise<void> {
    if (this.stopping) return this.closed;
    this.stopping = true;
    this.log.info({}, 'stopping');
    for (const t of this.timers) clearInterval(t);
    this.leases.close();
    this.members.close();
    await this.grpcServer?.shutdown(500);
    this.log.debug({}, 'stopped serving clients');
    for (const s of this.httpServers) {
      s.close();
      s.closeAllConnections();
    }
    this.watchHub.close();
    await this.raft.stop();
    this.log.debug({}, 'stopped raft');
    this.sm.wait.failAll(errors.ErrGRPCStopped);
    clearTimeout(this.proposalTimer);
    this.proposalTimer = undefined;
    await this.sm.close();
    await this.storage.close();
    this.log.debug({}, 'closed storage');
    this.onStop.fire();
    this.resolveClosed();
  }
}
