// The store's value bytes as a member reports them at /metrics: what its keys' values hold,
// and what the slabs holding them take, before and after a compaction frees old revisions.

import { Etcd3 } from 'etcd3';
import { StoreCluster } from '../helpers/cluster';
import { killStrayMembers } from '../helpers/store-client';

jest.setTimeout(60_000);

let cluster: StoreCluster | undefined;
let client: Etcd3 | undefined;

afterAll(async () => {
  client?.close();
  await cluster?.stop();
  killStrayMembers();
});

async function valueBytes(metricsUrl: string): Promise<{ live: number; slabs: number }> {
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  const read = (kind: string): number => {
    const m = new RegExp(`^skiff_mvcc_value_bytes\\{kind="${kind}"\\} (\\d+)$`, 'm').exec(text);
    if (m === null) throw new Error(`skiff_mvcc_value_bytes{kind="${kind}"} missing from /metrics`);
    return Number(m[1]);
  };
  return { live: read('live'), slabs: read('slabs') };
}

test('skiff_mvcc_value_bytes counts the values held, and compaction releases the old ones', async () => {
  cluster = await StoreCluster.start({ kind: 'skiff', members: 1 });
  client = new Etcd3({ hosts: cluster.members[0].clientUrl });
  const metricsUrl = cluster.members[0].metricsUrl;
  const before = await valueBytes(metricsUrl);
  // Ten keys written twice: 20 revisions of 100-byte values.
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 10; i++) await client.put(`k${i}`).value(Buffer.alloc(100, 0x61 + round));
  }
  const written = await valueBytes(metricsUrl);
  expect(written.live - before.live).toBe(2000);
  expect(written.slabs).toBeGreaterThanOrEqual(written.live);
  const { header } = await client.get('k0').exec();
  // Compacting at the current revision drops the first round's revisions.
  await client.kv.compact({ revision: header.revision, physical: true });
  const compacted = await valueBytes(metricsUrl);
  expect(written.live - compacted.live).toBe(1000);
  expect((await client.get('k3').buffer())?.toString()).toBe('b'.repeat(100));
});
