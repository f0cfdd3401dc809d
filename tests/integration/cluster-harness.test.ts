// The process harness itself: a 3-member cluster of each kind starts, serves etcdctl, and
// stops by pid with nothing left running.

import { etcdctl, requireTool, StoreCluster, StoreKind } from '../helpers/cluster';

jest.setTimeout(60_000);

describe.each(['skiff', 'etcd'] as StoreKind[])('%s cluster harness', (kind) => {
  const available = requireTool('etcdctl', 'apt-get install etcd-client') && (kind === 'skiff' || requireTool('etcd', 'apt-get install etcd-server'));
  let cluster: StoreCluster | undefined;

  afterAll(async () => {
    await cluster?.stop();
  });

  (available ? test : test.skip)('starts, serves etcdctl, stops every process', async () => {
    cluster = await StoreCluster.start({ kind, members: 3 });
    const ep = cluster.endpoints();
    expect(etcdctl(ep, ['put', 'a', '1']).trim()).toBe('OK');
    expect(etcdctl(ep, ['get', 'a', '--print-value-only']).trim()).toBe('1');
    const pids = cluster.members.map((_, i) => cluster!.pid(i)!);
    await cluster.stop();
    cluster = undefined;
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  });
});
