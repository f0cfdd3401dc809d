// The node runtime on real disks (classic-level in temporary directories) with an
// in-process transport: election, replication, restart from disk, log compaction and
// snapshots to a member that fell behind, linearizable reads.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfState, EntryType, Message, NodeId, SnapshotMetadata } from '../../src/raft';
import { DiskStorage } from '../../src/raft/disk-storage';
import { Applied, RaftNode, StateMachine } from '../../src/raft/raft-node';
import { TcpTransport } from '../../src/raft/tcp-transport';
import { LocalHub, SnapshotSource, Transport } from '../../src/raft/transport';
import * as net from 'node:net';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A list of applied strings, persisted as JSON on every apply (good enough for tests). */
class ListMachine implements StateMachine {
  items: string[] = [];
  index = 0;
  term = 0;
  confState: ConfState | undefined;
  private staged: { items: string[]; meta: SnapshotMetadata } | undefined;

  constructor(private readonly file: string) {
    if (fs.existsSync(file)) Object.assign(this, JSON.parse(fs.readFileSync(file, 'utf8')));
  }

  private save(): void {
    fs.writeFileSync(this.file, JSON.stringify({ items: this.items, index: this.index, term: this.term, confState: this.confState }));
  }

  applied() {
    return { index: this.index, term: this.term, confState: this.confState };
  }

  /** StateMachine.holdNotifications, when a test sets it. */
  holdNotifications: (() => () => void) | undefined;

  /** StateMachine.awaitsApply, when a test sets it. */
  awaitsApply: (() => boolean) | undefined;

  /** Called first thing in every apply (tests look at the member's state then). */
  onApply: ((entries: Applied[]) => void) | undefined;

  apply(entries: Applied[]): void {
    this.onApply?.(entries);
    for (const a of entries) {
      if (a.entry.type === EntryType.Normal && a.entry.data.length > 0) this.items.push(dec.decode(a.entry.data));
      if (a.confChange?.confState) this.confState = a.confChange.confState;
      this.index = a.entry.index;
      this.term = a.entry.term;
    }
    this.save();
  }

  async sync(): Promise<void> {}

