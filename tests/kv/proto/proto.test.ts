// The etcd wire contract: the protos load, field numbers and types, enum values and
// method paths are etcd's, and messages survive encode/decode in the shapes skiff uses.

import * as path from 'node:path';
import * as fs from 'node:fs';
import * as protoLoader from '@grpc/proto-loader';
import * as pb from '../../../src/kv/proto';
import { decodeMessage, encodeMessage, messageType } from '../../../src/kv/grpc-codec';

describe('loading', () => {
  test('the proto directory is found from the package root', () => {
    const dir = pb.protoDir();
    expect(fs.existsSync(path.join(dir, '..', 'package.json'))).toBe(true);
    for (const file of ['etcd/rpc.proto', 'etcd/kv.proto', 'etcd/auth.proto', 'grpc/health.proto']) {
      expect(fs.existsSync(path.join(dir, file))).toBe(true);
    }
  });

  test('the package definition is loaded once and holds every service', () => {
    const def = pb.etcdPackageDefinition();
    expect(pb.etcdPackageDefinition()).toBe(def);
    for (const name of Object.keys(pb.SERVICE_FULL_NAMES) as pb.EtcdServiceName[]) {
      expect(pb.serviceDefinition(name)).toBe(def[pb.SERVICE_FULL_NAMES[name]]);
    }
  });
});

// ---------------------------------------------------------------------------
// Facts from etcd 3.4's rpc.proto, kv.proto and auth.proto: "name:number:type", with
// "[]" after the type of a repeated field.
// ---------------------------------------------------------------------------

