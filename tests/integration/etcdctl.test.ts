// Issue 3's proof, the etcdctl part: one real 3-process skiff cluster driven by Debian's
// etcdctl 3.4, checking exact outputs of the commands people run against etcd: put/get
// with every flag, del, interactive txn, watch (history, prev-kv, live), leases (grant,
// revoke, time-to-live, keep-alive, list, expiry), compaction, member list, endpoint
// status and health, lock (mutual exclusion) and elect (leader change), and the errors
// etcd gives for bad requests.
//
// The sections run in order against one cluster and each one uses its own key prefix and
// counts revisions from the revision it started at. etcdctl or the build missing: a
// failure on CI (CI=true), a skip with a warning elsewhere.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as pb from '../../src/kv/proto';
import { requireTool, StoreCluster } from '../helpers/cluster';
import { EtcdctlProcess, etcdctlOk, EtcdctlResult, runEtcdctl, stopAllEtcdctl } from '../helpers/etcdctl';

jest.setTimeout(60_000);

const available = requireTool('etcdctl', 'apt-get install etcd-client');
const describeIf = available ? describe : describe.skip;

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const hex16 = (id: number): string => id.toString(16).padStart(16, '0');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** etcdctl's failure shape: the client's retry warning naming the gRPC code, then `Error: <message>`, exit 1. */
function expectGrpcError(r: EtcdctlResult, grpcCode: string, message: string): void {
  expect({ code: r.code, stdout: r.stdout, lastLine: r.stderr.trimEnd().split('\n').pop() }).toEqual({ code: 1, stdout: '', lastLine: `Error: ${message}` });
  expect(r.stderr).toContain(`rpc error: code = ${grpcCode} desc = ${message}`);
}

