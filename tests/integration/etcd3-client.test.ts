// The npm `etcd3` client against a real 3-process skiff cluster: what etcdctl checks, but
// through the client library applications use (its own protos, int64 as strings, its
// retry and watch-reconnect logic, its Lock and Election recipes).

import {
  Etcd3,
  EtcdLeaseInvalidError,
  EtcdLockFailedError,
  GRPCInvalidArgumentError,
  GRPCOutOfRangeError,
  IKeyValue,
  Watcher,
} from 'etcd3';
import { StoreCluster } from '../helpers/cluster';
import { killClientProcesses, spawnClientScript } from '../helpers/client-process';
import { killStrayMembers, MemberClients, sleep, waitFor } from '../helpers/store-client';

jest.setTimeout(30_000);

let cluster: StoreCluster;
let client: Etcd3;
let members: MemberClients;

const rev = (r: string | number | undefined | null): number => Number(r);
const endpoints = (): string[] => cluster.members.map((m) => m.clientUrl);

beforeAll(async () => {
  cluster = await StoreCluster.start({ kind: 'skiff', members: 3 });
  client = new Etcd3({ hosts: cluster.members.map((m) => m.clientUrl) });
  members = new MemberClients(cluster);
});

afterAll(async () => {
  await killClientProcesses();
  client?.close();
  members?.close();
  await cluster?.stop();
  killStrayMembers();
});

describe('KV', () => {
  test('put, get, getAll with prefix, limit, sort, keys-only, count', async () => {
    const values: Record<string, string> = { 'kv/a': '3', 'kv/b': '1', 'kv/c': '5', 'kv/d': '2', 'kv/e': '4' };
    for (const [k, v] of Object.entries(values)) await client.put(k).value(v);
    await client.put('kv0').value('outside the prefix');

    expect(await client.get('kv/c').string()).toBe('5');
    expect(await client.get('kv/none').string()).toBeNull();
    expect(await client.getAll().prefix('kv/').strings()).toEqual(values);
    expect(await client.getAll().prefix('kv/').count()).toBe(5);
    expect(await client.getAll().prefix('kv/').keys()).toEqual(['kv/a', 'kv/b', 'kv/c', 'kv/d', 'kv/e']);

    const keysOnly = await client.getAll().prefix('kv/').keyBuffers();
    expect(keysOnly.map(String)).toEqual(['kv/a', 'kv/b', 'kv/c', 'kv/d', 'kv/e']);
    // keys-only sends keys_only: the server leaves values out.
    const raw = await client.kv.range({ key: Buffer.from('kv/'), range_end: Buffer.from('kv0'), keys_only: true });
    expect(raw.kvs.map((kv) => kv.value.length)).toEqual([0, 0, 0, 0, 0]);
    expect(raw.count).toBe('5');

    const limited = await client.getAll().prefix('kv/').limit(2).exec();
    expect(limited.kvs.map((kv) => kv.key.toString())).toEqual(['kv/a', 'kv/b']);
    expect(limited.more).toBe(true);
    expect(limited.count).toBe('5');

    const byKeyDesc = await client.getAll().prefix('kv/').sort('Key', 'Descend').keys();
    expect(byKeyDesc).toEqual(['kv/e', 'kv/d', 'kv/c', 'kv/b', 'kv/a']);
    const byValue = await client.getAll().prefix('kv/').sort('Value', 'Ascend').exec();
    expect(byValue.kvs.map((kv) => kv.value.toString())).toEqual(['1', '2', '3', '4', '5']);
    const byValueTop2 = await client.getAll().prefix('kv/').sort('Value', 'Descend').limit(2).exec();
    expect(byValueTop2.kvs.map((kv) => kv.value.toString())).toEqual(['5', '4']);
    const byCreate = await client.getAll().prefix('kv/').sort('Create', 'Descend').keys();
    expect(byCreate).toEqual(['kv/e', 'kv/d', 'kv/c', 'kv/b', 'kv/a']);
  });

  test('revisions: create, mod, version, reads at a past revision, revision filters', async () => {
    const first = await client.put('rev/k').value('v1');
    const r1 = rev(first.header.revision);
    const second = await client.put('rev/k').value('v2');
    const r2 = rev(second.header.revision);
    expect(r2).toBe(r1 + 1);

    const now = await client.get('rev/k').exec();
    const kv = now.kvs[0];
    expect(rev(kv.create_revision)).toBe(r1);
    expect(rev(kv.mod_revision)).toBe(r2);
    expect(kv.version).toBe('2');
    expect(rev(now.header.revision)).toBeGreaterThanOrEqual(r2);

    expect(await client.get('rev/k').revision(r1).string()).toBe('v1');
    expect(await client.get('rev/k').revision(r2).string()).toBe('v2');
    expect(await client.get('rev/k').revision(r1 - 1).string()).toBeNull();

    await client.put('rev/other').value('x');
    const modded = await client.getAll().prefix('rev/').minModRevision(r2 + 1).keys();
    expect(modded).toEqual(['rev/other']);
    const created = await client.getAll().prefix('rev/').maxCreateRevision(r1).keys();
    expect(created).toEqual(['rev/k']);

    // put with prev_kv (getPrevious), and serializable reads served by each member.
    const prev = await client.put('rev/k').value('v3').getPrevious();
    expect(prev.value.toString()).toBe('v2');
    const r3 = rev(prev.header.revision);
    for (let i = 0; i < 3; i++) {
      await waitFor(`member ${i} to apply revision ${r3}`, async () => ((await members.rangeLocal(i, { key: Buffer.from('rev/k') })).kvs[0]?.value.toString() === 'v3' ? true : undefined), { timeoutMs: 5000, intervalMs: 20 });
    }
    expect(await client.get('rev/k').serializable(true).string()).toBe('v3');
  });

  test('delete: one key with prev kv, a prefix with the count', async () => {
    await client.put('del/a').value('1');
    await client.put('del/b').value('2');
    await client.put('del/c').value('3');
    const prev = await client.delete().key('del/a').getPrevious();
    expect(prev.map((kv) => [kv.key.toString(), kv.value.toString()])).toEqual([['del/a', '1']]);
    expect(await client.get('del/a').exists()).toBe(false);

    const res = await client.delete().prefix('del/').exec();
    expect(res.deleted).toBe('2');
    expect(await client.getAll().prefix('del/').count()).toBe(0);
    const none = await client.delete().key('del/none').exec();
    expect(none.deleted).toBe('0');
  });
});