const FIELD_FACTS: Record<string, string> = {
  'mvccpb.KeyValue': 'key:1:bytes create_revision:2:int64 mod_revision:3:int64 version:4:int64 value:5:bytes lease:6:int64',
  'mvccpb.Event': 'type:1:EventType kv:2:KeyValue prev_kv:3:KeyValue',
  'authpb.UserAddOptions': 'no_password:1:bool',
  'authpb.User': 'name:1:bytes password:2:bytes roles:3:string[] options:4:UserAddOptions',
  'authpb.Permission': 'permType:1:Type key:2:bytes range_end:3:bytes',
  'authpb.Role': 'name:1:bytes keyPermission:2:Permission[]',
  'etcdserverpb.ResponseHeader': 'cluster_id:1:uint64 member_id:2:uint64 revision:3:int64 raft_term:4:uint64',
  'etcdserverpb.RangeRequest':
    'key:1:bytes range_end:2:bytes limit:3:int64 revision:4:int64 sort_order:5:SortOrder sort_target:6:SortTarget ' +
    'serializable:7:bool keys_only:8:bool count_only:9:bool min_mod_revision:10:int64 max_mod_revision:11:int64 ' +
    'min_create_revision:12:int64 max_create_revision:13:int64',
  'etcdserverpb.RangeResponse': 'header:1:ResponseHeader kvs:2:mvccpb.KeyValue[] more:3:bool count:4:int64',
  'etcdserverpb.PutRequest':
    'key:1:bytes value:2:bytes lease:3:int64 prev_kv:4:bool ignore_value:5:bool ignore_lease:6:bool',
  'etcdserverpb.PutResponse': 'header:1:ResponseHeader prev_kv:2:mvccpb.KeyValue',
  'etcdserverpb.DeleteRangeRequest': 'key:1:bytes range_end:2:bytes prev_kv:3:bool',
  'etcdserverpb.DeleteRangeResponse': 'header:1:ResponseHeader deleted:2:int64 prev_kvs:3:mvccpb.KeyValue[]',
  'etcdserverpb.RequestOp':
    'request_range:1:RangeRequest request_put:2:PutRequest request_delete_range:3:DeleteRangeRequest request_txn:4:TxnRequest',
  'etcdserverpb.ResponseOp':
    'response_range:1:RangeResponse response_put:2:PutResponse response_delete_range:3:DeleteRangeResponse response_txn:4:TxnResponse',
  'etcdserverpb.Compare':
    'result:1:CompareResult target:2:CompareTarget key:3:bytes version:4:int64 create_revision:5:int64 ' +
    'mod_revision:6:int64 value:7:bytes lease:8:int64 range_end:64:bytes',
  'etcdserverpb.TxnRequest': 'compare:1:Compare[] success:2:RequestOp[] failure:3:RequestOp[]',
  'etcdserverpb.TxnResponse': 'header:1:ResponseHeader succeeded:2:bool responses:3:ResponseOp[]',
  'etcdserverpb.CompactionRequest': 'revision:1:int64 physical:2:bool',
  'etcdserverpb.CompactionResponse': 'header:1:ResponseHeader',
  'etcdserverpb.HashRequest': '',
  'etcdserverpb.HashResponse': 'header:1:ResponseHeader hash:2:uint32',
  'etcdserverpb.HashKVRequest': 'revision:1:int64',
  'etcdserverpb.HashKVResponse': 'header:1:ResponseHeader hash:2:uint32 compact_revision:3:int64 hash_revision:4:int64',
  'etcdserverpb.SnapshotRequest': '',
  'etcdserverpb.SnapshotResponse': 'header:1:ResponseHeader remaining_bytes:2:uint64 blob:3:bytes version:4:string',
  'etcdserverpb.WatchRequest':
    'create_request:1:WatchCreateRequest cancel_request:2:WatchCancelRequest progress_request:3:WatchProgressRequest',
  'etcdserverpb.WatchCreateRequest':
    'key:1:bytes range_end:2:bytes start_revision:3:int64 progress_notify:4:bool filters:5:FilterType[] ' +
    'prev_kv:6:bool watch_id:7:int64 fragment:8:bool',
  'etcdserverpb.WatchCancelRequest': 'watch_id:1:int64',
  'etcdserverpb.WatchProgressRequest': '',
  'etcdserverpb.WatchResponse':
    'header:1:ResponseHeader watch_id:2:int64 created:3:bool canceled:4:bool compact_revision:5:int64 ' +
    'cancel_reason:6:string fragment:7:bool events:11:mvccpb.Event[]',
  'etcdserverpb.LeaseGrantRequest': 'TTL:1:int64 ID:2:int64',
  'etcdserverpb.LeaseGrantResponse': 'header:1:ResponseHeader ID:2:int64 TTL:3:int64 error:4:string',
  'etcdserverpb.LeaseRevokeRequest': 'ID:1:int64',
  'etcdserverpb.LeaseRevokeResponse': 'header:1:ResponseHeader',
  'etcdserverpb.LeaseCheckpoint': 'ID:1:int64 remaining_TTL:2:int64',
  'etcdserverpb.LeaseCheckpointRequest': 'checkpoints:1:LeaseCheckpoint[]',
  'etcdserverpb.LeaseCheckpointResponse': 'header:1:ResponseHeader',
  'etcdserverpb.LeaseKeepAliveRequest': 'ID:1:int64',
  'etcdserverpb.LeaseKeepAliveResponse': 'header:1:ResponseHeader ID:2:int64 TTL:3:int64',
  'etcdserverpb.LeaseTimeToLiveRequest': 'ID:1:int64 keys:2:bool',
  'etcdserverpb.LeaseTimeToLiveResponse':
    'header:1:ResponseHeader ID:2:int64 TTL:3:int64 grantedTTL:4:int64 keys:5:bytes[]',
  'etcdserverpb.LeaseLeasesRequest': '',
  'etcdserverpb.LeaseStatus': 'ID:1:int64',
  'etcdserverpb.LeaseLeasesResponse': 'header:1:ResponseHeader leases:2:LeaseStatus[]',
  'etcdserverpb.Member': 'ID:1:uint64 name:2:string peerURLs:3:string[] clientURLs:4:string[] isLearner:5:bool',
  'etcdserverpb.MemberAddRequest': 'peerURLs:1:string[] isLearner:2:bool',
  'etcdserverpb.MemberAddResponse': 'header:1:ResponseHeader member:2:Member members:3:Member[]',
  'etcdserverpb.MemberRemoveRequest': 'ID:1:uint64',
  'etcdserverpb.MemberRemoveResponse': 'header:1:ResponseHeader members:2:Member[]',
  'etcdserverpb.MemberUpdateRequest': 'ID:1:uint64 peerURLs:2:string[]',
  'etcdserverpb.MemberUpdateResponse': 'header:1:ResponseHeader members:2:Member[]',
  'etcdserverpb.MemberListRequest': 'linearizable:1:bool',
  'etcdserverpb.MemberListResponse': 'header:1:ResponseHeader members:2:Member[]',
  'etcdserverpb.MemberPromoteRequest': 'ID:1:uint64',
  'etcdserverpb.MemberPromoteResponse': 'header:1:ResponseHeader members:2:Member[]',
  'etcdserverpb.DefragmentRequest': '',
  'etcdserverpb.DefragmentResponse': 'header:1:ResponseHeader',
  'etcdserverpb.MoveLeaderRequest': 'targetID:1:uint64',
  'etcdserverpb.MoveLeaderResponse': 'header:1:ResponseHeader',
  'etcdserverpb.AlarmRequest': 'action:1:AlarmAction memberID:2:uint64 alarm:3:AlarmType',
  'etcdserverpb.AlarmMember': 'memberID:1:uint64 alarm:2:AlarmType',
  'etcdserverpb.AlarmResponse': 'header:1:ResponseHeader alarms:2:AlarmMember[]',
  'etcdserverpb.DowngradeRequest': 'action:1:DowngradeAction version:2:string',
  'etcdserverpb.DowngradeResponse': 'header:1:ResponseHeader version:2:string',
  'etcdserverpb.StatusRequest': '',
  'etcdserverpb.StatusResponse':
    'header:1:ResponseHeader version:2:string dbSize:3:int64 leader:4:uint64 raftIndex:5:uint64 raftTerm:6:uint64 ' +
    'raftAppliedIndex:7:uint64 errors:8:string[] dbSizeInUse:9:int64 isLearner:10:bool storageVersion:11:string ' +
    'dbSizeQuota:12:int64 downgradeInfo:13:DowngradeInfo',
  'etcdserverpb.DowngradeInfo': 'enabled:1:bool targetVersion:2:string',
  'etcdserverpb.AuthEnableRequest': '',
  'etcdserverpb.AuthDisableRequest': '',
  'etcdserverpb.AuthStatusRequest': '',
  'etcdserverpb.AuthenticateRequest': 'name:1:string password:2:string',
  'etcdserverpb.AuthUserAddRequest':
    'name:1:string password:2:string options:3:authpb.UserAddOptions hashedPassword:4:string',
  'etcdserverpb.AuthUserGetRequest': 'name:1:string',
  'etcdserverpb.AuthUserDeleteRequest': 'name:1:string',
  'etcdserverpb.AuthUserChangePasswordRequest': 'name:1:string password:2:string hashedPassword:3:string',
  'etcdserverpb.AuthUserGrantRoleRequest': 'user:1:string role:2:string',
  'etcdserverpb.AuthUserRevokeRoleRequest': 'name:1:string role:2:string',
  'etcdserverpb.AuthRoleAddRequest': 'name:1:string',
  'etcdserverpb.AuthRoleGetRequest': 'role:1:string',
  'etcdserverpb.AuthUserListRequest': '',
  'etcdserverpb.AuthRoleListRequest': '',
  'etcdserverpb.AuthRoleDeleteRequest': 'role:1:string',
  'etcdserverpb.AuthRoleGrantPermissionRequest': 'name:1:string perm:2:authpb.Permission',
  'etcdserverpb.AuthRoleRevokePermissionRequest': 'role:1:string key:2:bytes range_end:3:bytes',
  'etcdserverpb.AuthEnableResponse': 'header:1:ResponseHeader',
  'etcdserverpb.AuthDisableResponse': 'header:1:ResponseHeader',
  'etcdserverpb.AuthStatusResponse': 'header:1:ResponseHeader enabled:2:bool authRevision:3:uint64',
  'etcdserverpb.AuthenticateResponse': 'header:1:ResponseHeader token:2:string',
  'etcdserverpb.AuthUserAddResponse': 'header:1:ResponseHeader',
  'etcdserverpb.AuthUserGetResponse': 'header:1:ResponseHeader roles:2:string[]',
  'etcdserverpb.AuthUserDeleteResponse': 'header:1:ResponseHeader',
  'etcdserverpb.AuthUserChangePasswordResponse': 'header:1:ResponseHeader',
  'etcdserverpb.AuthUserGrantRoleResponse': 'header:1:ResponseHeader',
  'etcdserverpb.AuthUserRevokeRoleResponse': 'header:1:ResponseHeader',
  'etcdserverpb.AuthRoleAddResponse': 'header:1:ResponseHeader',
  'etcdserverpb.AuthRoleGetResponse': 'header:1:ResponseHeader perm:2:authpb.Permission[]',
  'etcdserverpb.AuthRoleListResponse': 'header:1:ResponseHeader roles:2:string[]',
  'etcdserverpb.AuthUserListResponse': 'header:1:ResponseHeader users:2:string[]',
  'etcdserverpb.AuthRoleDeleteResponse': 'header:1:ResponseHeader',
  'etcdserverpb.AuthRoleGrantPermissionResponse': 'header:1:ResponseHeader',
  'etcdserverpb.AuthRoleRevokePermissionResponse': 'header:1:ResponseHeader',
  'grpc.health.v1.HealthCheckRequest': 'service:1:string',
  'grpc.health.v1.HealthCheckResponse': 'status:1:ServingStatus',
};

