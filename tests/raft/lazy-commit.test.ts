// RaftConfig.lazyCommit: a commit index that advances reaches followers that already have
// every entry with the next MsgApp or heartbeat, or with flushCommit(); a follower whose
// forwarded proposal just committed hears at once.

import { Message, StateType, message } from '../../src/raft';
import { Network } from './network';

const enc = new TextEncoder();

function commitsTo(msgs: Message[], to: number): Message[] {
  return msgs.filter((m) => m.type === 'MsgApp' && m.to === to && m.entries.length === 0);
}

/** A cluster of three with 1 leading, the leader's proposal replicated but not yet acknowledged. */
function proposedOnLeader(lazyCommit: boolean): Network {
  const net = new Network([1, 2, 3], { batchAppends: true, lazyCommit });
  net.campaign(1);
  net.node(1).rn.propose(enc.encode('x'));
  net.takeDelivered();
  return net;
}

describe('lazyCommit', () => {
  test('a commit owed to followers that have every entry waits for flushCommit (without it: an empty MsgApp each at once)', () => {
    for (const lazyCommit of [true, false]) {
      const net = proposedOnLeader(lazyCommit);
      net.stabilize();
      const sent = net.takeDelivered().filter((m) => m.from === 1);
      const last = net.raft(1).raftLog.lastIndex();
      expect(net.raft(1).raftLog.committed).toBe(last);
      for (const to of [2, 3]) expect(commitsTo(sent, to)).toHaveLength(lazyCommit ? 0 : 1);
      expect(net.node(1).rn.commitFlushPending()).toBe(lazyCommit);
      if (!lazyCommit) continue;
      // The followers have the entry but not its commit; flushCommit tells them.
      for (const id of [2, 3]) expect(net.raft(id).raftLog.committed).toBe(last - 1);
      net.node(1).rn.flushCommit();
      expect(net.node(1).rn.commitFlushPending()).toBe(false);
      net.stabilize();
      for (const id of [1, 2, 3]) expect(net.node(id).applied.slice(-1)).toEqual(['x']);
      const flushed = net.takeDelivered();
      for (const to of [2, 3]) expect(commitsTo(flushed, to).map((m) => m.commit)).toEqual([last]);
    }
  });

  test("the next proposal's MsgApp carries the commit owed, and nothing more is owed", () => {
    const net = proposedOnLeader(true);
    net.stabilize();
    const first = net.raft(1).raftLog.lastIndex();
    net.node(1).rn.propose(enc.encode('y'));
    const rd = net.node(1).rn.ready();
    for (const to of [2, 3]) {
      const apps = rd.messages.filter((m) => m.type === 'MsgApp' && m.to === to);
      expect(apps).toHaveLength(1);
      expect(apps[0].entries).toHaveLength(1);
      expect(apps[0].commit).toBe(first);
    }
    expect(net.node(1).rn.commitFlushPending()).toBe(false);
    net.node(1).storage.append(rd.entries);
    net.queue.push(...rd.messages, ...rd.messagesAfterPersist);
    net.node(1).rn.advance(rd);
    net.stabilize();
    for (const id of [2, 3]) expect(net.node(id).applied.slice(-1)).toEqual(['x']);
  });

  test('a heartbeat that carries the commit index settles what was owed', () => {
    const net = proposedOnLeader(true);
    net.stabilize();
    expect(net.node(1).rn.commitFlushPending()).toBe(true);
    net.tick(1, net.raft(1).heartbeatTimeout);
    expect(net.node(1).rn.commitFlushPending()).toBe(false);
    net.stabilize();
    for (const id of [2, 3]) expect(net.node(id).applied.slice(-1)).toEqual(['x']);
  });

  test('a follower whose forwarded proposal commits is told at once; the other waits', () => {
    const net = new Network([1, 2, 3], { batchAppends: true, lazyCommit: true });
    net.campaign(1);
    net.takeDelivered();
    net.node(2).rn.propose(enc.encode('from-2'));
    net.stabilize();
    const last = net.raft(1).raftLog.lastIndex();
    const sent = net.takeDelivered().filter((m) => m.from === 1);
    expect(commitsTo(sent, 2).map((m) => m.commit)).toEqual([last]);
    expect(commitsTo(sent, 3)).toHaveLength(0);
    expect(net.node(2).applied.slice(-1)).toEqual(['from-2']);
    expect(net.raft(3).raftLog.committed).toBe(last - 1);
    expect(net.node(1).rn.commitFlushPending()).toBe(true);
  });

  test('a follower still catching up gets its entries with the commit at once', () => {
    const net = new Network([1, 2, 3], { batchAppends: true, lazyCommit: true });
    net.campaign(1);
    net.isolate(3);
    net.propose(1, 'a');
    net.propose(1, 'b');
    net.recover();
    net.takeDelivered();
    // 3 is probed on the next heartbeat response and gets every entry with the commit index.
    net.tick(1, net.raft(1).heartbeatTimeout);
    net.stabilize();
    expect(net.node(3).applied.slice(-2)).toEqual(['a', 'b']);
  });

  test('a leader that steps down owes nothing, and flushCommit then sends nothing', () => {
    const net = proposedOnLeader(true);
    net.stabilize();
    expect(net.node(1).rn.commitFlushPending()).toBe(true);
    net.raft(1).step(message({ type: 'MsgHeartbeat', from: 2, to: 1, term: net.raft(1).term + 1 }));
    expect(net.raft(1).state).toBe(StateType.Follower);
    expect(net.node(1).rn.commitFlushPending()).toBe(false);
    net.node(1).rn.flushCommit();
    expect(net.raft(1).msgs.filter((m) => m.type === 'MsgApp')).toHaveLength(0);
  });
});
