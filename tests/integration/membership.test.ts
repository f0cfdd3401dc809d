// Membership at runtime on a real 3-process cluster, driven by etcdctl: member add (voter
// and learner), a member joining with --initial-cluster-state=existing, promote, update,
// remove, move-leader, with etcd's errors for every refusal, the strict reconfiguration
// check, and removed members stopping by themselves.

import * as fs from 'node:fs';
import * as pb from '../../src/kv/proto';
import { etcdctl, requireTool, StoreCluster } from '../helpers/cluster';
import {
  endpointOf,
  endpointStatus,
  etcdctlError,
  hexId,
  leaderIndex,
  memberIdOf,
  memberList,
  newJoiningMember,
  parseMemberAdd,
  runningEndpoints,
  sleep,
  waitExit,
  waitFor,
  waitMemberHealthy,
} from '../helpers/operate';

jest.setTimeout(120_000);

const available = requireTool('etcdctl', 'apt-get install etcd-client');

(available ? describe : describe.skip)('membership at runtime (skiff, etcdctl)', () => {
  let c: StoreCluster;
  const ep = (): string => runningEndpoints(c);

  beforeAll(async () => {
    c = await StoreCluster.start({ members: 3 });
  });

  afterAll(async () => {
    await c?.stop();
  });

  test('a learner joins with --initial-cluster-state=existing, catches up, is promoted, updated and removed', async () => {
    for (let i = 0; i < 50; i++) etcdctl(ep(), ['put', `before/${i}`, `v${i}`]);
    // Sent to a follower, which hands the change to the leader (whose view the checks need).
    const follower = endpointOf(c.members[[0, 1, 2].find((i) => i !== leaderIndex(c))!]);
    // The new member's URLs are only known once its ports are picked: add it, then start it.
    let added: { id: number; initialCluster: string } | undefined;
    const i4 = await newJoiningMember(c, 'm4', (peerUrl) => {
      added = parseMemberAdd(etcdctl(follower, ['member', 'add', 'm4', `--peer-urls=${peerUrl}`, '--learner']));
      return added.initialCluster;
    });
    expect(added!.initialCluster).toContain(`m4=${c.members[i4].peerUrl}`);
    const listed = memberList(ep()).find((m) => m.ID === added!.id)!;
    expect(listed).toMatchObject({ peerURLs: [c.members[i4].peerUrl], isLearner: true });
    expect(listed.name ?? '').toBe(''); // unstarted

    // etcd's refusals while the learner exists.
    expect(etcdctlError(ep(), ['member', 'add', 'm5', '--peer-urls=http://127.0.0.1:1', '--learner'])).toBe('Error: etcdserver: too many learner members in cluster');
    expect(etcdctlError(ep(), ['member', 'add', 'm5', `--peer-urls=${c.members[0].peerUrl}`])).toBe('Error: etcdserver: Peer URLs already exists');
    expect(etcdctlError(ep(), ['member', 'promote', hexId(memberIdOf(c, 0))])).toBe('Error: etcdserver: can only promote a learner member');
    expect(etcdctlError(ep(), ['member', 'remove', 'abcdef'])).toBe('Error: etcdserver: member not found');
    expect(etcdctlError(ep(), ['member', 'add', 'm5', '--peer-urls=not-a-url'])).toMatch(/URL|url/);

    c.spawnMember(i4);
    await waitMemberHealthy(c, i4);
    const status = endpointStatus(endpointOf(c.members[i4]))[0].Status;
    expect(status.header.member_id).toBe(added!.id);
    expect(status.isLearner).toBe(true);
    // It has the data (serializable reads are served by learners).
    expect(etcdctl(endpointOf(c.members[i4]), ['get', 'before/49', '--print-value-only', '--consistency=s']).trim()).toBe('v49');
    await waitFor('m4 published', () => memberList(ep()).find((m) => m.ID === added!.id && m.name === 'm4'), 10_000);

    expect(etcdctl(follower, ['member', 'promote', hexId(added!.id)])).toMatch(/promoted in cluster/);
    expect(memberList(ep()).find((m) => m.ID === added!.id)?.isLearner ?? false).toBe(false);
    expect(etcdctl(endpointOf(c.members[i4]), ['put', 'from-m4', 'x']).trim()).toBe('OK');

    // Peer URL update: a second URL for the same member, then back.
    const alias = c.members[i4].peerUrl.replace('127.0.0.1', 'localhost');
    expect(etcdctl(ep(), ['member', 'update', hexId(added!.id), `--peer-urls=${c.members[i4].peerUrl},${alias}`])).toMatch(/updated in cluster/);
    expect(memberList(ep()).find((m) => m.ID === added!.id)?.peerURLs.sort()).toEqual([c.members[i4].peerUrl, alias].sort());
    expect(etcdctlError(ep(), ['member', 'update', hexId(added!.id), `--peer-urls=${c.members[1].peerUrl}`])).toBe('Error: etcdserver: Peer URLs already exists');
    expect(etcdctlError(ep(), ['member', 'update', 'abcdef', '--peer-urls=http://127.0.0.1:1'])).toBe('Error: etcdserver: member not found');
    etcdctl(ep(), ['member', 'update', hexId(added!.id), `--peer-urls=${c.members[i4].peerUrl}`]);

    // Removed: the member learns it and stops by itself; its id may not come back.
    expect(etcdctl(ep(), ['member', 'remove', hexId(added!.id)])).toMatch(/removed from cluster/);
    await waitExit(c, i4, 10_000);
    expect(fs.readFileSync(c.members[i4].logFile, 'utf8')).toContain('the member has been permanently removed from the cluster');
    expect(memberList(ep()).map((m) => m.ID)).not.toContain(added!.id);
    expect(etcdctlError(ep(), ['member', 'remove', hexId(added!.id)])).toBe('Error: etcdserver: member not found');
    expect(etcdctl(ep(), ['put', 'after-remove', 'x']).trim()).toBe('OK');
  });

  test('a voting member joins, votes, and is removed again', async () => {
    etcdctl(ep(), ['put', 'voter/before', 'x']);
    let added: { id: number; initialCluster: string } | undefined;
    const i5 = await newJoiningMember(c, 'm5', (peerUrl) => {
      added = parseMemberAdd(etcdctl(ep(), ['member', 'add', 'm5', `--peer-urls=${peerUrl}`]));
      return added.initialCluster;
    });
    expect(memberList(ep()).find((m) => m.ID === added!.id)?.isLearner ?? false).toBe(false);
    c.spawnMember(i5);
    await waitMemberHealthy(c, i5);
    expect(etcdctl(endpointOf(c.members[i5]), ['get', 'voter/before', '--print-value-only']).trim()).toBe('x');
    // It votes: leadership can move to it.
    expect(etcdctl(ep(), ['move-leader', hexId(added!.id)])).toMatch(/Leadership transferred/);
    expect(leaderIndex(c)).toBe(i5);
    expect(etcdctl(ep(), ['put', 'voter/led-by-m5', 'x']).trim()).toBe('OK');
    // Removing the leader itself: it answers, steps down and stops; the others elect a leader.
    expect(etcdctl(ep(), ['member', 'remove', hexId(added!.id)])).toMatch(/removed from cluster/);
    await waitExit(c, i5, 10_000);
    await waitFor('a new leader', () => (etcdctl(ep(), ['put', 'voter/after', 'x']).trim() === 'OK' ? true : undefined), 10_000, 200);
    expect(memberList(ep())).toHaveLength(3);
  });

  test('a learner that is behind is not promoted; move-leader refuses learners and non-members', async () => {
    // Nobody listens at this URL: the learner never catches up.
    const out = etcdctl(ep(), ['member', 'add', 'ghost', '--peer-urls=http://127.0.0.1:9', '--learner']);
    const ghost = parseMemberAdd(out).id;
    expect(etcdctlError(ep(), ['member', 'promote', hexId(ghost)])).toBe('Error: etcdserver: can only promote a learner member which is in sync with leader');
    expect(etcdctlError(ep(), ['move-leader', hexId(ghost)])).toBe('Error: etcdserver: bad leader transferee');
    expect(etcdctlError(ep(), ['move-leader', 'abcdef'])).toBe('Error: etcdserver: bad leader transferee');
    // A learner is no voter: removing it needs no quorum check.
    expect(etcdctl(ep(), ['member', 'remove', hexId(ghost)])).toMatch(/removed from cluster/);
  });

  test('move-leader hands leadership to a follower; only the leader takes the call', async () => {
    const from = leaderIndex(c);
    const to = [0, 1, 2].find((i) => i !== from && c.members[i].proc)!;
    const toId = memberIdOf(c, to);
    expect(etcdctl(ep(), ['move-leader', hexId(toId)])).toMatch(new RegExp(`Leadership transferred from ${hexId(memberIdOf(c, from))} to ${hexId(toId)}`));
    expect(leaderIndex(c)).toBe(to);
    // Sent to a follower directly: etcd's ErrGRPCNotLeader.
    const client = pb.createClient('Maintenance', endpointOf(c.members[from]));
    try {
      await expect(pb.callUnary(client, 'MoveLeader', { targetID: toId })).rejects.toMatchObject({ details: 'etcdserver: not leader' });
    } finally {
      client.close();
    }
    expect(etcdctl(ep(), ['put', 'after-move', 'x']).trim()).toBe('OK');
  });

  test('the strict reconfiguration check refuses changes that would lose quorum with a member down', async () => {
    const down = [0, 1, 2].find((i) => i !== leaderIndex(c))!;
    const other = [0, 1, 2].find((i) => i !== down && i !== leaderIndex(c))!;
    const downId = memberIdOf(c, down);
    await c.kill(down);
    await sleep(1500); // longer than an election timeout: the leader no longer counts it as connected
    expect(etcdctlError(ep(), ['member', 'remove', hexId(memberIdOf(c, other))])).toBe('Error: etcdserver: re-configuration failed due to not enough started members');
    expect(etcdctlError(ep(), ['member', 'add', 'm6', '--peer-urls=http://127.0.0.1:9'])).toBe('Error: etcdserver: re-configuration failed due to not enough started members');
    expect(etcdctl(ep(), ['put', 'still-writable', 'x']).trim()).toBe('OK');

    // A member that is down may be removed (it is not part of the active quorum); when it
    // comes back it finds out from its peers, which refuse its connections, and stops.
    expect(etcdctl(ep(), ['member', 'remove', hexId(downId)])).toMatch(/removed from cluster/);
    c.spawnMember(down);
    await waitExit(c, down, 15_000);
    const log = fs.readFileSync(c.members[down].logFile, 'utf8');
    expect(log).toContain('the member has been permanently removed from the cluster');
    expect(log).toContain('peer refused the connection');
    expect(memberList(ep()).length).toBe(2);
    expect(etcdctl(ep(), ['get', 'still-writable', '--print-value-only']).trim()).toBe('x');
  });
});