const ONEOF_FACTS: Record<string, Record<string, string[]>> = {
  'etcdserverpb.RequestOp': { request: ['request_range', 'request_put', 'request_delete_range', 'request_txn'] },
  'etcdserverpb.ResponseOp': {
    response: ['response_range', 'response_put', 'response_delete_range', 'response_txn'],
  },
  'etcdserverpb.Compare': { target_union: ['version', 'create_revision', 'mod_revision', 'value', 'lease'] },
  'etcdserverpb.WatchRequest': { request_union: ['create_request', 'cancel_request', 'progress_request'] },
};

const ENUM_FACTS: Record<string, Record<string, number>> = {
  'mvccpb.Event.EventType': { PUT: 0, DELETE: 1 },
  'authpb.Permission.Type': { READ: 0, WRITE: 1, READWRITE: 2 },
  'etcdserverpb.RangeRequest.SortOrder': { NONE: 0, ASCEND: 1, DESCEND: 2 },
  'etcdserverpb.RangeRequest.SortTarget': { KEY: 0, VERSION: 1, CREATE: 2, MOD: 3, VALUE: 4 },
  'etcdserverpb.Compare.CompareResult': { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 },
  'etcdserverpb.Compare.CompareTarget': { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 },
  'etcdserverpb.WatchCreateRequest.FilterType': { NOPUT: 0, NODELETE: 1 },
  'etcdserverpb.AlarmType': { NONE: 0, NOSPACE: 1, CORRUPT: 2 },
  'etcdserverpb.AlarmRequest.AlarmAction': { GET: 0, ACTIVATE: 1, DEACTIVATE: 2 },
  'etcdserverpb.DowngradeRequest.DowngradeAction': { VALIDATE: 0, ENABLE: 1, CANCEL: 2 },
  'grpc.health.v1.HealthCheckResponse.ServingStatus': { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 },
};