describe('Txn', () => {
  test('if/then/else on value, version, create and mod revision, lease', async () => {
    const put1 = await client.put('tx/k').value('v1');
    const created = rev(put1.header.revision);

    // value
    const ok = await client.if('tx/k', 'Value', '==', 'v1').then(client.put('tx/k').value('v2')).else(client.get('tx/k')).commit();
    expect(ok.succeeded).toBe(true);
    expect(ok.responses[0].response_put).toBeTruthy();
    const modded = rev(ok.header.revision);
    const no = await client.if('tx/k', 'Value', '==', 'v1').then(client.put('tx/k').value('v3')).else(client.get('tx/k')).commit();
    expect(no.succeeded).toBe(false);
    expect(no.responses[0].response_range?.kvs[0].value.toString()).toBe('v2');
    expect(await client.if('tx/k', 'Value', '>', 'v1').and('tx/k', 'Value', '<', 'v3').commit().then((r) => r.succeeded)).toBe(true);
    expect(await client.if('tx/k', 'Value', '!=', 'v2').commit().then((r) => r.succeeded)).toBe(false);

    // version
    expect(await client.if('tx/k', 'Version', '==', 2).commit().then((r) => r.succeeded)).toBe(true);
    expect(await client.if('tx/k', 'Version', '>', 2).commit().then((r) => r.succeeded)).toBe(false);
    expect(await client.if('tx/missing', 'Version', '==', 0).commit().then((r) => r.succeeded)).toBe(true);

    // create and mod revision
    expect(await client.if('tx/k', 'Create', '==', created).and('tx/k', 'Mod', '==', modded).commit().then((r) => r.succeeded)).toBe(true);
    expect(await client.if('tx/k', 'Mod', '<', modded).commit().then((r) => r.succeeded)).toBe(false);
    expect(await client.if('tx/missing', 'Create', '==', 0).commit().then((r) => r.succeeded)).toBe(true);

    // several operations on each branch, the responses in order, all at one revision
    const multi = await client
      .if('tx/k', 'Mod', '==', modded)
      .then(client.put('tx/a').value('1'), client.put('tx/b').value('2'), client.getAll().prefix('tx/'), client.delete().key('tx/k'))
      .else(client.get('tx/k'))
      .commit();
    expect(multi.succeeded).toBe(true);
    const kinds = multi.responses.map((r) => (r.response_put ? 'put' : r.response_range ? 'range' : r.response_delete_range ? 'delete' : 'other'));
    expect(kinds).toEqual(['put', 'put', 'range', 'delete']);
    expect(multi.responses[2].response_range!.kvs.map((kv) => kv.key.toString())).toEqual(['tx/a', 'tx/b', 'tx/k']);
    expect(multi.responses[3].response_delete_range!.deleted).toBe('1');
    expect(rev(multi.header.revision)).toBe(modded + 1);
    const a = await client.get('tx/a').exec();
    expect(rev(a.kvs[0].mod_revision)).toBe(modded + 1);

    // lease
    const lease = client.lease(30, { autoKeepAlive: false });
    const leaseId = await lease.grant();
    await lease.put('tx/leased').value('x');
    expect(await client.if('tx/leased', 'Lease', '==', leaseId).commit().then((r) => r.succeeded)).toBe(true);
    expect(await client.if('tx/leased', 'Lease', '==', 0).commit().then((r) => r.succeeded)).toBe(false);
    expect(await client.if('tx/a', 'Lease', '==', 0).commit().then((r) => r.succeeded)).toBe(true);
    await lease.revoke();
  });
});

