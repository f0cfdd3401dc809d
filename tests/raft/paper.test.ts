// Tests that follow the Raft paper ("In Search of an Understandable Consensus Algorithm",
// §N) and Ongaro's thesis ("Consensus: Bridging Theory and Practice", thesis §N), each
// citing the section it checks.
//
// Every cluster is bootstrapped with its configuration as entries 1..n of term 1, so the
// first election is for term 2 and the new leader's empty entry is at index n+1.

import { message, Message, StateType } from '../../src/raft';
import { Network } from './network';

const enc = new TextEncoder();

describe('§5.1 terms', () => {
  test('a node that sees a higher term adopts it and becomes follower', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    expect(net.raft(1).state).toBe(StateType.Leader);
    net.raft(1).step(message({ type: 'MsgApp', from: 2, to: 1, term: 5, index: 0, logTerm: 0 }));
    expect(net.raft(1).state).toBe(StateType.Follower);
    expect(net.raft(1).term).toBe(5);
    expect(net.raft(1).lead).toBe(2);
  });

  test('a message with a stale term is ignored', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    const before = net.raft(2).raftLog.lastIndex();
    net.raft(2).step(message({ type: 'MsgApp', from: 3, to: 2, term: 1, index: 4, logTerm: 2, entries: [{ term: 1, index: 5, type: 0, data: enc.encode('x') }] }));
    expect(net.raft(2).raftLog.lastIndex()).toBe(before);
    expect(net.raft(2).lead).toBe(1);
  });
});

describe('§5.2 leader election', () => {
  test('a follower that hears nothing for an election timeout campaigns: new term, votes for itself, asks every voter', () => {
    const net = new Network([1, 2, 3]);
    net.tick(1, 20);
    const n = net.node(1);
    expect(n.rn.raft.state).toBe(StateType.Candidate);
    expect(n.rn.raft.term).toBe(2);
    expect(n.rn.raft.vote).toBe(1);
    const rd = n.rn.ready();
    const votes = rd.messagesAfterPersist.filter((m) => m.type === 'MsgVote');
    expect(votes.map((m) => m.to).sort()).toEqual([2, 3]);
    expect(votes.every((m) => m.term === 2)).toBe(true);
  });

  test('a candidate that wins a majority becomes leader; one that loses returns to follower', () => {
    // Votes of 2..5: true granted, false rejected, undefined no answer yet.
    const cases: [(boolean | undefined)[], StateType][] = [
      [[true, true, undefined, undefined], StateType.Leader],
      [[true, false, false, undefined], StateType.Candidate], // 2 of 5, could still win
      [[true, false, false, false], StateType.Follower], // at most 2 of 5: lost
      [[false, false, false, undefined], StateType.Follower],
    ];
    for (const [votes, expected] of cases) {
      const net = new Network([1, 2, 3, 4, 5]);
      net.node(1).rn.campaign();
      votes.forEach((v, i) => {
        if (v !== undefined) net.raft(1).step(message({ type: 'MsgVoteResp', from: i + 2, to: 1, term: 2, reject: !v }));
      });
      expect([votes, net.raft(1).state]).toEqual([votes, expected]);
    }
  });

  test('each node votes for at most one candidate in a term, first come first served', () => {
    const net = new Network([1, 2, 3]);
    const r = net.raft(3);
    r.step(message({ type: 'MsgVote', from: 1, to: 3, term: 2, index: 3, logTerm: 1 }));
    r.step(message({ type: 'MsgVote', from: 2, to: 3, term: 2, index: 3, logTerm: 1 }));
    r.step(message({ type: 'MsgVote', from: 1, to: 3, term: 2, index: 3, logTerm: 1 }));
    const resps = r.msgsAfterPersist.filter((m) => m.type === 'MsgVoteResp');
    expect(resps.map((m) => [m.to, m.reject])).toEqual([
      [1, false],
      [2, true],
      [1, false],
    ]);
    expect(r.vote).toBe(1);
  });

  test('a candidate that receives an append from a leader of its term becomes follower', () => {
    const net = new Network([1, 2, 3]);
    net.node(1).rn.campaign();
    expect(net.raft(1).state).toBe(StateType.Candidate);
    net.raft(1).step(message({ type: 'MsgApp', from: 2, to: 1, term: 2, index: 3, logTerm: 1 }));
    expect(net.raft(1).state).toBe(StateType.Follower);
    expect(net.raft(1).lead).toBe(2);
  });

  test('election timeouts are randomized in [timeout, 2*timeout)', () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) {
      const net = new Network([1, 2, 3], { random: { int: (n: number) => (seed * 7919) % n } });
      let ticks = 0;
      while (net.raft(1).state === StateType.Follower) {
        net.tick(1, 1);
        ticks++;
      }
      expect(ticks).toBeGreaterThanOrEqual(10);
      expect(ticks).toBeLessThan(20);
      seen.add(ticks);
    }
    expect(seen.size).toBeGreaterThan(3);
  });
});