describe('etcd field numbers and types', () => {
  test.each(Object.entries(FIELD_FACTS))('%s', (name, facts) => {
    const type = messageType(name);
    const expected = facts === '' ? [] : facts.split(' ').map((f) => f.split(':'));
    const actual = type.fieldsArray.map((field) => [
      field.name,
      String(field.id),
      field.repeated ? `${field.type}[]` : field.type,
    ]);
    expect(actual.sort()).toEqual(expected.sort());
    const oneofs = Object.fromEntries(type.oneofsArray.map((o) => [o.name, o.oneof]));
    expect(oneofs).toEqual(ONEOF_FACTS[name] ?? {});
  });

  test('the spot checks the brief names', () => {
    expect(messageType('etcdserverpb.RangeRequest').fields['keys_only']?.id).toBe(8);
    expect(messageType('etcdserverpb.RangeRequest').fields['count_only']?.id).toBe(9);
    expect(messageType('etcdserverpb.PutRequest').fields['ignore_lease']?.id).toBe(6);
    expect(messageType('etcdserverpb.WatchCreateRequest').fields['prev_kv']?.id).toBe(6);
    expect(messageType('etcdserverpb.WatchResponse').fields['compact_revision']?.id).toBe(5);
  });

  test.each(Object.entries(ENUM_FACTS))('enum %s', (name, values) => {
    expect(messageTypeEnum(name)).toEqual(values);
  });
});

function messageTypeEnum(name: string): Record<string, number> {
  // lookupEnum through the same root the codec uses
  const root = messageType('etcdserverpb.RangeRequest').root;
  return { ...root.lookupEnum(name).values };
}

// ---------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------