describe('STM', () => {
  // etcd3's STM with RepeatableReads: reads are recorded, the commit is a Txn comparing each
  // read key's mod revision, a conflict is retried. (Its SerializableSnapshot mode exhausts
  // its retries under this contention against etcd 3.4 as well; not used here.)
  test('concurrent transfers in software transactions conserve every balance (conflicts detected and retried)', async () => {
    const accounts = ['stm/a', 'stm/b', 'stm/c'];
    for (const a of accounts) await client.put(a).value('100');
    const transfers = Array.from({ length: 16 }, (_, i) => ({ from: accounts[i % 3], to: accounts[(i + 1 + (i >> 2)) % 3] })).filter((t) => t.from !== t.to);
    const others = [0, 1].map(() => new Etcd3({ hosts: endpoints() }));
    let attempts = 0;
    try {
      for (let b = 0; b < transfers.length; b += 4) {
        await Promise.all(
          transfers.slice(b, b + 4).map((t, i) =>
            (i % 3 === 0 ? client : others[i % 2]).stm({ retries: 50, isolation: 2 /* RepeatableReads */ as never }).transact(async (tx) => {
              attempts++;
              const from = Number(await tx.get(t.from).string());
              const to = Number(await tx.get(t.to).string());
              await sleep(2);
              await tx.put(t.from).value(String(from - 1));
              await tx.put(t.to).value(String(to + 1));
            }),
          ),
        );
      }
    } finally {
      for (const c of others) c.close();
    }
    const expected = new Map(accounts.map((a) => [a, 100]));
    for (const t of transfers) {
      expected.set(t.from, expected.get(t.from)! - 1);
      expected.set(t.to, expected.get(t.to)! + 1);
    }
    expect(await client.getAll().prefix('stm/').numbers()).toEqual(Object.fromEntries(expected));
    expect(attempts).toBeGreaterThan(transfers.length); // there were conflicts, and they were caught
  });
});

