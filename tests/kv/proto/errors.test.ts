// etcd's gRPC errors: codes and messages as etcd 3.4's rpctypes has them, and the helpers
// that carry them to and from grpc-js.

import * as grpc from '@grpc/grpc-js';
import * as errors from '../../../src/kv/errors';
import {
  ETCD_ERRORS,
  EtcdError,
  type EtcdErrorKind,
  fromServiceError,
  isEtcdError,
  toServiceError,
  toStatusObject,
} from '../../../src/kv/errors';

const { status } = grpc;

// A sample checked by hand against etcd 3.4's api/v3rpc/rpctypes/error.go.
const FACTS: Array<[EtcdErrorKind, grpc.status, string]> = [
  ['ErrGRPCEmptyKey', status.INVALID_ARGUMENT, 'etcdserver: key is not provided'],
  ['ErrGRPCCompacted', status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted'],
  ['ErrGRPCFutureRev', status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision is a future revision'],
  ['ErrGRPCNoSpace', status.RESOURCE_EXHAUSTED, 'etcdserver: mvcc: database space exceeded'],
  ['ErrGRPCLeaseNotFound', status.NOT_FOUND, 'etcdserver: requested lease not found'],
  ['ErrGRPCLeaseExist', status.FAILED_PRECONDITION, 'etcdserver: lease already exists'],
  ['ErrGRPCLeaseTTLTooLarge', status.OUT_OF_RANGE, 'etcdserver: too large lease TTL'],
  ['ErrGRPCTooManyOps', status.INVALID_ARGUMENT, 'etcdserver: too many operations in txn request'],
  ['ErrGRPCDuplicateKey', status.INVALID_ARGUMENT, 'etcdserver: duplicate key given in txn request'],
  ['ErrGRPCRequestTooLarge', status.INVALID_ARGUMENT, 'etcdserver: request is too large'],
  ['ErrGRPCMemberNotFound', status.NOT_FOUND, 'etcdserver: member not found'],
  ['ErrGRPCMemberNotLearner', status.FAILED_PRECONDITION, 'etcdserver: can only promote a learner member'],
  ['ErrGRPCNoLeader', status.UNAVAILABLE, 'etcdserver: no leader'],
  ['ErrGRPCNotLeader', status.FAILED_PRECONDITION, 'etcdserver: not leader'],
  ['ErrGRPCLeaderChanged', status.UNAVAILABLE, 'etcdserver: leader changed'],
  ['ErrGRPCTimeout', status.UNAVAILABLE, 'etcdserver: request timed out'],
  ['ErrGRPCStopped', status.UNAVAILABLE, 'etcdserver: server stopped'],
  ['ErrGRPCNotCapable', status.UNAVAILABLE, 'etcdserver: not capable'],
  ['ErrGRPCCorrupt', status.DATA_LOSS, 'etcdserver: corrupt cluster'],
  ['ErrGRPCUserNotFound', status.FAILED_PRECONDITION, 'etcdserver: user name not found'],
  ['ErrGRPCPermissionDenied', status.PERMISSION_DENIED, 'etcdserver: permission denied'],
  ['ErrGRPCInvalidAuthToken', status.UNAUTHENTICATED, 'etcdserver: invalid auth token'],
  ['ErrGRPCAuthFailed', status.INVALID_ARGUMENT, 'etcdserver: authentication failed, invalid user ID or password'],
  ['ErrGRPCAuthOldRevision', status.INVALID_ARGUMENT, 'etcdserver: revision of auth store is old'],
];

describe('the table', () => {
  test.each(FACTS)('%s', (kind, code, details) => {
    expect(ETCD_ERRORS[kind]).toEqual({ code, details });
    const exported = (errors as unknown as Record<string, unknown>)[kind];
    expect(exported).toBeInstanceOf(EtcdError);
    expect(exported).toMatchObject({ kind, code, details, message: details });
  });

  test('every kind has an exported instance, and messages are unique (clients match on them)', () => {
    const kinds = Object.keys(ETCD_ERRORS) as EtcdErrorKind[];
    for (const kind of kinds) {
      expect((errors as unknown as Record<string, EtcdError>)[kind]?.kind).toBe(kind);
    }
    const messages = new Set(kinds.map((k) => ETCD_ERRORS[k].details));
    expect(messages.size).toBe(kinds.length);
    for (const message of messages) expect(message.startsWith('etcdserver: ')).toBe(true);
  });

  test('shared instances cannot be changed by one handler for all', () => {
    expect(Object.isFrozen(errors.ErrGRPCCompacted)).toBe(true);
    expect(() => {
      (errors.ErrGRPCCompacted as unknown as { metadata: grpc.Metadata }).metadata = new grpc.Metadata();
    }).toThrow(TypeError);
  });

  test('request size limits are etcd defaults', () => {
    expect(errors.REQUEST_BYTES_MAX_DEFAULT).toBe(1.5 * 1024 * 1024);
    expect(errors.REQUEST_BYTES_MAX_DEFAULT + errors.GRPC_OVERHEAD_BYTES).toBe(2 * 1024 * 1024);
  });
});

describe('helpers', () => {
  test('isEtcdError matches by kind', () => {
    expect(isEtcdError(errors.ErrGRPCNoLeader)).toBe(true);
    expect(isEtcdError(errors.ErrGRPCNoLeader, 'ErrGRPCNoLeader')).toBe(true);
    expect(isEtcdError(errors.ErrGRPCNoLeader, 'ErrGRPCTimeout')).toBe(false);
    expect(isEtcdError(new Error('etcdserver: no leader'))).toBe(false);
  });

  test('toServiceError: etcd errors as they are, grpc statuses kept, the rest UNKNOWN', () => {
    expect(toServiceError(errors.ErrGRPCNoSpace)).toBe(errors.ErrGRPCNoSpace);
    const withCode = Object.assign(new Error('x'), { code: status.ABORTED, details: 'x' });
    expect(toServiceError(withCode)).toBe(withCode);
    expect(toServiceError(new Error('disk on fire'))).toMatchObject({ code: status.UNKNOWN, details: 'disk on fire' });
    expect(toServiceError('text')).toMatchObject({ code: status.UNKNOWN, details: 'text' });
  });

  test('toStatusObject', () => {
    const s = toStatusObject(errors.ErrGRPCFutureRev);
    expect([s.code, s.details]).toEqual([status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision is a future revision']);
    expect(s.metadata).toBeInstanceOf(grpc.Metadata);
  });

  test('fromServiceError maps by message, whatever the code (as clientv3 does)', () => {
    expect(fromServiceError({ code: status.UNKNOWN, details: 'etcdserver: too many requests' })?.kind).toBe(
      'ErrGRPCRequestTooManyRequests',
    );
    expect(fromServiceError({ details: 'etcdserver: no leader' })?.code).toBe(status.UNAVAILABLE);
    expect(fromServiceError({ details: 'grpc: received message larger than max (1 vs. 0)' })).toBeUndefined();
    expect(fromServiceError(null)).toBeUndefined();
  });
});