type Kind = 'unary' | 'server' | 'bidi';
const METHOD_FACTS: Record<pb.EtcdServiceName, Record<string, [Kind, string, string]>> = {
  KV: {
    Range: ['unary', 'RangeRequest', 'RangeResponse'],
    Put: ['unary', 'PutRequest', 'PutResponse'],
    DeleteRange: ['unary', 'DeleteRangeRequest', 'DeleteRangeResponse'],
    Txn: ['unary', 'TxnRequest', 'TxnResponse'],
    Compact: ['unary', 'CompactionRequest', 'CompactionResponse'],
  },
  Watch: { Watch: ['bidi', 'WatchRequest', 'WatchResponse'] },
  Lease: {
    LeaseGrant: ['unary', 'LeaseGrantRequest', 'LeaseGrantResponse'],
    LeaseRevoke: ['unary', 'LeaseRevokeRequest', 'LeaseRevokeResponse'],
    LeaseKeepAlive: ['bidi', 'LeaseKeepAliveRequest', 'LeaseKeepAliveResponse'],
    LeaseTimeToLive: ['unary', 'LeaseTimeToLiveRequest', 'LeaseTimeToLiveResponse'],
    LeaseLeases: ['unary', 'LeaseLeasesRequest', 'LeaseLeasesResponse'],
  },
  Cluster: {
    MemberAdd: ['unary', 'MemberAddRequest', 'MemberAddResponse'],
    MemberRemove: ['unary', 'MemberRemoveRequest', 'MemberRemoveResponse'],
    MemberUpdate: ['unary', 'MemberUpdateRequest', 'MemberUpdateResponse'],
    MemberList: ['unary', 'MemberListRequest', 'MemberListResponse'],
    MemberPromote: ['unary', 'MemberPromoteRequest', 'MemberPromoteResponse'],
  },
  Maintenance: {
    Alarm: ['unary', 'AlarmRequest', 'AlarmResponse'],
    Status: ['unary', 'StatusRequest', 'StatusResponse'],
    Defragment: ['unary', 'DefragmentRequest', 'DefragmentResponse'],
    Hash: ['unary', 'HashRequest', 'HashResponse'],
    HashKV: ['unary', 'HashKVRequest', 'HashKVResponse'],
    Snapshot: ['server', 'SnapshotRequest', 'SnapshotResponse'],
    MoveLeader: ['unary', 'MoveLeaderRequest', 'MoveLeaderResponse'],
    Downgrade: ['unary', 'DowngradeRequest', 'DowngradeResponse'],
  },
  Auth: {
    AuthEnable: ['unary', 'AuthEnableRequest', 'AuthEnableResponse'],
    AuthDisable: ['unary', 'AuthDisableRequest', 'AuthDisableResponse'],
    AuthStatus: ['unary', 'AuthStatusRequest', 'AuthStatusResponse'],
    Authenticate: ['unary', 'AuthenticateRequest', 'AuthenticateResponse'],
    UserAdd: ['unary', 'AuthUserAddRequest', 'AuthUserAddResponse'],
    UserGet: ['unary', 'AuthUserGetRequest', 'AuthUserGetResponse'],
    UserList: ['unary', 'AuthUserListRequest', 'AuthUserListResponse'],
    UserDelete: ['unary', 'AuthUserDeleteRequest', 'AuthUserDeleteResponse'],
    UserChangePassword: ['unary', 'AuthUserChangePasswordRequest', 'AuthUserChangePasswordResponse'],
    UserGrantRole: ['unary', 'AuthUserGrantRoleRequest', 'AuthUserGrantRoleResponse'],
    UserRevokeRole: ['unary', 'AuthUserRevokeRoleRequest', 'AuthUserRevokeRoleResponse'],
    RoleAdd: ['unary', 'AuthRoleAddRequest', 'AuthRoleAddResponse'],
    RoleGet: ['unary', 'AuthRoleGetRequest', 'AuthRoleGetResponse'],
    RoleList: ['unary', 'AuthRoleListRequest', 'AuthRoleListResponse'],
    RoleDelete: ['unary', 'AuthRoleDeleteRequest', 'AuthRoleDeleteResponse'],
    RoleGrantPermission: ['unary', 'AuthRoleGrantPermissionRequest', 'AuthRoleGrantPermissionResponse'],
    RoleRevokePermission: ['unary', 'AuthRoleRevokePermissionRequest', 'AuthRoleRevokePermissionResponse'],
  },
  Health: {
    Check: ['unary', 'HealthCheckRequest', 'HealthCheckResponse'],
    Watch: ['server', 'HealthCheckRequest', 'HealthCheckResponse'],
  },
};

describe('etcd services', () => {
  test.each(Object.keys(METHOD_FACTS) as pb.EtcdServiceName[])('%s: method paths, stream kinds, message types', (name) => {
    const service = pb.serviceDefinition(name);
    const facts = METHOD_FACTS[name];
    expect(Object.keys(service).sort()).toEqual(Object.keys(facts).sort());
    for (const [method, [kind, requestType, responseType]] of Object.entries(facts)) {
      const def = service[method] as unknown as protoLoader.MethodDefinition<object, object>;
      expect(def.path).toBe(`/${pb.SERVICE_FULL_NAMES[name]}/${method}`);
      expect([def.requestStream, def.responseStream]).toEqual(
        kind === 'unary' ? [false, false] : kind === 'server' ? [false, true] : [true, true],
      );
      expect((def.requestType.type as { name: string }).name).toBe(requestType);
      expect((def.responseType.type as { name: string }).name).toBe(responseType);
    }
  });
});