describe('Watch', () => {
  /** Collects a watcher's events as [type, key, value, prevValue?] tuples. */
  function collect(w: Watcher): { events: { type: string; key: string; value: string; prev?: string; mod: number }[] } {
    const out = { events: [] as { type: string; key: string; value: string; prev?: string; mod: number }[] };
    w.on('data', (res) => {
      for (const e of res.events) {
        out.events.push({ type: e.type, key: e.kv.key.toString(), value: e.kv.value.toString(), prev: e.prev_kv ? e.prev_kv.value.toString() : undefined, mod: rev(e.kv.mod_revision) });
      }
    });
    return out;
  }

  const until = (what: string, cond: () => boolean, timeoutMs = 5000): Promise<true> => waitFor(what, async () => (cond() ? true : undefined), { timeoutMs, intervalMs: 20 });

  test('prefix watch sees puts and deletes in order; other keys are not delivered', async () => {
    const w = await client.watch().prefix('w1/').create();
    const got = collect(w);
    await client.put('w1/a').value('1');
    await client.put('w2/other').value('x');
    await client.put('w1/b').value('2');
    await client.delete().key('w1/a');
    await until('3 events', () => got.events.length >= 3);
    expect(got.events.map((e) => [e.type, e.key, e.value])).toEqual([
      ['Put', 'w1/a', '1'],
      ['Put', 'w1/b', '2'],
      ['Delete', 'w1/a', ''],
    ]);
    expect(got.events[1].mod).toBeGreaterThan(got.events[0].mod);
    await w.cancel();
  });

  test('watch from a past revision replays history then goes live; prev kv; only puts', async () => {
    const r1 = rev((await client.put('wh/k').value('1')).header.revision);
    await client.put('wh/k').value('2');
    await client.delete().key('wh/k');
    const w = await client.watch().key('wh/k').startRevision(String(r1)).withPreviousKV().create();
    const got = collect(w);
    await until('history', () => got.events.length >= 3);
    await client.put('wh/k').value('4');
    await until('live event', () => got.events.length >= 4);
    expect(got.events.map((e) => [e.type, e.value, e.prev])).toEqual([
      ['Put', '1', undefined],
      ['Put', '2', '1'],
      ['Delete', '', '2'],
      ['Put', '4', undefined],
    ]);
    expect(got.events.map((e) => e.mod)).toEqual([r1, r1 + 1, r1 + 2, got.events[3].mod]);
    await w.cancel();

    const puts = await client.watch().key('wh/k').startRevision(String(r1)).only('put').create();
    const onlyPuts = collect(puts);
    await until('puts', () => onlyPuts.events.length >= 3);
    expect(onlyPuts.events.map((e) => [e.type, e.value])).toEqual([
      ['Put', '1'],
      ['Put', '2'],
      ['Put', '4'],
    ]);
    await puts.cancel();
  });

  test('cancel ends the watcher; later writes are not delivered', async () => {
    const w = await client.watch().key('wc/k').create();
    const got = collect(w);
    let ended = false;
    w.on('end', () => (ended = true));
    await client.put('wc/k').value('1');
    await until('first event', () => got.events.length === 1);
    await w.cancel();
    expect(ended).toBe(true);
    await client.put('wc/k').value('2');
    await sleep(300);
    expect(got.events.map((e) => e.value)).toEqual(['1']);
  });
});

