// The typed service helpers against a real grpc-js server and client on 127.0.0.1:
// unary calls, bidi and server streams, and etcd's errors arriving with their exact
// code and message.

import * as grpc from '@grpc/grpc-js';
import * as pb from '../../../src/kv/proto';
import {
  ETCD_ERRORS,
  EtcdError,
  type EtcdErrorKind,
  ErrGRPCCompacted,
  ErrGRPCEmptyKey,
  ErrGRPCNoLeader,
  fromServiceError,
  toServiceError,
} from '../../../src/kv/errors';
import { startServer, type RunningServer } from './helpers';

const header = pb.responseHeader({ clusterId: 100, memberId: 200, revision: 7, raftTerm: 3 });
const b = (s: string): Buffer => Buffer.from(s);

const kvImpl: pb.ServiceImplementation<'KV'> = {
  Range(call, callback) {
    const key = call.request.key.toString();
    if (key.startsWith('error:')) {
      callback(new EtcdError(key.slice('error:'.length) as EtcdErrorKind));
      return;
    }
    if (call.request.revision > 0 && call.request.revision < 5) {
      callback(ErrGRPCCompacted);
      return;
    }
    callback(null, {
      header,
      kvs: [{ key: call.request.key, value: b('bar'), create_revision: 2, mod_revision: 7, version: 3 }],
      count: 1,
    });
  },
  Put(call, callback) {
    if (call.request.key.length === 0) {
      callback(ErrGRPCEmptyKey);
      return;
    }
    callback(null, { header, prev_kv: call.request.prev_kv ? { key: call.request.key, value: b('old') } : null });
  },
  DeleteRange(_call, callback) {
    callback(null, { header, deleted: 0 });
  },
  Txn(call, callback) {
    const responses = call.request.success.map((op): pb.Wire<pb.ResponseOp> => {
      switch (op.request) {
        case 'request_put':
          return { response_put: { header: { revision: 8 } } };
        case 'request_range':
          return { response_range: { header: { revision: 8 }, count: 0 } };
        case 'request_delete_range':
          return { response_delete_range: { header: { revision: 8 }, deleted: 1 } };
        case 'request_txn':
          return { response_txn: { header: { revision: 8 }, succeeded: true } };
      }
    });
    callback(null, { header, succeeded: call.request.compare.length > 0, responses });
  },
  Compact(_call, callback) {
    callback(toServiceError(new Error('compactor: boom')));
  },
};

const watchImpl: pb.ServiceImplementation<'Watch'> = {
  Watch(call) {
    let nextWatchId = 1;
    call.on('data', (request: pb.WatchRequest) => {
      switch (request.request_union) {
        case 'create_request': {
          if (request.create_request.key.toString() === 'no-leader') {
            call.emit('error', ErrGRPCNoLeader);
            return;
          }
          const watchId = nextWatchId++;
          call.write({ header, watch_id: watchId, created: true });
          call.write({
            header,
            watch_id: watchId,
            events: [
              { type: 'PUT', kv: { key: request.create_request.key, value: b('v'), mod_revision: 7 } },
              { type: 'DELETE', kv: { key: request.create_request.key, mod_revision: 8 } },
            ],
          });
          return;
        }
        case 'cancel_request':
          call.write({ header, watch_id: request.cancel_request.watch_id, canceled: true, cancel_reason: 'client' });
          return;
        case 'progress_request':
          call.write({ header, watch_id: -1 });
          return;
        case undefined:
          return;
      }
    });
    call.on('end', () => call.end());
  },
};

const maintenanceImpl: pb.ServiceImplementation<'Maintenance'> = {
  Alarm: pb.unimplemented('Maintenance', 'Alarm'),
  Status(_call, callback) {
    callback(null, { header, version: '3.4.23', dbSize: 4096, leader: 200, raftIndex: 9, raftTerm: 3 });
  },
  Defragment: pb.unimplemented('Maintenance', 'Defragment'),
  Hash: pb.unimplemented('Maintenance', 'Hash'),
  HashKV: pb.unimplemented('Maintenance', 'HashKV'),
  Snapshot(call) {
    const blob = Buffer.alloc(10, 5);
    for (let sent = 0; sent < blob.length; sent += 4) {
      const chunk = blob.subarray(sent, sent + 4);
      call.write({ header, remaining_bytes: blob.length - sent - chunk.length, blob: chunk });
    }
    call.end();
  },
  MoveLeader: pb.unimplemented('Maintenance', 'MoveLeader'),
  Downgrade: pb.unimplemented('Maintenance', 'Downgrade'),
};

