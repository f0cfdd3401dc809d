// Durability of acknowledged writes across crashes of real skiff processes: writers keep
// putting unique keys through all three members while a follower, then the leader, then
// every member at once is killed with SIGKILL and restarted from its data directory.
// Every put that was acknowledged must be there afterwards, with its value, on every member,
// and the members must agree (same revision, same HashKV). A second test restarts a member
// that missed enough entries that the leader had to send it a snapshot.

import { Etcd3, IKeyValue } from 'etcd3';
import { StoreCluster } from '../helpers/cluster';
import { killStrayMembers, MemberClients, sleep, waitFor } from '../helpers/store-client';

jest.setTimeout(90_000);

const clusters: StoreCluster[] = [];
const clients: MemberClients[] = [];

afterAll(async () => {
  for (const c of clients) c.close();
  // stop() ends every member by pid; data is removed unless the test failed (kept for the logs).
  await Promise.all(clusters.map((c) => c.stop({ keepData: process.env.SKIFF_KEEP_TEST_DATA === '1' })));
  killStrayMembers();
});

async function startCluster(flags: string[] = []): Promise<{ cluster: StoreCluster; members: MemberClients }> {
  const cluster = await StoreCluster.start({ kind: 'skiff', members: 3, flags });
  clusters.push(cluster);
  const members = new MemberClients(cluster);
  clients.push(members);
  return { cluster, members };
}

interface Ack {
  sentAtMs: number;
  ackAtMs: number;
  member: number;
}

/**
 * Writer loops, each putting its own unique keys, starting on member (w mod 3) and moving to
 * the next member after an error. A put that fails has an unknown outcome: it may or may
 * not be stored, but if it is, it has the value sent.
 */
class Writers {
  readonly acked = new Map<string, string>();
  readonly uncertain = new Map<string, string>();
  readonly acks: Ack[] = [];
  errors = 0;
  private stopped = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly members: MemberClients,
    private readonly opts: { writers: number; putsPerWriterMax: number; deadlineMs: number; putTimeoutMs: number; prefix: string },
  ) {}

  start(): void {
    const deadline = Date.now() + this.opts.deadlineMs;
    this.loops = Array.from({ length: this.opts.writers }, (_, w) => this.loop(w, deadline));
  }

  private async loop(w: number, deadline: number): Promise<void> {
    let member = w % this.members.members.length;
    for (let seq = 0; seq < this.opts.putsPerWriterMax && !this.stopped && Date.now() < deadline; seq++) {
      const key = `${this.opts.prefix}w${w}/${String(seq).padStart(6, '0')}`;
      const value = `${w}:${seq}:${Math.random().toString(36).slice(2)}`;
      const sentAtMs = Date.now();
      try {
        await this.members.put(member, key, value, this.opts.putTimeoutMs);
        this.acked.set(key, value);
        this.acks.push({ sentAtMs, ackAtMs: Date.now(), member });
      } catch {
        this.uncertain.set(key, value);
        this.errors++;
        member = (member + 1) % this.members.members.length;
        await sleep(20);
      }
    }
  }

  /** Acknowledged puts so far. */
  get count(): number {
    return this.acked.size;
  }

  /** The first acknowledgement of a put sent at or after `t` (ms since the epoch). */
  firstAckSentAfter(t: number): Ack | undefined {
    let best: Ack | undefined;
    for (const a of this.acks) if (a.sentAtMs >= t && (best === undefined || a.ackAtMs < best.ackAtMs)) best = a;
    return best;
  }

  async waitForAcks(n: number, timeoutMs: number): Promise<void> {
    const target = this.count + n;
    await waitFor(`${n} more acknowledged puts`, async () => (this.count >= target ? true : undefined), { timeoutMs, intervalMs: 20 });
  }

  /** Waits for the loops to run to their bounds. */
  async done(): Promise<void> {
    await Promise.all(this.loops);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}

/** Reads the prefix on every member (locally) and checks it against the writers' records. */
async function checkAllPresent(members: MemberClients, writers: Writers, prefix: string): Promise<void> {
  const rangeEnd = Buffer.from(prefix);
  rangeEnd[rangeEnd.length - 1]++;
  for (const i of members.running()) {
    const res = await members.rangeLocal(i, { key: Buffer.from(prefix), range_end: rangeEnd }, 20_000);
    const stored = new Map(res.kvs.map((kv) => [kv.key.toString(), kv.value.toString()]));
    const missing = [...writers.acked].filter(([k, v]) => stored.get(k) !== v);
    expect({ member: i, missing: missing.slice(0, 10), missingCount: missing.length }).toEqual({ member: i, missing: [], missingCount: 0 });
    const unexpected = [...stored].filter(([k, v]) => writers.acked.get(k) !== v && writers.uncertain.get(k) !== v);
    expect({ member: i, unexpected: unexpected.slice(0, 10) }).toEqual({ member: i, unexpected: [] });
  }
}