describe('Lease', () => {
  test('grant, put with lease, ttl with keys, leases list, keep-alive, revoke', async () => {
    const lease = client.lease(10, { autoKeepAlive: false });
    const id = await lease.grant();
    await lease.put('ls/a').value('1');
    await lease.put('ls/b').value('2');
    const kv = await client.get('ls/a').exec();
    expect(kv.kvs[0].lease).toBe(id);

    const ttl = await client.leaseClient.leaseTimeToLive({ ID: id, keys: true });
    expect(ttl.grantedTTL).toBe('10');
    expect(Number(ttl.TTL)).toBeGreaterThan(0);
    expect(Number(ttl.TTL)).toBeLessThanOrEqual(10);
    expect(ttl.keys.map(String).sort()).toEqual(['ls/a', 'ls/b']);

    const list = await client.leaseClient.leaseLeases({});
    expect(list.leases.map((l) => l.ID)).toContain(id);

    const ka = await lease.keepaliveOnce();
    expect(ka.ID).toBe(id);
    expect(ka.TTL).toBe('10');

    await lease.revoke();
    expect(await client.getAll().prefix('ls/').count()).toBe(0);
    const gone = await client.leaseClient.leaseTimeToLive({ ID: id, keys: true });
    expect(gone.TTL).toBe('-1');
    expect((await client.leaseClient.leaseLeases({})).leases.map((l) => l.ID)).not.toContain(id);
  });

  test('automatic keep-alive holds a short lease past its TTL; an unrenewed one expires with its keys', async () => {
    const kept = client.lease(2);
    let renewals = 0;
    kept.on('keepaliveSucceeded', () => renewals++);
    await kept.put('le/kept').value('1');
    const dropped = client.lease(2, { autoKeepAlive: false });
    const droppedId = await dropped.grant();
    await dropped.put('le/dropped').value('1');
    let lost: Error | undefined;
    dropped.on('lost', (e) => (lost = e));

    // The unrenewed lease's key goes (TTL 2 s, revoked by the leader through Raft).
    const t0 = Date.now();
    await waitFor('the unrenewed key to expire', async () => ((await client.get('le/dropped').exists()) ? undefined : true), { timeoutMs: 8000, intervalMs: 100 });
    const expiredMs = Date.now() - t0;
    expect(expiredMs).toBeLessThan(6000);
    expect((await client.leaseClient.leaseTimeToLive({ ID: droppedId })).TTL).toBe('-1');
    await expect(dropped.keepaliveOnce()).rejects.toBeInstanceOf(EtcdLeaseInvalidError);
    expect(lost).toBeInstanceOf(EtcdLeaseInvalidError);

    // The renewed one outlived its TTL.
    if (Date.now() - t0 < 3000) await sleep(3000 - (Date.now() - t0));
    expect(await client.get('le/kept').string()).toBe('1');
    expect(renewals).toBeGreaterThanOrEqual(2);
    await kept.revoke();
    expect(await client.get('le/kept').exists()).toBe(false);
  });
});