// ---------------------------------------------------------------------------
// Bytes on the wire and round trips
// ---------------------------------------------------------------------------

const b = (s: string): Buffer => Buffer.from(s);

describe('encoding', () => {
  test('hand-checked bytes: tags come from etcd field numbers', () => {
    // field 1 (bytes) "foo", field 2 (bytes) "bar", field 3 varint 7, field 4 varint 1
    expect(encodeMessage('etcdserverpb.PutRequest', { key: b('foo'), value: b('bar'), lease: 7, prev_kv: true }))
      .toEqual(Buffer.from('0a03666f6f1203626172180720' + '01', 'hex'));
    // keys_only = 8 -> tag 0x40, count_only = 9 -> tag 0x48
    expect(encodeMessage('etcdserverpb.RangeRequest', { key: b('a'), keys_only: true, count_only: true }))
      .toEqual(Buffer.from('0a0161400148' + '01', 'hex'));
    // prev_kv = 6 -> tag 0x30
    expect(encodeMessage('etcdserverpb.WatchCreateRequest', { prev_kv: true })).toEqual(Buffer.from('3001', 'hex'));
    // compact_revision = 5 -> tag 0x28; events = 11 (length-delimited) -> tag 0x5a
    expect(encodeMessage('etcdserverpb.WatchResponse', { compact_revision: 3, events: [{}] }))
      .toEqual(Buffer.from('28035a00', 'hex'));
    // Compare.range_end = 64 -> tag (64 << 3 | 2) = 514 = varint 0x82 0x04
    expect(encodeMessage('etcdserverpb.Compare', { range_end: b('z') })).toEqual(Buffer.from('820401' + '7a', 'hex'));
    // absent fields are not sent
    expect(encodeMessage('etcdserverpb.RangeRequest', {})).toEqual(Buffer.alloc(0));
  });

  test('an explicit zero is sent by protobufjs but reads back as absent (except in a oneof)', () => {
    // Go's proto3 encoder would skip these; any proto3 decoder treats both alike.
    const bytes = encodeMessage('etcdserverpb.RangeRequest', { limit: 0, sort_order: 'NONE', serializable: false });
    expect(bytes).toEqual(Buffer.from('180028003800', 'hex'));
    expect(decodeMessage('etcdserverpb.RangeRequest', bytes)).toEqual(
      decodeMessage('etcdserverpb.RangeRequest', Buffer.alloc(0)),
    );
    // A oneof member set to zero is present on the wire, as clientv3 sends Compare(Version(k), "=", 0).
    const compare = decodeMessage('etcdserverpb.Compare', encodeMessage('etcdserverpb.Compare', { version: 0 }));
    expect(compare.target_union).toBe('version');
  });

  test('decoding an empty message gives every field its default', () => {
    expect(decodeMessage('etcdserverpb.PutResponse', Buffer.alloc(0))).toEqual({ header: null, prev_kv: null });
    const range = decodeMessage('etcdserverpb.RangeRequest', Buffer.alloc(0));
    expect(range.key).toEqual(Buffer.alloc(0));
    expect(Buffer.isBuffer(range.key)).toBe(true);
    expect(range.sort_order).toBe('NONE');
    expect(range.limit).toBe(0);
  });

  test('Txn with nested ops, compares of each target, and a nested txn', () => {
    const request: pb.Wire<pb.TxnRequest> = {
      compare: [
        { result: 'EQUAL', target: 'VALUE', key: b('k'), value: b('v') },
        { result: 'LESS', target: 'MOD', key: b('k'), mod_revision: 42 },
        { result: 'NOT_EQUAL', target: 'LEASE', key: b('k'), lease: 7, range_end: b('l') },
        { result: 'GREATER', target: 'VERSION', key: b('k'), version: 0 },
        { result: 'EQUAL', target: 'CREATE', key: b('k') },
      ],
      success: [
        { request_put: { key: b('k'), value: b('v2'), lease: 7, prev_kv: true } },
        { request_range: { key: b('a'), range_end: b('b'), limit: 10, sort_order: 'DESCEND', sort_target: 'MOD' } },
        { request_txn: { success: [{ request_delete_range: { key: b('x'), prev_kv: true } }] } },
      ],
      failure: [],
    };
    const decoded = decodeMessage('etcdserverpb.TxnRequest', encodeMessage('etcdserverpb.TxnRequest', request));
    expect(decoded.compare.map((c) => c.target_union)).toEqual(['value', 'mod_revision', 'lease', 'version', undefined]);
    const second = decoded.compare[1];
    expect(second?.target_union === 'mod_revision' && second.mod_revision).toBe(42);
    expect(decoded.compare[2]?.range_end).toEqual(b('l'));
    expect(decoded.success.map((op) => op.request)).toEqual(['request_put', 'request_range', 'request_txn']);
    const put = decoded.success[0];
    expect(put?.request === 'request_put' && put.request_put).toEqual({
      key: b('k'),
      value: b('v2'),
      lease: 7,
      prev_kv: true,
      ignore_value: false,
      ignore_lease: false,
    });
    const range = decoded.success[1];
    expect(range?.request === 'request_range' && range.request_range.sort_order).toBe('DESCEND');
    const nested = decoded.success[2];
    expect(nested?.request === 'request_txn' && nested.request_txn.success[0]?.request).toBe('request_delete_range');
    expect(decoded.failure).toEqual([]);
  });

  test('WatchResponse with events and prev_kv', () => {
    const kv = (key: string, mod: number): pb.KeyValue => ({
      key: b(key),
      create_revision: 2,
      mod_revision: mod,
      version: mod - 1,
      value: b(`v${mod}`),
      lease: 0,
    });
    const response: pb.WatchResponse = {
      header: { cluster_id: 1, member_id: 2, revision: 9, raft_term: 3 },
      watch_id: 4,
      created: false,
      canceled: false,
      compact_revision: 0,
      cancel_reason: '',
      fragment: false,
      events: [
        { type: 'PUT', kv: kv('a', 8), prev_kv: kv('a', 7) },
        { type: 'DELETE', kv: { ...kv('b', 9), value: Buffer.alloc(0), version: 0 }, prev_kv: null },
      ],
    };
    expect(decodeMessage('etcdserverpb.WatchResponse', encodeMessage('etcdserverpb.WatchResponse', response)))
      .toEqual(response);
  });

  test('watch requests: each member of the oneof, and an empty one', () => {
    const roundTrip = (r: pb.Wire<pb.WatchRequest>): pb.WatchRequest =>
      decodeMessage('etcdserverpb.WatchRequest', encodeMessage('etcdserverpb.WatchRequest', r));
    const create = roundTrip({
      create_request: { key: b('a'), range_end: b('\0'), start_revision: 5, filters: ['NOPUT'], prev_kv: true },
    });
    expect(create.request_union).toBe('create_request');
    expect(create.request_union === 'create_request' && create.create_request.filters).toEqual(['NOPUT']);
    expect(roundTrip({ cancel_request: { watch_id: 3 } })).toEqual({
      request_union: 'cancel_request',
      cancel_request: { watch_id: 3 },
    });
    expect(roundTrip({ progress_request: {} })).toEqual({ request_union: 'progress_request', progress_request: {} });
    expect(roundTrip({}).request_union).toBeUndefined();
  });

  test('int64: negative TTL, large revisions, ids up to 2^53 - 1', () => {
    const ttl: pb.LeaseTimeToLiveResponse = {
      header: { cluster_id: pb.ID_MAX, member_id: pb.ID_MAX - 1, revision: 2 ** 40, raft_term: 7 },
      ID: pb.ID_MAX,
      TTL: -1,
      grantedTTL: 0,
      keys: [b('k1'), b('k2')],
    };
    const decoded = decodeMessage(
      'etcdserverpb.LeaseTimeToLiveResponse',
      encodeMessage('etcdserverpb.LeaseTimeToLiveResponse', ttl),
    );
    expect(decoded).toEqual(ttl);
    expect(pb.isWireSafeId(decoded.ID)).toBe(true);
    // A 64-bit id above 2^53 does not survive as a number: the server must refuse such ids.
    const big = decodeMessage('etcdserverpb.LeaseGrantRequest', Buffer.from('10ffffffffffffffff7f', 'hex'));
    expect(pb.isWireSafeId(big.ID)).toBe(false);
  });

  test('Status, MemberList, Alarm, Snapshot, Auth round trips', () => {
    const header = pb.responseHeader({ clusterId: 11, memberId: 12, revision: 13, raftTerm: 14 });
    const status: pb.StatusResponse = {
      header,
      version: '3.4.23',
      dbSize: 20480,
      leader: 12,
      raftIndex: 6,
      raftTerm: 14,
      raftAppliedIndex: 6,
      errors: ['NOSPACE'],
      dbSizeInUse: 16384,
      isLearner: false,
      storageVersion: '',
      dbSizeQuota: 0,
      downgradeInfo: null,
    };
    expect(decodeMessage('etcdserverpb.StatusResponse', encodeMessage('etcdserverpb.StatusResponse', status)))
      .toEqual(status);
    const members: pb.MemberListResponse = {
      header,
      members: [
        { ID: 12, name: 'a', peerURLs: ['http://127.0.0.1:2380'], clientURLs: ['http://127.0.0.1:2379'], isLearner: false },
        { ID: 13, name: '', peerURLs: ['http://127.0.0.1:2480'], clientURLs: [], isLearner: true },
      ],
    };
    expect(decodeMessage('etcdserverpb.MemberListResponse', encodeMessage('etcdserverpb.MemberListResponse', members)))
      .toEqual(members);
    const alarm: pb.AlarmResponse = { header, alarms: [{ memberID: 12, alarm: 'NOSPACE' }] };
    expect(decodeMessage('etcdserverpb.AlarmResponse', encodeMessage('etcdserverpb.AlarmResponse', alarm))).toEqual(alarm);
    const chunk: pb.SnapshotResponse = { header, remaining_bytes: 100, blob: Buffer.alloc(64, 7), version: '' };
    expect(decodeMessage('etcdserverpb.SnapshotResponse', encodeMessage('etcdserverpb.SnapshotResponse', chunk)))
      .toEqual(chunk);
    const grant: pb.AuthRoleGrantPermissionRequest = {
      name: 'r',
      perm: { permType: 'READWRITE', key: b('/a'), range_end: b('/b') },
    };
    expect(
      decodeMessage(
        'etcdserverpb.AuthRoleGrantPermissionRequest',
        encodeMessage('etcdserverpb.AuthRoleGrantPermissionRequest', grant),
      ),
    ).toEqual(grant);
  });

  test('the codec and the gRPC method serializers produce the same bytes and shapes', () => {
    const range = pb.serviceDefinition('KV')['Range'] as unknown as protoLoader.MethodDefinition<
      pb.Wire<pb.RangeRequest>,
      pb.Wire<pb.RangeResponse>,
      pb.RangeRequest,
      pb.RangeResponse
    >;
    const request: pb.Wire<pb.RangeRequest> = { key: b('a'), range_end: b('b'), revision: 3, count_only: true };
    const bytes = encodeMessage('etcdserverpb.RangeRequest', request);
    expect(range.requestSerialize(request)).toEqual(bytes);
    expect(range.requestDeserialize(bytes)).toEqual(decodeMessage('etcdserverpb.RangeRequest', bytes));
    const response: pb.Wire<pb.RangeResponse> = {
      header: { revision: 3 },
      kvs: [{ key: b('a'), value: b('1'), create_revision: 2, mod_revision: 3, version: 2 }],
      count: 1,
    };
    const responseBytes = range.responseSerialize(response);
    expect(responseBytes).toEqual(encodeMessage('etcdserverpb.RangeResponse', response));
    expect(range.responseDeserialize(responseBytes)).toEqual(decodeMessage('etcdserverpb.RangeResponse', responseBytes));
  });

  test('a string given for a bytes field is base64, not text: pass Buffers', () => {
    expect(() => encodeMessage('etcdserverpb.PutRequest', { key: 'not base64!' as unknown as Uint8Array })).toThrow();
  });
});

describe('responseHeader', () => {
  test('maps the options object onto the wire names', () => {
    expect(pb.responseHeader({ clusterId: 1, memberId: 2, revision: 3, raftTerm: 4 })).toEqual({
      cluster_id: 1,
      member_id: 2,
      revision: 3,
      raft_term: 4,
    });
  });

  test('refuses numbers that cannot cross the wire exactly', () => {
    expect(() => pb.responseHeader({ clusterId: 2 ** 60, memberId: 2, revision: 3, raftTerm: 4 })).toThrow(/clusterId/);
    expect(() => pb.responseHeader({ clusterId: 1, memberId: 2, revision: -1, raftTerm: 4 })).toThrow(/revision/);
    expect(() => pb.responseHeader({ clusterId: 1, memberId: 2, revision: 3, raftTerm: 1.5 })).toThrow(/raftTerm/);
  });
});