const leaseImpl: pb.ServiceImplementation<'Lease'> = {
  LeaseGrant(call, callback) {
    callback(null, { header, ID: call.request.ID === 0 ? pb.ID_MAX : call.request.ID, TTL: call.request.TTL });
  },
  LeaseRevoke: pb.unimplemented('Lease', 'LeaseRevoke'),
  LeaseKeepAlive(call) {
    call.on('data', (request: pb.LeaseKeepAliveRequest) => call.write({ header, ID: request.ID, TTL: 10 }));
    call.on('end', () => call.end());
  },
  LeaseTimeToLive: pb.unimplemented('Lease', 'LeaseTimeToLive'),
  LeaseLeases: pb.unimplemented('Lease', 'LeaseLeases'),
};

const healthImpl: pb.ServiceImplementation<'Health'> = {
  Check(_call, callback) {
    callback(null, { status: 'SERVING' });
  },
  Watch: pb.unimplemented('Health', 'Watch'),
};

let running: RunningServer;
const clients: grpc.Client[] = [];

function client<S extends pb.EtcdServiceName>(name: S): pb.ServiceClient<S> {
  const c = pb.createClient(name, running.address);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  const server = new grpc.Server();
  pb.addService(server, 'KV', kvImpl);
  pb.addService(server, 'Watch', watchImpl);
  pb.addService(server, 'Maintenance', maintenanceImpl);
  pb.addService(server, 'Lease', leaseImpl);
  pb.addService(server, 'Health', healthImpl);
  running = await startServer(server);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await running.stop();
});

function expectStatus(error: unknown, code: grpc.status, details: string): void {
  expect(error).toMatchObject({ code, details });
}

describe('unary', () => {
  test('Range: request decoded with defaults, response decoded in full', async () => {
    const kv = client('KV');
    const response = await pb.callUnary(kv, 'Range', { key: b('foo') });
    expect(response).toEqual({
      header: { cluster_id: 100, member_id: 200, revision: 7, raft_term: 3 },
      kvs: [{ key: b('foo'), value: b('bar'), create_revision: 2, mod_revision: 7, version: 3, lease: 0 }],
      more: false,
      count: 1,
    });
  });

  test('Put with and without prev_kv', async () => {
    const kv = client('KV');
    expect((await pb.callUnary(kv, 'Put', { key: b('k'), value: b('v') })).prev_kv).toBeNull();
    expect((await pb.callUnary(kv, 'Put', { key: b('k'), value: b('v'), prev_kv: true })).prev_kv?.value).toEqual(
      b('old'),
    );
  });

  test('Txn: oneof ops in, oneof responses out, in order', async () => {
    const kv = client('KV');
    const response = await pb.callUnary(kv, 'Txn', {
      compare: [{ key: b('k'), target: 'VERSION', result: 'EQUAL', version: 0 }],
      success: [{ request_put: { key: b('k') } }, { request_range: { key: b('k') } }, { request_txn: {} }],
    });
    expect(response.succeeded).toBe(true);
    expect(response.responses.map((r) => r.response)).toEqual(['response_put', 'response_range', 'response_txn']);
  });

  test('Status and LeaseGrant (an id at ID_MAX survives the round trip)', async () => {
    const status = await pb.callUnary(client('Maintenance'), 'Status', {});
    expect(status).toMatchObject({ version: '3.4.23', dbSize: 4096, leader: 200, errors: [], downgradeInfo: null });
    const grant = await pb.callUnary(client('Lease'), 'LeaseGrant', { TTL: 5 });
    expect(grant).toMatchObject({ ID: pb.ID_MAX, TTL: 5, error: '' });
  });

  test('Health.Check', async () => {
    expect(await pb.callUnary(client('Health'), 'Check', { service: '' })).toEqual({ status: 'SERVING' });
  });
});