describe('Lock and Election recipes', () => {
  test('Lock: a held lock refuses others until released; contended counter increments never overlap', async () => {
    const first = await client.lock('lk/one').ttl(10).acquire();
    await expect(client.lock('lk/one').ttl(10).acquire()).rejects.toBeInstanceOf(EtcdLockFailedError);
    await first.release();
    const second = await client.lock('lk/one').ttl(10).acquire();
    await second.release();

    // Workers on separate clients take the lock (retrying while it is held), then
    // read-modify-write a counter. Any overlap shows as two holders at once or a lost update.
    const clients = [0, 1, 2].map(() => new Etcd3({ hosts: cluster.members.map((m) => m.clientUrl) }));
    let holders = 0;
    let maxHolders = 0;
    const workers = 4;
    const rounds = 3;
    const deadline = Date.now() + 15_000;
    try {
      await client.put('lk/counter').value('0');
      await Promise.all(
        Array.from({ length: workers }, async (_, w) => {
          const c = clients[w % clients.length];
          for (let r = 0; r < rounds; r++) {
            for (;;) {
              if (Date.now() > deadline) throw new Error(`worker ${w} could not get the lock in time`);
              try {
                await c.lock('lk/counter-lock').ttl(5).do(async () => {
                  holders++;
                  maxHolders = Math.max(maxHolders, holders);
                  const n = Number(await c.get('lk/counter').string());
                  await sleep(5);
                  await c.put('lk/counter').value(String(n + 1));
                  holders--;
                });
                break;
              } catch (e) {
                if (!(e instanceof EtcdLockFailedError)) throw e;
                await sleep(5 + Math.random() * 20);
              }
            }
          }
        }),
      );
    } finally {
      for (const c of clients) c.close();
    }
    expect(maxHolders).toBe(1);
    expect(await client.get('lk/counter').string()).toBe(String(workers * rounds));
    expect(await client.getAll().prefix('lk/counter-lock').count()).toBe(0);
  });

  test('Lock: a crashed holder loses the lock when its lease expires', async () => {
    const holder = spawnClientScript(endpoints(), `const lock = await client.lock('lk/crash').ttl(2).acquire(); ready(await lock.leaseId());`);
    await holder.ready();
    await expect(client.lock('lk/crash').ttl(5).acquire()).rejects.toBeInstanceOf(EtcdLockFailedError);
    await holder.kill(); // kill -9: no release, no more keep-alives
    const t0 = Date.now();
    const lock = await waitFor(
      'the lock to be free',
      async () => {
        try {
          return await client.lock('lk/crash').ttl(5).acquire();
        } catch (e) {
          if (e instanceof EtcdLockFailedError) return undefined;
          throw e;
        }
      },
      { timeoutMs: 8000, intervalMs: 100 },
    );
    const freedMs = Date.now() - t0;
    // eslint-disable-next-line no-console
    console.log(`lock of a killed holder (TTL 2 s) free after ${freedMs} ms`);
    expect(freedMs).toBeLessThan(6000);
    await lock.release();
  });

  test('Election: one leader; resign hands over to the next candidate; observers follow; a crashed leader is replaced', async () => {
    const observer = await client.election('el', 2).observe();
    const seen: (string | undefined)[] = [];
    observer.on('change', (v) => seen.push(v));
    const sees = (v: string): Promise<true> => waitFor(`the observer to see ${v}`, async () => (observer.leader() === v ? true : undefined), { timeoutMs: 5000, intervalMs: 20 });
    const candidates = (n: number): Promise<true> => waitFor(`${n} candidates`, async () => ((await client.getAll().prefix('election/el/').count()) === n ? true : undefined), { timeoutMs: 5000, intervalMs: 20 });

    const c1 = client.election('el', 2).campaign('n1');
    await c1.wait();
    await sees('n1');
    expect(await client.election('el').leader()).toBe('n1');

    // n2 campaigns from its own process (to be killed later), then n3 from here.
    const n2 = spawnClientScript(
      endpoints(),
      `const c = client.election('el', 2).campaign('n2');
       c.on('error', (e) => console.error(e));
       await c.wait();
       await c.proclaim('n2-again');
       ready('elected');`,
    );
    await candidates(2);
    const c3 = client.election('el', 2).campaign('n3');
    let c3Elected = false;
    c3.on('elected', () => (c3Elected = true));
    await candidates(3);
    await sleep(300);
    expect(c3Elected).toBe(false);
    expect(observer.leader()).toBe('n1');

    // Resign: the next candidate by creation order (n2) takes over, not n3.
    await c1.resign();
    expect(await n2.ready()).toBe('elected');
    await sees('n2-again');
    expect(c3Elected).toBe(false);

    // Crash: n2's process dies; its lease (TTL 2 s) expires and n3 is elected.
    await n2.kill();
    const t0 = Date.now();
    await waitFor('n3 elected', async () => (c3Elected ? true : undefined), { timeoutMs: 8000, intervalMs: 50 });
    const handoverMs = Date.now() - t0;
    // eslint-disable-next-line no-console
    console.log(`election: n3 elected ${handoverMs} ms after the leader's process was killed (TTL 2 s)`);
    expect(handoverMs).toBeLessThan(6000);
    await sees('n3');
    // The observer may skip the short-lived 'n2' value, never reorder or invent one.
    expect(seen.filter((v) => v !== undefined && v !== 'n2')).toEqual(['n1', 'n2-again', 'n3']);
    await c3.resign();
    await observer.cancel();
  });
});

