import { status } from '@grpc/grpc-js';
import type { ClientPool, ExactMember } from '../../src/chaos/clients';
import type { ChaosCluster } from '../../src/chaos/cluster';
import type { FaultNetwork } from '../../src/chaos/fault-proxy';
import { addedUnderNewId, defaultFaultTiming, FaultTiming, Nemesis } from '../../src/chaos/faults';
import type { LeaderMonitor } from '../../src/chaos/monitor';
import { Rng } from '../../src/chaos/rng';

const peerUrl = (i: number): string => `http://127.0.0.1:${30001 + i}`;

function grpcError(code: status, details: string): Error {
  return Object.assign(new Error(details), { code, details });
}

/** The member processes: only what the member fault touches. */
class FakeCluster {
  readonly members = ['m1', 'm2', 'm3'].map((name, index) => ({ index, name, paused: false, expectExit: false, running: true }));
  readonly spawns: { member: number; state?: 'new' | 'existing' }[] = [];

  isUp(i: number): boolean {
    return this.members[i].running && !this.members[i].paused;
  }

  isRunning(i: number): boolean {
    return this.members[i].running;
  }

  spawn(i: number, state?: 'new' | 'existing'): void {
    if (this.members[i].running) throw new Error(`${this.members[i].name} already runs`);
    this.members[i].running = true;
    this.spawns.push({ member: i, state });
  }

  async kill(i: number): Promise<void> {
    this.members[i].running = false;
  }

  wipe(): void {}

  expectExit(i: number): void {
    this.members[i].expectExit = true;
  }

  resume(i: number): void {
    this.members[i].paused = false;
  }

  peerUrl(i: number): string {
    return peerUrl(i);
  }
}

/** The membership as the leader applied it; a member in `stale` answers MemberList with an old list. */
class FakeStore {
  members: ExactMember[] = [0, 1, 2].map((i) => ({ ID: String(i + 1), name: `m${i + 1}`, peerURLs: [peerUrl(i)], clientURLs: [], isLearner: false }));
  /** ok; refused ("unhealthy cluster"); lost: applied, but the answer never comes (deadline). */
  addOutcome: 'ok' | 'refused' | 'lost' = 'ok';
  /** The next MemberRemove is applied but its answer lost. */
  loseRemove = false;
  readonly removeIds: string[] = [];
  readonly stale = new Map<number, ExactMember[]>();
  adds = 0;
  removes = 0;
  private nextId = 1000;

  snapshot(): ExactMember[] {
    return this.members.map((m) => ({ ...m }));
  }

  client(i: number): object {
    return {
      memberList: async () => ({ members: this.stale.get(i) ?? this.snapshot() }),
      memberRemove: async (id: string) => {
        this.removes++;
        this.removeIds.push(id);
        if (!this.members.some((m) => m.ID === id)) throw grpcError(status.NOT_FOUND, 'etcdserver: member not found');
        this.members = this.members.filter((m) => m.ID !== id);
        if (this.loseRemove) {
          this.loseRemove = false;
          throw grpcError(status.DEADLINE_EXCEEDED, 'Deadline exceeded');
        }
        return { members: this.snapshot() };
      },
      memberAdd: async ([url]: string[]) => {
        this.adds++;
        if (this.addOutcome === 'refused') throw grpcError(status.UNAVAILABLE, 'etcdserver: unhealthy cluster');
        if (this.members.some((m) => m.peerURLs.includes(url))) throw grpcError(status.FAILED_PRECONDITION, 'etcdserver: Peer URLs already exists');
        const member = { ID: String(this.nextId++), name: '', peerURLs: [url], clientURLs: [], isLearner: false };
        this.members.push(member);
        if (this.addOutcome === 'lost') throw grpcError(status.DEADLINE_EXCEEDED, 'Deadline exceeded');
        return { member, members: this.snapshot() };
      },
    };
  }

  /** How many members list this peer URL. */
  listed(url: string): number {
    return this.members.filter((m) => m.peerURLs.includes(url)).length;
  }
}

const timing: FaultTiming = { ...defaultFaultTiming, memberRetryMs: 1, memberAddAttempts: 5, healAddMs: 50 };