describe('§5.3 log replication', () => {
  test('the leader appends a proposal, replicates it, and commits it once a majority stored it', () => {
    const net = new Network([1, 2, 3, 4, 5]);
    net.campaign(1);
    net.isolate(4);
    net.isolate(5);
    net.isolate(3);
    net.propose(1, 'a');
    // Only 2 has it: 2 of 5 is no majority.
    expect(net.raft(1).raftLog.committed).toBe(6);
    net.recover();
    net.isolate(4);
    net.isolate(5);
    net.node(1).rn.tick(); // heartbeat: 3 answers and gets the entry
    net.stabilize();
    expect(net.raft(1).raftLog.committed).toBe(7);
    expect(net.node(1).applied).toEqual(['a']);
    expect(net.node(3).applied).toEqual(['a']);
  });

  test('a follower rejects an append whose previous entry does not match (consistency check)', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    const r = net.raft(2);
    r.step(message({ type: 'MsgApp', from: 1, to: 2, term: 2, index: 9, logTerm: 2, entries: [{ term: 2, index: 10, type: 0, data: enc.encode('x') }] }));
    const resp = r.msgsAfterPersist.filter((m) => m.type === 'MsgAppResp').pop()!;
    expect(resp.reject).toBe(true);
    expect(resp.index).toBe(9);
    // The hint points at the follower's last index: the leader can skip straight to it.
    expect(resp.rejectHint).toBe(4);
  });

  test('the leader brings divergent follower logs in line with its own (Figure 7)', () => {
    // Followers with missing entries, extra uncommitted entries of old terms, or both.
    const net = new Network([1, 2, 3, 4, 5]);
    net.campaign(1); // term 2
    net.propose(1, 'a');
    // 2 and 3 miss entries; 4 gets an uncommitted entry of term 2 only it has.
    net.isolate(2);
    net.isolate(3);
    net.propose(1, 'b');
    net.recover();
    net.drop((m) => m.to !== 4 && m.from === 1 && m.type === 'MsgApp');
    net.drop((m) => m.from === 4 && m.type === 'MsgAppResp');
    net.node(1).rn.propose(enc.encode('lost'));
    net.stabilize();
    net.recover();
    // 1 and 4 go away; 5 leads term 3 with 2 and 3 (5 has 'b', so it is up to date enough).
    net.isolate(1);
    net.isolate(4);
    net.campaign(5);
    expect(net.raft(5).state).toBe(StateType.Leader);
    net.propose(5, 'c');
    net.recover();
    net.isolate(1);
    net.node(5).rn.tick();
    net.stabilize();
    // 4's extra term-2 entry was replaced by the leader's log.
    for (const id of [2, 3, 4, 5]) expect(net.node(id).applied).toEqual(['a', 'b', 'c']);
    expect(net.logTerms(4)).toEqual(net.logTerms(5));
  });

  test('fast back-off: one rejection skips a whole term of mismatching entries', () => {
    const net = new Network([1, 2, 3], { messageBytesMax: 1 });
    net.campaign(1);
    // 3 is away while 1 appends 20 entries committed with 2.
    net.isolate(3);
    for (let i = 0; i < 20; i++) net.propose(1, `e${i}`);
    net.recover();
    net.takeDelivered();
    net.node(1).rn.tick();
    net.stabilize();
    const rejections = net.delivered.filter((m) => m.type === 'MsgAppResp' && m.reject && m.from === 3);
    expect(rejections.length).toBeLessThanOrEqual(1);
    expect(net.node(3).applied.length).toBe(20);
  });
});

