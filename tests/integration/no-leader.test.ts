// A member left without a leader (the other two killed) answers writes with an error once
// the request timeout passes, and lives on: before the fix, a proposal still waiting for a
// leader when its timer fired left a rejected promise nobody awaited, and the process ended
// (found by the chaos harness). Then the others come back and writes go through again.

import * as grpc from '@grpc/grpc-js';
import * as pb from '../../src/kv/proto';
import { StoreCluster } from '../helpers/cluster';
import { killStrayMembers, sleep } from '../helpers/store-client';

jest.setTimeout(90_000);

let cluster: StoreCluster | undefined;

afterAll(async () => {
  await cluster?.stop();
  killStrayMembers();
});

test('a member without a leader answers writes with an error and keeps running', async () => {
  cluster = await StoreCluster.start({ kind: 'skiff', members: 3 });
  const survivor = cluster.members[0]!;
  await cluster.kill(1);
  await cluster.kill(2);
  const address = survivor.clientUrl.replace('http://', '');
  const kv = pb.createClient('KV', address, grpc.credentials.createInsecure());
  const maintenance = pb.createClient('Maintenance', address, grpc.credentials.createInsecure());
  try {
    // Until it knows it has no leader: a proposal is then dropped by Raft and waits for one
    // (one made earlier sits in a leader's or forwarded log and just times out).
    for (let i = 0; ; i++) {
      const status = await pb.callUnary(maintenance, 'Status', {}, { deadline: Date.now() + 5000 });
      if (status.leader === 0) break;
      if (i > 100) throw new Error('the survivor still names a leader');
      await sleep(100);
    }
    // Several writes at once, all outliving the request timeout (5 s + 2 election timeouts).
    const started = Date.now();
    const results = await Promise.allSettled(
      [0, 1, 2, 3].map((i) => pb.callUnary(kv, 'Put', { key: Buffer.from(`k${i}`), value: Buffer.from('v') }, { deadline: Date.now() + 30_000 })),
    );
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toMatchObject({ details: expect.stringMatching(/^etcdserver: (no leader|request timed out)$/) });
    }
    expect(Date.now() - started).toBeGreaterThan(4000);
    await sleep(500);
    expect(cluster.pid(0)).toBeDefined();
    expect(() => process.kill(cluster!.pid(0)!, 0)).not.toThrow();
    // The others come back: a leader again, and the write goes through.
    await cluster.restart(1);
    await cluster.restart(2);
    await cluster.waitHealthy();
    await expect(pb.callUnary(kv, 'Put', { key: Buffer.from('after'), value: Buffer.from('v') }, { deadline: Date.now() + 10_000 })).resolves.toBeDefined();
  } finally {
    kv.close();
    maintenance.close();
  }
});
