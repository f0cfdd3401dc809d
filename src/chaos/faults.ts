// The fault schedule: after a quiet spell, one fault at a time, held for a while and then
// healed. Kinds:
//   kill       kill -9 of the leader or of a random member; restarted on the same data
//   pause      SIGSTOP of the leader or of a random member; SIGCONT later
//   partition  through the proxies: a random majority/minority split, the leader isolated,
//              or a bridge (two sides that only one member connects); connections cut or
//              black-holed; sometimes a slow network (delays on every link) instead
//   member     a member removed (MemberRemove), its data wiped, added back (MemberAdd) and
//              started to join the running cluster; skipped when the store answers
//              UNIMPLEMENTED. A member whose add does not go through (refused until the
//              attempts or the fault window run out) is not started: it stays removed, the
//              next member fault tries to add it back, and the final phase leaves it out.
// Every random choice of a step is drawn before the step runs, in the same order, so the
// plan depends on the seed only (who leads at the time is the cluster's business).

import { status as grpcStatus } from '@grpc/grpc-js';
import type { ClientPool, ExactMember } from './clients';
import { errorText, grpcCode, sleep } from './clients';
import type { ChaosCluster } from './cluster';
import type { FaultNetwork, LinkRule } from './fault-proxy';
import { nowMs } from './history';
import type { LeaderMonitor } from './monitor';
import type { Rng } from './rng';

export type FaultKind = 'kill' | 'pause' | 'partition' | 'member';
export const faultKinds: readonly FaultKind[] = ['kill', 'pause', 'partition', 'member'];

export interface FaultEvent {
  kind: FaultKind;
  detail: string;
  startMs: number;
  endMs: number;
}

export interface FaultTiming {
  quietMsMin: number;
  quietMsMax: number;
  holdMsMin: number;
  holdMsMax: number;
  /** Between two attempts of a MemberAdd (and before the first, after the wipe). */
  memberRetryMs: number;
  /** Attempts of a MemberAdd per try at adding a member back. */
  memberAddAttempts: number;
  /** How long healAll keeps trying to add a removed member back. */
  healAddMs: number;
}

export const defaultFaultTiming: FaultTiming = Object.freeze({ quietMsMin: 1000, quietMsMax: 3000, holdMsMin: 800, holdMsMax: 4500, memberRetryMs: 500, memberAddAttempts: 31, healAddMs: 30_000 });

/**
 * Whether a member list shows peerUrl added under a new id: any id but those the member was
 * removed under. A member that has not applied the latest changes yet may still list an
 * id the member had before any of its removals, not just the last one.
 */
export function addedUnderNewId(list: readonly Pick<ExactMember, 'ID' | 'peerURLs'>[], peerUrl: string, formerIds: ReadonlySet<string>): boolean {
  return list.some((x) => x.peerURLs.includes(peerUrl) && !formerIds.has(x.ID));
}

/** One step's random draws, all taken up front. */
interface Draws {
  kind: FaultKind;
  quietMs: number;
  holdMs: number;
  targetLeader: boolean;
  targetPick: number;
  shape: number;
  ruleKind: number;
  shuffle: number[];
  delayMs: number;
}