  async openSnapshot(): Promise<SnapshotSource> {
    const data = enc.encode(JSON.stringify(this.items));
    return {
      metadata: { index: this.index, term: this.term, confState: this.confState! },
      async *chunks() {
        for (let i = 0; i < data.length; i += 7) yield data.subarray(i, i + 7);
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
    expect(this.staged?.meta.index).toBe(meta.index);
    this.items = this.staged!.items;
    this.index = meta.index;
    this.term = meta.term;
    this.confState = meta.confState;
    this.save();
  }
}

interface Member {
  id: NodeId;
  node: RaftNode;
  sm: ListMachine;
  storage: DiskStorage;
}

// Background log writes make the node pipelined (RaftConfig.asyncStorageWrites).
describe.each([
  ['local', 'inline'],
  ['tcp', 'inline'],
  ['local', 'background'],
] as const)('RaftNode over %s transport, %s log writes', (kind, mode) => {
  let dir: string;
  let hub: LocalHub;
  const members = new Map<NodeId, Member>();
  const ids = [1, 2, 3];
  let peerUrls = new Map<NodeId, string>();
  /** The highest index of the entries each member has been sent in appends (local transport only). */
  const received = new Map<NodeId, number>();
  /** The highest index each member acknowledged (local transport only). */
  const acked = new Map<NodeId, number>();
  /** When set, sees every message a member sends, and delivers every message (local transport only). */
  let onSent: ((from: NodeId, m: Message) => void) | undefined;
  let deliver: ((step: () => void) => void) | undefined;

  function transport(id: NodeId): Transport {
    if (kind === 'local') {
      const t = hub.transport(id);
      const start = t.start.bind(t);
      const send = t.send.bind(t);
      t.send = (msgs) => {
        for (const m of msgs) {
          if (m.type === 'MsgAppResp' && !m.reject) acked.set(id, Math.max(acked.get(id) ?? 0, m.index));
          onSent?.(id, m);
        }
        send(msgs);
      };
      t.start = (handlers) =>
        start({
          ...handlers,
          step: (m) => {
            const n = m.entries.length;
            if (m.type === 'MsgApp' && n > 0) received.set(id, Math.max(received.get(id) ?? 0, m.entries[n - 1].index));
            if (deliver) deliver(() => handlers.step(m));
            else handlers.step(m);
          },
        });
      return t;
    }
    const t = new TcpTransport({ id, clusterId: 7, listen: { host: '127.0.0.1', port: Number(new URL(peerUrls.get(id)!).port) }, peers: peerUrls });
    // Cutting links is done on the local hub only; over TCP the tests that need it stop a member.
    return t;
  }

  async function startMember(id: NodeId, snapshotEntriesCount = 1000, tickMs = 10): Promise<Member> {
    const d = path.join(dir, `m${id}`);
    fs.mkdirSync(d, { recursive: true });
    const storage = await DiskStorage.open(path.join(d, 'raft'), { mode });
    if (storage.isEmpty()) {
      // Bootstrap: the initial configuration as committed entries of term 1.
      await storage.bootstrap({ voters: ids, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false });
    }
    const sm = new ListMachine(path.join(d, 'sm.json'));
    const node = new RaftNode({ id, storage, stateMachine: sm, transport: transport(id), tickMs, electionTimeoutTicks: 10, heartbeatIntervalTicks: 1, snapshotEntriesCount, compactionKeepEntries: 2, seed: id });
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

  async function proposeOnLeader(data: string): Promise<void> {
    for (;;) {
      const l = leader();
      if (l) {
        try {
          l.node.propose(enc.encode(data));
          return;
        } catch {
          // leadership moved: retry
        }
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-raftnode-'));
    hub = new LocalHub();
    received.clear();
    acked.clear();
    onSent = undefined;
    deliver = undefined;
    peerUrls = new Map();
    for (const id of ids) peerUrls.set(id, `http://127.0.0.1:${await freePort()}`);
  });

  afterEach(async () => {
    for (const id of [...members.keys()]) await stopMember(id);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('elects a leader, replicates, and every member applies the same sequence', async () => {
    for (const id of ids) await startMember(id);
    await waitFor(() => leader() !== undefined);
    for (let i = 0; i < 50; i++) await proposeOnLeader(`v${i}`);
    await waitFor(() => [...members.values()].every((m) => m.sm.items.length === 50));
    const expected = Array.from({ length: 50 }, (_, i) => `v${i}`);
    for (const m of members.values()) expect(m.sm.items).toEqual(expected);
  });

  test('followers hear of a commit within milliseconds when no heartbeat or later append carries it (lazyCommit)', async () => {
    // Ticks of 1 s: a heartbeat comes too seldom to be what tells the followers.
    for (const id of ids) await startMember(id, 1000, 1000);
    const first = members.get(1)!.node;
    // A member campaigns only once the configuration it started with is applied.
    await waitFor(() => first.applied > 0 && first.applied >= first.rn.raft.raftLog.committed);
    first.rn.campaign();
    first.tick();
    await waitFor(() => leader() !== undefined);
    const l = leader()!;
    for (let i = 0; i < 5; i++) {
      await proposeOnLeader(`c${i}`);
      await waitFor(() => l.sm.items.length === i + 1);
      const t0 = Date.now();
      await waitFor(() => [...members.values()].every((m) => m.sm.items.length === i + 1), 900);
      expect(Date.now() - t0).toBeLessThan(300);
    }
  });

  test('a member restarts from its disk with nothing lost', async () => {
    for (const id of ids) await startMember(id);
    await waitFor(() => leader() !== undefined);
    for (let i = 0; i < 10; i++) await proposeOnLeader(`a${i}`);
    await waitFor(() => [...members.values()].every((m) => m.sm.items.length === 10));
    for (const id of ids) await stopMember(id);
    for (const id of ids) await startMember(id);
    await waitFor(() => leader() !== undefined);
    await proposeOnLeader('after');
    await waitFor(() => [...members.values()].every((m) => m.sm.items.length === 11));
    for (const m of members.values()) expect(m.sm.items.slice(-2)).toEqual(['a9', 'after']);
  });

  test('a member that fell behind a compacted log catches up from a snapshot', async () => {
    for (const id of ids) await startMember(id, 5);
    await waitFor(() => leader() !== undefined);
    const lagging = ids.find((id) => id !== leader()!.id)!;
    await stopMember(lagging);
    for (let i = 0; i < 40; i++) await proposeOnLeader(`s${i}`);
    const l = leader()!;
    await waitFor(() => l.sm.items.length === 40);
    await waitFor(() => l.storage.firstIndex() > 10);
    const m = await startMember(lagging, 5);
    await waitFor(() => m.sm.items.length === 40);
    expect(m.sm.items).toEqual(l.sm.items);
    expect(m.storage.firstIndex()).toBeGreaterThan(10);
  });

  test('readIndex resolves at an index covering every write acknowledged before it', async () => {
    for (const id of ids) await startMember(id);
    await waitFor(() => leader() !== undefined);
    await proposeOnLeader('x');
    const l = leader()!;
    await waitFor(() => l.sm.items.length === 1);
    const follower = [...members.values()].find((m) => m !== l)!;
    const index = await follower.node.readIndex();
    expect(index).toBeGreaterThanOrEqual(l.sm.index);
    expect(follower.node.applied).toBeGreaterThanOrEqual(index);
    expect(follower.sm.items).toEqual(['x']);
  });

  // With 100 ms ticks the election timeout is 1-2 s after the last heartbeat; followers whose
  // connection to the dead leader broke do not wait for it (the first in id order runs at
  // once, the next two ticks later).
  if (kind === 'tcp') test('a leader whose process is gone is replaced well within the election timeout', async () => {
    for (const id of ids) await startMember(id, 1000, 100);
    await waitFor(() => leader() !== undefined && [...members.values()].every((m) => m.node.leader === leader()!.id), 10_000);
    await proposeOnLeader('before');
    const old = leader()!;
    await waitFor(() => [...members.values()].every((m) => m.sm.items.length === 1));
    const t0 = Date.now();
    await stopMember(old.id);
    await waitFor(() => leader() !== undefined, 5000);
    expect(Date.now() - t0).toBeLessThan(700);
    await proposeOnLeader('after');
    await waitFor(() => [...members.values()].every((m) => m.sm.items.length === 2));
  });

  // The log is written on the node's thread (the default). A Ready's committed entries that
  // an earlier write put on disk are applied before the Ready's own write, so their
  // responses do not wait for the fsync of newer entries; nothing is applied before it is
  // on the member's disk. (Written in the background, the write goes on while the node
  // applies, and the core hands out only entries already written.)
  if (kind === 'local' && mode === 'inline') test('a member applies the committed entries on its disk before it writes newer ones, holding their notifications, and none that are not on it', async () => {
    for (const id of ids) await startMember(id);
    await waitFor(() => leader() !== undefined);
    let onDisk = 0;
    let beforeNewer = 0;
    let notOnDisk = 0;
    let unheld = 0;
    let releasedBeforeWrite = 0;
    let releases = 0;
    // What happened around each beforeBlockingWrite: an apply right before it, a write right after.
    const around: string[] = [];
    for (const m of members.values()) {
      let last = '';
      const save = m.storage.save.bind(m.storage);
      m.storage.save = (req) => {
        if (last === 'fire') around.push('fire>save');
        last = 'save';
        return save(req);
      };
      m.node.beforeBlockingWrite.on(() => {
        around.push(last === 'apply' ? 'apply>fire' : `${last}>fire`);
        last = 'fire';
      });
      const onApply = (): void => {
        last = 'apply';
      };
      let held = false;
      m.sm.holdNotifications = () => {
        held = true;
        const waiting = received.get(m.id) ?? 0;
        return () => {
          held = false;
          releases++;
          if (m.storage.lastIndex() < waiting) releasedBeforeWrite++;
        };
      };
      m.sm.onApply = (entries) => {
        onApply();
        const last = entries[entries.length - 1].entry.index;
        if (last > m.storage.lastIndex()) notOnDisk++;
        else onDisk++;
        // The member holds newer entries than its disk: they are in the Ready being handled.
        if ((received.get(m.id) ?? 0) > m.storage.lastIndex()) {
          beforeNewer++;
          if (!held) unheld++;
        }
      };
    }
    // One proposal per turn: appends carry new entries and the commit of earlier ones.
    for (let i = 0; i < 40; i++) {
      await proposeOnLeader(`r${i}`);
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => [...members.values()].every((m) => m.sm.items.length === 40));
    // A follower cut off while others commit gets entries and their commit together: those
    // it applies after writing them.
    const lagging = [...members.values()].find((m) => m !== leader())!;
    hub.isolate(lagging.id, ids);
    for (let i = 40; i < 50; i++) await proposeOnLeader(`r${i}`);
    await waitFor(() => [...members.values()].filter((m) => m.sm.items.length === 50).length === 2);
    hub.heal();
    await waitFor(() => lagging.sm.items.length === 50);
    expect(notOnDisk).toBe(0);
    expect(onDisk).toBeGreaterThan(0);
    expect(beforeNewer).toBeGreaterThan(0);
    // Applied ahead of a write, notifications wait for the write.
    expect(unheld).toBe(0);
    expect(releases).toBeGreaterThan(0);
    expect(releasedBeforeWrite).toBe(0);
    // Output of an apply ahead of a write is sent before the write: the node says when.
    expect(around.length).toBeGreaterThan(0);
    expect(new Set(around)).toEqual(new Set(['apply>fire', 'fire>save']));
    expect(around.filter((x) => x === 'apply>fire').length).toBe(around.filter((x) => x === 'fire>save').length);
  });

  // When no caller on a member waits for an apply (StateMachine.awaitsApply), the committed
  // entries that come with newer ones are applied after the newer ones are written and
  // acknowledged: the leader waits for the acknowledgement, nobody for the apply.
  if (kind === 'local' && mode === 'inline') test('a member no caller waits on acknowledges newer entries before it applies the committed ones that came with them', async () => {
    for (const id of ids) await startMember(id);
    await waitFor(() => leader() !== undefined);
    const l = leader()!;
    let withNewer = 0;
    let beforeAck = 0;
    for (const m of members.values()) {
      if (m === l) continue;
      m.sm.awaitsApply = () => false;
      m.sm.onApply = (entries) => {
        const last = entries[entries.length - 1].entry.index;
        const got = received.get(m.id) ?? 0;
        if (got > last) withNewer++;
        if ((acked.get(m.id) ?? 0) < got) beforeAck++;
      };
    }
    // One proposal per turn: appends carry new entries and the commit of earlier ones.
    for (let i = 0; i < 30; i++) {
      await proposeOnLeader(`w${i}`);
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => [...members.values()].every((m) => m.sm.items.length === 30));
    expect(withNewer).toBeGreaterThan(0);
    expect(beforeAck).toBe(0);
  });

  // A message from a peer is taken in the turn it arrives (a microtask after it is stepped),
  // not in a later one: a follower's acknowledgement and the apply of what a leader's
  // acknowledgement commits are what others wait for. (The local hub delivers each message
  // in a turn of its own; `late` is set by a callback queued right before the delivery.)
  if (kind === 'local' && mode === 'inline') test("a member takes a peer's message in the turn it arrives: a follower acknowledges, a leader applies what the acknowledgement commits", async () => {
    for (const id of ids) await startMember(id);
    await waitFor(() => leader() !== undefined);
    await proposeOnLeader('first');
    await waitFor(() => [...members.values()].every((m) => m.sm.items.length === 1));
    const l = leader()!;
    let late = false;
    deliver = (step) => {
      late = false;
      setImmediate(() => {
        late = true;
      });
      step();
    };
    const acks: boolean[] = [];
    onSent = (from, m) => {
      if (from !== l.id && m.type === 'MsgAppResp' && m.entries.length === 0 && !m.reject) acks.push(late);
    };
    const applies: boolean[] = [];
    l.sm.onApply = () => applies.push(late);
    for (let i = 0; i < 10; i++) {
      await proposeOnLeader(`t${i}`);
      await waitFor(() => l.sm.items.length === i + 2);
    }
    deliver = undefined;
    onSent = undefined;
    expect(acks.length).toBeGreaterThanOrEqual(10);
    expect(acks.filter((x) => x)).toEqual([]);
    expect(applies.length).toBe(10);
    expect(applies.filter((x) => x)).toEqual([]);
  });

  // Cutting links needs the local hub; over gRPC this is covered by the store's chaos tests.
  if (kind === 'local') test('reads on a member cut off from the others do not resolve', async () => {
    for (const id of ids) await startMember(id);
    await waitFor(() => leader() !== undefined);
    const l = leader()!;
    hub.isolate(l.id, ids);
    let resolved = false;
    void l.node.readIndex().then(
      () => (resolved = true),
      () => undefined,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(resolved).toBe(false);
    hub.heal();
  });
});
