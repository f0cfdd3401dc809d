// Wire compatibility with the npm `etcd3` client (its own copy of etcd's protos, decoding
// int64 as strings): a grpc-js server on our protos answers, etcd3 must understand it.

import * as grpc from '@grpc/grpc-js';
import { Etcd3, EtcdPermissionDeniedError } from 'etcd3';
import * as pb from '../../../src/kv/proto';
import { ErrGRPCPermissionDenied } from '../../../src/kv/errors';
import { startServer, type RunningServer } from './helpers';

const header = pb.responseHeader({ clusterId: 1, memberId: 2, revision: 30, raftTerm: 4 });
const b = (s: string): Buffer => Buffer.from(s);

const store = new Map<string, string>([
  ['app/a', '1'],
  ['app/b', '2'],
  ['other', '3'],
]);

function keyValue(key: string, value: string): pb.Wire<pb.KeyValue> {
  return { key: b(key), value: b(value), create_revision: 10, mod_revision: 20, version: 2 };
}

const kvImpl: pb.ServiceImplementation<'KV'> = {
  Range(call, callback) {
    const key = call.request.key.toString();
    if (key === 'secret') {
      callback(ErrGRPCPermissionDenied);
      return;
    }
    const end = call.request.range_end.toString();
    const keys = [...store.keys()].filter((k) => (end === '' ? k === key : k >= key && k < end)).sort();
    callback(null, {
      header,
      kvs: call.request.count_only ? [] : keys.map((k) => keyValue(k, store.get(k) ?? '')),
      count: keys.length,
    });
  },
  Put(call, callback) {
    store.set(call.request.key.toString(), call.request.value.toString());
    callback(null, { header: { ...header, revision: 31 } });
  },
  DeleteRange: pb.unimplemented('KV', 'DeleteRange'),
  Txn: pb.unimplemented('KV', 'Txn'),
  Compact: pb.unimplemented('KV', 'Compact'),
};

const watchImpl: pb.ServiceImplementation<'Watch'> = {
  Watch(call) {
    call.on('data', (request: pb.WatchRequest) => {
      if (request.request_union === 'create_request') {
        call.write({ header, watch_id: 5, created: true });
        call.write({
          header: { ...header, revision: 32 },
          watch_id: 5,
          events: [{ type: 'PUT', kv: { ...keyValue(request.create_request.key.toString(), 'new'), mod_revision: 32 } }],
        });
      } else if (request.request_union === 'cancel_request') {
        call.write({ header, watch_id: request.cancel_request.watch_id, canceled: true });
      }
    });
    call.on('end', () => call.end());
  },
};

let running: RunningServer;
let client: Etcd3;

beforeAll(async () => {
  const server = new grpc.Server();
  pb.addService(server, 'KV', kvImpl);
  pb.addService(server, 'Watch', watchImpl);
  running = await startServer(server);
  client = new Etcd3({ hosts: running.address });
});

afterAll(async () => {
  client.close();
  await running.stop();
});

test('get, getAll with a prefix, count', async () => {
  expect(await client.get('app/a').string()).toBe('1');
  expect(await client.get('missing').string()).toBeNull();
  expect(await client.getAll().prefix('app/').strings()).toEqual({ 'app/a': '1', 'app/b': '2' });
  expect(await client.getAll().prefix('app/').count()).toBe(2);
});

test('put, and the full KeyValue as etcd3 decodes it', async () => {
  await client.put('app/c').value('3');
  const response = await client.get('app/c').exec();
  expect(response.header).toMatchObject({ cluster_id: '1', member_id: '2', revision: '30', raft_term: '4' });
  expect(response.kvs[0]).toMatchObject({
    key: b('app/c'),
    value: b('3'),
    create_revision: '10',
    mod_revision: '20',
    version: '2',
    lease: '0',
  });
});

test('an etcd error becomes etcd3 typed error', async () => {
  await expect(client.get('secret').string()).rejects.toBeInstanceOf(EtcdPermissionDeniedError);
});

test('watch: a put event arrives', async () => {
  const watcher = await client.watch().key('app/w').create();
  try {
    const event = await new Promise<{ key: string; value: string; revision: string }>((resolve) => {
      watcher.on('put', (kv) => resolve({ key: kv.key.toString(), value: kv.value.toString(), revision: kv.mod_revision }));
    });
    expect(event).toEqual({ key: 'app/w', value: 'new', revision: '32' });
  } finally {
    await watcher.cancel();
  }
});
