// RaftConfig.batchAppends: proposals stepped between two Readies leave the leader together,
// one MsgApp per follower, and a follower's forwarded proposals travel as one MsgProp.

import { Message, RaftError, StateType, message } from '../../src/raft';
import { Network } from './network';

const enc = new TextEncoder();

function appendsTo(msgs: Message[], to: number): Message[] {
  return msgs.filter((m) => m.type === 'MsgApp' && m.to === to);
}

describe('batchAppends', () => {
  test('three proposals before a Ready: one MsgApp per follower carrying all three (without it: three)', () => {
    for (const batchAppends of [true, false]) {
      const net = new Network([1, 2, 3], { batchAppends });
      net.campaign(1);
      const n = net.node(1);
      for (const p of ['a', 'b', 'c']) n.rn.propose(enc.encode(p));
      const rd = n.rn.ready();
      for (const to of [2, 3]) {
        const apps = appendsTo(rd.messages, to);
        if (batchAppends) {
          expect(apps).toHaveLength(1);
          expect(apps[0].entries.map((e) => new TextDecoder().decode(e.data))).toEqual(['a', 'b', 'c']);
        } else {
          expect(apps).toHaveLength(3);
        }
      }
      n.storage.append(rd.entries);
      net.queue.push(...rd.messages, ...rd.messagesAfterPersist);
      n.rn.advance(rd);
      net.stabilize();
      for (const id of [1, 2, 3]) expect(net.node(id).applied.slice(-3)).toEqual(['a', 'b', 'c']);
    }
  });

  test('hasReady sends the pending appends too', () => {
    const net = new Network([1, 2, 3], { batchAppends: true });
    net.campaign(1);
    net.node(1).rn.propose(enc.encode('x'));
    expect(net.raft(1).msgs).toHaveLength(0);
    expect(net.node(1).rn.hasReady()).toBe(true);
    expect(appendsTo(net.raft(1).msgs, 2)).toHaveLength(1);
  });

  test('a proposal that cannot be taken is still refused at once', () => {
    const net = new Network([1, 2, 3], { batchAppends: true, uncommittedBytesMax: 4 });
    net.campaign(1);
    net.node(1).rn.propose(enc.encode('abcd'));
    expect(() => net.node(1).rn.propose(enc.encode('e'))).toThrow(RaftError);
  });

  test('each MsgApp still holds at most messageBytesMax (at least one entry); flow control still applies', () => {
    const net = new Network([1, 2, 3], { batchAppends: true, messageBytesMax: 1, inflightMessagesMax: 2 });
    net.campaign(1);
    for (const p of ['a', 'b', 'c']) net.node(1).rn.propose(enc.encode(p));
    const rd = net.node(1).rn.ready();
    const apps = appendsTo(rd.messages, 2);
    expect(apps.map((m) => m.entries.length)).toEqual([1, 1]);
  });

  test('a leader that steps down before the Ready sends none of the pending appends', () => {
    const net = new Network([1, 2, 3], { batchAppends: true });
    net.campaign(1);
    net.node(1).rn.propose(enc.encode('x'));
    net.raft(1).step(message({ type: 'MsgHeartbeat', from: 2, to: 1, term: net.raft(1).term + 1 }));
    expect(net.raft(1).state).toBe(StateType.Follower);
    const rd = net.node(1).rn.ready();
    expect(rd.messages.filter((m) => m.type === 'MsgApp')).toHaveLength(0);
  });

  test("a follower's consecutive forwarded proposals go to the leader as one MsgProp, and all commit", () => {
    const net = new Network([1, 2, 3], { batchAppends: true });
    net.campaign(1);
    for (const p of ['f1', 'f2', 'f3']) net.node(2).rn.propose(enc.encode(p));
    const props = net.raft(2).msgs.filter((m) => m.type === 'MsgProp');
    expect(props).toHaveLength(1);
    expect(props[0].to).toBe(1);
    expect(props[0].entries).toHaveLength(3);
    net.stabilize();
    for (const id of [1, 2, 3]) expect(net.node(id).applied.slice(-3)).toEqual(['f1', 'f2', 'f3']);
  });

  test('a merged MsgProp stays within messageBytesMax; a larger proposal travels alone', () => {
    const net = new Network([1, 2, 3], { batchAppends: true, messageBytesMax: 6 });
    net.campaign(1);
    for (const p of ['aaa', 'bbb', 'ccc', 'dddddddd', 'e']) net.node(2).rn.propose(enc.encode(p));
    const props = net.raft(2).msgs.filter((m) => m.type === 'MsgProp');
    expect(props.map((m) => m.entries.map((e) => new TextDecoder().decode(e.data)))).toEqual([['aaa', 'bbb'], ['ccc'], ['dddddddd'], ['e']]);
    net.stabilize();
    expect(net.node(3).applied.slice(-5)).toEqual(['aaa', 'bbb', 'ccc', 'dddddddd', 'e']);
  });
});