describe('compaction and typed errors', () => {
  test('reads and watches below the compacted revision fail as etcd says', async () => {
    const r1 = rev((await client.put('cp/k').value('1')).header.revision);
    const r2 = rev((await client.put('cp/k').value('2')).header.revision);
    const r3 = rev((await client.put('cp/k').value('3')).header.revision);
    await client.kv.compact({ revision: r2, physical: true });

    const err = await client.get('cp/k').revision(r1).exec().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GRPCOutOfRangeError);
    expect((err as Error).message).toContain('etcdserver: mvcc: required revision has been compacted');
    expect(await client.get('cp/k').revision(r2).string()).toBe('2');
    const future = await client.get('cp/k').revision(r3 + 1_000_000).exec().catch((e: unknown) => e);
    expect(future).toBeInstanceOf(GRPCOutOfRangeError);
    expect((future as Error).message).toContain('etcdserver: mvcc: required revision is a future revision');

    // A watch from the compacted revision is canceled; etcd3 reports it as an error.
    const w = client.watch().key('cp/k').startRevision(String(r1)).watcher();
    const failed = await new Promise<Error>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no cancel within 5 s')), 5000);
      w.on('error', (e) => {
        clearTimeout(t);
        resolve(e);
      });
      w.on('data', () => reject(new Error('a compacted watch delivered events')));
    });
    expect(failed.message).toMatch(/^Watcher canceled/);
    // From the compaction revision on, it works.
    const ok = await client.watch().key('cp/k').startRevision(String(r2)).create();
    const vals: string[] = [];
    ok.on('put', (kv: IKeyValue) => vals.push(kv.value.toString()));
    await waitFor('history from r2', async () => (vals.length >= 2 ? true : undefined), { timeoutMs: 5000, intervalMs: 20 });
    expect(vals).toEqual(['2', '3']);
    await ok.cancel();
  });

  test('lease, argument and size errors map to etcd3 classes', async () => {
    await expect(client.put('te/k').value('v').lease('123456789')).rejects.toBeInstanceOf(EtcdLeaseInvalidError);
    await expect(client.leaseClient.leaseRevoke({ ID: '123456789' })).rejects.toBeInstanceOf(EtcdLeaseInvalidError);
    const tooLong = await client.leaseClient.leaseGrant({ TTL: 9_000_000_001 }).catch((e: unknown) => e);
    expect(tooLong).toBeInstanceOf(GRPCOutOfRangeError);
    expect((tooLong as Error).message).toContain('etcdserver: too large lease TTL');

    const empty = await client.put('').value('v').exec().catch((e: unknown) => e);
    expect(empty).toBeInstanceOf(GRPCInvalidArgumentError);
    expect((empty as Error).message).toContain('etcdserver: key is not provided');

    const dup = await client.if('te/k', 'Version', '==', 0).then(client.put('te/d').value('1'), client.put('te/d').value('2')).commit().catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(GRPCInvalidArgumentError);
    expect((dup as Error).message).toContain('etcdserver: duplicate key given in txn request');

    const many = Array.from({ length: 129 }, (_, i) => client.put(`te/m${i}`).value('x'));
    const tooMany = await client.if('te/k', 'Version', '==', 0).then(...many).commit().catch((e: unknown) => e);
    expect(tooMany).toBeInstanceOf(GRPCInvalidArgumentError);
    expect((tooMany as Error).message).toContain('etcdserver: too many operations in txn request');

    const big = await client.put('te/big').value(Buffer.alloc(1.6 * 1024 * 1024, 1)).exec().catch((e: unknown) => e);
    expect(big).toBeInstanceOf(GRPCInvalidArgumentError);
    expect((big as Error).message).toContain('etcdserver: request is too large');
    expect(await client.getAll().prefix('te/').count()).toBe(0);
  });
});

