// Replacing a member of a real 3-process cluster under continuous write load, the way an
// operator does it with etcdctl: add a learner, start it with
// --initial-cluster-state=existing (it gets a snapshot: the leader's log is compacted),
// wait until it is ready, promote it, move leadership off the old member if it leads,
// remove the old member (which stops by itself). Writes keep being acknowledged all along
// (quorum is never lost) and every acknowledged write is on every remaining member.

import * as fs from 'node:fs';
import { etcdctl, requireTool, StoreCluster } from '../helpers/cluster';
import {
  endpointOf,
  endpointStatus,
  etcdctlError,
  expectAllAcked,
  hexId,
  leaderIndex,
  memberIdOf,
  memberList,
  newJoiningMember,
  parseMemberAdd,
  preload,
  sleep,
  waitExit,
  waitFor,
  waitMemberHealthy,
  WriteLoad,
} from '../helpers/operate';

jest.setTimeout(120_000);

const available = requireTool('etcdctl', 'apt-get install etcd-client');

(available ? describe : describe.skip)('member replacement under write load (skiff, etcdctl)', () => {
  let c: StoreCluster;
  let load: WriteLoad | undefined;

  beforeAll(async () => {
    // A small --snapshot-count so that the log is compacted and the new member needs a snapshot.
    c = await StoreCluster.start({ members: 3, flags: ['--snapshot-count=1000'] });
  });

  afterAll(async () => {
    await load?.stop();
    await c?.stop();
  });

  test('add a learner, promote it, remove an old member: no acknowledged write lost, writes never stop', async () => {
    const preloaded = await preload(c.members[0], 'pre/', 6500);
    const old = 0;
    const oldId = memberIdOf(c, old);
    // The load goes to the members that stay (and to the new one once it votes).
    const voters = new Set([1, 2]);
    load = new WriteLoad(() => c.members.filter((_, i) => voters.has(i) && c.members[i].proc), 'load/', 4);
    await sleep(500);

    const endpoints = (): string => [1, 2, ...[...voters].filter((i) => i > 2)].map((i) => endpointOf(c.members[i])).join(',');
    let added: { id: number; initialCluster: string } | undefined;
    const fresh = await newJoiningMember(c, 'm4', (peerUrl) => {
      added = parseMemberAdd(etcdctl(endpoints(), ['member', 'add', 'm4', `--peer-urls=${peerUrl}`, '--learner']));
      return added.initialCluster;
    });
    c.spawnMember(fresh);
    await waitMemberHealthy(c, fresh, 30_000);

    // Promote once the learner is in sync (etcd refuses before).
    await waitFor(
      'the learner to be promoted',
      () => {
        try {
          etcdctl(endpoints(), ['member', 'promote', hexId(added!.id)]);
          return true;
        } catch (e) {
          const msg = String((e as { stderr?: string }).stderr ?? e);
          if (msg.includes('in sync with leader')) return undefined;
          throw e;
        }
      },
      30_000,
      200,
    );
    voters.add(fresh);

    // Leadership off the member to remove, then remove it.
    if (leaderIndex(c) === old) etcdctl(endpointOf(c.members[old]), ['move-leader', hexId(memberIdOf(c, 1))]);
    expect(etcdctl(endpoints(), ['member', 'remove', hexId(oldId)])).toMatch(/removed from cluster/);
    await waitExit(c, old, 10_000);
    expect(fs.readFileSync(c.members[old].logFile, 'utf8')).toContain('the member has been permanently removed from the cluster');

    const before = load.count;
    await sleep(1000);
    expect(load.count).toBeGreaterThan(before); // still writable with the new configuration
    await load.stop();
    const { acked, longestGapMs, failures } = load;
    load = undefined;

    const remaining = [1, 2, fresh].map((i) => c.members[i]);
    expect(memberList(endpoints()).map((m) => ({ id: m.ID, learner: m.isLearner ?? false })).sort((a, b) => a.id - b.id)).toEqual(
      [memberIdOf(c, 1), memberIdOf(c, 2), added!.id].sort((a, b) => a - b).map((id) => ({ id, learner: false })),
    );
    await expectAllAcked(remaining, 'pre/', preloaded);
    expect(await expectAllAcked(remaining, 'load/', acked)).toBeGreaterThan(100);
    // The members agree on the store's hash at one revision, the one that got a snapshot too.
    const rev = endpointStatus(endpoints())[0].Status.header.revision;
    const hashes = await waitFor('hashkv on every member', () => JSON.parse(etcdctl(endpoints(), ['endpoint', 'hashkv', `--rev=${rev}`, '-w', 'json'])) as { HashKV: { hash: number } }[], 10_000);
    expect(hashes).toHaveLength(3);
    expect(new Set(hashes.map((h) => h.HashKV.hash)).size).toBe(1);
    // The new member started from an empty log and was sent a snapshot.
    expect(fs.readFileSync(c.members[fresh].logFile, 'utf8')).toContain('restored the store from a snapshot');
    // Quorum was never lost: acknowledgements never stopped for long.
    // eslint-disable-next-line no-console
    console.log(`replacement under load: ${acked.size} writes acknowledged, ${failures} failed attempts, longest gap ${longestGapMs} ms`);
    expect(longestGapMs).toBeLessThan(3000);
    expect(etcdctlError(endpoints(), ['member', 'remove', hexId(oldId)])).toBe('Error: etcdserver: member not found');
  });
});
