// The etcdctl session the compatibility test runs against etcd and against skiff: puts,
// gets with every flag and -w json, no-op deletes and the revisions after them, deletes
// with prev kvs, txns (both branches, -w json, per-op revisions, limits), leases (grant,
// keep-alive, time-to-live, list, revoke, expiry), watches from past revisions with prev
// kvs, compaction and reads at compacted revisions, lock and elect, member list, endpoint
// status/health/hashkv, and the errors for bad requests.
//
// The clusters run with --max-txn-ops=8 and --max-request-bytes=262144 (COMPAT_FLAGS), so
// that both limits are reached with small requests and the gRPC layer's own limit
// (max-request-bytes + 512 KiB) is below etcdctl's 2 MiB client limit.

import type * as pb from '../../src/kv/proto';
import { canonLeader, sortJson, sortLeaseKeys, sortLeaseList, sortLines, sortTableRows } from './normalize';
import type { Step, StepContext } from './session';

export const COMPAT_FLAGS = ['--max-txn-ops=8', '--max-request-bytes=262144'];

const KiB = 1024;

/** Events printed by a simple-format watch so far. */
const simpleEvents = (out: string): number => out.split('\n').filter((l) => l === 'PUT' || l === 'DELETE').length;
/** Events printed by a -w json watch so far. */
const jsonEvents = (out: string): number =>
  out
    .split('\n')
    .filter((l) => l.endsWith('}'))
    .reduce((n, l) => n + ((JSON.parse(l) as { Events?: unknown[] }).Events?.length ?? 0), 0);

const ctl = (...args: string[]): Step => ({ ctl: args });
const at = (f: (c: StepContext) => string[]): Step => ({ ctl: f });
const txn = (input: string | ((c: StepContext) => string), ...flags: string[]): Step => ({ ctl: ['txn', ...flags], input });

const SORT_TARGETS = ['KEY', 'CREATE', 'MODIFY', 'VALUE', 'VERSION'];

/** Revisions in a txn response, nested txns as [own header revision, [ops...]]. */
function txnRevisions(t: pb.TxnResponse): unknown[] {
  return t.responses.map((op) => {
    switch (op.response) {
      case 'response_range':
        return { range: op.response_range.header?.revision, count: op.response_range.count };
      case 'response_put':
        return { put: op.response_put.header?.revision };
      case 'response_delete_range':
        return { del: op.response_delete_range.header?.revision, deleted: op.response_delete_range.deleted };
      case 'response_txn':
        return { txn: op.response_txn.header?.revision ?? 0, succeeded: op.response_txn.succeeded, ops: txnRevisions(op.response_txn) };
    }
  });
}

function call<T>(kv: pb.ServiceClient<'KV'>, method: 'Range' | 'Txn', req: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    (kv as unknown as Record<string, (r: unknown, cb: (e: Error | null, v: T) => void) => void>)[method](req, (e, v) => (e ? reject(e) : resolve(v)));
  });
}