function setup(t: FaultTiming = timing): { cluster: FakeCluster; store: FakeStore; nemesis: Nemesis } {
  const cluster = new FakeCluster();
  const store = new FakeStore();
  const network = { heal: () => {} } as unknown as FaultNetwork;
  const monitor = { forget: () => {}, findLeader: async () => undefined } as unknown as LeaderMonitor;
  const pool = { members: [0, 1, 2].map((i) => store.client(i)) } as unknown as ClientPool;
  const nemesis = new Nemesis(cluster as unknown as ChaosCluster, network, monitor, pool, new Rng(1), ['member'], t, () => {});
  return { cluster, store, nemesis };
}

describe('addedUnderNewId (did an add of the peer URL go through?)', () => {
  const list = [{ ID: '7', peerURLs: [peerUrl(2)] }, { ID: '1', peerURLs: [peerUrl(0)] }];

  test('an id the member was never removed under is an add', () => {
    expect(addedUnderNewId(list, peerUrl(2), new Set(['3']))).toBe(true);
  });

  test('any id it was removed under is a stale list, not only the last one', () => {
    expect(addedUnderNewId(list, peerUrl(2), new Set(['3', '7', '9']))).toBe(false);
  });

  test('another peer URL is no add', () => {
    expect(addedUnderNewId(list, peerUrl(1), new Set())).toBe(false);
  });
});

describe('the member fault (remove, wipe, add back, start)', () => {
  test('adds the member back and starts it "existing"', async () => {
    const { cluster, store, nemesis } = setup();
    await nemesis.memberFault(2);
    expect(store.removes).toBe(1);
    expect(store.adds).toBe(1);
    expect(cluster.spawns).toEqual([{ member: 2, state: 'existing' }]);
    expect(store.listed(peerUrl(2))).toBe(1);
    expect(store.members.find((m) => m.peerURLs.includes(peerUrl(2)))?.ID).not.toBe('3');
    expect(nemesis.members()).toEqual([0, 1, 2]);
  });

  test('a member whose MemberAdd is refused every time is not started and stays removed', async () => {
    const { cluster, store, nemesis } = setup();
    store.addOutcome = 'refused';
    await nemesis.memberFault(2);
    expect(store.adds).toBe(timing.memberAddAttempts);
    expect(cluster.spawns).toEqual([]);
    expect(cluster.isRunning(2)).toBe(false);
    expect(nemesis.members()).toEqual([0, 1]);
    expect(nemesis.events.at(-1)?.detail).toMatch(/m3, wiped; its add did not go through: stays removed, not started/);
  });

  test('the next member fault tries to add it back, and removes nobody', async () => {
    const { cluster, store, nemesis } = setup();
    store.addOutcome = 'refused';
    await nemesis.memberFault(2);
    await nemesis.memberFault(0);
    expect(store.removes).toBe(1);
    expect(cluster.spawns).toEqual([]);
    expect(nemesis.members()).toEqual([0, 1]);
    store.addOutcome = 'ok';
    await nemesis.memberFault(1);
    expect(store.removes).toBe(1);
    expect(cluster.spawns).toEqual([{ member: 2, state: 'existing' }]);
    expect(nemesis.members()).toEqual([0, 1, 2]);
    expect(nemesis.events.at(-1)?.detail).toMatch(/added m3 back \(an earlier add had not gone through\) and started it/);
  });

  test('stops trying at the end of the fault window (after one attempt at least)', async () => {
    const { cluster, store, nemesis } = setup({ ...timing, memberRetryMs: 5, memberAddAttempts: 1000 });
    store.addOutcome = 'refused';
    const t0 = performance.now();
    await nemesis.memberFault(2, undefined, t0 + 60);
    expect(store.adds).toBeGreaterThanOrEqual(1);
    expect(store.adds).toBeLessThan(1000);
    expect(cluster.spawns).toEqual([]);
    const before = store.adds;
    await nemesis.memberFault(0, undefined, 0);
    expect(store.adds).toBe(before + 1);
    expect(nemesis.members()).toEqual([0, 1]);
  });

  test('a stale member list naming an id from before an earlier removal is not taken for an add (seed 302)', async () => {
    const { cluster, store, nemesis } = setup();
    await nemesis.memberFault(2); // m3: id 3 removed, added back as 1000
    const lagging = store.snapshot(); // m3 listed under 1000
    await nemesis.memberFault(2); // 1000 removed, added back as 1001
    expect(cluster.spawns).toHaveLength(2);
    store.stale.set(1, lagging); // m2 has applied neither the removal of 1000 nor the add of 1001
    store.addOutcome = 'refused';
    await nemesis.memberFault(2); // 1001 removed; every add refused
    expect(store.removes).toBe(3);
    expect(cluster.spawns).toHaveLength(2);
    expect(cluster.isRunning(2)).toBe(false);
    expect(nemesis.members()).toEqual([0, 1]);
  });

  test('a MemberAdd that went through though its answer was lost is not sent again', async () => {
    const { cluster, store, nemesis } = setup();
    store.addOutcome = 'lost';
    await nemesis.memberFault(2);
    expect(store.adds).toBe(1);
    expect(store.listed(peerUrl(2))).toBe(1);
    expect(cluster.spawns).toEqual([{ member: 2, state: 'existing' }]);
    expect(nemesis.members()).toEqual([0, 1, 2]);
  });

  test('... also when the member asked first still lists the removed id', async () => {
    const { cluster, store, nemesis } = setup();
    store.stale.set(0, store.snapshot()); // m1 still lists m3 under its removed id 3
    store.addOutcome = 'lost';
    await nemesis.memberFault(2);
    expect(store.adds).toBe(1);
    expect(store.listed(peerUrl(2))).toBe(1);
    expect(cluster.spawns).toEqual([{ member: 2, state: 'existing' }]);
  });
});