describeIf('etcdctl against a 3-member skiff cluster', () => {
  let cluster: StoreCluster | undefined;
  let ep = '';
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-etcdctl-'));

  const ctl = (args: string[], input?: string | Buffer): Promise<EtcdctlResult> => runEtcdctl(ep, args, { input });
  const ok = (args: string[], input?: string | Buffer): Promise<string> => etcdctlOk(ep, args, { input });
  const getJson = async (args: string[]): Promise<any> => JSON.parse(await ok([...args, '-w', 'json']));
  /** The store's current revision (a linearizable read's header). */
  const revision = async (): Promise<number> => (await getJson(['get', 'revision-probe'])).header.revision as number;
  const grantLease = async (ttl: number): Promise<{ id: number; hex: string }> => {
    const out = await ok(['lease', 'grant', String(ttl)]);
    const m = /^lease ([0-9a-f]{16}) granted with TTL\((\d+)s\)\n$/.exec(out);
    expect(m).not.toBeNull();
    return { id: parseInt(m![1], 16), hex: m![1] };
  };
  const kvClient = (): pb.ServiceClient<'KV'> => pb.createClient('KV', cluster!.members[0].clientUrl.replace('http://', ''), undefined, { 'grpc.max_send_message_length': 8 * 1024 * 1024 });

  beforeAll(async () => {
    cluster = await StoreCluster.start({ kind: 'skiff', members: 3 });
    ep = cluster.endpoints();
  }, 30_000);

  afterAll(async () => {
    await stopAllEtcdctl();
    await cluster?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('put and get', () => {
    let r0 = 0;
    beforeAll(async () => {
      r0 = await revision();
      for (const [k, v] of [
        ['~pg/a', '1'],
        ['~pg/b', '2'],
        ['~pg/c', '3'],
        ['~pg/a', '10'],
        ['~pgz', 'zz'],
      ]) {
        expect(await ok(['put', k, v])).toBe('OK\n');
      }
      // ~pg/a: created r0+1, modified r0+4, version 2; ~pg/b r0+2; ~pg/c r0+3; ~pgz r0+5.
    });

    test('--prefix, --from-key, --limit, --keys-only, --print-value-only, range end', async () => {
      expect(await ok(['get', '~pg/', '--prefix'])).toBe('~pg/a\n10\n~pg/b\n2\n~pg/c\n3\n');
      // '~' sorts after every other prefix this file uses: from-key sees only these.
      expect(await ok(['get', '~pg/b', '--from-key'])).toBe('~pg/b\n2\n~pg/c\n3\n~pgz\nzz\n');
      expect(await ok(['get', '~pg/', '--prefix', '--limit', '2'])).toBe('~pg/a\n10\n~pg/b\n2\n');
      expect(await ok(['get', '~pg/', '--prefix', '--keys-only'])).toBe('~pg/a\n\n~pg/b\n\n~pg/c\n\n');
      expect(await ok(['get', '~pg/', '--prefix', '--print-value-only'])).toBe('10\n2\n3\n');
      expect(await ok(['get', '~pg/a', '~pg/c'])).toBe('~pg/a\n10\n~pg/b\n2\n');
      expect(await ok(['get', '~pg/nosuch'])).toBe('');
      expect(await ok(['get', '~pg/', '--prefix', '--consistency=s', '--keys-only', '--limit=1'])).toBe('~pg/a\n\n');
      expect(await ok(['get', '~pg/a', '--hex'])).toBe('\\x7e\\x70\\x67\\x2f\\x61\n\\x31\\x30\n');
    });

    test('--rev reads the past', async () => {
      expect(await ok(['get', '~pg/a', `--rev=${r0 + 1}`])).toBe('~pg/a\n1\n');
      expect(await ok(['get', '~pg/', '--prefix', `--rev=${r0 + 2}`])).toBe('~pg/a\n1\n~pg/b\n2\n');
      expect(await ok(['get', '~pg/c', `--rev=${r0 + 2}`])).toBe('');
      expect(await ok(['get', '~pg/a', `--rev=${r0 + 4}`])).toBe('~pg/a\n10\n');
    });

    test('--sort-by with --order and --limit', async () => {
      const get = (...flags: string[]): Promise<string> => ok(['get', '~pg/', '--prefix', '--keys-only', ...flags]).then((s) => s.split('\n').filter(Boolean).join(' '));
      expect(await get('--sort-by=KEY', '--order=DESCEND')).toBe('~pg/c ~pg/b ~pg/a');
      expect(await get('--sort-by=KEY', '--order=ASCEND', '--limit=2')).toBe('~pg/a ~pg/b');
      // Values '10' < '2' < '3' as bytes.
      expect(await get('--sort-by=VALUE', '--order=DESCEND')).toBe('~pg/c ~pg/b ~pg/a');
      // A target other than KEY without an order sorts ascending (etcd's default).
      expect(await get('--sort-by=MODIFY')).toBe('~pg/b ~pg/c ~pg/a');
      expect(await get('--sort-by=MODIFY', '--order=DESCEND', '--limit=2')).toBe('~pg/a ~pg/c');
      expect(await get('--sort-by=MODIFY', '--order=ASCEND', '--limit=2')).toBe('~pg/b ~pg/c');
      expect(await get('--sort-by=CREATE', '--order=DESCEND', '--limit=1')).toBe('~pg/c');
      expect(await get('--sort-by=CREATE', '--order=ASCEND')).toBe('~pg/a ~pg/b ~pg/c');
      expect(await get('--sort-by=VERSION', '--order=DESCEND', '--limit=1')).toBe('~pg/a');
      // etcd: --order alone sorts by key.
      expect(await get('--order=DESCEND', '--limit=2')).toBe('~pg/c ~pg/b');
    });

    test('-w json: header, base64 kvs, revisions, version, count, more', async () => {
      const j = await getJson(['get', '~pg/', '--prefix', '--limit=2']);
      expect(j.header.revision).toBe(r0 + 5);
      expect(j.header.cluster_id).toEqual(expect.any(Number));
      expect(j.header.member_id).toEqual(expect.any(Number));
      expect(j.header.raft_term).toBeGreaterThanOrEqual(1);
      expect(j.kvs).toEqual([
        { key: b64('~pg/a'), create_revision: r0 + 1, mod_revision: r0 + 4, version: 2, value: b64('10') },
        { key: b64('~pg/b'), create_revision: r0 + 2, mod_revision: r0 + 2, version: 1, value: b64('2') },
      ]);
      expect(j.count).toBe(3);
      expect(j.more).toBe(true);
      const all = await getJson(['get', '~pg/', '--prefix']);
      expect(all.count).toBe(3);
      expect(all.more).toBeUndefined(); // false is omitted, as etcd's JSON does
      const none = await getJson(['get', '~pg/nosuch']);
      expect(none).toEqual({ header: { ...none.header, revision: r0 + 5 } });
      const keysOnly = await getJson(['get', '~pg/b', '--keys-only']);
      expect(keysOnly.kvs).toEqual([{ key: b64('~pg/b'), create_revision: r0 + 2, mod_revision: r0 + 2, version: 1 }]);
      const old = await getJson(['get', '~pg/a', `--rev=${r0 + 1}`]);
      expect({ rev: old.header.revision, kvs: old.kvs }).toEqual({ rev: r0 + 5, kvs: [{ key: b64('~pg/a'), create_revision: r0 + 1, mod_revision: r0 + 1, version: 1, value: b64('1') }] });
      const fields = await ok(['get', '~pg/b', '-w', 'fields']);
      expect(fields).toContain(`"Revision" : ${r0 + 5}\n"RaftTerm" : `);
      expect(fields).toContain(`"Key" : "~pg/b"\n"CreateRevision" : ${r0 + 2}\n"ModRevision" : ${r0 + 2}\n"Version" : 1\n"Value" : "2"\n"Lease" : 0\n"More" : false\n"Count" : 1\n`);
    });

    test('count_only (no etcdctl 3.4 flag: over gRPC)', async () => {
      const kv = kvClient();
      try {
        const res = await pb.callUnary(kv, 'Range', { key: Buffer.from('~pg/'), range_end: Buffer.from('~pg0'), count_only: true, limit: 1 });
        expect({ count: res.count, kvs: res.kvs, more: res.more, revision: res.header?.revision }).toEqual({ count: 3, kvs: [], more: false, revision: r0 + 5 });
      } finally {
        kv.close();
      }
    });

    test('put --prev-kv, --ignore-value, --ignore-lease', async () => {
      expect(await ok(['put', '~pg/b', '20', '--prev-kv'])).toBe('OK\n~pg/b\n2\n'); // r0+6
      const j = JSON.parse(await ok(['put', '~pg/b', '--ignore-value', '--prev-kv', '-w', 'json'])); // r0+7
      expect({ rev: j.header.revision, prev: j.prev_kv }).toEqual({ rev: r0 + 7, prev: { key: b64('~pg/b'), create_revision: r0 + 2, mod_revision: r0 + 6, version: 2, value: b64('20') } });
      expect(await ok(['get', '~pg/b', '--print-value-only'])).toBe('20\n');
      expectGrpcError(await ctl(['put', '~pg/nosuch', '--ignore-value']), 'InvalidArgument', 'etcdserver: key not found');
      expect(await ok(['put', '~pg/b', '21', '--ignore-lease'])).toBe('OK\n'); // r0+8
      expect(await revision()).toBe(r0 + 8);
      // del --from-key: '~pgz' is the last key of the whole key space.
      expect(await ok(['del', '~pgy', '--from-key', '--prev-kv'])).toBe('1\n~pgz\nzz\n');
    });
  });

  describe('del', () => {
    test('single key, --prev-kv, --prefix, range, --from-key, deleted counts, no-op deletes keep the revision', async () => {
      const r0 = await revision();
      for (const k of ['dl/a', 'dl/b', 'dl/c', 'dl/d', 'dl/e', 'dl/f']) expect(await ok(['put', k, k.slice(3)])).toBe('OK\n');
      // r0+1..r0+6
      expect(await ok(['del', 'dl/nosuch'])).toBe('0\n');
      expect(await ok(['del', 'dl/x', '--prefix'])).toBe('0\n');
      expect(await revision()).toBe(r0 + 6);
      expect(await ok(['del', 'dl/a'])).toBe('1\n'); // r0+7
      expect(await ok(['del', 'dl/b', '--prev-kv'])).toBe('1\ndl/b\nb\n'); // r0+8
      expect(await ok(['del', 'dl/c', 'dl/e'])).toBe('2\n'); // c, d: r0+9
      const j = JSON.parse(await ok(['del', 'dl/', '--prefix', '--prev-kv', '-w', 'json'])); // e, f: r0+10
      expect(j.header.revision).toBe(r0 + 10);
      expect(j.deleted).toBe(2);
      expect(j.prev_kvs).toEqual([
        { key: b64('dl/e'), create_revision: r0 + 5, mod_revision: r0 + 5, version: 1, value: b64('e') },
        { key: b64('dl/f'), create_revision: r0 + 6, mod_revision: r0 + 6, version: 1, value: b64('f') },
      ]);
      const noop = JSON.parse(await ok(['del', 'dl/', '--prefix', '-w', 'json']));
      expect(noop).toEqual({ header: { ...noop.header, revision: r0 + 10 } }); // deleted: 0 omitted
      expect(await ok(['get', 'dl/', '--prefix'])).toBe('');
      // A deleted key's history is still there.
      expect(await ok(['get', 'dl/b', `--rev=${r0 + 7}`])).toBe('dl/b\nb\n');
    });
  });

  describe('txn', () => {
    let r0 = 0;
    beforeAll(async () => {
      r0 = await revision();
      expect(await ok(['put', 'tx/k', 'v1'])).toBe('OK\n'); // r0+1
      expect(await ok(['put', 'tx/k', 'v2'])).toBe('OK\n'); // r0+2: version 2, create r0+1, mod r0+2
    });

    test('interactive input: compares on value, version, create and mod; both branches', async () => {
      const cmp = [`value("tx/k") = "v2"`, `version("tx/k") = "2"`, `create("tx/k") = "${r0 + 1}"`, `mod("tx/k") = "${r0 + 2}"`].join('\n');
      const success = 'put tx/ok yes\nget tx/k\n';
      const failure = 'put tx/failed yes\n';
      expect(await ok(['txn'], `${cmp}\n\n${success}\n${failure}\n`)).toBe('SUCCESS\n\nOK\n\ntx/k\nv2\n'); // r0+3
      // Each compare alone failing sends the txn down the failure branch.
      for (const bad of [`value("tx/k") = "v1"`, `version("tx/k") > "2"`, `create("tx/k") < "${r0 + 1}"`, `mod("tx/k") != "${r0 + 2}"`]) {
        expect(await ok(['txn'], `${bad}\n\nput tx/never x\n\nget tx/k --keys-only\n\n`)).toBe('FAILURE\n\ntx/k\n\n');
      }
      expect(await ok(['get', 'tx/', '--prefix', '--keys-only'])).toBe('tx/k\n\ntx/ok\n\n');
      expect(await ok(['txn'], `value("tx/k") = "v2"\n\n\nput tx/f x\n\n`)).toBe('SUCCESS\n');
      // A missing key: version/create/mod compare as 0, value compares fail.
      expect(await ok(['txn'], `version("tx/missing") = "0"\ncreate("tx/missing") = "0"\n\nget tx/ok\n\n\n`)).toBe('SUCCESS\n\ntx/ok\nyes\n');
      expect(await ok(['txn'], `value("tx/missing") != "x"\n\nget tx/ok\n\nget tx/k\n\n`)).toBe('FAILURE\n\ntx/k\nv2\n');
      expect(await revision()).toBe(r0 + 3);
    });

    test('-w json: per-op headers as etcd sets them, deletes with prev kvs', async () => {
      const r = await revision();
      // A range or a no-op delete before the txn's first write reports the revision it began at.
      const j = JSON.parse(await ok(['txn', '-w', 'json'], `\nget tx/k\ndel tx/none\nput tx/p 1\ndel tx/ok --prev-kv\nget tx/p\n\n\n`));
      expect(j.header.revision).toBe(r + 1);
      expect(j.succeeded).toBe(true);
      expect(j.responses).toEqual([
        { Response: { ResponseRange: { header: { revision: r }, kvs: [{ key: b64('tx/k'), create_revision: r0 + 1, mod_revision: r0 + 2, version: 2, value: b64('v2') }], count: 1 } } },
        { Response: { ResponseDeleteRange: { header: { revision: r } } } },
        { Response: { ResponsePut: { header: { revision: r + 1 } } } },
        { Response: { ResponseDeleteRange: { header: { revision: r + 1 }, deleted: 1, prev_kvs: [{ key: b64('tx/ok'), create_revision: r0 + 3, mod_revision: r0 + 3, version: 1, value: b64('yes') }] } } },
        { Response: { ResponseRange: { header: { revision: r + 1 }, kvs: [{ key: b64('tx/p'), create_revision: r + 1, mod_revision: r + 1, version: 1, value: b64('1') }], count: 1 } } },
      ]);
      // A txn that changes nothing keeps the revision; a failed compare with an empty branch too.
      const noop = JSON.parse(await ok(['txn', '-w', 'json'], `\ndel tx/none\n\n\n`));
      expect({ rev: noop.header.revision, responses: noop.responses }).toEqual({ rev: r + 1, responses: [{ Response: { ResponseDeleteRange: { header: { revision: r + 1 } } } }] });
      const failed = JSON.parse(await ok(['txn', '-w', 'json'], `value("tx/k") = "zzz"\n\n\n\n`));
      expect(failed).toEqual({ header: { ...failed.header, revision: r + 1 } });
    });

    test('compare on lease (over gRPC: etcdctl 3.4 panics parsing lease compares)', async () => {
      const lease = await grantLease(60);
      expect(await ok(['put', 'tx/leased', 'x', `--lease=${lease.hex}`])).toBe('OK\n');
      const kv = kvClient();
      try {
        const txn = (key: string, leaseId: number, result: pb.CompareResult): Promise<pb.TxnResponse> =>
          pb.callUnary(kv, 'Txn', {
            compare: [{ key: Buffer.from(key), target: 'LEASE', result, lease: leaseId } as pb.Wire<pb.Compare>],
            success: [{ request_range: { key: Buffer.from(key), keys_only: true } }],
            failure: [],
          });
        expect((await txn('tx/leased', lease.id, 'EQUAL')).succeeded).toBe(true);
        expect((await txn('tx/leased', 0, 'EQUAL')).succeeded).toBe(false);
        expect((await txn('tx/leased', lease.id - 1, 'GREATER')).succeeded).toBe(true);
        expect((await txn('tx/k', 0, 'EQUAL')).succeeded).toBe(true);
        expect((await txn('tx/missing', 0, 'EQUAL')).succeeded).toBe(true);
      } finally {
        kv.close();
      }
      expect(await ok(['lease', 'revoke', lease.hex])).toBe(`lease ${lease.hex} revoked\n`);
    });

    test('nested txn headers over gRPC (etcdctl has no syntax for them)', async () => {
      const kv = kvClient();
      try {
        const r = await revision();
        const res = await pb.callUnary(kv, 'Txn', {
          success: [
            { request_range: { key: Buffer.from('tx/none') } },
            { request_txn: { success: [{ request_put: { key: Buffer.from('tx/nested'), value: Buffer.from('n') } }] } },
            { request_range: { key: Buffer.from('tx/nested'), keys_only: true } },
          ],
        });
        const revs = res.responses.map((op) => (op.response === 'response_txn' ? [op.response_txn.header?.revision, op.response_txn.responses.map((o) => (o.response === 'response_put' ? o.response_put.header?.revision : -1))] : op.response === 'response_range' ? op.response_range.header?.revision : -1));
        // etcd: a nested txn's own header stays empty; ops report the write txn's revision as they ran.
        expect({ top: res.header?.revision, revs }).toEqual({ top: r + 1, revs: [r, [0, [r + 1]], r + 1] });
      } finally {
        kv.close();
      }
    });
  });

  describe('watch', () => {
    test('--prefix --rev from the past with --prev-kv, then live events; -w json', async () => {
      const r0 = await revision();
      expect(await ok(['put', 'wa/x', '1'])).toBe('OK\n'); // r0+1
      expect(await ok(['put', 'wa/x', '2'])).toBe('OK\n'); // r0+2
      expect(await ok(['del', 'wa/x'])).toBe('1\n'); // r0+3
      expect(await ok(['put', 'wb', 'outside'])).toBe('OK\n'); // r0+4, not under wa/
      const history = 'PUT\nwa/x\n1\n' + 'PUT\nwa/x\n1\nwa/x\n2\n' + 'DELETE\nwa/x\n2\nwa/x\n\n';
      const w = EtcdctlProcess.start(ep, ['watch', 'wa/', '--prefix', `--rev=${r0 + 1}`, '--prev-kv']);
      const wj = EtcdctlProcess.start(ep, ['watch', 'wa/x', `--rev=${r0 + 2}`, '-w', 'json']);
      try {
        await w.waitForStdout((s) => s === history, 10_000, 'the history');
        // Live: a write from another etcdctl call.
        expect(await ok(['put', 'wa/y', '3'])).toBe('OK\n'); // r0+5
        expect(await ok(['put', 'wa/x', '4'])).toBe('OK\n'); // r0+6
        await w.waitForStdout((s) => s === history + 'PUT\nwa/y\n3\n' + 'PUT\nwa/x\n4\n', 10_000, 'the live events');
        const parse = (s: string): any[] => s.split('\n').filter((l) => l.endsWith('}')).map((l) => JSON.parse(l));
        const lines = parse(await wj.waitForStdout((s) => parse(s).flatMap((l) => l.Events).length >= 3, 10_000, 'three json events'));
        const events = lines.flatMap((l) => l.Events);
        expect(events).toEqual([
          { kv: { key: b64('wa/x'), create_revision: r0 + 1, mod_revision: r0 + 2, version: 2, value: b64('2') } },
          { type: 1, kv: { key: b64('wa/x'), mod_revision: r0 + 3 } },
          { kv: { key: b64('wa/x'), create_revision: r0 + 6, mod_revision: r0 + 6, version: 1, value: b64('4') } },
        ]);
        for (const l of lines) expect({ c: l.CompactRevision, x: l.Canceled, cr: l.Created }).toEqual({ c: 0, x: false, cr: false });
        expect(lines[lines.length - 1].Header.revision).toBe(r0 + 6);
      } finally {
        await w.stop();
        await wj.stop();
      }
      expect(w.stderr).toBe('');
    });
  });

  describe('leases', () => {
    test('grant, put --lease, timetolive --keys, keep-alive --once, list, revoke removes the keys', async () => {
      const l = await grantLease(60);
      expect(await ok(['put', 'ls/a', '1', `--lease=${l.hex}`])).toBe('OK\n');
      expect(await ok(['put', 'ls/b', '2', `--lease=${l.hex}`])).toBe('OK\n');
      expect(await ok(['lease', 'timetolive', l.hex, '--keys'])).toMatch(new RegExp(`^lease ${l.hex} granted with TTL\\(60s\\), remaining\\((5[7-9]|60)s\\), attached keys\\(\\[ls/a ls/b\\]\\)\n$`));
      expect(await ok(['lease', 'timetolive', l.hex])).toMatch(new RegExp(`^lease ${l.hex} granted with TTL\\(60s\\), remaining\\((5[7-9]|60)s\\)\n$`));
      const ttl = JSON.parse(await ok(['lease', 'timetolive', l.hex, '--keys', '-w', 'json']));
      expect({ ...ttl, ttl: 0 }).toEqual({ cluster_id: expect.any(Number), member_id: expect.any(Number), revision: expect.any(Number), raft_term: expect.any(Number), id: l.id, ttl: 0, 'granted-ttl': 60, keys: [b64('ls/a'), b64('ls/b')] });
      expect(await ok(['lease', 'keep-alive', '--once', l.hex])).toBe(`lease ${l.hex} keepalived with TTL(60)\n`);
      const ka = JSON.parse(await ok(['lease', 'keep-alive', '--once', l.hex, '-w', 'json']));
      expect({ ID: ka.ID, TTL: ka.TTL }).toEqual({ ID: l.id, TTL: 60 });
      const got = JSON.parse(await ok(['get', 'ls/a', '-w', 'json']));
      expect(got.kvs[0].lease).toBe(l.id);
      const list = await ok(['lease', 'list']);
      expect(list).toMatch(/^found \d+ leases\n/);
      expect(list.split('\n')).toContain(l.hex);
      const rBefore = await revision();
      expect(await ok(['lease', 'revoke', l.hex])).toBe(`lease ${l.hex} revoked\n`);
      expect(await ok(['get', 'ls/', '--prefix'])).toBe('');
      expect(await revision()).toBe(rBefore + 1); // both keys go in one revision
      expect(await ok(['lease', 'timetolive', l.hex])).toBe(`lease ${l.hex} already expired\n`);
      expect((await ok(['lease', 'list'])).split('\n')).not.toContain(l.hex);
      // etcdctl words this one itself.
      const again = await ctl(['lease', 'revoke', l.hex]);
      expect({ code: again.code, last: again.stderr.trimEnd().split('\n').pop() }).toEqual({ code: 1, last: 'Error: failed to revoke lease (etcdserver: requested lease not found)' });
      expect(again.stderr).toContain('rpc error: code = NotFound desc = etcdserver: requested lease not found');
      expectGrpcError(await ctl(['put', 'ls/c', '3', `--lease=${l.hex}`]), 'NotFound', 'etcdserver: requested lease not found');
      const once = await ctl(['lease', 'keep-alive', '--once', l.hex]);
      expect({ code: once.code, stdout: once.stdout, stderr: once.stderr }).toEqual({ code: 2, stdout: '', stderr: 'Error: etcdserver: requested lease not found\n' });
      // Revoking a lease without keys writes nothing.
      const empty = await grantLease(60);
      const r = await revision();
      expect(await ok(['lease', 'revoke', empty.hex])).toBe(`lease ${empty.hex} revoked\n`);
      expect(await revision()).toBe(r);
    });

    test('expiry: minimum TTL, keys removed on expiry, streaming keep-alive holds a lease past its TTL', async () => {
      // The minimum TTL with the default election timeout (1 s) is 2 s: a 1 s grant gets 2 s.
      const short = await grantLease(1);
      expect(await ok(['lease', 'timetolive', short.hex])).toMatch(new RegExp(`^lease ${short.hex} granted with TTL\\(2s\\), remaining\\([12]s\\)\n$`));
      expect(await ok(['put', 'le/short', 's', `--lease=${short.hex}`])).toBe('OK\n');
      const t0 = Date.now();
      const kept = await grantLease(3);
      expect(await ok(['put', 'le/kept', 'k', `--lease=${kept.hex}`])).toBe('OK\n');
      const keepAlive = EtcdctlProcess.start(ep, ['lease', 'keep-alive', kept.hex]);
      const waitGone = async (key: string, withinMs: number): Promise<number> => {
        const start = Date.now();
        while (Date.now() - start < withinMs) {
          if ((await ok(['get', key, '--keys-only'])) === '') return Date.now() - start;
          await sleep(100);
        }
        throw new Error(`${key} still there after ${withinMs} ms`);
      };
      try {
        // The 2 s lease expires (checked every 500 ms by the leader, then revoked through Raft).
        await waitGone('le/short', 6000);
        expect(await ok(['lease', 'timetolive', short.hex])).toBe(`lease ${short.hex} already expired\n`);
        // Keep-alives go out every TTL/3 = 1 s; past the 3 s TTL (from the grant) the key is still there.
        const line = `lease ${kept.hex} keepalived with TTL(3)\n`;
        await keepAlive.waitForStdout((s) => s.split(line).length - 1 >= 4, 8000, 'four keep-alives');
        expect(Date.now() - t0).toBeGreaterThan(3000);
        expect(await ok(['get', 'le/kept', '--print-value-only'])).toBe('k\n');
        expect(keepAlive.stdout).toBe(line.repeat(keepAlive.stdout.split(line).length - 1));
      } finally {
        await keepAlive.stop();
      }
      // Keep-alives stopped: the lease runs out within its TTL (+ the expiry check period).
      const after = await waitGone('le/kept', 6000);
      expect(after).toBeLessThan(5000);
      // A streaming keep-alive of a revoked lease says so and exits.
      const gone = await runEtcdctl(ep, ['lease', 'keep-alive', kept.hex], { timeoutMs: 10_000 });
      expect({ code: gone.code, stdout: gone.stdout }).toEqual({ code: 0, stdout: `lease ${kept.hex} expired or revoked.\n` });
    });
  });

  describe('compaction', () => {
    test('compaction, then reads and watches at compacted revisions fail with etcd errors', async () => {
      const r0 = await revision();
      for (const v of ['1', '2', '3']) expect(await ok(['put', 'cp/a', v])).toBe('OK\n'); // r0+1..r0+3
      expect(await ok(['compaction', String(r0 + 2)])).toBe(`compacted revision ${r0 + 2}\n`);
      expectGrpcError(await ctl(['get', 'cp/a', `--rev=${r0 + 1}`]), 'OutOfRange', 'etcdserver: mvcc: required revision has been compacted');
      expect(await ok(['get', 'cp/a', `--rev=${r0 + 2}`])).toBe('cp/a\n2\n');
      expectGrpcError(await ctl(['get', 'cp/a', `--rev=${r0 + 100}`]), 'OutOfRange', 'etcdserver: mvcc: required revision is a future revision');
      expectGrpcError(await ctl(['compaction', String(r0 + 1)]), 'OutOfRange', 'etcdserver: mvcc: required revision has been compacted');
      expectGrpcError(await ctl(['compaction', String(r0 + 100)]), 'OutOfRange', 'etcdserver: mvcc: required revision is a future revision');
      // A txn reading at a compacted revision fails as a whole.
      expectGrpcError(await ctl(['txn'], `\nget cp/a --rev=${r0 + 1}\n\n\n`), 'OutOfRange', 'etcdserver: mvcc: required revision has been compacted');
      const w = await runEtcdctl(ep, ['watch', 'cp/a', `--rev=${r0 + 1}`], { timeoutMs: 10_000 });
      expect(w).toEqual({ code: 5, stdout: '', stderr: 'watch was canceled (etcdserver: mvcc: required revision has been compacted)\nError: watch is canceled by the server\n' });
      expect(await ok(['compaction', '--physical', String(r0 + 3)])).toBe(`compacted revision ${r0 + 3}\n`);
      expect(await ok(['get', 'cp/a', `--rev=${r0 + 3}`])).toBe('cp/a\n3\n');
      // Every member hashes the same history after the compaction (once it applied it).
      let hashes: any[] = [];
      for (let i = 0; i < 20; i++) {
        hashes = JSON.parse(await ok(['endpoint', 'hashkv', '-w', 'json'])).map((s: any) => ({ hash: s.HashKV.hash, compact: s.HashKV.compact_revision, rev: s.HashKV.header.revision }));
        if (new Set(hashes.map((h) => JSON.stringify(h))).size === 1) break;
        await sleep(100);
      }
      expect(hashes).toEqual([hashes[0], hashes[0], hashes[0]]);
      expect(hashes[0]).toEqual({ hash: expect.any(Number), compact: r0 + 3, rev: r0 + 3 });
    });
  });

  describe('cluster', () => {
    test('member list: simple, -w table, -w json', async () => {
      const j = JSON.parse(await ok(['member', 'list', '-w', 'json']));
      expect(Object.keys(j.header).sort()).toEqual(['cluster_id', 'member_id', 'raft_term']); // no revision, as etcd
      const members = (j.members as any[]).map((m) => ({ id: m.ID as number, name: m.name as string, peer: m.peerURLs as string[], client: m.clientURLs as string[] }));
      expect(members.map((m) => m.id)).toEqual([...members.map((m) => m.id)].sort((a, b) => a - b)); // sorted by id, as etcd
      expect(members.map((m) => ({ name: m.name, peer: m.peer, client: m.client })).sort((a, b) => a.name.localeCompare(b.name))).toEqual(
        cluster!.members.map((m) => ({ name: m.name, peer: [m.peerUrl], client: [m.clientUrl] })),
      );
      expect(await ok(['member', 'list'])).toBe(members.map((m) => `${m.id.toString(16)}, started, ${m.name}, ${m.peer[0]}, ${m.client[0]}, false\n`).join(''));
      const table = (await ok(['member', 'list', '-w', 'table'])).trimEnd().split('\n');
      expect(table.length).toBe(3 + 3 + 1);
      const rows = table.filter((l) => l.startsWith('|')).map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
      expect(rows).toEqual([
        ['ID', 'STATUS', 'NAME', 'PEER ADDRS', 'CLIENT ADDRS', 'IS LEARNER'],
        ...members.map((m) => [m.id.toString(16), 'started', m.name, m.peer[0], m.client[0], 'false']),
      ]);
      expect(table[0]).toMatch(/^\+(-+\+){6}$/);
    });

    test('endpoint status (-w json, -w table) and endpoint health (simple, -w json), all endpoints', async () => {
      const endpoints = ep.split(',');
      const ids = new Map<string, number>();
      for (const m of JSON.parse(await ok(['member', 'list', '-w', 'json'])).members) ids.set(m.clientURLs[0].replace('http://', ''), m.ID);
      const st = JSON.parse(await ok(['endpoint', 'status', '-w', 'json']));
      expect(st.map((s: any) => s.Endpoint)).toEqual(endpoints);
      const leader = st[0].Status.leader;
      expect([...ids.values()]).toContain(leader);
      for (const s of st) {
        expect(s.Status.header.member_id).toBe(ids.get(s.Endpoint));
        expect(s.Status.version).toBe('3.4.23');
        expect(s.Status.leader).toBe(leader);
        expect(s.Status.raftTerm).toBe(st[0].Status.raftTerm);
        expect(s.Status.raftIndex).toBeGreaterThan(0);
        expect(s.Status.raftAppliedIndex).toBeGreaterThan(0);
        expect(s.Status.dbSize).toBeGreaterThan(0);
        expect(s.Status.dbSizeInUse).toBeGreaterThan(0);
        expect(s.Status.header.revision).toBeGreaterThan(1);
        expect(s.Status.errors).toBeUndefined();
      }
      const table = (await ok(['endpoint', 'status', '-w', 'table'])).trimEnd().split('\n');
      const rows = table.filter((l) => l.startsWith('|')).map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
      expect(rows[0]).toEqual(['ENDPOINT', 'ID', 'VERSION', 'DB SIZE', 'IS LEADER', 'IS LEARNER', 'RAFT TERM', 'RAFT INDEX', 'RAFT APPLIED INDEX', 'ERRORS']);
      expect(rows.slice(1).map((r) => r[0])).toEqual(endpoints);
      expect(rows.slice(1).map((r) => r[1])).toEqual(endpoints.map((e) => ids.get(e)!.toString(16)));
      expect(rows.slice(1).map((r) => r[4]).filter((x) => x === 'true')).toEqual(['true']);
      expect(rows.slice(1).find((r) => r[4] === 'true')![1]).toBe(leader.toString(16));
      for (const r of rows.slice(1)) {
        expect(r[2]).toBe('3.4.23');
        expect(r[3]).toMatch(/^\d+(\.\d+)? (B|kB|MB)$/);
        expect(r[5]).toBe('false');
        expect(r[9]).toBe('');
      }
      // etcdctl 3.4 prints the health lines on stderr.
      const hr = await ctl(['endpoint', 'health']);
      expect({ code: hr.code, stdout: hr.stdout }).toEqual({ code: 0, stdout: '' });
      const health = hr.stderr.trimEnd().split('\n');
      expect(health.map((l) => l.replace(/took = [\d.]+(µs|ms|s)$/, 'took = T')).sort()).toEqual(endpoints.map((e) => `${e} is healthy: successfully committed proposal: took = T`).sort());
      const hj = JSON.parse(await ok(['endpoint', 'health', '-w', 'json']));
      expect(hj.map((h: any) => ({ endpoint: h.endpoint, health: h.health })).sort((a: any, b: any) => a.endpoint.localeCompare(b.endpoint))).toEqual(endpoints.map((e) => ({ endpoint: e, health: true })).sort((a, b) => a.endpoint.localeCompare(b.endpoint)));
    });
  });

  // etcdctl 3.4 dials an endpoint given as a URL (--endpoints=http://host:port, or the
  // member URLs that --cluster takes from member list) with ":authority: http://host:port";
  // Go's HTTP/2 server (etcd) takes it, and so must ours.
  test('URL endpoints: endpoint status/health (--cluster, --endpoints=http://...), put and get', async () => {
    const viaCluster = JSON.parse(await ok(['endpoint', 'status', '--cluster', '-w', 'json']));
    expect(viaCluster.map((s: any) => s.Endpoint).sort()).toEqual(cluster!.members.map((m) => m.clientUrl).sort());
    const urls = cluster!.members.map((m) => m.clientUrl).join(',');
    const health = await runEtcdctl(urls, ['endpoint', 'health']);
    expect(health.code).toBe(0);
    expect(health.stderr.trimEnd().split('\n').filter((l) => l.includes('is healthy'))).toHaveLength(3);
    expect(await etcdctlOk(urls, ['put', 'url-key', 'v'])).toBe('OK\n');
    expect(await etcdctlOk(cluster!.members[2]!.clientUrl, ['get', 'url-key', '--print-value-only'])).toBe('v\n');
  });

  test('the client port answers HTTP/1.1 /health and /version, as etcd\'s does', async () => {
    const url = cluster!.members[0]!.clientUrl;
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ health: 'true', reason: '' });
    const version = (await (await fetch(`${url}/version`)).json()) as { etcdserver: string; etcdcluster: string };
    expect(version.etcdserver).toMatch(/^3\.4\./);
  });

  describe('lock and elect', () => {
    test('lock: concurrent holders never overlap; a held lock blocks the next until released', async () => {
      const log = path.join(tmp, 'lock.log');
      const counter = path.join(tmp, 'lock.counter');
      fs.writeFileSync(counter, '0');
      // Read-modify-write of a counter with a pause inside: an overlap would lose an update
      // and interleave enter/exit lines.
      const script = `echo "enter $$ $ETCD_LOCK_KEY" >> ${log}; c=$(cat ${counter}); sleep 0.2; echo $((c + 1)) > ${counter}; echo "exit $$" >> ${log}`;
      const holders = [0, 1, 2, 3].map(() => EtcdctlProcess.start(ep, ['lock', 'mutex', '--', 'sh', '-c', script], { detached: true }));
      const results = await Promise.all(holders.map((h) => h.exited(20_000)));
      expect(results.map((r) => r.code)).toEqual([0, 0, 0, 0]);
      expect(fs.readFileSync(counter, 'utf8').trim()).toBe('4');
      const lines = fs.readFileSync(log, 'utf8').trimEnd().split('\n');
      expect(lines.length).toBe(8);
      const keys = new Set<string>();
      for (let i = 0; i < lines.length; i += 2) {
        const enter = /^enter (\d+) (mutex\/[0-9a-f]+)$/.exec(lines[i]);
        expect(enter).not.toBeNull();
        expect(lines[i + 1]).toBe(`exit ${enter![1]}`);
        keys.add(enter![2]);
      }
      expect(keys.size).toBe(4); // one session lease each
      expect(await ok(['get', 'mutex', '--prefix'])).toBe(''); // unlocked, sessions closed

      // Without a command, etcdctl lock prints the key and holds it until signalled.
      const holder = EtcdctlProcess.start(ep, ['lock', 'held']);
      const key = (await holder.waitForStdout((s) => s.endsWith('\n'), 10_000, 'the lock key')).trim();
      expect(key).toMatch(/^held\/[0-9a-f]+$/);
      const waiter = EtcdctlProcess.start(ep, ['lock', 'held', '--', 'echo', 'got it'], { detached: true });
      await sleep(700);
      expect(waiter.done).toBe(false);
      expect(waiter.stdout).toBe('');
      await holder.stop('SIGTERM');
      const w = await waiter.exited(10_000);
      expect({ code: w.code, stdout: w.stdout }).toEqual({ code: 0, stdout: 'got it\n' });
    });

    test('elect: campaign, observe with -l, leader changes when the leader resigns or its session ends', async () => {
      const observer = EtcdctlProcess.start(ep, ['elect', '-l', 'el']);
      const c1 = EtcdctlProcess.start(ep, ['elect', 'el', 'p1']);
      const procs = [observer, c1];
      try {
        const leader1 = await c1.waitForStdout((s) => s.endsWith('p1\n'), 10_000, 'c1 elected');
        expect(leader1).toMatch(/^el\/[0-9a-f]+\np1\n$/);
        const c2 = EtcdctlProcess.start(ep, ['elect', 'el', 'p2']);
        procs.push(c2);
        await observer.waitForStdout((s) => s.includes('p1\n'), 10_000, 'the observer to see p1');
        await sleep(500);
        expect(c2.stdout).toBe(''); // still campaigning
        // The first campaigner is stopped (SIGTERM: it resigns): the second is elected.
        await c1.stop('SIGTERM');
        const leader2 = await c2.waitForStdout((s) => s.endsWith('p2\n'), 10_000, 'c2 elected');
        expect(leader2).toMatch(/^el\/[0-9a-f]+\np2\n$/);
        await observer.waitForStdout((s) => s === leader1 + leader2, 10_000, 'the observer to see p2');
        // The second is killed (SIGKILL: no resign): its key stays until its session lease
        // ends; revoking that lease (what its expiry does) elects the third.
        const c3 = EtcdctlProcess.start(ep, ['elect', 'el', 'p3']);
        procs.push(c3);
        await sleep(300);
        await c2.stop('SIGKILL');
        await sleep(500);
        expect(c3.stdout).toBe('');
        const key2 = leader2.split('\n')[0];
        const kv = JSON.parse(await ok(['get', key2, '-w', 'json'])).kvs[0];
        expect(Buffer.from(kv.value, 'base64').toString()).toBe('p2');
        expect(await ok(['lease', 'revoke', hex16(kv.lease)])).toBe(`lease ${hex16(kv.lease)} revoked\n`);
        const leader3 = await c3.waitForStdout((s) => s.endsWith('p3\n'), 10_000, 'c3 elected');
        await observer.waitForStdout((s) => s === leader1 + leader2 + leader3, 10_000, 'the observer to see p3');
      } finally {
        for (const p of procs) await p.stop('SIGTERM');
      }
      expect(await ok(['get', 'el', '--prefix'])).toBe('');
    });
  });

  describe('errors', () => {
    test('empty key', async () => {
      for (const args of [
        ['put', '', 'x'],
        ['get', ''],
        ['del', ''],
      ]) {
        expectGrpcError(await ctl(args), 'InvalidArgument', 'etcdserver: key is not provided');
      }
      expectGrpcError(await ctl(['txn'], `\nput "" x\n\n\n`), 'InvalidArgument', 'etcdserver: key is not provided');
    });

    test('txn: too many operations (--max-txn-ops, 128 by default), duplicate keys', async () => {
      const puts = (n: number): string => Array.from({ length: n }, (_, i) => `put ops/${i} v\n`).join('');
      const r0 = await revision();
      expectGrpcError(await ctl(['txn'], `\n${puts(129)}\n\n`), 'InvalidArgument', 'etcdserver: too many operations in txn request');
      expect(await revision()).toBe(r0);
      expect(await ok(['txn'], `\n${puts(128)}\n\n`)).toBe('SUCCESS\n' + '\nOK\n'.repeat(128));
      expect(await revision()).toBe(r0 + 1);
      expect(await ok(['get', 'ops/', '--prefix', '--keys-only', '-w', 'json']).then((s) => JSON.parse(s).count)).toBe(128);
      expectGrpcError(await ctl(['txn'], `\nput ops/0 a\nput ops/0 b\n\n\n`), 'InvalidArgument', 'etcdserver: duplicate key given in txn request');
      expectGrpcError(await ctl(['txn'], `\ndel ops/ --prefix\nput ops/0 b\n\n\n`), 'InvalidArgument', 'etcdserver: duplicate key given in txn request');
      expect(await ok(['del', 'ops/', '--prefix'])).toBe('128\n');
    });

    test('request too large: over --max-request-bytes (1.5 MiB) INVALID_ARGUMENT, over the gRPC limit RESOURCE_EXHAUSTED, nothing stored', async () => {
      const MiB = 1024 * 1024;
      const r0 = await revision();
      // etcdctl put reads the value from stdin when it is not an argument.
      expect(await ok(['put', 'big/fits'], 'x'.repeat(1.5 * MiB - 4096))).toBe('OK\n');
      expectGrpcError(await ctl(['put', 'big/over'], 'x'.repeat(1.5 * MiB + 1024)), 'InvalidArgument', 'etcdserver: request is too large');
      expectGrpcError(await ctl(['put', 'big/over'], 'x'.repeat(2 * MiB - 1024)), 'InvalidArgument', 'etcdserver: request is too large');
      // etcdctl itself refuses to send more than 2 MiB.
      const client = await ctl(['put', 'big/over'], 'x'.repeat(3 * MiB));
      expect(client.code).toBe(1);
      expect(client.stderr).toMatch(/Error: rpc error: code = ResourceExhausted desc = trying to send message larger than max \(\d+ vs\. 2097152\)\n$/);
      // Above --max-request-bytes + 512 KiB the server's gRPC layer refuses the message
      // with grpc-go's words, as etcd's does.
      const kv = kvClient();
      try {
        await expect(pb.callUnary(kv, 'Put', { key: Buffer.from('big/over'), value: Buffer.alloc(2.5 * MiB, 'x') })).rejects.toMatchObject({
          code: 8, // RESOURCE_EXHAUSTED
          details: expect.stringMatching(/^grpc: received message larger than max \(\d+ vs\. 2097152\)$/),
        });
      } finally {
        kv.close();
      }
      expect(await ok(['get', 'big/', '--prefix', '--keys-only'])).toBe('big/fits\n\n');
      expect(await revision()).toBe(r0 + 1);
      expect(await ok(['del', 'big/', '--prefix'])).toBe('1\n');
    });
  });
});