describe('streams', () => {
  test('Watch: create, events, progress, cancel, then the stream closes', async () => {
    const stream = client('Watch').Watch();
    const responses: pb.WatchResponse[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (response: pb.WatchResponse) => {
        responses.push(response);
        if (responses.length === 2) stream.write({ progress_request: {} });
        if (responses.length === 3) stream.write({ cancel_request: { watch_id: 1 } });
        if (responses.length === 4) stream.end();
      });
      stream.on('error', reject);
      stream.on('end', resolve);
    });
    stream.write({ create_request: { key: b('a'), prev_kv: true } });
    await done;
    expect(responses.map((r) => [r.watch_id, r.created, r.canceled, r.events.length])).toEqual([
      [1, true, false, 0],
      [1, false, false, 2],
      [-1, false, false, 0],
      [1, false, true, 0],
    ]);
    expect(responses[1]?.events.map((e) => [e.type, e.kv?.key.toString(), e.kv?.mod_revision])).toEqual([
      ['PUT', 'a', 7],
      ['DELETE', 'a', 8],
    ]);
    expect(responses[3]?.cancel_reason).toBe('client');
  });

  test('Watch: an etcd error ends the stream with its status', async () => {
    const stream = client('Watch').Watch();
    const error = await new Promise<unknown>((resolve) => {
      stream.on('error', resolve);
      stream.on('data', () => undefined);
      stream.write({ create_request: { key: b('no-leader') } });
    });
    expectStatus(error, grpc.status.UNAVAILABLE, 'etcdserver: no leader');
  });

  test('LeaseKeepAlive echoes ids', async () => {
    const stream = client('Lease').LeaseKeepAlive();
    const ids: number[] = [];
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (response: pb.LeaseKeepAliveResponse) => {
        ids.push(response.ID);
        if (ids.length === 2) stream.end();
      });
      stream.on('error', reject);
      stream.on('end', resolve);
      stream.write({ ID: 1 });
      stream.write({ ID: pb.ID_MAX });
    });
    expect(ids).toEqual([1, pb.ID_MAX]);
  });

  test('Snapshot: server-streamed chunks reassemble', async () => {
    const stream = client('Maintenance').Snapshot({});
    const chunks: pb.SnapshotResponse[] = [];
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (chunk: pb.SnapshotResponse) => chunks.push(chunk));
      stream.on('error', reject);
      stream.on('end', resolve);
    });
    expect(Buffer.concat(chunks.map((c) => c.blob))).toEqual(Buffer.alloc(10, 5));
    expect(chunks.map((c) => c.remaining_bytes)).toEqual([6, 2, 0]);
  });
});

describe('errors on the wire', () => {
  test('every etcd error arrives with its exact code and message, and maps back to its kind', async () => {
    const kv = client('KV');
    for (const kind of Object.keys(ETCD_ERRORS) as EtcdErrorKind[]) {
      const error = await pb.callUnary(kv, 'Range', { key: b(`error:${kind}`) }).then(
        () => undefined,
        (e: unknown) => e as grpc.ServiceError,
      );
      expectStatus(error, ETCD_ERRORS[kind].code, ETCD_ERRORS[kind].details);
      expect(fromServiceError(error)?.kind).toBe(kind);
    }
  });

  test('a shared error instance, sent twice', async () => {
    const kv = client('KV');
    for (let i = 0; i < 2; i++) {
      const error = await pb.callUnary(kv, 'Range', { key: b('k'), revision: 2 }).catch((e: unknown) => e);
      expectStatus(error, grpc.status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted');
    }
  });

  test('a non-etcd error goes out as UNKNOWN with its message', async () => {
    const error = await pb.callUnary(client('KV'), 'Compact', { revision: 3 }).catch((e: unknown) => e);
    expectStatus(error, grpc.status.UNKNOWN, 'compactor: boom');
    expect(fromServiceError(error as grpc.ServiceError)).toBeUndefined();
  });

  test("an unimplemented method answers as grpc-go does for etcd 3.4's missing ones", async () => {
    const error = await pb.callUnary(client('Maintenance'), 'Downgrade', {}).catch((e: unknown) => e);
    expectStatus(error, grpc.status.UNIMPLEMENTED, 'unknown method Downgrade for service etcdserverpb.Maintenance');
  });
});
