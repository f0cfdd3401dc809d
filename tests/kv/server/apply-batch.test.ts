// One apply of several Raft entries holds the state machine's notifications, which the
// server points at its watch hub's holdEvents(): every revision the apply commits is
// notified while they are held, and a watcher gets them all in one response. The node
// holds them across applies the same way.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Lessor } from '../../../src/kv/lease';
import { KvStateMachine } from '../../../src/kv/server/applier';
import { encodeEnvelope, InternalRequest } from '../../../src/kv/server/requests';
import { StoreSource } from '../../../src/kv/server/store-source';
import { WatchHub, WatchResponse } from '../../../src/kv/watch';
import { EntryType, silentLogger } from '../../../src/raft';
import type { Applied } from '../../../src/raft';

const b = (s: string): Buffer => Buffer.from(s);

describe('batched apply', () => {
  let dir: string;
  let sm: KvStateMachine;
  let index = 0;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-apply-batch-'));
    sm = await KvStateMachine.open({ dir, memberId: 1, lessor: new Lessor({ minLeaseTtlSeconds: 1 }), logger: silentLogger, initialMembership: { clusterId: 1, members: [], removed: [] } });
  });
  afterAll(async () => {
    await sm.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const entry = (r: InternalRequest): Applied => ({ entry: { term: 1, index: ++index, type: EntryType.Normal, data: encodeEnvelope({ m: 2, n: index, r }) } });
  const put = (key: string, value: string, prevKv = false): Applied =>
    entry({ op: 'put', req: { key: b(key), value: b(value), lease: 0, prev_kv: prevKv, ignore_value: false, ignore_lease: false } });
  const del = (key: string): Applied => entry({ op: 'deleteRange', req: { key: b(key), range_end: Buffer.alloc(0), prev_kv: false } });

  test('every revision of one apply is notified inside one hold', () => {
    const scopes: number[][] = [];
    let inside: number[] | undefined;
    sm.holdNotifications = () => {
      inside = [];
      return () => {
        scopes.push(inside!);
        inside = undefined;
      };
    };
    const outside: number[] = [];
    const sub = sm.store.onRevision((re) => (inside ?? outside).push(re.revision));
    try {
      const before = sm.store.revision;
      sm.apply([put('a', '1'), put('b', '2', true), del('a')]);
      expect(scopes).toEqual([[before + 1, before + 2, before + 3]]);
      expect(outside).toEqual([]);
    } finally {
      sub.dispose();
      sm.holdNotifications = () => () => {};
    }
  });

  /**
   * Runs f with the state machine's notifications pointed at a watch hub's holdEvents() (as
   * the server does) and one stream watching [prefix, next prefix); undoes it after.
   */
  function withHub(prefix: string, f: (id: number, sent: WatchResponse[]) => void): void {
    const hub = new WatchHub({ source: new StoreSource(sm.store) });
    sm.holdNotifications = () => hub.holdEvents();
    try {
      const sent: WatchResponse[] = [];
      const stream = hub.newStream({ send: (r) => (sent.push(r), true), onDrain: () => ({ dispose: () => undefined }) });
      const end = String.fromCharCode(prefix.charCodeAt(0) + 1);
      const id = stream.create({ key: b(prefix), range_end: b(end) });
      sent.length = 0;
      f(id, sent);
      stream.close();
    } finally {
      sm.holdNotifications = () => () => {};
      hub.close();
    }
  }
  const shape = (r: WatchResponse) => [r.watch_id, r.revision, r.events.map((e) => `${e.type} ${e.kv.key}@${e.kv.modRevision}`)];

  test("with the hub's holdEvents: one response per watcher for the whole apply", () => {
    withHub('k', (id, sent) => {
      sm.apply([put('k1', 'x'), put('other', 'y'), put('k2', 'z'), del('k1')]);
      const rev = sm.store.revision;
      expect(sent.map(shape)).toEqual([[id, rev, [`PUT k1@${rev - 3}`, `PUT k2@${rev - 1}`, `DELETE k1@${rev}`]]]);
    });
  });

  // The node holds them while it applies entries ahead of a write (raft-node.ts).
  test("the hub's holdEvents spans applies: events wait for the release, then go out as one response", () => {
    withHub('h', (id, sent) => {
      const release = sm.holdNotifications();
      sm.apply([put('h1', 'x')]);
      sm.apply([put('h2', 'y')]);
      expect(sent).toEqual([]);
      const rev = sm.store.revision;
      release();
      expect(sent.map(shape)).toEqual([[id, rev, [`PUT h1@${rev - 1}`, `PUT h2@${rev}`]]]);
      release(); // a second call changes nothing
      sm.apply([put('h3', 'z')]);
      expect(sent.map(shape).slice(1)).toEqual([[id, rev + 1, [`PUT h3@${rev + 1}`]]]);
    });
  });
});
