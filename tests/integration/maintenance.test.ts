// Maintenance on a real 3-process cluster, driven by etcdctl: `endpoint hashkv` agreeing on
// every member after a workload, `snapshot save` and `skiff snapshot restore` into a new
// cluster, `defrag` giving space back after a compaction, and the space quota: past
// --quota-backend-bytes the NOSPACE alarm (`alarm list`) refuses writes while reads,
// deletes and compactions go on; after compaction, defrag and `alarm disarm` writes work
// again, and no acknowledged write is lost.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { etcdctl, requireTool, skiffBin, StoreCluster } from '../helpers/cluster';
import { endpointOf, endpointStatus, etcdctlError, expectAllAcked, memberList, readAll, runningEndpoints, waitFor } from '../helpers/operate';

jest.setTimeout(120_000);

const available = requireTool('etcdctl', 'apt-get install etcd-client');

const quotaBytes = 3_000_000;

function revisionOf(endpoints: string): number {
  return endpointStatus(endpoints)[0].Status.header.revision;
}

function dbSizes(endpoints: string): number[] {
  return endpointStatus(endpoints).map((s) => s.Status.dbSize);
}

interface HashKV {
  Endpoint: string;
  HashKV: { header: { revision: number }; hash: number; compact_revision: number };
}

(available ? describe : describe.skip)('maintenance (skiff, etcdctl)', () => {
  let c: StoreCluster;
  const ep = (): string => runningEndpoints(c);

  beforeAll(async () => {
    c = await StoreCluster.start({ members: 3, flags: [`--quota-backend-bytes=${quotaBytes}`] });
  });

  afterAll(async () => {
    await c?.stop();
  });

  test('endpoint hashkv agrees on every member at the same revision after a workload', async () => {
    const e = ep();
    for (let i = 0; i < 30; i++) etcdctl(e, ['put', `h/${i % 10}`, `v${i}`]);
    etcdctl(e, ['del', 'h/3']);
    etcdctl(e, ['txn'], { input: 'value("h/1") = "v21"\n\nput h/t yes\ndel h/4\n\nput h/t no\n\n' });
    etcdctl(e, ['compact', String(revisionOf(e) - 5)]);
    etcdctl(e, ['put', 'h/last', 'x']);
    const rev = revisionOf(e);
    const hashes = await waitFor(
      'hashkv on every member',
      () => {
        const out = JSON.parse(etcdctl(e, ['endpoint', 'hashkv', `--rev=${rev}`, '-w', 'json'])) as HashKV[];
        return out.length === 3 ? out : undefined;
      },
      10_000,
    );
    expect(new Set(hashes.map((h) => h.HashKV.hash)).size).toBe(1);
    expect(new Set(hashes.map((h) => h.HashKV.compact_revision)).size).toBe(1);
    expect(hashes[0].HashKV.hash).not.toBe(0);
    // The plain form etcdctl prints: "<endpoint>, <hash>".
    expect(etcdctl(e, ['endpoint', 'hashkv', `--rev=${rev}`]).trim().split('\n')).toHaveLength(3);
  });

  test('snapshot save, skiff snapshot restore, and the restored members form a new cluster with the data', async () => {
    const e = ep();
    for (let i = 0; i < 20; i++) etcdctl(e, ['put', `snap/${i}`, `v${i}`]);
    const lease = /lease ([0-9a-f]+) granted/.exec(etcdctl(e, ['lease', 'grant', '600']))![1];
    etcdctl(e, ['put', 'snap/leased', 'x', `--lease=${lease}`]);
    const before = await readAll(c.members[0], 'snap/');
    const oldCluster = endpointStatus(e)[0].Status.header.cluster_id;
    const file = path.join(c.dir, 'backup.db');
    expect(etcdctl(endpointOf(c.members[0]), ['snapshot', 'save', file])).toContain(`Snapshot saved at ${file}`);
    expect(fs.statSync(file).size % 512).toBe(32); // what etcdctl checks: data plus a sha256
    etcdctl(e, ['put', 'snap/after-backup', 'not in the snapshot']);

    // Disaster recovery: stop every member, restore each from the file, start them again.
    await c.stop({ keepData: true });
    const token = 'restored-cluster';
    const initialCluster = c.members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
    for (const m of c.members) {
      fs.rmSync(m.dataDir, { recursive: true, force: true });
      const out = execFileSync(
        process.execPath,
        [skiffBin, 'snapshot', 'restore', file, `--name=${m.name}`, `--data-dir=${m.dataDir}`, `--initial-cluster=${initialCluster}`, `--initial-cluster-token=${token}`, `--initial-advertise-peer-urls=${m.peerUrl}`],
        { encoding: 'utf8' },
      );
      expect(out).toMatch(/restored snapshot: member [0-9a-f]+ of cluster [0-9a-f]+/);
    }
    // Refused: an existing data dir; a corrupted file.
    expect(() => execFileSync(process.execPath, [skiffBin, 'snapshot', 'restore', file, `--name=m1`, `--data-dir=${c.members[0].dataDir}`, `--initial-cluster=${initialCluster}`, `--initial-advertise-peer-urls=${c.members[0].peerUrl}`], { stdio: 'pipe' })).toThrow(/exists/);
    const bad = path.join(c.dir, 'bad.db');
    const bytes = fs.readFileSync(file);
    bytes[100] ^= 0xff;
    fs.writeFileSync(bad, bytes);
    expect(() => execFileSync(process.execPath, [skiffBin, 'snapshot', 'restore', bad, '--name=x', `--data-dir=${path.join(c.dir, 'x')}`, '--initial-cluster=x=http://127.0.0.1:9', '--initial-advertise-peer-urls=http://127.0.0.1:9'], { stdio: 'pipe' })).toThrow(/sha256/);

    for (let i = 0; i < c.members.length; i++) c.spawnMember(i);
    await c.waitHealthy();
    const restoredEp = ep();
    const status = endpointStatus(restoredEp);
    expect(new Set(status.map((s) => s.Status.header.cluster_id)).size).toBe(1);
    expect(status[0].Status.header.cluster_id).not.toBe(oldCluster);
    expect(memberList(restoredEp).map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
    for (const m of c.members) expect(await readAll(m, 'snap/')).toEqual(before);
    expect(etcdctl(restoredEp, ['get', 'snap/after-backup'])).toBe('');
    expect(etcdctl(restoredEp, ['lease', 'list'])).toContain(lease);
    expect(etcdctl(restoredEp, ['put', 'snap/new', 'y']).trim()).toBe('OK');
  });

  test('defrag gives back the space of compacted revisions (endpoint status db size)', async () => {
    const e = ep();
    const big = 'd'.repeat(20_000);
    for (let i = 0; i < 40; i++) etcdctl(e, ['put', 'defrag/key', `${big}${i}`]);
    const grown = Math.min(...dbSizes(e));
    expect(grown).toBeGreaterThan(40 * 20_000 * 0.9);
    etcdctl(e, ['compact', String(revisionOf(e))]);
    const out = etcdctl(e, ['defrag']);
    for (const m of c.members) expect(out).toContain(`Finished defragmenting etcd member[${endpointOf(m)}]`);
    const after = dbSizes(e);
    for (const size of after) expect(size).toBeLessThan(grown / 4);
    expect(etcdctl(e, ['get', 'defrag/key', '--print-value-only']).trim()).toBe(`${big}39`);
    expect(etcdctl(e, ['put', 'defrag/other', 'x']).trim()).toBe('OK');
  });

  test('quota: NOSPACE refuses writes, reads/deletes/compaction go on; compact + defrag + alarm disarm restore writes; nothing lost', async () => {
    const e = ep();
    const value = (i: number): string => `${'q'.repeat(60_000)}${i}`;
    const acked = new Map<string, string>();
    let refused = '';
    for (let i = 0; i < 200 && !refused; i++) {
      const key = `quota/${i % 5}`;
      try {
        etcdctl(e, ['put', key, value(i)]);
        acked.set(key, value(i));
      } catch (err) {
        refused = String((err as { stderr?: string }).stderr ?? err);
      }
    }
    expect(refused).toContain('etcdserver: mvcc: database space exceeded');
    const alarms = etcdctl(e, ['alarm', 'list']);
    expect(alarms).toMatch(/memberID:\d+ alarm:NOSPACE/);
    expect(endpointStatus(e).every((s) => (s.Status.errors ?? []).some((x) => x.includes('NOSPACE')))).toBe(true);

    // Every member refuses writes now (the alarm went through Raft); a lease grant too.
    for (const m of c.members) expect(etcdctlError(endpointOf(m), ['put', 'quota/new', 'x'])).toBe('Error: etcdserver: mvcc: database space exceeded');
    expect(etcdctlError(e, ['lease', 'grant', '60'])).toBe('Error: failed to grant lease (etcdserver: mvcc: database space exceeded)');
    // Reads, deletes and compaction go on.
    expect(etcdctl(e, ['get', 'quota/1', '--print-value-only']).trim()).toBe(acked.get('quota/1'));
    expect(etcdctl(e, ['del', 'quota/4']).trim()).toBe('1');
    acked.delete('quota/4');
    etcdctl(e, ['compact', String(revisionOf(e))]);
    etcdctl(e, ['defrag']);
    for (const size of dbSizes(e)) expect(size).toBeLessThan(quotaBytes / 2);
    // Still refused until the alarm is disarmed.
    expect(etcdctlError(e, ['put', 'quota/new', 'x'])).toBe('Error: etcdserver: mvcc: database space exceeded');
    expect(etcdctl(e, ['alarm', 'disarm'])).toMatch(/alarm:NOSPACE/);
    expect(etcdctl(e, ['alarm', 'list']).trim()).toBe('');
    expect(etcdctl(e, ['put', 'quota/new', 'x']).trim()).toBe('OK');
    acked.set('quota/new', 'x');
    expect(await expectAllAcked(c.members, 'quota/', acked)).toBe(5);
    for (const m of c.members) expect([...(await readAll(m, 'quota/')).keys()].sort()).toEqual([...acked.keys()].sort());
  });
});
