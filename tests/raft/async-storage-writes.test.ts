// RaftConfig.asyncStorageWrites: Readies are taken while earlier writes are in flight; entries
// are handed out to be written once, acknowledged and counted only after persisted(), and
// applied only once durable on the member applying them.

import { Entry, EntryType, Message, RawNode, Ready, StateType } from '../../src/raft';
import { Unstable } from '../../src/raft/log';
import { Network } from './network';

const enc = new TextEncoder();
const dec = new TextDecoder();

function texts(es: Entry[]): string[] {
  return es.filter((e) => e.data.byteLength > 0).map((e) => dec.decode(e.data));
}

function appendResponses(msgs: Message[]): Message[] {
  return msgs.filter((m) => m.type === 'MsgAppResp');
}

/** A 3-member network with node 1 leading, every node in asynchronous mode. */
function asyncCluster(): Network {
  const net = new Network([1, 2, 3], { asyncStorageWrites: true });
  net.campaign(1);
  expect(net.raft(1).state).toBe(StateType.Leader);
  return net;
}

/** Takes a Ready and advances it at once: its write stays in flight until completeWrite. */
function take(rn: RawNode): Ready {
  const rd = rn.ready();
  rn.advance(rd);
  return rd;
}

/** What the caller does when a write completes: store it, then tell the core. */
function completeWrite(net: Network, id: number, rd: Ready): void {
  const n = net.node(id);
  if (rd.entries.length > 0) n.storage.append(rd.entries);
  if (rd.hardState) n.storage.setHardState(rd.hardState);
  net.queue.push(...rd.messagesAfterPersist);
  if (rd.entries.length > 0) {
    const last = rd.entries[rd.entries.length - 1];
    n.rn.persisted(last.index, last.term);
  }
}