/** The members' revision once converged, and that their HashKVs at it are equal. */
async function checkMembersAgree(members: MemberClients): Promise<number> {
  const revision = await members.waitConverged(30_000);
  const hashes = await Promise.all(members.running().map((i) => members.hashKV(i, revision)));
  const distinct = new Set(hashes.map((h) => `${h.hash}/${h.compact_revision}`));
  expect({ revision, hashes: [...distinct] }).toEqual({ revision, hashes: [...distinct].slice(0, 1) });
  expect(members.running().length).toBe(3);
  return revision;
}

test('acknowledged puts survive kill -9 of a follower, of the leader, and of every member at once', async () => {
  const { cluster, members } = await startCluster();
  const prefix = 'dur/';
  // A put forwarded to a leader that then dies is lost and would wait for the server's
  // request timeout (7 s, as etcd's): writers give up after 1 s and go on with a new key.
  const writers = new Writers(members, { writers: 8, putsPerWriterMax: 20_000, deadlineMs: 60_000, putTimeoutMs: 1000, prefix });
  writers.start();
  try {
    await writers.waitForAcks(200, 10_000);

    // A follower dies and comes back; writes go on meanwhile.
    const leader1 = await members.findLeader();
    const follower = [0, 1, 2].find((i) => i !== leader1.index)!;
    await cluster.kill(follower, 'SIGKILL');
    await writers.waitForAcks(300, 10_000);
    cluster.spawnMember(follower);
    await cluster.waitHealthy();
    await writers.waitForAcks(200, 10_000);

    // The leader dies: writes resume once another member leads.
    const leader2 = await members.findLeader();
    const killedAtMs = Date.now();
    await cluster.kill(leader2.index, 'SIGKILL');
    const survivors = [0, 1, 2].filter((i) => i !== leader2.index);
    const [electedMs, resumed] = await Promise.all([
      waitFor(
        'a survivor to know a new leader',
        async () => {
          for (const i of survivors) {
            const st = await members.status(i, 200).catch(() => undefined);
            if (st && st.leader !== 0 && st.leader !== leader2.id) return Date.now() - killedAtMs;
          }
          return undefined;
        },
        { timeoutMs: 15_000, intervalMs: 10 },
      ),
      waitFor('a put sent after the leader died to be acknowledged', async () => writers.firstAckSentAfter(killedAtMs), { timeoutMs: 15_000, intervalMs: 10 }),
    ]);
    const leader3 = await members.findLeader();
    const failoverMs = resumed.ackAtMs - killedAtMs;
    // eslint-disable-next-line no-console
    console.log(
      `leader m${leader2.index + 1} (term ${leader2.term}) killed: a new leader known after ${electedMs} ms, first put sent after the kill acknowledged after ${failoverMs} ms (through m${resumed.member + 1}); new leader m${leader3.index + 1} (term ${leader3.term}); ${writers.errors} failed puts so far`,
    );
    expect(leader3.index).not.toBe(leader2.index);
    expect(failoverMs).toBeLessThan(10_000);
    await writers.waitForAcks(200, 10_000);
    cluster.spawnMember(leader2.index);
    await cluster.waitHealthy();
    await writers.waitForAcks(200, 10_000);

    // Every member at once, while the writers are still writing.
    const ackedBeforeCrash = writers.count;
    await Promise.all([0, 1, 2].map((i) => cluster.kill(i, 'SIGKILL')));
    await writers.stop();
    // eslint-disable-next-line no-console
    console.log(`all members killed with ${ackedBeforeCrash} acknowledged puts (${writers.count} in all, ${writers.uncertain.size} with unknown outcome)`);
  } finally {
    await writers.stop();
  }

  const restartAtMs = Date.now();
  for (let i = 0; i < 3; i++) cluster.spawnMember(i);
  await cluster.waitHealthy(30_000);
  // eslint-disable-next-line no-console
  console.log(`all members restarted from disk and healthy in ${Date.now() - restartAtMs} ms`);
  await checkMembersAgree(members);
  await checkAllPresent(members, writers, prefix);
  // And the cluster takes writes again.
  const leader = await members.findLeader();
  await members.put(leader.index, `${prefix}after`, 'x', 5000);
});