describe('§5.4 safety', () => {
  test('§5.4.1 a voter denies its vote to a candidate whose log is less up to date', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.propose(1, 'a'); // everyone has index 5 of term 2
    const r = net.raft(3);
    const cases: [number, number, boolean][] = [
      // [candidate last index, candidate last term, granted]
      [4, 2, false], // shorter log, same last term
      [5, 1, false], // older last term
      [5, 2, true], // as up to date
      [6, 2, true], // longer
      [1, 3, true], // later last term wins even if shorter
    ];
    let term = 10;
    for (const [index, logTerm, granted] of cases) {
      term++;
      r.step(message({ type: 'MsgVote', from: 2, to: 3, term, index, logTerm }));
      const resp = r.msgsAfterPersist.filter((m) => m.type === 'MsgVoteResp').pop()!;
      expect([index, logTerm, !resp.reject]).toEqual([index, logTerm, granted]);
    }
  });

  test('§5.4.2 a leader never commits an entry of a previous term by counting replicas (Figure 8)', () => {
    const net = new Network([1, 2, 3], { messageBytesMax: 1 });
    net.campaign(1); // term 2, empty entry at 4
    // 'a' (index 5, term 2) reaches 2 only, and 1 never learns that it did.
    net.cut(1, 3);
    net.drop((m) => m.from === 2 && m.to === 1 && m.type === 'MsgAppResp');
    net.propose(1, 'a');
    expect(net.raft(1).raftLog.committed).toBe(4);
    net.recover();
    // 1 is down. 2 wins term 3 with 3's vote, appends its empty entry, and is cut off at once.
    net.isolate(1);
    net.drop((m) => m.from === 2 && m.type === 'MsgApp');
    net.campaign(2);
    expect(net.raft(2).state).toBe(StateType.Leader);
    expect(net.raft(2).term).toBe(3);
    net.recover();
    // 1 restarts while 2 is down; it needs term 4 to get 3's vote (3 voted for 2 in term 3).
    net.isolate(2);
    net.restart(1);
    net.stabilize();
    net.campaign(1);
    expect(net.raft(1).state).toBe(StateType.Candidate);
    // The new leader will send index 5 (term 2) to 3, then index 6 (term 4), which is lost.
    let appsWithTerm4 = 0;
    net.drop((m) => m.from === 1 && m.to === 3 && m.type === 'MsgApp' && m.entries.some((e) => e.term === 4) && ++appsWithTerm4 === 2);
    net.campaign(1);
    expect(net.raft(1).state).toBe(StateType.Leader);
    expect(net.raft(1).term).toBe(4);
    expect(net.node(1).rn.status().progress?.get(3)?.match).toBe(5);
    // Index 5 is on 1 and 3, a majority, but it is of term 2: not committed.
    expect(net.raft(1).raftLog.committed).toBe(4);
    expect(net.node(1).applied).toEqual([]);
    net.recover();
    net.isolate(2);
    net.node(1).rn.tick();
    net.stabilize();
    // Once index 6 of term 4 is on a majority, both commit.
    expect(net.raft(1).raftLog.committed).toBe(6);
    expect(net.node(1).applied).toEqual(['a']);
  });
});

describe('thesis §6.4 ReadIndex', () => {
  test('a new leader defers reads until it has committed an entry of its term', () => {
    const net = new Network([1, 2, 3]);
    net.drop((m) => m.type === 'MsgAppResp');
    net.campaign(1);
    expect(net.raft(1).state).toBe(StateType.Leader);
    net.node(1).rn.readIndex('r');
    net.stabilize();
    expect(net.node(1).rn.hasReady()).toBe(false);
    net.recover();
    net.node(1).rn.tick();
    net.stabilize();
    // Answered by process(): look at what the last Ready carried.
    net.node(1).rn.readIndex('r2');
    const states: { index: number; context: string }[] = [];
    for (let i = 0; i < 10; i++) {
      const n = net.node(1);
      if (n.rn.hasReady()) {
        const rd = n.rn.ready();
        states.push(...rd.readStates);
        net.queue.push(...rd.messages, ...rd.messagesAfterPersist);
        n.storage.append(rd.entries);
        if (rd.hardState) n.storage.setHardState(rd.hardState);
        n.rn.advance(rd);
      }
      for (const m of net.queue.splice(0)) net.node(m.to).rn.step(m);
      for (const id of [2, 3]) net.process(net.node(id));
    }
    expect(states).toEqual([{ index: 4, context: 'r2' }]);
  });

  test('lease-based reads answer at once; safe reads need a quorum of heartbeat acks', () => {
    const net = new Network([1, 2, 3], { readOnlyOption: 'leaseBased', checkQuorum: true });
    net.campaign(1);
    net.isolate(1);
    net.node(1).rn.readIndex('lease');
    const rd = net.node(1).rn.ready();
    expect(rd.readStates).toEqual([{ index: 4, context: 'lease' }]);
    net.node(1).rn.advance(rd);

    const safe = new Network([1, 2, 3]);
    safe.campaign(1);
    safe.isolate(1);
    safe.node(1).rn.readIndex('safe');
    safe.stabilize();
    expect(safe.node(1).rn.hasReady()).toBe(false);
  });
});