export const SESSION: Step[] = [
  // ---- put and get ----
  { mark: 'start' },
  ctl('put', 'a', '1'),
  ctl('put', 'b', '2'),
  ctl('put', 'c', '3'),
  ctl('put', 'a', '10'),
  ctl('put', 'e/1', 'x'),
  ctl('put', 'e/2', 'y'),
  ctl('put', 'e/3', 'z'),
  ctl('put', 'a', '11', '--prev-kv'),
  ctl('put', 'a', '12', '--prev-kv', '-w', 'json'),
  ctl('put', 'b', '--ignore-value', '--prev-kv', '-w', 'json'),
  ctl('put', 'nosuch', '--ignore-value'),
  ctl('put', 'b', '22', '--ignore-lease', '-w', 'json'),
  ctl('get', 'a'),
  ctl('get', 'a', '-w', 'json'),
  ctl('get', 'a', '-w', 'fields'),
  ctl('get', 'nosuch', '-w', 'json'),
  at(({ m }) => ['get', 'a', `--rev=${m.start + 1}`]),
  at(({ m }) => ['get', 'a', `--rev=${m.start + 1}`, '-w', 'json']),
  at(({ m }) => ['get', 'c', `--rev=${m.start + 2}`]),
  at(({ m }) => ['get', '', '--from-key', `--rev=${m.start + 3}`, '-w', 'json']),
  ctl('get', 'a', 'c'),
  ctl('get', 'a', 'c', '-w', 'json'),
  ctl('get', 'b', '--from-key'),
  ctl('get', 'b', '--from-key', '--limit=2', '-w', 'json'),
  ctl('get', '', '--from-key', '--keys-only'),
  ctl('get', 'e/', '--prefix', '--keys-only'),
  ctl('get', 'e/', '--prefix', '--keys-only', '-w', 'json'),
  ctl('get', 'e/', '--prefix', '--limit=2', '-w', 'json'),
  ctl('get', 'e/', '--prefix', '--print-value-only'),
  ctl('get', 'e/', '--prefix', '--consistency=s'),
  ctl('get', 'a', '--hex'),
  ...SORT_TARGETS.flatMap((target) => [
    ctl('get', '', '--from-key', '--keys-only', `--sort-by=${target}`, '--order=ASCEND', '--limit=3'),
    ctl('get', '', '--from-key', `--sort-by=${target}`, '--order=DESCEND', '--limit=3', '-w', 'json'),
  ]),
  ctl('get', '', '--from-key', '--keys-only', '--sort-by=MODIFY'),
  ctl('get', '', '--from-key', '--keys-only', '--order=DESCEND', '--limit=4'),
  ctl('get', 'e/', '--prefix', '--sort-by=VALUE', '--order=DESCEND', '--limit=1', '-w', 'json'),
  // etcdctl 3.4 has no --count-only: sent over gRPC.
  {
    grpc: 'Range count_only (prefix e/, limit 1)',
    run: async ({ kv }) => {
      const r = await call<pb.RangeResponse>(kv, 'Range', { key: Buffer.from('e/'), range_end: Buffer.from('e0'), count_only: true, limit: 1 });
      return { count: r.count, kvs: r.kvs.length, more: r.more, revision: r.header?.revision };
    },
  },
  {
    grpc: 'Range count_only (all keys, at the first revision with keys)',
    run: async ({ kv, marks }) => {
      const r = await call<pb.RangeResponse>(kv, 'Range', { key: Buffer.from([0]), range_end: Buffer.from([0]), count_only: true, revision: marks.start + 1 });
      return { count: r.count, kvs: r.kvs.length, more: r.more, revision: r.header?.revision };
    },
  },

  // ---- deletes: counts, prev kvs, revisions after no-op deletes ----
  { mark: 'del' },
  ctl('del', 'nosuch'),
  ctl('del', 'nosuch', '-w', 'json'),
  ctl('del', 'e/zz', '--prefix', '-w', 'json'),
  ctl('del', 'zzz', '--from-key', '-w', 'json'),
  ctl('get', 'a', '-w', 'json'),
  ctl('del', 'e/1', '--prev-kv'),
  ctl('del', 'e/', '--prefix', '--prev-kv', '-w', 'json'),
  ctl('del', 'e/', '--prefix', '-w', 'json'),
  ctl('del', 'a', 'c', '-w', 'fields'),
  ctl('del', 'c', '--prev-kv', '-w', 'json'),
  ctl('get', '', '--from-key', '-w', 'json'),
  at(({ m }) => ['get', 'a', `--rev=${m.del}`, '-w', 'json']),
  at(({ m }) => ['get', '', '--from-key', '--keys-only', `--rev=${m.del + 1}`]),
  { mark: 'after-del' },

  // ---- txn ----
  ctl('put', 't/k', 'v1'),
  ctl('put', 't/k', 'v2'),
  txn(({ m }) => `value("t/k") = "v2"\nversion("t/k") = "2"\ncreate("t/k") = "${m['after-del'] + 1}"\nmod("t/k") = "${m['after-del'] + 2}"\n\nput t/ok yes\nget t/k\n\nput t/failed yes\n\n`),
  txn(`value("t/k") = "v1"\n\nput t/never x\n\nget t/k\nput t/f1 1\n\n`, '-w', 'json'),
  txn(`version("t/k") > "1"\nmod("t/k") < "1000"\ncreate("t/k") != "0"\n\nget t/ --prefix --keys-only\n\n\n`),
  txn(`value("t/missing") != "x"\n\n\nget t/missing\n\n`),
  txn(`version("t/missing") = "0"\n\nget t/missing\n\n\n`, '-w', 'json'),
  // Per-op revisions: reads and no-op deletes before the first write say the begin revision.
  txn(`\nget t/k\ndel t/none\nput t/p 1\ndel t/ok --prev-kv\ndel t/none2\nget t/p\n\n\n`, '-w', 'json'),
  txn(`\ndel t/none\n\n\n`, '-w', 'json'),
  txn(`value("t/k") = "zzz"\n\n\n\n`, '-w', 'json'),
  txn(`\nput t/q 1\nget t/q\n\n\n`, '-w', 'fields'),
  { mark: 'after-txn' },
  txn(`\n${Array.from({ length: 8 }, (_, i) => `put t/n${i} v`).join('\n')}\n\n\n`),
  txn(`\n${Array.from({ length: 9 }, (_, i) => `put t/m${i} v`).join('\n')}\n\n\n`),
  txn(`${Array.from({ length: 9 }, (_, i) => `version("t/c${i}") = "0"`).join('\n')}\n\nget t/k\n\n\n`),
  txn(`\nput t/d 1\nput t/d 2\n\n\n`),
  txn(`\ndel t/ --prefix\nput t/d 2\n\n\n`),
  txn(`\nput "" 1\n\n\n`),
  txn(`\nget t/k --rev=999\n\n\n`),
  { mark: 'after-txn-errors' },
  {
    grpc: 'Txn with a nested txn (revisions of each response)',
    run: async ({ kv }) => {
      const t = await call<pb.TxnResponse>(kv, 'Txn', {
        success: [
          { request_range: { key: Buffer.from('t/none') } },
          { request_txn: { compare: [{ key: Buffer.from('t/k'), target: 'VALUE', result: 'EQUAL', value: Buffer.from('v2') }], success: [{ request_put: { key: Buffer.from('t/nested'), value: Buffer.from('n') } }, { request_range: { key: Buffer.from('t/nested') } }] } },
          { request_delete_range: { key: Buffer.from('t/none') } },
        ],
      });
      return { succeeded: t.succeeded, revision: t.header?.revision, ops: txnRevisions(t) };
    },
  },
  {
    grpc: 'read-only Txn with a nested txn',
    run: async ({ kv }) => {
      const t = await call<pb.TxnResponse>(kv, 'Txn', { success: [{ request_range: { key: Buffer.from('t/k') } }, { request_txn: { success: [{ request_range: { key: Buffer.from('t/nested') } }] } }] });
      return { succeeded: t.succeeded, revision: t.header?.revision, ops: txnRevisions(t) };
    },
  },

  // ---- leases ----
  ctl('lease', 'grant', '60'), // <lease:1>
  ctl('lease', 'grant', '120', '-w', 'json'), // <lease:2>
  // LeaseLeases is answered from the member's own lessor (in etcd too): asked until the
  // member that answers has applied the grants.
  { ctl: ['lease', 'list'], canon: sortLeaseList, until: (out) => out.startsWith('found 2 leases') },
  at((c) => ['put', 'l/a', '1', `--lease=${c.lease(1)}`]),
  at((c) => ['put', 'l/b', '2', `--lease=${c.lease(1)}`, '-w', 'json']),
  at((c) => ['put', 'l/c', '3', `--lease=${c.lease(2)}`]),
  // Moving a key to another lease, and off any lease.
  at((c) => ['put', 'l/c', '3', `--lease=${c.lease(1)}`]),
  ctl('put', 'l/d', '4'),
  ctl('get', 'l/', '--prefix', '-w', 'json'),
  ctl('get', 'l/a', '-w', 'fields'),
  { ctl: (c) => ['lease', 'timetolive', c.lease(1), '--keys'], canon: sortLeaseKeys },
  { ctl: (c) => ['lease', 'timetolive', c.lease(1), '--keys', '-w', 'json'], canon: sortLeaseKeys },
  at((c) => ['lease', 'timetolive', c.lease(2), '--keys']),
  at((c) => ['lease', 'keep-alive', '--once', c.lease(1)]),
  at((c) => ['lease', 'keep-alive', '--once', c.lease(1), '-w', 'json']),
  ctl('put', 'l/b', '22', '--ignore-lease', '--prev-kv', '-w', 'json'),
  ctl('get', 'l/b', '-w', 'json'),
  {
    grpc: 'Txn comparing leases (etcdctl 3.4 panics parsing lease compares)',
    run: async ({ kv, leases }) => {
      const cmp = (key: string, lease: string, result: string): Promise<pb.TxnResponse> =>
        // Long ids as decimal strings: etcd's exceed 2^53.
        call<pb.TxnResponse>(kv, 'Txn', { compare: [{ key: Buffer.from(key), target: 'LEASE', result, lease }], success: [{ request_range: { key: Buffer.from(key), keys_only: true } }] });
      const results = [];
      for (const [key, lease, result] of [
        ['l/a', leases[0], 'EQUAL'],
        ['l/a', leases[1], 'EQUAL'],
        ['l/a', '0', 'GREATER'],
        ['l/d', '0', 'EQUAL'],
        ['l/missing', '0', 'EQUAL'],
      ]) {
        const t = await cmp(key, lease, result);
        results.push({ key, result, succeeded: t.succeeded, ops: txnRevisions(t) });
      }
      return results;
    },
  },
  { mark: 'before-revoke' },
  at((c) => ['lease', 'revoke', c.lease(1)]),
  ctl('get', 'l/', '--prefix', '-w', 'json'),
  at((c) => ['lease', 'timetolive', c.lease(1)]),
  at((c) => ['lease', 'timetolive', c.lease(1), '--keys', '-w', 'json']),
  at((c) => ['lease', 'revoke', c.lease(1)]),
  at((c) => ['lease', 'keep-alive', '--once', c.lease(1)]),
  at((c) => ['lease', 'keep-alive', c.lease(1)]),
  at((c) => ['put', 'l/e', '5', `--lease=${c.lease(1)}`]),
  ctl('put', 'l/e', '5', '--lease=zz'),
  // Revoking a lease with no keys writes nothing.
  at((c) => ['lease', 'revoke', c.lease(2)]),
  { mark: 'after-revoke' },
  { ctl: ['lease', 'list'], canon: sortLeaseList, until: (out) => out.startsWith('found 0 leases') },
  ctl('lease', 'grant', '9000000001'),
  // The minimum TTL (2 s with the default election timeout) and expiry.
  ctl('lease', 'grant', '1'), // <lease:3>
  at((c) => ['put', 'l/short', 's', `--lease=${c.lease(3)}`]),
  { gone: 'l/short', withinMs: 8000 },
  { mark: 'after-expiry' },
  at((c) => ['lease', 'timetolive', c.lease(3)]),
  at((c) => ['get', 'l/short', `--rev=${c.m['after-expiry'] - 1}`, '-w', 'json']),

  // ---- watch: from past revisions, with prev kvs, then live ----
  { mark: 'watch' },
  ctl('put', 'w/x', '1'),
  ctl('put', 'w/x', '2'),
  ctl('del', 'w/x'),
  ctl('put', 'wb', 'outside'),
  {
    bg: (c) => ['watch', 'w/', '--prefix', `--rev=${c.m.watch + 1}`, '--prev-kv'],
    ready: (out) => simpleEvents(out) >= 3,
    during: [ctl('put', 'w/y', '3'), ctl('put', 'w/x', '4'), ctl('del', 'w/', '--prefix')],
    done: (out) => simpleEvents(out) >= 7,
  },
  {
    bg: (c) => ['watch', 'w/x', `--rev=${c.m.watch + 2}`, '--prev-kv', '-w', 'json'],
    ready: (out) => jsonEvents(out) >= 4,
    during: [ctl('put', 'w/x', '5')],
    done: (out) => jsonEvents(out) >= 5,
  },
  {
    bg: (c) => ['watch', 'w/x', 'w/z', `--rev=${c.m.watch + 1}`],
    ready: (out) => simpleEvents(out) >= 6,
    during: [],
    done: () => true,
  },

  // ---- compaction ----
  { mark: 'compact' },
  ctl('put', 'cp', '1'),
  ctl('put', 'cp', '2'),
  ctl('put', 'cp', '3'),
  at((c) => ['compaction', String(c.m.compact + 2)]),
  at((c) => ['get', 'cp', `--rev=${c.m.compact + 1}`]),
  at((c) => ['get', 'cp', `--rev=${c.m.compact + 2}`, '-w', 'json']),
  at((c) => ['get', 'cp', `--rev=${c.m.compact + 100}`]),
  at((c) => ['compaction', String(c.m.compact + 1)]),
  at((c) => ['compaction', String(c.m.compact + 2)]),
  at((c) => ['compaction', String(c.m.compact + 100)]),
  txn((c) => `\nget cp --rev=${c.m.compact + 1}\n\n\n`),
  at((c) => ['watch', 'cp', `--rev=${c.m.compact + 1}`]),
  // From the compacted revision itself: its event is there, but not the kv before it (etcd
  // reads prev kvs at mod revision - 1, which is compacted), the next event's is.
  {
    bg: (c) => ['watch', 'cp', `--rev=${c.m.compact + 2}`, '--prev-kv', '-w', 'json'],
    ready: (out) => jsonEvents(out) >= 2,
    during: [],
    done: () => true,
  },
  // Compacting at the current revision.
  at((c) => ['compaction', String(c.m.compact + 3)]),
  at((c) => ['get', 'cp', `--rev=${c.m.compact + 3}`]),
  ctl('put', 'cp', '4'),
  at((c) => ['compaction', '--physical', String(c.m.compact + 4), '-w', 'json']),
  at((c) => ['get', 'cp', `--rev=${c.m.compact + 4}`]),
  at((c) => ['get', 'cp', `--rev=${c.m.compact + 3}`]),
  {
    // Members apply the compaction each in its own time: ask until all three agree.
    ctl: ['endpoint', 'hashkv', '-w', 'json'],
    until: (out) => new Set([...out.matchAll(/"hash":(\d+),"compact_revision":(\d+)/g)].map((x) => x[0])).size === 1,
  },

  // ---- lock and elect ----
  { ctl: ['lock', 'lk', '--', 'sh', '-c', 'echo "$ETCD_LOCK_KEY $ETCD_LOCK_REV"'] }, // <lease:4>
  ctl('get', 'lk', '--prefix'),
  {
    bg: ['elect', 'el', 'p1'], // <lease:5>
    ready: (out) => out.endsWith('p1\n'),
    during: [ctl('get', 'el', '--prefix'), ctl('get', 'el', '--prefix', '--keys-only', '-w', 'fields')],
    done: () => true,
  },
  ctl('get', 'el', '--prefix'),
  { mark: 'after-elect' },

  // ---- cluster ----
  { ctl: ['member', 'list'], canon: sortLines },
  { ctl: ['member', 'list', '-w', 'json'], canon: (s) => sortJson(s, { field: 'members', by: 'name' }) },
  { ctl: ['member', 'list', '-w', 'table'], canon: sortTableRows },
  { ctl: ['endpoint', 'status'], canon: canonLeader },
  // Status is each member's own view: asked until all three applied the last write.
  { ctl: ['endpoint', 'status', '-w', 'json'], until: (out) => new Set([...out.matchAll(/"revision":(\d+)/g)].map((x) => x[1])).size === 1 },
  { ctl: ['endpoint', 'status', '-w', 'table'], canon: canonLeader },
  { ctl: ['endpoint', 'health'], canon: sortLines },
  { ctl: ['endpoint', 'health', '-w', 'json'], canon: (s) => sortJson(s, { by: 'endpoint' }) },
  ctl('alarm', 'list'),
  ctl('alarm', 'disarm'),
  ctl('defrag'),

  // ---- errors ----
  ctl('put', '', 'x'),
  ctl('get', ''),
  ctl('del', ''),
  ctl('get', 'a', '--sort-by=NAME'),
  ctl('get', 'a', '--rev=-1'),
  // --max-request-bytes=262144: a request above it is refused by etcd, one above it +
  // 512 KiB by the gRPC layer, one above 2 MiB by etcdctl itself. Values come on stdin.
  { ctl: ['put', 'big'], input: 'x'.repeat(200 * KiB), label: 'etcdctl put big <<< 200 KiB' },
  { ctl: ['put', 'big'], input: 'x'.repeat(300 * KiB), label: 'etcdctl put big <<< 300 KiB' },
  { ctl: ['put', 'big'], input: 'x'.repeat(700 * KiB), label: 'etcdctl put big <<< 700 KiB' },
  { ctl: ['put', 'big'], input: 'x'.repeat(800 * KiB), label: 'etcdctl put big <<< 800 KiB' },
  { ctl: ['put', 'big'], input: 'x'.repeat(3 * 1024 * KiB), label: 'etcdctl put big <<< 3 MiB' },
  {
    ctl: ['txn'],
    input: `\n${Array.from({ length: 4 }, (_, i) => `put big${i} ${'y'.repeat(80 * KiB)}`).join('\n')}\n\n\n`,
    label: 'etcdctl txn <<< 4 puts of 80 KiB',
  },
  ctl('get', 'big', '--prefix', '--keys-only', '-w', 'json'),
  { mark: 'end' },
  ctl('get', '', '--from-key', '--keys-only'),
];
