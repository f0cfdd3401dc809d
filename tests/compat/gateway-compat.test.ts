// etcd's JSON gateway (POST /v3/...) on the client port: one scripted session of HTTP
// requests against a Debian etcd 3.4 member and a skiff member; the HTTP statuses and the
// JSON bodies must be equal once ids, terms, sizes and hashes are normalized.

import { requireTool, StoreCluster, StoreKind } from '../helpers/cluster';

jest.setTimeout(60_000);

const available = requireTool('etcd', 'apt-get install etcd-server');

/** Values that differ between any two clusters, replaced by their key's name. */
const VARYING = new Set(['cluster_id', 'member_id', 'raft_term', 'ID', 'leader', 'dbSize', 'dbSizeInUse', 'raftIndex', 'raftAppliedIndex', 'raftTerm', 'hash', 'peerURLs', 'clientURLs']);

function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    out[k] = VARYING.has(k) ? `<${k}>` : k === 'TTL' && typeof x === 'string' && Number(x) >= 55 && Number(x) <= 60 ? '<ttl 55-60>' : normalize(x);
  }
  return out;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

interface Step {
  name: string;
  path: string;
  body?: unknown;
  method?: string;
}

/** The session: each step may use what earlier answers returned (a lease id). */
function steps(lease: () => string): Array<Step | (() => Step)> {
  return [
    { name: 'put, prev_kv', path: '/v3/kv/put', body: { key: b64('foo'), value: b64('bar'), prev_kv: true } },
    { name: 'put, prevKv (JSON name)', path: '/v3/kv/put', body: { key: b64('foo'), value: b64('baz'), prevKv: true } },
    { name: 'put another', path: '/v3/kv/put', body: { key: b64('fop'), value: b64('1') } },
    { name: 'range one key', path: '/v3/kv/range', body: { key: b64('foo') } },
    { name: 'range prefix, sorted, keys only', path: '/v3/kv/range', body: { key: b64('f'), range_end: b64('g'), sort_order: 'DESCEND', sort_target: 'KEY', keys_only: true } },
    { name: 'range count only, enum by number', path: '/v3/kv/range', body: { key: b64('f'), range_end: b64('g'), count_only: true, sort_order: 1 } },
    { name: 'range with limit, revision as a number', path: '/v3/kv/range', body: { key: b64('f'), range_end: b64('g'), limit: '1', revision: 3 } },
    { name: 'range nothing', path: '/v3/kv/range', body: { key: b64('nope') } },
    { name: 'put without key', path: '/v3/kv/put', body: {} },
    { name: 'put with an unknown field', path: '/v3/kv/put', body: { bogus: 1, value: b64('x') } },
    { name: 'empty body', path: '/v3/kv/range' },
    {
      name: 'txn success branch',
      path: '/v3/kv/txn',
      body: { compare: [{ key: b64('foo'), result: 'EQUAL', target: 'VALUE', value: b64('baz') }], success: [{ request_range: { key: b64('foo') } }, { request_put: { key: b64('t'), value: b64('1') } }], failure: [] },
    },
    {
      name: 'txn failure branch',
      path: '/v3/kv/txn',
      body: { compare: [{ key: b64('foo'), result: 'GREATER', target: 'MOD', mod_revision: '100' }], failure: [{ request_delete_range: { key: b64('t'), prev_kv: true } }] },
    },
    { name: 'lease grant', path: '/v3/lease/grant', body: { TTL: 60 } },
    () => ({ name: 'put with the lease', path: '/v3/kv/put', body: { key: b64('leased'), value: b64('v'), lease: lease() } }),
    () => ({ name: 'lease timetolive with keys (kv/ path)', path: '/v3/kv/lease/timetolive', body: { ID: lease(), keys: true } }),
    { name: 'lease leases', path: '/v3/lease/leases', body: {} },
    () => ({ name: 'lease revoke', path: '/v3/kv/lease/revoke', body: { ID: lease() } }),
    () => ({ name: 'lease revoke again', path: '/v3/lease/revoke', body: { ID: lease() } }),
    { name: 'leased key gone', path: '/v3/kv/range', body: { key: b64('leased') } },
    { name: 'delete prefix, prev_kv', path: '/v3/kv/deleterange', body: { key: b64('f'), range_end: b64('g'), prev_kv: true } },
    { name: 'compact a future revision', path: '/v3/kv/compaction', body: { revision: '1000' } },
    { name: 'compact', path: '/v3/kv/compaction', body: { revision: '4', physical: true } },
    { name: 'range at a compacted revision', path: '/v3/kv/range', body: { key: b64('foo'), revision: '2' } },
    { name: 'v3beta prefix', path: '/v3beta/kv/range', body: { key: b64('t') } },
    { name: 'status', path: '/v3/maintenance/status', body: {} },
    { name: 'alarm list', path: '/v3/maintenance/alarm', body: { action: 'GET' } },
    { name: 'member list', path: '/v3/cluster/member/list', body: {} },
    { name: 'hashkv: no such path in 3.4', path: '/v3/maintenance/hashkv', body: { revision: '0' } },
    { name: 'hash', path: '/v3/maintenance/hash', body: {} },
    { name: 'GET instead of POST', path: '/v3/kv/range', method: 'GET' },
    { name: 'a path outside the gateway', path: '/v4/kv/range', body: {} },
    { name: 'user get, no such user', path: '/v3/auth/user/get', body: { name: 'x' } },
    { name: 'role list', path: '/v3/auth/role/list', body: {} },
    { name: 'unknown path', path: '/v3/kv/nothing', body: {} },
  ];
}