describe('the removal of the member fault', () => {
  test('a lagging list naming the member under an id it was removed under is not acted on', async () => {
    const { cluster, store, nemesis } = setup();
    const before = store.snapshot(); // m3 under 3
    await nemesis.memberFault(2); // 3 removed, m3 added back as 1000
    store.stale.set(0, before); // m1 (asked first) still lists m3 under 3, not 1000
    await nemesis.memberFault(2);
    expect(store.removeIds).toEqual(['3']);
    expect(cluster.spawns).toEqual([{ member: 2, state: 'existing' }]);
    expect(cluster.isRunning(2)).toBe(true);
    expect(nemesis.members()).toEqual([0, 1, 2]);
  });

  test('a MemberRemove that went through though its answer was lost counts as a removal, even if a lagging list still names the id', async () => {
    const { cluster, store, nemesis } = setup();
    store.stale.set(0, store.snapshot()); // m1 (asked first) will not show the removal
    store.loseRemove = true;
    await nemesis.memberFault(2);
    expect(store.removeIds).toEqual(['3', '3']); // sent again: NOT_FOUND, so it is removed
    expect(cluster.spawns).toEqual([{ member: 2, state: 'existing' }]);
    expect(store.listed(peerUrl(2))).toBe(1);
    expect(store.members.find((m) => m.peerURLs.includes(peerUrl(2)))?.ID).not.toBe('3');
    expect(nemesis.members()).toEqual([0, 1, 2]);
  });
});

describe('healAll and the final phase', () => {
  test('a member whose add does not go through at the heal is not started; members() leaves it out', async () => {
    const { cluster, store, nemesis } = setup();
    store.addOutcome = 'refused';
    await nemesis.memberFault(1);
    cluster.members[0].paused = true;
    await nemesis.healAll();
    expect(cluster.members[0].paused).toBe(false);
    expect(cluster.spawns).toEqual([]);
    expect(cluster.isRunning(1)).toBe(false);
    expect(nemesis.members()).toEqual([0, 2]);
    expect(nemesis.notes).toEqual([expect.stringMatching(/^m2 stays removed: no MemberAdd of it was seen to go through/)]);
  });

  test('a member added back at the heal is started "existing" and is a member again', async () => {
    const { cluster, store, nemesis } = setup();
    store.addOutcome = 'refused';
    await nemesis.memberFault(1);
    store.addOutcome = 'ok';
    await nemesis.healAll();
    expect(cluster.spawns).toEqual([{ member: 1, state: 'existing' }]);
    expect(nemesis.members()).toEqual([0, 1, 2]);
    expect(nemesis.notes).toEqual([]);
  });
});
