// Our protos against the real etcd 3.4 server (Debian's etcd-server): its responses
// decode into our shapes, and its errors are exactly those of errors.ts, including how it
// refuses oversized requests. Skipped, with a warning, where etcd is not installed.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as pb from '../../../src/kv/proto';
import { ETCD_ERRORS, GRPC_OVERHEAD_BYTES, REQUEST_BYTES_MAX_DEFAULT, fromServiceError } from '../../../src/kv/errors';
import { findBinary, freePort } from './helpers';

const ETCD = findBinary('etcd', process.env.ETCD_BIN);
const ETCD_START_TIMEOUT_MS = 20_000;
const ETCD_STOP_TIMEOUT_MS = 5_000;

if (ETCD === undefined) {
  console.warn('skipping the real-etcd tests: etcd not installed (apt-get install etcd-server)');
}
const describeWithEtcd = ETCD === undefined ? describe.skip : describe;

const b = (s: string): Buffer => Buffer.from(s);

describeWithEtcd('real etcd answers in our shapes and with our errors', () => {
  let etcd: ChildProcess | undefined;
  let dataDir: string | undefined;
  let address = '';
  let output = '';
  const clients: grpc.Client[] = [];

  function client<S extends pb.EtcdServiceName>(name: S): pb.ServiceClient<S> {
    const c = pb.createClient(name, address);
    clients.push(c);
    return c;
  }

  async function failure(call: Promise<unknown>): Promise<grpc.ServiceError> {
    return call.then(
      () => {
        throw new Error('call succeeded');
      },
      (e: unknown) => e as grpc.ServiceError,
    );
  }

  beforeAll(async () => {
    if (ETCD === undefined) throw new Error('etcd not installed');
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-etcd-'));
    const clientPort = await freePort();
    const peerPort = await freePort();
    address = `127.0.0.1:${clientPort}`;
    const peerURL = `http://127.0.0.1:${peerPort}`;
    etcd = spawn(
      ETCD,
      [
        '--name', 'probe',
        '--data-dir', dataDir,
        '--listen-client-urls', `http://${address}`,
        '--advertise-client-urls', `http://${address}`,
        '--listen-peer-urls', peerURL,
        '--initial-advertise-peer-urls', peerURL,
        '--initial-cluster', `probe=${peerURL}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-4000);
    };
    etcd.stdout?.on('data', keep);
    etcd.stderr?.on('data', keep);

    const deadline = Date.now() + ETCD_START_TIMEOUT_MS;
    const health = client('Health');
    for (;;) {
      try {
        const response = await pb.callUnary(health, 'Check', { service: '' }, { deadline: Date.now() + 1000 });
        if (response.status === 'SERVING') break;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline || etcd.exitCode !== null) {
        throw new Error(`etcd did not start:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }, ETCD_START_TIMEOUT_MS + 5_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    const child = etcd;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), ETCD_STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    if (dataDir !== undefined) fs.rmSync(dataDir, { recursive: true, force: true });
  }, ETCD_STOP_TIMEOUT_MS + 5_000);

  test('Put, Range, Txn decode into our shapes', async () => {
    const kv = client('KV');
    const put = await pb.callUnary(kv, 'Put', { key: b('foo'), value: b('bar') });
    expect(put.prev_kv).toBeNull();
    const revision = put.header?.revision ?? 0;
    expect(revision).toBeGreaterThan(1);

    const range = await pb.callUnary(kv, 'Range', { key: b('foo') });
    expect(range.kvs).toEqual([
      { key: b('foo'), value: b('bar'), create_revision: revision, mod_revision: revision, version: 1, lease: 0 },
    ]);
    expect(range.count).toBe(1);
    expect(range.more).toBe(false);

    // create-if-absent: succeeds once, then fails
    const createIfAbsent: pb.Wire<pb.TxnRequest> = {
      compare: [{ key: b('once'), target: 'VERSION', result: 'EQUAL', version: 0 }],
      success: [{ request_put: { key: b('once'), value: b('1') } }],
      failure: [{ request_range: { key: b('once') } }],
    };
    const first = await pb.callUnary(kv, 'Txn', createIfAbsent);
    expect(first.succeeded).toBe(true);
    expect(first.responses.map((r) => r.response)).toEqual(['response_put']);
    const second = await pb.callUnary(kv, 'Txn', createIfAbsent);
    expect(second.succeeded).toBe(false);
    const op = second.responses[0];
    expect(op?.response === 'response_range' && op.response_range.kvs[0]?.value).toEqual(b('1'));
    // etcd fills only the revision in the headers of a txn's inner responses
    expect(op?.response === 'response_range' && op.response_range.header).toEqual({
      cluster_id: 0,
      member_id: 0,
      revision: second.header?.revision,
      raft_term: 0,
    });
  });

  test('Watch: created, then a PUT event with prev_kv', async () => {
    const kv = client('KV');
    const stream = client('Watch').Watch();
    const responses: pb.WatchResponse[] = [];
    await new Promise<void>((resolve, reject) => {
      stream.on('error', reject);
      stream.on('data', (response: pb.WatchResponse) => {
        responses.push(response);
        if (response.created) {
          void pb.callUnary(kv, 'Put', { key: b('w/1'), value: b('two') }).catch(reject);
        }
        if (response.events.length > 0) resolve();
      });
      void pb
        .callUnary(kv, 'Put', { key: b('w/1'), value: b('one') })
        .then(() => stream.write({ create_request: { key: b('w/'), range_end: b('w0'), prev_kv: true } }), reject);
    });
    stream.cancel();
    expect(responses[0]).toMatchObject({ created: true, canceled: false, events: [] });
    const event = responses[responses.length - 1]?.events[0];
    expect(event?.type).toBe('PUT');
    expect(event?.kv).toMatchObject({ key: b('w/1'), value: b('two'), version: 2 });
    expect(event?.prev_kv).toMatchObject({ key: b('w/1'), value: b('one'), version: 1 });
  });

  test('Lease with a chosen id, TimeToLive with keys, Revoke', async () => {
    const lease = client('Lease');
    const kv = client('KV');
    const granted = await pb.callUnary(lease, 'LeaseGrant', { ID: 12345, TTL: 60 });
    expect(granted).toMatchObject({ ID: 12345, TTL: 60, error: '' });
    await pb.callUnary(kv, 'Put', { key: b('leased'), value: b('x'), lease: 12345 });
    const ttl = await pb.callUnary(lease, 'LeaseTimeToLive', { ID: 12345, keys: true });
    expect(ttl).toMatchObject({ ID: 12345, grantedTTL: 60, keys: [b('leased')] });
    expect(ttl.TTL).toBeGreaterThan(0);
    await pb.callUnary(lease, 'LeaseRevoke', { ID: 12345 });
    const error = await failure(pb.callUnary(lease, 'LeaseRevoke', { ID: 12345 }));
    expect(fromServiceError(error)?.kind).toBe('ErrGRPCLeaseNotFound');
    expect([error.code, error.details]).toEqual([
      ETCD_ERRORS.ErrGRPCLeaseNotFound.code,
      ETCD_ERRORS.ErrGRPCLeaseNotFound.details,
    ]);
  });

  test('Status and MemberList', async () => {
    const status = await pb.callUnary(client('Maintenance'), 'Status', {});
    expect(status.version).toMatch(/^3\.4\./);
    expect(status.dbSize).toBeGreaterThan(0);
    expect(status.raftAppliedIndex).toBeGreaterThan(0);
    const members = await pb.callUnary(client('Cluster'), 'MemberList', {});
    expect(members.members).toHaveLength(1);
    expect(members.members[0]).toMatchObject({ name: 'probe', clientURLs: [`http://${address}`], isLearner: false });
  });

  test('errors: empty key, future and compacted revisions', async () => {
    const kv = client('KV');
    const expectKind = (error: grpc.ServiceError, kind: keyof typeof ETCD_ERRORS): void => {
      expect([error.code, error.details]).toEqual([ETCD_ERRORS[kind].code, ETCD_ERRORS[kind].details]);
    };
    expectKind(await failure(pb.callUnary(kv, 'Put', { value: b('v') })), 'ErrGRPCEmptyKey');
    expectKind(await failure(pb.callUnary(kv, 'Range', { key: b('foo'), revision: 1_000_000 })), 'ErrGRPCFutureRev');
    const put = await pb.callUnary(kv, 'Put', { key: b('c'), value: b('1') });
    await pb.callUnary(kv, 'Put', { key: b('c'), value: b('2') });
    const current = (await pb.callUnary(kv, 'Range', { key: b('c') })).header?.revision ?? 0;
    await pb.callUnary(kv, 'Compact', { revision: current, physical: true });
    expectKind(
      await failure(pb.callUnary(kv, 'Range', { key: b('c'), revision: put.header?.revision ?? 0 })),
      'ErrGRPCCompacted',
    );
  });

  test('request size: etcd refuses over max-request-bytes itself, grpc over max + 512 KiB', async () => {
    const kv = client('KV');
    const justOver = REQUEST_BYTES_MAX_DEFAULT + 100;
    const tooLarge = await failure(pb.callUnary(kv, 'Put', { key: b('big'), value: Buffer.alloc(justOver, 1) }));
    expect([tooLarge.code, tooLarge.details]).toEqual([
      ETCD_ERRORS.ErrGRPCRequestTooLarge.code,
      ETCD_ERRORS.ErrGRPCRequestTooLarge.details,
    ]);
    const overGrpc = REQUEST_BYTES_MAX_DEFAULT + GRPC_OVERHEAD_BYTES + 100;
    const refused = await failure(pb.callUnary(kv, 'Put', { key: b('big'), value: Buffer.alloc(overGrpc, 1) }));
    expect(refused.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(refused.details).toMatch(/^grpc: received message larger than max \(\d+ vs\. 2097152\)$/);
    // nothing was stored
    expect((await pb.callUnary(kv, 'Range', { key: b('big') })).count).toBe(0);
  });

  test('a method etcd 3.4 lacks answers as our unimplemented() does', async () => {
    const error = await failure(pb.callUnary(client('Maintenance'), 'Downgrade', {}));
    expect([error.code, error.details]).toEqual([
      grpc.status.UNIMPLEMENTED,
      'unknown method Downgrade for service etcdserverpb.Maintenance',
    ]);
  });
});