test('a member that missed more than the log keeps catches up from a snapshot while writes go on, serves a gap-free watch, and keeps it across a restart', async () => {
  // etcd's --snapshot-count: a snapshot every 50 applied entries; the log is then compacted
  // except for the last 5000 entries (etcd's snapshot catch-up entries, fixed in skiff as in
  // etcd 3.4), so the member has to miss more than that to need a snapshot.
  const { cluster, members } = await startCluster(['--snapshot-count=50']);
  const leader = await members.findLeader();
  const lagging = [0, 1, 2].find((i) => i !== leader.index)!;
  const revisionAtKill = (await members.status(lagging)).header!.revision;
  await cluster.kill(lagging, 'SIGKILL');

  const prefix = 'snap/';
  const total = 6000;
  const writers = new Writers(members, { writers: 16, putsPerWriterMax: total / 16, deadlineMs: 40_000, putTimeoutMs: 5000, prefix });
  const t0 = Date.now();
  writers.start();
  await writers.done();
  // eslint-disable-next-line no-console
  console.log(`${writers.count} puts with m${lagging + 1} down in ${Date.now() - t0} ms (${writers.errors} failed)`);
  expect(writers.count).toBeGreaterThan(5100);

  // Restart it and kill -9 it again as soon as it starts receiving the snapshot: a
  // half-received snapshot must not be mistaken for a whole one.
  const name = cluster.members[lagging].name;
  const logBytesBefore = cluster.log(name).length;
  cluster.spawnMember(lagging);
  await waitFor('the snapshot to start arriving', async () => (cluster.log(name).slice(logBytesBefore).includes('receiving snapshot') ? true : undefined), { timeoutMs: 20_000, intervalMs: 5 });
  await cluster.kill(lagging, 'SIGKILL');
  const restoredBeforeKill = cluster.log(name).slice(logBytesBefore).includes('restored the store from a snapshot');

  // Restart it, and as soon as it answers, watch everything from revision 1 on it while
  // more writes go on: it gets the snapshot under the watch.
  cluster.spawnMember(lagging);
  const lateWriters = new Writers(members, { writers: 4, putsPerWriterMax: 10_000, deadlineMs: 20_000, putTimeoutMs: 5000, prefix: `${prefix}late/` });
  const watchClient = new Etcd3({ hosts: [cluster.members[lagging].clientUrl] });
  try {
    const startRevision = await waitFor('the restarted member to answer', async () => (await members.status(lagging, 200)).header?.revision, { timeoutMs: 15_000, intervalMs: 20 });
    const w = watchClient.watch().prefix(prefix).startRevision('1').watcher();
    const events: { key: string; mod: number }[] = [];
    w.on('put', (kv: IKeyValue) => events.push({ key: kv.key.toString(), mod: Number(kv.mod_revision) }));
    let watchError: Error | undefined;
    w.on('error', (e) => (watchError = e));
    let createdAtRevision = 0;
    w.once('connected', (res) => (createdAtRevision = Number(res.header.revision)));
    lateWriters.start();
    await cluster.waitHealthy(30_000);
    await lateWriters.waitForAcks(200, 10_000);
    await lateWriters.stop();
    // eslint-disable-next-line no-console
    console.log(
      `m${lagging + 1} killed while receiving a snapshot (${restoredBeforeKill ? 'after' : 'before'} restoring it); restarted, answered at revision ${startRevision} (killed at ${revisionAtKill}), watch created at revision ${createdAtRevision}; ${lateWriters.count} puts during its catch-up`,
    );

    const revision = await checkMembersAgree(members);
    for (const [k, v] of lateWriters.acked) writers.acked.set(k, v);
    for (const [k, v] of lateWriters.uncertain) writers.uncertain.set(k, v);
    await checkAllPresent(members, writers, prefix);
    expect(cluster.log(cluster.members[lagging].name)).toContain('restored the store from a snapshot');

    // The watch saw every put of the prefix exactly once, in revision order.
    const stored = (await members.rangeLocal(lagging, { key: Buffer.from(prefix), range_end: Buffer.from('snap0') }, 20_000)).kvs;
    await waitFor('the watch to deliver every put', async () => (events.length >= stored.length || watchError ? true : undefined), { timeoutMs: 15_000, intervalMs: 50 });
    expect(watchError).toBeUndefined();
    await sleep(200);
    const expected = stored.map((kv) => ({ key: kv.key.toString(), mod: Number(kv.mod_revision) })).sort((a, b) => a.mod - b.mod);
    expect(events.length).toBe(expected.length);
    expect(events).toEqual(expected);
    await w.cancel();

    // The restored state is durable: kill -9 the member again, it comes back identical.
    await cluster.kill(lagging, 'SIGKILL');
    cluster.spawnMember(lagging);
    await cluster.waitHealthy(30_000);
    expect(await checkMembersAgree(members)).toBe(revision);
    await checkAllPresent(members, writers, prefix);
  } finally {
    await lateWriters.stop();
    watchClient.close();
  }
});