describe('watch across a member failure', () => {
  test.each(['follower', 'leader'] as const)(
    'kill -9 the member a watch is connected to (a %s): the watcher reconnects elsewhere and resumes with no lost or duplicated event',
    async (role) => {
      const ids = await members.memberIds();
      const leader = (await members.findLeader()).index;
      // etcd3 picks a random member for the watch stream: make clients until it is one in the role wanted.
      let watchClient: Etcd3 | undefined;
      let w: Watcher | undefined;
      const connectedTo: number[] = [];
      for (let attempt = 0; attempt < 20 && w === undefined; attempt++) {
        const c = new Etcd3({ hosts: endpoints() });
        const candidate = c.watch().prefix(`wr-${role}/`).watcher();
        const created = await new Promise<{ header: { member_id: string } }>((resolve, reject) => {
          candidate.once('connected', resolve);
          candidate.once('error', reject);
        });
        const at = ids.indexOf(Number(created.header.member_id));
        if ((at === leader) === (role === 'leader')) {
          watchClient = c;
          w = candidate;
          connectedTo.push(at);
        } else {
          await candidate.cancel();
          c.close();
        }
      }
      if (w === undefined || watchClient === undefined) throw new Error(`no watch landed on the ${role} in 20 tries`);
      let writer: Etcd3 | undefined;
      const victim = connectedTo[0];
      try {
        let disconnects = 0;
        const got: { key: string; mod: number }[] = [];
        w.on('connected', (res) => connectedTo.push(ids.indexOf(Number(res.header.member_id))));
        w.on('disconnected', () => disconnects++);
        w.on('put', (kv: IKeyValue) => got.push({ key: kv.key.toString(), mod: rev(kv.mod_revision) }));

        // A lease kept alive by etcd3 (its keep-alive stream on any member) survives the
        // failure: the client reconnects its keep-alives, a new leader restarts the TTLs.
        const lease = watchClient.lease(5);
        let leaseLost: Error | undefined;
        lease.on('lost', (e) => (leaseLost = e));
        await lease.put(`wr-${role}-lease`).value('held');

        // One writer, one key at a time, through the two other members. A put whose
        // outcome is unknown (an error during failover) is retried as create-if-absent, so
        // each key gets exactly one event and the acknowledged revisions are known.
        // A proposal forwarded to a leader that just died is lost and its caller waits for
        // the request timeout (7 s, as with etcd): the writer gives up after 1 s and retries.
        writer = new Etcd3({
          hosts: endpoints().filter((_, i) => i !== victim),
          defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 1000 }),
        });
        const total = 60;
        const killAt = 20;
        const acked: { key: string; mod: number }[] = [];
        const deadline = Date.now() + 20_000;
        let killedAt = 0;
        let resumedMs = 0;
        for (let seq = 0; seq < total; seq++) {
          if (seq === killAt) {
            await cluster.kill(victim, 'SIGKILL');
            killedAt = Date.now();
          }
          const key = `wr-${role}/${String(seq).padStart(3, '0')}`;
          for (;;) {
            if (Date.now() > deadline) throw new Error(`writes did not resume (at ${key})`);
            try {
              const r = await writer.if(key, 'Create', '==', 0).then(writer.put(key).value(String(seq))).else(writer.get(key)).commit();
              acked.push({ key, mod: r.succeeded ? rev(r.header.revision) : rev(r.responses[0].response_range!.kvs[0].mod_revision) });
              break;
            } catch {
              await sleep(50);
            }
          }
          if (seq === killAt) resumedMs = Date.now() - killedAt;
          await sleep(10);
        }
        await waitFor(`${total} watch events`, async () => (got.length >= total ? true : undefined), { timeoutMs: 15_000, intervalMs: 50 });
        await sleep(300); // a duplicate would arrive by now
        // eslint-disable-next-line no-console
        console.log(`watch on the ${role}: killed it, first write acknowledged after ${resumedMs} ms, watch reconnected to ${connectedTo.slice(1).map((i) => `m${i + 1}`).join(', ')}`);
        expect(disconnects).toBeGreaterThanOrEqual(1);
        expect(connectedTo.length).toBeGreaterThanOrEqual(2);
        expect(connectedTo[connectedTo.length - 1]).not.toBe(victim);
        expect(got).toEqual(acked);
        await w.cancel();
        expect(leaseLost).toBeUndefined();
        expect(await writer.get(`wr-${role}-lease`).string()).toBe('held');
        expect(Number((await writer.leaseClient.leaseTimeToLive({ ID: await lease.grant() })).TTL)).toBeGreaterThan(0);
        await lease.revoke();
      } finally {
        writer?.close();
        watchClient.close();
        if (!cluster.members[victim].proc) {
          cluster.spawnMember(victim);
          await cluster.waitHealthy();
        }
      }
    },
  );
});