describe('asyncStorageWrites', () => {
  test('a second Ready while the first write is in flight holds only the newer entries', () => {
    const net = asyncCluster();
    const rn = net.node(1).rn;
    rn.propose(enc.encode('a'));
    const rd1 = take(rn);
    expect(texts(rd1.entries)).toEqual(['a']);
    rn.propose(enc.encode('b'));
    const rd2 = take(rn);
    expect(texts(rd2.entries)).toEqual(['b']);
    expect(rn.hasReady()).toBe(false);
    // Both writes complete: nothing is handed out again.
    completeWrite(net, 1, rd1);
    completeWrite(net, 1, rd2);
    expect(net.raft(1).raftLog.unstable.entries).toHaveLength(0);
  });

  test('the leader counts its own entries only after persisted(): two followers commit without it', () => {
    const net = asyncCluster();
    const rn = net.node(1).rn;
    rn.propose(enc.encode('x'));
    const rd = take(rn);
    const index = rd.entries[rd.entries.length - 1].index;
    expect(net.raft(1).trk.progress.get(1)!.match).toBeLessThan(index);
    // The followers store and acknowledge; the leader's own write is still in flight.
    net.queue.push(...rd.messages);
    net.stabilizeExcept(1);
    expect(net.raft(1).raftLog.committed).toBeGreaterThanOrEqual(index);
    // Committed, but not durable on the leader: not handed out to be applied there.
    const rdc = take(rn);
    expect(texts(rdc.committedEntries)).toEqual([]);
    completeWrite(net, 1, rd);
    expect(net.raft(1).trk.progress.get(1)!.match).toBe(index);
    const rda = take(rn);
    expect(texts(rda.committedEntries)).toEqual(['x']);
  });

  test('a follower acknowledges entries only in messagesAfterPersist, and applies them once durable', () => {
    const net = asyncCluster();
    net.node(1).rn.propose(enc.encode('y'));
    net.stabilizeExcept(2);
    // Node 2 has the append queued but not processed (stabilizeExcept leaves its Readies).
    const rn2 = net.node(2).rn;
    const rd = take(rn2);
    expect(texts(rd.entries)).toEqual(['y']);
    expect(appendResponses(rd.messages)).toEqual([]);
    expect(appendResponses(rd.messagesAfterPersist).length).toBeGreaterThan(0);
    // The commit index reaches node 2 before its write completes: still nothing to apply.
    expect(net.raft(2).raftLog.committed).toBeGreaterThanOrEqual(rd.entries[rd.entries.length - 1].index);
    expect(texts(rd.committedEntries)).toEqual([]);
    completeWrite(net, 2, rd);
    const rda = take(rn2);
    expect(texts(rda.committedEntries)).toEqual(['y']);
  });

  test('entries replaced while their write is in flight: its completion is ignored, the new ones are written', () => {
    const net = new Network([1, 2, 3], { asyncStorageWrites: true });
    net.campaign(1);
    // Node 1 appends an entry only it has, then loses leadership to node 2.
    net.isolate(1);
    net.node(1).rn.propose(enc.encode('lost'));
    const rd1 = take(net.node(1).rn);
    const lost = rd1.entries[rd1.entries.length - 1];
    net.recover();
    // Node 2 is elected with node 3's vote and replicates; node 1 takes no Ready meanwhile.
    net.node(2).rn.campaign();
    net.stabilizeExcept(1);
    net.node(2).rn.propose(enc.encode('kept'));
    net.stabilizeExcept(1);
    expect(net.raft(2).state).toBe(StateType.Leader);
    // The new leader's append replaced the entry whose write is still in flight.
    const rn1 = net.node(1).rn;
    const rd2 = take(rn1);
    expect(rd2.entries.some((e) => e.index === lost.index && e.term !== lost.term)).toBe(true);
    // The old write completes first (the log writes in order): the core ignores it.
    completeWrite(net, 1, rd1);
    expect(net.raft(1).raftLog.unstable.entries.some((e) => e.index === lost.index)).toBe(true);
    completeWrite(net, 1, rd2);
    net.stabilize();
    expect(net.node(1).applied).toContain('kept');
    expect(net.node(1).applied).not.toContain('lost');
  });

  describe('Unstable: entries in progress', () => {
    const e = (index: number, term: number): Entry => ({ index, term, type: EntryType.Normal, data: new Uint8Array(0) });
    const at = (es: Entry[]): string[] => es.map((x) => `${x.index}@${x.term}`);

    test('a suffix replaced after a matching in-progress prefix is handed out again from the conflict', () => {
      const u = new Unstable(5);
      u.truncateAndAppend([e(5, 1), e(6, 1), e(7, 1)]);
      u.acceptInProgress();
      expect(u.hasEntriesToPersist()).toBe(false);
      u.truncateAndAppend([e(6, 2), e(7, 2)]);
      expect(at(u.entriesToPersist())).toEqual(['6@2', '7@2']);
      u.acceptInProgress();
      // The old write completes: 5 is durable, 7@1 is not the log's entry any more.
      u.stableTo(7, 1);
      expect(u.offset).toBe(5);
      u.stableTo(7, 2);
      expect(u.offset).toBe(8);
      expect(u.hasEntriesToPersist()).toBe(false);
    });

    test('everything replaced (from before the first unstable entry): all handed out again', () => {
      const u = new Unstable(5);
      u.truncateAndAppend([e(5, 1), e(6, 1)]);
      u.acceptInProgress();
      u.truncateAndAppend([e(4, 2), e(5, 2)]);
      expect(at(u.entriesToPersist())).toEqual(['4@2', '5@2']);
    });

    test('appends after the entries in progress: only the new ones', () => {
      const u = new Unstable(5);
      u.truncateAndAppend([e(5, 1)]);
      u.acceptInProgress();
      u.truncateAndAppend([e(6, 1), e(7, 1)]);
      expect(at(u.entriesToPersist())).toEqual(['6@1', '7@1']);
      u.stableTo(5, 1);
      expect(at(u.entriesToPersist())).toEqual(['6@1', '7@1']);
    });
  });
});
