// Joining an existing cluster: which peer's view names this member. A peer behind on the
// log may still list a removed earlier incarnation (same peer URLs, old id); a long chaos
// run had a wiped member come back under its removed id that way, and it never got in.

import { chooseSelf, ClusterView } from '../../../src/kv/server/peer-members';

const url = 'http://127.0.0.1:2380';

function view(memberId: number, appliedIndex: number, members: Array<[number, string]>, removed: number[] = []): ClusterView {
  return {
    clusterId: 7,
    memberId,
    appliedIndex,
    membership: { clusterId: 7, removed, members: members.map(([id, peer]) => ({ id, name: '', peerUrls: [peer], clientUrls: [], isLearner: false })) },
  };
}

test('a stale view that lists the removed id loses to one that knows the removal', () => {
  const stale = view(1, 100, [[1, 'http://a'], [5, url]]);
  const current = view(2, 120, [[1, 'http://a'], [9, url]], [5]);
  expect(chooseSelf([stale, current], [url])?.selfId).toBe(9);
  expect(chooseSelf([current, stale], [url])?.selfId).toBe(9);
});

test('the removed id is never chosen, even when no view has the new id yet', () => {
  const stale = view(1, 100, [[1, 'http://a'], [5, url]]);
  const knowsRemoval = view(2, 110, [[1, 'http://a']], [5]);
  expect(chooseSelf([stale, knowsRemoval], [url])).toBeUndefined();
});

test('the most advanced view wins; nothing listed, nothing chosen', () => {
  const a = view(1, 100, [[3, url]]);
  const b = view(2, 130, [[3, url], [4, 'http://b']]);
  expect(chooseSelf([a, b], [url])).toMatchObject({ selfId: 3, memberId: 2, appliedIndex: 130 });
  expect(chooseSelf([view(1, 1, [[1, 'http://a']])], [url])).toBeUndefined();
  expect(chooseSelf([], [url])).toBeUndefined();
});