export class Nemesis {
  readonly events: FaultEvent[] = [];
  /** When the leader was killed or cut off from a majority (failover starts). */
  readonly failoverStarts: { atMs: number; what: string }[] = [];
  /** When the leader could not act (killed, paused, cut off) or may be deposed (any partition). */
  readonly leaderDisruptions: { startMs: number; endMs: number; what: string }[] = [];
  readonly notes: string[] = [];
  private kinds: FaultKind[];
  private running = true;
  private memberUnsupported = false;
  /** Members removed from the cluster whose add has not gone through: not members, not started. */
  private readonly removed = new Set<number>();
  /** Every id each member was removed under (a lagging member may still list any of them). */
  private readonly formerIds = new Map<number, Set<string>>();
  /** The end of the fault window (run()): a member fault stops trying to add a member back then. */
  private untilMs = Infinity;

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly network: FaultNetwork,
    private readonly monitor: LeaderMonitor,
    private readonly pool: ClientPool,
    private readonly rng: Rng,
    kinds: readonly FaultKind[],
    private readonly timing: FaultTiming,
    private readonly log: (line: string) => void,
  ) {
    this.kinds = [...kinds];
  }

  stop(): void {
    this.running = false;
  }

  /** The cluster's members as the harness knows them: all but those removed and not added back. */
  members(): number[] {
    return this.cluster.members.map((_, i) => i).filter((i) => !this.removed.has(i));
  }

  private draw(): Draws {
    const r = this.rng;
    return {
      kind: r.pick(this.kinds.length > 0 ? this.kinds : faultKinds),
      quietMs: r.range(this.timing.quietMsMin, this.timing.quietMsMax),
      holdMs: r.range(this.timing.holdMsMin, this.timing.holdMsMax),
      targetLeader: r.chance(0.5),
      targetPick: r.float(),
      shape: r.float(),
      ruleKind: r.float(),
      shuffle: r.shuffle(this.cluster.members.map((_, i) => i)),
      delayMs: r.range(20, 150),
    };
  }

  /** Runs faults until untilMs (or stop()); the last one is healed before it returns. */
  async run(untilMs: number): Promise<void> {
    this.untilMs = untilMs;
    while (this.running && this.kinds.length > 0) {
      const d = this.draw();
      await this.sleepUntil(Math.min(untilMs, nowMs() + d.quietMs));
      if (!this.running || nowMs() >= untilMs) break;
      if (d.kind === 'member' && this.memberUnsupported) continue;
      try {
        await this.step(d);
      } catch (e) {
        this.log(`fault ${d.kind} failed: ${String(e)}`);
      }
    }
  }

  private async sleepUntil(t: number): Promise<void> {
    while (this.running && nowMs() < t) await sleep(Math.min(200, t - nowMs()));
  }

  private quorum(): number {
    return Math.floor(this.cluster.members.length / 2) + 1;
  }

  private async step(d: Draws): Promise<void> {
    const n = this.cluster.members.length;
    const leader = await this.monitor.findLeader();
    const candidates = this.cluster.members.map((_, i) => i).filter((i) => this.cluster.isUp(i) && !this.removed.has(i));
    if (candidates.length === 0) return;
    const target = d.targetLeader && leader !== undefined ? leader : candidates[Math.floor(d.targetPick * candidates.length)];
    const name = (i: number): string => `${this.cluster.members[i].name}${i === leader ? ' (leader)' : ''}`;
    const startMs = nowMs();
    switch (d.kind) {
      case 'kill': {
        this.log(`fault: kill -9 ${name(target)}`);
        if (target === leader) this.failoverStarts.push({ atMs: startMs, what: `kill -9 ${name(target)}` });
        await this.cluster.kill(target);
        await this.sleepUntil(startMs + d.holdMs);
        this.cluster.spawn(target);
        this.log(`fault: restarted ${this.cluster.members[target].name}`);
        this.events.push({ kind: 'kill', detail: `kill -9 ${name(target)}, restarted after ${Math.round(nowMs() - startMs)} ms`, startMs, endMs: nowMs() });
        if (target === leader) this.leaderDisruptions.push({ startMs, endMs: nowMs(), what: 'kill' });
        return;
      }
      case 'pause': {
        this.log(`fault: SIGSTOP ${name(target)}`);
        this.cluster.pause(target);
        await this.sleepUntil(startMs + d.holdMs);
        this.cluster.resume(target);
        this.log(`fault: SIGCONT ${this.cluster.members[target].name}`);
        this.events.push({ kind: 'pause', detail: `SIGSTOP ${name(target)} for ${Math.round(nowMs() - startMs)} ms`, startMs, endMs: nowMs() });
        if (target === leader) this.leaderDisruptions.push({ startMs, endMs: nowMs(), what: 'pause' });
        return;
      }
      case 'partition': {
        const rule: LinkRule = d.ruleKind < 0.7 ? { kind: 'cut' } : { kind: 'drop' };
        let detail: string;
        // Which members the leader can still reach (itself included).
        let leaderReach = n;
        if (d.shape < 0.15) {
          const delay: LinkRule = { kind: 'delay', delayMs: d.delayMs, jitterMs: Math.round(d.delayMs / 2) };
          for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) if (a !== b) this.network.setRule(a, b, delay);
          detail = `slow network: ${d.delayMs} ms (+ up to ${Math.round(d.delayMs / 2)} ms) on every link`;
        } else if (d.shape < 0.5) {
          const others = this.cluster.members.map((_, i) => i).filter((i) => i !== target);
          this.network.partition([[target], others], rule);
          detail = `${rule.kind} ${name(target)} from the rest`;
          if (target === leader) leaderReach = 1;
        } else if (d.shape < 0.8) {
          const minoritySize = 1 + Math.floor(d.targetPick * Math.floor((n - 1) / 2));
          const minority = d.shuffle.slice(0, minoritySize);
          const majority = d.shuffle.slice(minoritySize);
          this.network.partition([minority, majority], rule);
          detail = `${rule.kind} {${minority.map(name).join(',')}} | {${majority.map(name).join(',')}}`;
          if (leader !== undefined && minority.includes(leader)) leaderReach = minority.length;
        } else {
          // A bridge: two sides that reach each other only through one member.
          const bridge = d.shuffle[0];
          const rest = d.shuffle.slice(1);
          const left = rest.slice(0, Math.ceil(rest.length / 2));
          const right = rest.slice(Math.ceil(rest.length / 2));
          for (const a of left) {
            for (const b of right) {
              this.network.setRule(a, b, rule);
              this.network.setRule(b, a, rule);
            }
          }
          detail = `${rule.kind} bridge {${left.map(name).join(',')}} - ${name(bridge)} - {${right.map(name).join(',')}}`;
          if (leader !== undefined && leader !== bridge) leaderReach = 1 + (left.includes(leader) ? left.length : right.length);
        }
        this.log(`fault: partition: ${detail}`);
        if (leader !== undefined && leaderReach < this.quorum()) this.failoverStarts.push({ atMs: startMs, what: `partition: ${detail}` });
        await this.sleepUntil(startMs + d.holdMs + 500);
        this.network.heal();
        this.log('fault: network healed');
        this.events.push({ kind: 'partition', detail: `${detail} for ${Math.round(nowMs() - startMs)} ms`, startMs, endMs: nowMs() });
        // Also when the leader kept a majority: a cut-off member that campaigned meanwhile
        // comes back with a higher term and deposes the leader (no PreVote in etcd 3.4).
        this.leaderDisruptions.push({ startMs, endMs: nowMs(), what: 'partition' });
        return;
      }
      case 'member':
        await this.memberFault(target === leader ? candidates.find((i) => i !== leader) ?? target : target, name);
        return;
    }
  }

  /**
   * The member fault: if a member is still removed (its add did not go through), another try
   * at adding it back; else target removed, wiped and added back. Adding back stops trying
   * at deadlineMs (the end of the fault window).
   */
  async memberFault(target: number, name: (i: number) => string = (i) => this.cluster.members[i].name, deadlineMs = this.untilMs): Promise<void> {
    const pending = [...this.removed][0];
    if (pending === undefined) return this.replaceMember(target, name, deadlineMs);
    const startMs = nowMs();
    const m = this.cluster.members[pending];
    const added = await this.addBack(pending, deadlineMs);
    const detail = added ? `added ${m.name} back (an earlier add had not gone through) and started it` : `${m.name} still not added back: stays removed, not started`;
    this.events.push({ kind: 'member', detail: `${detail} (${Math.round(nowMs() - startMs)} ms)`, startMs, endMs: nowMs() });
  }

  /** Removes a member, wipes it, and adds it back as a new member. */
  private async replaceMember(target: number, name: (i: number) => string, deadlineMs: number): Promise<void> {
    const startMs = nowMs();
    const m = this.cluster.members[target];
    const via = this.cluster.members.map((_, i) => i).filter((i) => i !== target && this.cluster.isUp(i));
    if (via.length === 0) return;
    const client = this.pool.members[via[0]];
    const formerIds = this.formerIdsOf(target);
    let id: string | undefined;
    try {
      // An id it was removed under is a lagging member's list: not a member to remove.
      const list = await client.memberList(2000);
      id = list.members.find((x) => (x.name === m.name || x.peerURLs.includes(this.cluster.peerUrl(target))) && !formerIds.has(x.ID))?.ID;
    } catch (e) {
      if (this.unsupported(e)) return;
      this.log(`fault: member list failed: ${errorText(e)}`);
      return;
    }
    if (id === undefined) {
      this.log(`fault: ${m.name} is not in the member list`);
      return;
    }
    this.log(`fault: remove member ${name(target)} (${id})`);
    try {
      this.cluster.expectExit(target);
      await client.memberRemove(id, 5000);
    } catch (e) {
      if (this.unsupported(e)) return;
      this.log(`fault: member remove failed: ${errorText(e)}`);
      if (!(await this.removedAfterAll(target, id))) {
        m.expectExit = false;
        this.events.push({ kind: 'member', detail: `remove ${m.name} failed: ${errorText(e)}`, startMs, endMs: nowMs() });
        return;
      }
    }
    this.removed.add(target);
    formerIds.add(id);
    await this.cluster.kill(target);
    this.cluster.wipe(target);
    this.monitor.forget(target);
    const added = await this.addBack(target, deadlineMs);
    const detail = added ? `removed ${m.name}, wiped, added back and started` : `removed ${m.name}, wiped; its add did not go through: stays removed, not started`;
    this.events.push({ kind: 'member', detail: `${detail} (${Math.round(nowMs() - startMs)} ms)`, startMs, endMs: nowMs() });
  }

  /**
   * After a MemberRemove that failed: whether the member is removed all the same (its answer
   * lost). The remove is sent again through the other members: answered, or refused with
   * NOT_FOUND (id was a member, as a member list named it, and is not one now), it is
   * removed. Else, as before, only if the first member's list no longer names the id (a
   * lagging member may still name it, so this alone would keep a removed member).
   */
  private async removedAfterAll(target: number, id: string): Promise<boolean> {
    const m = this.cluster.members[target];
    const via = this.cluster.members.map((_, i) => i).filter((i) => i !== target && this.cluster.isUp(i));
    for (let attempt = 0; attempt < 2 && via.length > 0; attempt++) {
      await sleep(this.timing.memberRetryMs);
      try {
        await this.pool.members[via[attempt % via.length]].memberRemove(id, 5000);
        return true;
      } catch (e) {
        if (grpcCode(e) === grpcStatus.NOT_FOUND) return true;
        this.log(`fault: member remove of ${m.name} failed again: ${errorText(e)}`);
      }
    }
    const list = via.length > 0 ? await this.pool.members[via[0]].memberList(2000).catch(() => undefined) : undefined;
    return list !== undefined && !list.members.some((x) => x.ID === id);
  }

  private formerIdsOf(i: number): Set<string> {
    let ids = this.formerIds.get(i);
    if (ids === undefined) this.formerIds.set(i, (ids = new Set()));
    return ids;
  }

  /**
   * MemberAdd of a removed member, retried until it goes through, the attempts run out or
   * deadlineMs passes; the member is started on its empty data only if it went through.
   * Before every attempt the member lists of all members up are read: one that shows the
   * peer URL under a new id means an earlier attempt went through though its answer was
   * lost (a MemberAdd of a peer URL the cluster has is refused anyway).
   */
  private async addBack(target: number, deadlineMs: number): Promise<boolean> {
    const m = this.cluster.members[target];
    const url = this.cluster.peerUrl(target);
    const formerIds = this.formerIdsOf(target);
    let added = false;
    let attempts = 0;
    let lastError = 'no member up to ask';
    for (;;) {
      await sleep(this.timing.memberRetryMs);
      const via = this.cluster.members.map((_, i) => i).filter((i) => i !== target && this.cluster.isUp(i));
      const lists = await Promise.all(via.map((i) => this.pool.members[i].memberList(2000).catch(() => undefined)));
      if (lists.some((l) => l !== undefined && addedUnderNewId(l.members, url, formerIds))) {
        added = true;
        break;
      }
      // At least one attempt, even past the deadline (a member fault late in the window).
      if (attempts >= this.timing.memberAddAttempts || (attempts > 0 && nowMs() >= deadlineMs)) break;
      attempts++;
      if (via.length > 0) {
        const client = this.pool.members[via[(attempts - 1) % via.length]];
        try {
          await client.memberAdd([url], 5000);
          added = true;
          break;
        } catch (e) {
          lastError = errorText(e);
          this.log(`fault: member add of ${m.name} failed: ${lastError}`);
        }
      }
    }
    if (!added) {
      this.log(`fault: ${m.name} not added back after ${attempts} attempts (last: ${lastError}); it stays removed and is not started`);
      return false;
    }
    this.cluster.spawn(target, 'existing');
    this.removed.delete(target);
    this.log(`fault: added ${m.name} back and started it`);
    return true;
  }

  private unsupported(e: unknown): boolean {
    if (grpcCode(e) !== grpcStatus.UNIMPLEMENTED) return false;
    this.memberUnsupported = true;
    this.kinds = this.kinds.filter((k) => k !== 'member');
    const note = `membership faults skipped: the store answers UNIMPLEMENTED (${errorText(e)})`;
    this.notes.push(note);
    this.log(note);
    return true;
  }

  /**
   * Ends every fault: network healed, paused members resumed, stopped ones started, removed
   * ones added back (tried for healAddMs; one whose add does not go through stays removed,
   * and members() leaves it out).
   */
  async healAll(): Promise<void> {
    this.network.heal();
    for (let i = 0; i < this.cluster.members.length; i++) {
      if (this.removed.has(i)) continue;
      if (this.cluster.members[i].paused) this.cluster.resume(i);
      if (!this.cluster.isRunning(i)) this.cluster.spawn(i);
    }
    for (const i of [...this.removed]) {
      if (await this.addBack(i, nowMs() + this.timing.healAddMs)) continue;
      const note = `${this.cluster.members[i].name} stays removed: no MemberAdd of it was seen to go through; not started, not restarted or read back at the end`;
      this.notes.push(note);
      this.log(note);
    }
  }
}
