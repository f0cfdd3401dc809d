// A member joining a running cluster from an empty disk (no bootstrap): added as a learner
// by a ConfChange, it is sent a snapshot because the leader's log was compacted, takes it
// into its empty log, catches up, is promoted, and then counts toward the quorum. Also: a
// ConfChange the state machine refuses leaves Raft's configuration unchanged everywhere.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfChangeV2, ConfState, EntryType, NodeId, SnapshotMetadata } from '../../src/raft';
import { DiskStorage } from '../../src/raft/disk-storage';
import { Applied, RaftNode, StateMachine } from '../../src/raft/raft-node';
import { LocalHub, SnapshotSource } from '../../src/raft/transport';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Applied strings in memory; refuses adding node 99 (as an application may refuse a change). */
class ListMachine implements StateMachine {
  items: string[] = [];
  index = 0;
  term = 0;
  confState: ConfState | undefined;
  refused: number[] = [];
  private staged: { items: string[]; meta: SnapshotMetadata } | undefined;

  applied() {
    return { index: this.index, term: this.term, confState: this.confState };
  }

  apply(entries: Applied[]): void {
    for (const a of entries) {
      if (a.entry.type === EntryType.Normal && a.entry.data.length > 0) this.items.push(dec.decode(a.entry.data));
      if (a.confChange?.confState) this.confState = a.confChange.confState;
      else if (a.confChange) this.refused.push(a.entry.index);
      this.index = a.entry.index;
      this.term = a.entry.term;
    }
  }

  refuseConfChange(change: ConfChangeV2): string | undefined {
    return change.changes.some((c) => c.nodeId === 99) ? 'node 99 is not welcome' : undefined;
  }

  async sync(): Promise<void> {}

  async openSnapshot(): Promise<SnapshotSource> {
    const data = enc.encode(JSON.stringify(this.items));
    return {
      metadata: { index: this.index, term: this.term, confState: this.confState! },
      async *chunks() {
        yield data;
      },
      close() {},
    };
  }

  async stageSnapshot(meta: SnapshotMetadata, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Uint8Array[] = [];
    for await (const c of chunks) parts.push(c);
    this.staged = { items: JSON.parse(dec.decode(Buffer.concat(parts))) as string[], meta };
  }

  async restoreStaged(meta: SnapshotMetadata): Promise<void> {
    this.items = this.staged!.items;
    this.index = meta.index;
    this.term = meta.term;
    this.confState = meta.confState;
    this.staged = undefined;
  }
}

interface Member {
  id: NodeId;
  node: RaftNode;
  sm: ListMachine;
  storage: DiskStorage;
}

describe('RaftNode: joining from an empty disk', () => {
  let dir: string;
  let hub: LocalHub;
  const members = new Map<NodeId, Member>();
  const founders = [1, 2, 3];

  async function startMember(id: NodeId, bootstrap: boolean): Promise<Member> {
    const storage = await DiskStorage.open(path.join(dir, `m${id}`));
    if (bootstrap && storage.isEmpty()) {
      await storage.bootstrap({ voters: founders, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false });
    }
    const sm = new ListMachine();
    const node = new RaftNode({ id, storage, stateMachine: sm, transport: hub.transport(id), tickMs: 10, electionTimeoutTicks: 10, heartbeatIntervalTicks: 1, snapshotEntriesCount: 5, compactionKeepEntries: 2, seed: id });
    await node.start();
    const m = { id, node, sm, storage };
    members.set(id, m);
    return m;
  }

  async function stopMember(id: NodeId): Promise<void> {
    const m = members.get(id)!;
    await m.node.stop();
    await m.storage.close();
    members.delete(id);
  }

  async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error('timed out waiting');
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  function leader(): Member | undefined {
    return [...members.values()].find((m) => m.node.isLeader());
  }

  async function onLeader(f: (m: Member) => void): Promise<void> {
    for (;;) {
      const l = leader();
      if (l) {
        try {
          f(l);
          return;
        } catch {
          // leadership moved, or a change is pending: again
        }
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-raftjoin-'));
    hub = new LocalHub();
  });

  afterEach(async () => {
    for (const id of [...members.keys()]) await stopMember(id);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a learner with an empty log takes a snapshot, catches up, is promoted and votes', async () => {
    for (const id of founders) await startMember(id, true);
    await waitFor(() => leader() !== undefined);
    for (let i = 0; i < 30; i++) await onLeader((l) => l.node.propose(enc.encode(`a${i}`)));
    await waitFor(() => leader()!.storage.firstIndex() > 10);

    await onLeader((l) => l.node.proposeConfChange({ transition: 'auto', changes: [{ type: 'addLearner', nodeId: 4 }] }));
    await waitFor(() => founders.every((id) => members.get(id)!.sm.confState?.learners.includes(4) ?? false));
    const joiner = await startMember(4, false);
    expect(joiner.storage.isEmpty()).toBe(true);
    await waitFor(() => joiner.sm.items.length === 30);
    expect(joiner.storage.firstIndex()).toBeGreaterThan(10); // it got a snapshot, not the log from index 1
    expect(joiner.sm.confState?.learners).toEqual([4]);

    await onLeader((l) => l.node.proposeConfChange({ transition: 'auto', changes: [{ type: 'addNode', nodeId: 4 }] }));
    await waitFor(() => [...members.values()].every((m) => m.sm.confState?.voters.includes(4) ?? false));
    // One founder gone: the two left are no quorum of four; with the new member's vote they are.
    const others = founders.filter((id) => id !== leader()!.id);
    await stopMember(others[0]);
    for (let i = 0; i < 5; i++) await onLeader((l) => l.node.propose(enc.encode(`b${i}`)));
    await waitFor(() => joiner.sm.items.length === 35);
    expect(joiner.sm.items).toEqual(leader()!.sm.items);
  });

  test('a configuration change the state machine refuses changes nothing, on every member', async () => {
    for (const id of founders) await startMember(id, true);
    await waitFor(() => leader() !== undefined);
    await onLeader((l) => l.node.proposeConfChange({ transition: 'auto', changes: [{ type: 'addNode', nodeId: 99 }] }));
    await onLeader((l) => l.node.propose(enc.encode('after')));
    await waitFor(() => founders.every((id) => members.get(id)!.sm.items.includes('after')));
    for (const id of founders) {
      const m = members.get(id)!;
      expect(m.sm.refused).toHaveLength(1);
      expect(m.sm.confState?.voters.sort()).toEqual(founders);
      expect(m.node.rn.status().confState.voters.sort()).toEqual(founders);
    }
    // The next change goes through (nothing is left pending).
    await onLeader((l) => l.node.proposeConfChange({ transition: 'auto', changes: [{ type: 'addLearner', nodeId: 5 }] }));
    await waitFor(() => founders.every((id) => members.get(id)!.sm.confState?.learners.includes(5) ?? false));
  });
});