describe('flow control', () => {
  test('in Replicate state the leader keeps at most inflightMessagesMax appends in flight', () => {
    const net = new Network([1, 2], { inflightMessagesMax: 3, messageBytesMax: 1 });
    net.campaign(1);
    net.dropType('MsgAppResp');
    const sent: Message[] = [];
    for (let i = 0; i < 10; i++) {
      net.node(1).rn.propose(enc.encode(`p${i}`));
      const rd = net.node(1).rn.ready();
      sent.push(...rd.messages.filter((m) => m.type === 'MsgApp' && m.entries.length > 0));
      net.node(1).storage.append(rd.entries);
      net.node(1).rn.advance(rd);
    }
    expect(sent.length).toBe(3);
    expect(net.raft(1).trk.progress.get(2)!.isPaused()).toBe(true);
    // An acknowledgement frees the window.
    net.recover();
    net.raft(1).step(message({ type: 'MsgAppResp', from: 2, to: 1, term: 2, index: sent[0].entries[0].index }));
    expect(net.raft(1).msgs.filter((m) => m.type === 'MsgApp').length).toBe(1);
  });

  test('inflight bytes are limited too', () => {
    const net = new Network([1, 2], { inflightMessagesMax: 100, inflightBytesMax: 1000, messageBytesMax: 1 });
    net.campaign(1);
    net.dropType('MsgAppResp');
    let sent = 0;
    for (let i = 0; i < 10; i++) {
      net.node(1).rn.propose(new Uint8Array(300));
      const rd = net.node(1).rn.ready();
      sent += rd.messages.filter((m) => m.type === 'MsgApp' && m.entries.length > 0).length;
      net.node(1).storage.append(rd.entries);
      net.node(1).rn.advance(rd);
    }
    // 300 + 300 + 300 + 300 >= 1000: the fourth fills the window.
    expect(sent).toBe(4);
  });

  test('a probing leader sends one append per heartbeat interval to an unresponsive follower', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(3);
    net.node(1).rn.reportUnreachable(3);
    net.stabilize();
    net.takeDelivered();
    for (let i = 0; i < 5; i++) net.node(1).rn.propose(enc.encode(`x${i}`));
    const rd = net.node(1).rn.ready();
    expect(rd.messages.filter((m) => m.to === 3 && m.type === 'MsgApp').length).toBe(1);
    expect(rd.messages.filter((m) => m.to === 2 && m.type === 'MsgApp').length).toBe(5);
  });
});

describe('proposals', () => {
  test('a follower forwards proposals to the leader', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.propose(2, 'via-2');
    expect(net.node(1).applied).toEqual(['via-2']);
  });

  test('proposals are dropped without a leader, with forwarding disabled, or when uncommitted bytes are over the limit', () => {
    const net = new Network([1, 2, 3], { disableProposalForwarding: true, uncommittedBytesMax: 100 });
    expect(() => net.node(2).rn.propose(enc.encode('x'))).toThrow(expect.objectContaining({ code: 'ERR_PROPOSAL_DROPPED' }));
    net.campaign(1);
    expect(() => net.node(2).rn.propose(enc.encode('x'))).toThrow(expect.objectContaining({ code: 'ERR_PROPOSAL_DROPPED' }));
    net.isolate(2);
    net.isolate(3);
    net.node(1).rn.propose(new Uint8Array(60));
    expect(() => net.node(1).rn.propose(new Uint8Array(60))).toThrow(expect.objectContaining({ code: 'ERR_PROPOSAL_DROPPED' }));
  });
});

describe('thesis §4 membership', () => {
  test('§4.1 a second configuration change is refused while one is pending', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(2);
    net.isolate(3);
    net.node(1).rn.proposeConfChange({ transition: 'auto', changes: [{ type: 'addLearner', nodeId: 4 }] });
    net.node(1).rn.proposeConfChange({ transition: 'auto', changes: [{ type: 'removeNode', nodeId: 2 }] });
    const ents = net.raft(1).raftLog.unstableEntries();
    expect(ents.map((e) => e.type)).toEqual([1, 0]);
  });

  test('a learner receives the log but never votes or campaigns', () => {
    const net = new Network([1, 2, 3], {}, { voters: [1, 2], learners: [3], votersOutgoing: [], learnersNext: [], autoLeave: false });
    net.tick(3, 100);
    expect(net.raft(3).state).toBe(StateType.Follower);
    net.campaign(1);
    net.propose(1, 'x');
    expect(net.node(3).applied).toEqual(['x']);
    // Commitment does not need the learner.
    net.isolate(3);
    net.propose(1, 'y');
    expect(net.node(1).applied).toEqual(['x', 'y']);
  });
});

describe('thesis §3.10 leader transfer', () => {
  test('the transferee campaigns at once even inside the leader lease, and becomes leader', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true, preVote: true });
    net.campaign(1);
    net.node(1).rn.transferLeader(2);
    net.stabilize();
    expect(net.raft(2).state).toBe(StateType.Leader);
    expect(net.raft(1).state).toBe(StateType.Follower);
  });

  test('a transfer that does not complete within an election timeout is abandoned', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(3);
    net.node(1).rn.transferLeader(3);
    net.stabilize();
    expect(net.raft(1).leadTransferee).toBe(3);
    net.tick(1, 10);
    expect(net.raft(1).leadTransferee).toBe(0);
    expect(net.raft(1).state).toBe(StateType.Leader);
  });
});
