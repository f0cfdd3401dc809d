// etcd's checks of a membership change as it is applied (ValidateConfigurationChange), the
// member URL rules of MemberAdd/MemberUpdate, and the snapshot file's trailer.

import * as errors from '../../../src/kv/errors';
import { snapshotStreamBytes, snapshotTrailer } from '../../../src/kv/server/maintenance';
import { confChangeError, memberUpdateError, parseMemberUrls } from '../../../src/kv/server/members';
import { Member, Membership } from '../../../src/kv/server/membership';
import { encodeConfContext } from '../../../src/kv/server/requests';
import type { ConfChangeV2 } from '../../../src/raft';

const member = (id: number, url: string, isLearner = false): Member => ({ id, name: `m${id}`, peerUrls: [url], clientUrls: [], isLearner });

function cluster(): Membership {
  return new Membership({ clusterId: 7, members: [member(1, 'http://127.0.0.1:1'), member(2, 'http://127.0.0.1:2'), member(3, 'http://127.0.0.1:3')], removed: [9] });
}

function change(type: 'addNode' | 'addLearner' | 'removeNode', nodeId: number, op: 'add' | 'promote' | 'remove', m?: Member): ConfChangeV2 {
  return { transition: 'auto', changes: [{ type, nodeId }], context: encodeConfContext({ m: 1, n: 1, op, member: m }) };
}

describe('confChangeError (etcd ValidateConfigurationChange)', () => {
  test('add: a new id with new URLs passes; duplicates and removed ids are refused', () => {
    const c = cluster();
    expect(confChangeError(c, change('addNode', 4, 'add', member(4, 'http://127.0.0.1:4')))).toBeUndefined();
    expect(confChangeError(c, change('addNode', 2, 'add', member(2, 'http://127.0.0.1:4')))).toBe(errors.ErrGRPCMemberExist);
    expect(confChangeError(c, change('addNode', 4, 'add', member(4, 'http://127.0.0.1:3')))).toBe(errors.ErrGRPCPeerURLExist);
    expect(confChangeError(c, change('addNode', 9, 'add', member(9, 'http://127.0.0.1:9')))).toBe(errors.ErrGRPCMemberNotFound);
  });

  test('one learner at most (etcd 3.4)', () => {
    const c = cluster();
    expect(confChangeError(c, change('addLearner', 4, 'add', member(4, 'http://127.0.0.1:4', true)))).toBeUndefined();
    c.add(member(4, 'http://127.0.0.1:4', true));
    expect(confChangeError(c, change('addLearner', 5, 'add', member(5, 'http://127.0.0.1:5', true)))).toBe(errors.ErrGRPCTooManyLearners);
    expect(confChangeError(c, change('addNode', 5, 'add', member(5, 'http://127.0.0.1:5')))).toBeUndefined();
  });

  test('promote: only a learner; remove: only a member', () => {
    const c = cluster();
    c.add(member(4, 'http://127.0.0.1:4', true));
    expect(confChangeError(c, change('addNode', 4, 'promote'))).toBeUndefined();
    expect(confChangeError(c, change('addNode', 1, 'promote'))).toBe(errors.ErrGRPCMemberNotLearner);
    expect(confChangeError(c, change('addNode', 8, 'promote'))).toBe(errors.ErrGRPCMemberNotFound);
    expect(confChangeError(c, change('removeNode', 2, 'remove'))).toBeUndefined();
    expect(confChangeError(c, change('removeNode', 8, 'remove'))).toBe(errors.ErrGRPCMemberNotFound);
    expect(confChangeError(c, change('removeNode', 9, 'remove'))).toBe(errors.ErrGRPCMemberNotFound);
  });

  test('entries without an operation (bootstrap entries of older clusters) are not judged', () => {
    expect(confChangeError(cluster(), { transition: 'auto', changes: [{ type: 'addNode', nodeId: 1 }] })).toBeUndefined();
  });
});

describe('member updates and URLs', () => {
  test('memberUpdateError: the member exists and no other member has the URLs', () => {
    const c = cluster();
    expect(memberUpdateError(c, 2, ['http://127.0.0.1:2', 'http://localhost:2'])).toBeUndefined();
    expect(memberUpdateError(c, 2, ['http://127.0.0.1:3'])).toBe(errors.ErrGRPCPeerURLExist);
    expect(memberUpdateError(c, 8, ['http://127.0.0.1:8'])).toBe(errors.ErrGRPCMemberNotFound);
    expect(memberUpdateError(c, 9, ['http://127.0.0.1:8'])).toBe(errors.ErrGRPCMemberNotFound);
  });

  test('parseMemberUrls: sorted, normalized, host:port required', () => {
    expect(parseMemberUrls(['http://b:2', 'http://a:1/'])).toEqual(['http://a:1', 'http://b:2']);
    for (const bad of [[], ['a:1'], ['http://a'], ['ftp://a:1'], ['http://a:1/path']]) expect(() => parseMemberUrls(bad)).toThrow(errors.ErrGRPCMemberBadURLs);
  });
});

describe('snapshot file trailer', () => {
  test.each([0, 1, 495, 496, 497, 511, 512, 100_000])('a %i-byte stream: data before the sha256 is a multiple of 512, the length is found again', (n) => {
    const t = snapshotTrailer(n);
    expect((n + t.length) % 512).toBe(0);
    expect(snapshotStreamBytes(n + t.length + 32, t.subarray(t.length - 16))).toBe(n);
  });

  test('a file without the footer is refused', () => {
    expect(() => snapshotStreamBytes(1000, Buffer.alloc(16))).toThrow(/not a skiff snapshot/);
  });
});