async function runSession(c: StoreCluster): Promise<string[]> {
  const url = c.members[0]!.clientUrl;
  let leaseId = '';
  const out: string[] = [];
  for (const s of steps(() => leaseId)) {
    const step = typeof s === 'function' ? s() : s;
    const res = await fetch(url + step.path, { method: step.method ?? 'POST', body: step.body === undefined ? undefined : JSON.stringify(step.body) });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: compared as text
    }
    if (step.name === 'lease grant') leaseId = (body as { ID: string }).ID;
    out.push(`${step.name}: ${res.status} ${JSON.stringify(normalize(body))}`);
  }
  // A watch from revision 5 of the key t (put, then deleted): what arrives in one second.
  const ac = new AbortController();
  const res = await fetch(`${url}/v3/watch`, { method: 'POST', body: JSON.stringify({ create_request: { key: b64('t'), start_revision: '5', prev_kv: true } }), signal: ac.signal });
  const timer = setTimeout(() => ac.abort(), 1000);
  let buf = '';
  try {
    for await (const chunk of res.body!) buf += Buffer.from(chunk).toString('utf8');
  } catch {
    // aborted: the watch stream never ends by itself
  }
  clearTimeout(timer);
  out.push(`watch: ${res.status} ${res.headers.get('content-type')}`);
  for (const line of buf.trimEnd().split('\n')) out.push(`watch: ${JSON.stringify(normalize(JSON.parse(line)))}`);
  return out;
}

(available ? describe : describe.skip)('the JSON gateway against etcd 3.4 and skiff', () => {
  const clusters: StoreCluster[] = [];
  const sessions = new Map<StoreKind, string[]>();

  beforeAll(async () => {
    const runs = await Promise.allSettled(
      (['etcd', 'skiff'] as StoreKind[]).map(async (kind) => {
        const c = await StoreCluster.start({ kind, members: 1 });
        clusters.push(c);
        sessions.set(kind, await runSession(c));
      }),
    );
    for (const r of runs) if (r.status === 'rejected') throw r.reason;
  }, 50_000);

  afterAll(async () => {
    await Promise.all(clusters.map((c) => c.stop()));
  });

  test('every step answers as etcd does', () => {
    const etcd = sessions.get('etcd')!;
    expect(etcd.length).toBeGreaterThan(30);
    expect(sessions.get('skiff')).toEqual(etcd);
  });
});
