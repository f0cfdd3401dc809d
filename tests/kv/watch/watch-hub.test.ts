// The watch hub against etcd 3.4's observable behaviour (v3rpc/watch.go, mvcc/watchable_store.go,
// mvcc/watcher.go, mvcc/watcher_group.go), with a fake store, sinks and a manual scheduler.

import { WatchHub, WatchHubOptions, WatchLimits, watchCancelReasons } from '../../../src/kv/watch';
import type { WatchCreateRequest, WatchResponse } from '../../../src/kv/watch';
import { b, FakeSink, FakeStore, fmt, ManualScheduler } from './fakes';
import { withEventsHeld } from '../../helpers/hold-events';

function setup(options: Partial<WatchHubOptions> & { limits?: Partial<WatchLimits>; strict?: boolean } = {}) {
  const store = new FakeStore({ strict: options.strict });
  const sched = new ManualScheduler();
  const hub = new WatchHub({ source: store, scheduler: sched, random: () => 0, ...options });
  const open = () => {
    const sink = new FakeSink();
    const stream = hub.newStream(sink);
    return { sink, stream };
  };
  return { store, sched, hub, open };
}

const create = (r: WatchCreateRequest) => ({ request_union: 'create_request' as const, create_request: r });

describe('create and live events', () => {
  test('a key watch gets a created response, then each revision of its key', () => {
    const { store, open } = setup();
    store.put('other');
    const { sink, stream } = open();
    expect(stream.create({ key: b('foo') })).toBe(0);
    expect(sink.responses).toEqual([
      { watch_id: 0, created: true, canceled: false, compact_revision: 0, cancel_reason: '', fragment: false, events: [], revision: 2 },
    ]);
    store.put('foo', 'x');
    store.put('fooo', 'y');
    store.del('foo');
    expect(sink.eventsOf(0)).toEqual(['PUT foo=x@3', 'DELETE foo@5']);
    const [, r1, r2] = sink.of(0);
    expect(r1.revision).toBe(3);
    expect(r2.revision).toBe(5);
    expect(r2.events[0].kv.modRevision).toBe(5);
  });

  test('range, prefix, from-key and all-keys watches', () => {
    const { store, open } = setup();
    const { sink, stream } = open();
    const range = stream.create({ key: b('b'), range_end: b('d') });
    const prefix = stream.create({ key: b('foo'), range_end: b('fop') });
    const fromKey = stream.create({ key: b('c'), range_end: Buffer.from([0]) });
    const all = stream.create({ key: Buffer.alloc(0), range_end: Buffer.from([0]) });
    for (const k of ['a', 'b', 'bz', 'c', 'd', 'foo', 'foo/1', 'fop', 'zz']) store.put(k, '1');
    const keys = (id: number) => sink.of(id).flatMap((r) => r.events.map((e) => e.kv.key.toString()));
    expect(keys(range)).toEqual(['b', 'bz', 'c']);
    expect(keys(prefix)).toEqual(['foo', 'foo/1']);
    expect(keys(fromKey)).toEqual(['c', 'd', 'foo', 'foo/1', 'fop', 'zz']);
    expect(keys(all)).toEqual(['a', 'b', 'bz', 'c', 'd', 'foo', 'foo/1', 'fop', 'zz']);
  });

  test('an empty key watches the key 0x00; an empty range is refused as etcd does', () => {
    const { store, open } = setup();
    const { sink, stream } = open();
    const zero = stream.create({});
    store.put('\x00', 'z');
    store.put('a', 'a');
    expect(sink.eventsOf(zero)).toEqual(['PUT \x00=z@2']);
    expect(stream.create({ key: b('b'), range_end: b('a') })).toBe(-1);
    expect(stream.create({ key: b('b'), range_end: b('b') })).toBe(-1);
    const refused = sink.of(-1);
    expect(refused).toHaveLength(2);
    expect(refused[0]).toMatchObject({ created: true, canceled: true, cancel_reason: 'mvcc: watcher range is empty', revision: 3 });
  });

  test('the events of one revision come in one response, in the order of the write', () => {
    const { store, open } = setup();
    const { sink, stream } = open();
    const id = stream.create({ key: b('k'), range_end: b('l') });
    store.txn([{ put: 'k1' }, { put: 'k2' }, { put: 'x' }, { del: 'k1' }]);
    const rs = sink.of(id).filter((r) => r.events.length > 0);
    expect(rs).toHaveLength(1);
    expect(rs[0].events.map((e) => `${e.type} ${e.kv.key}`)).toEqual(['PUT k1', 'PUT k2', 'DELETE k1']);
  });

  test('filters drop events; a revision whose events are all filtered sends nothing', () => {
    const { store, open } = setup();
    const { sink, stream } = open();
    const noPut = stream.create({ key: b('a'), filters: ['NOPUT'] });
    const noDelete = stream.create({ key: b('a'), filters: ['NODELETE'] });
    const both = stream.create({ key: b('a'), filters: ['NOPUT', 'NODELETE'] });
    store.put('a', '1');
    store.del('a');
    expect(sink.eventsOf(noPut)).toEqual(['DELETE a@3']);
    expect(sink.eventsOf(noDelete)).toEqual(['PUT a=1@2']);
    expect(sink.of(both)).toHaveLength(1); // created only
  });

  test('prev_kv only when asked for', () => {
    const { store, open } = setup();
    const { sink, stream } = open();
    const withPrev = stream.create({ key: b('a'), prev_kv: true });
    const without = stream.create({ key: b('a') });
    store.put('a', '1');
    store.put('a', '2');
    store.del('a');
    const prevs = (id: number) => sink.of(id).flatMap((r) => r.events.map((e) => (e.prevKv ? e.prevKv.value.toString() : null)));
    expect(prevs(withPrev)).toEqual([null, '1', '2']);
    expect(prevs(without)).toEqual([null, null, null]);
  });

  test('a start revision in the future: nothing before it', () => {
    const { store, open } = setup();
    const { sink, stream } = open();
    const id = stream.create({ key: b('a'), start_revision: 4 });
    store.put('a', '1'); // 2
    store.put('a', '2'); // 3
    store.put('a', '3'); // 4
    store.put('a', '4'); // 5
    expect(sink.eventsOf(id)).toEqual(['PUT a=3@4', 'PUT a=4@5']);
  });
});

describe('watch ids', () => {
  test('auto ids count up from 0 and skip ids in use; explicit ids are kept', () => {
    const { open } = setup();
    const { stream } = open();
    expect(stream.create({ key: b('a') })).toBe(0);
    expect(stream.create({ key: b('a'), watch_id: 2 })).toBe(2);
    expect(stream.create({ key: b('a') })).toBe(1);
    expect(stream.create({ key: b('a') })).toBe(3);
    expect(stream.cancel(0)).toBe(true);
    expect(stream.create({ key: b('a') })).toBe(4); // etcd's nextID never goes back
    expect(stream.create({ key: b('a'), watch_id: 0 })).toBe(5);
  });

  test('a duplicate explicit id: created+canceled with watch_id -1 and etcd 3.4 reason', () => {
    const { open } = setup();
    const { sink, stream } = open();
    stream.create({ key: b('a'), watch_id: 7 });
    expect(stream.create({ key: b('b'), watch_id: 7 })).toBe(-1);
    expect(sink.responses[1]).toEqual({
      watch_id: -1,
      created: true,
      canceled: true,
      compact_revision: 0,
      cancel_reason: 'mvcc: duplicate watch ID provided on the WatchStream',
      fragment: false,
      events: [],
      revision: 1,
    });
    expect(watchCancelReasons.duplicateId).toBe(sink.responses[1].cancel_reason);
  });

  test('ids are per stream', () => {
    const { open } = setup();
    expect(open().stream.create({ key: b('a') })).toBe(0);
    expect(open().stream.create({ key: b('a') })).toBe(0);
  });

  test('cancel: a canceled response, then nothing more; unknown ids are ignored; the id is free again', () => {
    const { store, open, hub } = setup();
    const { sink, stream } = open();
    const id = stream.create({ key: b('a'), watch_id: 3 });
    store.put('a');
    expect(stream.request({ request_union: 'cancel_request', cancel_request: { watch_id: id } })).toBe(true);
    expect(sink.responses.at(-1)).toMatchObject({ watch_id: id, canceled: true, created: false, revision: 2 });
    const count = sink.responses.length;
    store.put('a');
    expect(stream.cancel(id)).toBe(false);
    expect(stream.cancel(99)).toBe(false);
    expect(sink.responses).toHaveLength(count);
    expect(hub.metrics().watchers).toBe(0);
    expect(stream.create({ key: b('a'), watch_id: id })).toBe(id);
  });

  test('a negative start revision is refused (etcd 3.5+ behaviour)', () => {
    const { open } = setup();
    const { sink, stream } = open();
    expect(stream.create({ key: b('a'), start_revision: -3 })).toBe(-1);
    expect(sink.responses[0]).toMatchObject({
      watch_id: -1,
      created: true,
      canceled: true,
      cancel_reason: 'etcdserver: mvcc: required revision has been compacted',
    });
  });

  test('empty requests and null members are ignored', () => {
    const { open } = setup();
    const { sink, stream } = open();
    expect(stream.request({})).toBe(true);
    expect(stream.request({ request_union: 'create_request', create_request: null })).toBe(true);
    expect(sink.responses).toHaveLength(0);
  });
});

describe('catch-up from history', () => {
  test('from a past revision: history, then live, no gap and no duplicate', () => {
    const { store, sched, open } = setup();
    for (let i = 0; i < 5; i++) store.put('a', `${i}`); // revisions 2..6
    const { sink, stream } = open();
    const id = stream.create({ key: b('a'), start_revision: 3 });
    store.put('a', 'live-before-sync'); // 7: the watcher is unsynced; it comes from history
    expect(sink.eventsOf(id)).toEqual([]);
    sched.runSoon();
    store.put('a', 'live'); // 8
    expect(sink.eventsOf(id)).toEqual(['PUT a=1@3', 'PUT a=2@4', 'PUT a=3@5', 'PUT a=4@6', 'PUT a=live-before-sync@7', 'PUT a=live@8']);
    const [created, caughtUp, live] = sink.of(id);
    expect(created.created).toBe(true);
    expect(caughtUp.revision).toBe(7); // etcd: catch-up responses carry the current revision
    expect(live.revision).toBe(8);
  });

  test('the start revision equal to the current one replays it', () => {
    const { store, sched, open } = setup();
    store.put('a', '1');
    const { sink, stream } = open();
    const id = stream.create({ key: b('a'), start_revision: 2 });
    sched.runSoon();
    expect(sink.eventsOf(id)).toEqual(['PUT a=1@2']);
  });

  test('bounded chunks, one per turn, with writes in between, exactly once', () => {
    const { store, sched, open, hub } = setup({ limits: { syncEventsPerRunMax: 3, watchBacklogEventsMax: 3 } });
    for (let i = 0; i < 10; i++) store.put(i % 2 === 0 ? 'a' : 'b', `${i}`); // 2..11
    const { sink, stream } = open();
    const id = stream.create({ key: b('a'), range_end: b('c'), start_revision: 2 });
    let turns = 0;
    while (sched.pendingSoon > 0) {
      store.put('a', `w${turns}`);
      sched.step();
      turns++;
      if (turns === 1) expect(sink.eventsOf(id)).toHaveLength(3);
    }
    expect(turns).toBeGreaterThan(3);
    expect(hub.metrics().slowWatchers).toBe(0);
    store.put('b', 'end');
    const expected = store.log.flatMap((re) => re.events.map((e) => `${e.type} ${e.kv.key}=${e.kv.value}@${re.revision}`));
    expect(sink.eventsOf(id)).toEqual(expected);
    expect(store.historyReads).toBe(turns);
  });

  test('a start revision older than the compacted one: created, then canceled with compact_revision', () => {
    const { store, sched, open, hub } = setup();
    for (let i = 0; i < 5; i++) store.put('a', `${i}`); // 2..6
    store.compact(4);
    const { sink, stream } = open();
    const id = stream.create({ key: b('a'), start_revision: 3 });
    sched.runSoon();
    expect(sink.of(id)).toEqual([
      { watch_id: 0, created: true, canceled: false, compact_revision: 0, cancel_reason: '', fragment: false, events: [], revision: 6 },
      // etcd's response carries only the compact revision (its header revision is 0).
      { watch_id: 0, created: false, canceled: true, compact_revision: 4, cancel_reason: '', fragment: false, events: [], revision: 0 },
    ]);
    expect(hub.metrics()).toMatchObject({ watchers: 0, compactCancelsTotal: 1 });
    // etcd keeps the id taken until the client cancels it, and answers that cancel.
    expect(stream.create({ key: b('a') })).toBe(1);
    expect(stream.cancel(id)).toBe(true);
    expect(sink.responses.at(-1)).toMatchObject({ watch_id: id, canceled: true, compact_revision: 0 });
  });

  test('the compacted revision itself can still be watched (etcd: minRev < compactRev cancels)', () => {
    const { store, sched, open } = setup();
    for (let i = 0; i < 5; i++) store.put('a', `${i}`);
    store.compact(4);
    const { sink, stream } = open();
    const id = stream.create({ key: b('a'), start_revision: 4 });
    sched.runSoon();
    expect(sink.eventsOf(id)).toEqual(['PUT a=2@4', 'PUT a=3@5', 'PUT a=4@6']);
  });

  test('a source stricter than etcd (ERR_COMPACTED at the compacted revision) cancels instead of failing', () => {
    const { store, sched, open } = setup({ strict: true });
    for (let i = 0; i < 5; i++) store.put('a', `${i}`);
    store.compact(4);
    const { sink, stream } = open();
    const id = stream.create({ key: b('a'), start_revision: 4 });
    const other = stream.create({ key: b('a'), start_revision: 5 });
    sched.runSoon();
    expect(sink.of(id).at(-1)).toMatchObject({ canceled: true, compact_revision: 4 });
    expect(sink.eventsOf(other)).toEqual(['PUT a=3@5', 'PUT a=4@6']);
  });

  test('a revision gap (store replaced under the hub) and restored(): watchers catch up from history', () => {
    const { store, sched, open, hub } = setup();
    const { sink, stream } = open();
    const id = stream.create({ key: b('a') });
    store.put('a', '1'); // 2
    store.jumpTo([{ put: 'a', value: 'snap' }]); // 3, not notified
    store.put('a', '2'); // 4: a gap; the hub resyncs by itself
    sched.runSoon();
    expect(sink.eventsOf(id)).toEqual(['PUT a=1@2', 'PUT a=snap@3', 'PUT a=2@4']);
    store.jumpTo([{ put: 'a', value: 'snap2' }]); // 5, not notified
    hub.restored();
    sched.runSoon();
    store.put('a', '3'); // 6
    expect(sink.eventsOf(id)).toEqual(['PUT a=1@2', 'PUT a=snap@3', 'PUT a=2@4', 'PUT a=snap2@5', 'PUT a=3@6']);
  });
});

describe('slow sinks', () => {
  function slowSetup() {
    return setup({ limits: { watchBacklogEventsMax: 4, syncEventsPerRunMax: 2 } });
  }

  test('writes go on; the backlog stays bounded; after drain every event arrives once, in order', () => {
    const { store, sched, open, hub } = slowSetup();
    const { sink, stream } = open();
    const id = stream.create({ key: b('a'), range_end: b('b') });
    sink.slow = true;
    for (let i = 0; i < 30; i++) {
      store.put('a', `${i}`);
      sched.runSoon();
      expect(hub.metrics().pendingEvents).toBeLessThanOrEqual(4);
    }
    expect(hub.metrics().slowWatchers).toBe(1);
    expect(sink.eventsOf(id).length).toBeLessThan(30);
    sink.drain();
    sched.runSoon();
    store.put('a', 'after');
    const expected = [...Array(30).keys()].map((i) => `PUT a=${i}@${i + 2}`).concat(['PUT a=after@32']);
    expect(sink.eventsOf(id)).toEqual(expected);
    expect(hub.metrics()).toMatchObject({ slowWatchers: 0, pendingEvents: 0, watchers: 1 });
  });

  test('a sink that stays slow across several drains still gets everything once', () => {
    const { store, sched, open } = slowSetup();
    const { sink, stream } = open();
    const id = stream.create({ key: b('a') });
    for (let i = 0; i < 40; i++) {
      sink.slow = true; // every send asks to slow down
      store.put('a', `${i}`);
      if (i % 7 === 0) {
        sink.drain();
        sink.slow = true;
      }
      sched.step();
    }
    for (let i = 0; i < 100 && (sched.pendingSoon > 0 || sink.eventsOf(id).length < 40); i++) {
      sink.drain();
      sink.slow = true;
      sched.runSoon();
    }
    sink.drain();
    sched.runSoon();
    expect(sink.eventsOf(id)).toEqual([...Array(40).keys()].map((i) => `PUT a=${i}@${i + 2}`));
  });

  test('several watchers of one slow stream catch up within the backlog bound, each once and in order', () => {
    const { store, sched, open, hub } = setup({ limits: { watchBacklogEventsMax: 2, syncEventsPerRunMax: 2 } });
    for (let i = 0; i < 12; i++) store.put(`k${i % 3}`, `${i}`); // 2..13
    const { sink, stream } = open();
    const ids = [0, 1, 2].map((i) => stream.create({ key: b(`k${i}`), start_revision: 2 }));
    const all = stream.create({ key: b('k'), range_end: b('l'), start_revision: 5 });
    for (let turn = 0; turn < 200 && (sched.pendingSoon > 0 || hub.metrics().slowWatchers > 0); turn++) {
      sink.slow = true; // every send asks to slow down
      sched.runSoon();
      expect(hub.metrics().pendingEvents).toBeLessThanOrEqual(3); // 2, or one chunk (2 + 1) into an empty backlog
      store.put('k1', `live${turn}`);
      sink.drain();
    }
    const want = (pred: (k: string, rev: number) => boolean) =>
      store.log.flatMap((re) => re.events.filter((e) => pred(e.kv.key.toString(), re.revision)).map((e) => `PUT ${e.kv.key}=${e.kv.value}@${re.revision}`));
    ids.forEach((id, i) => expect(sink.eventsOf(id)).toEqual(want((k) => k === `k${i}`)));
    expect(sink.eventsOf(all)).toEqual(want((_k, rev) => rev >= 5));
  });

  test('a catch-up run stops at the backlog bound and the rest waits for the drain', () => {
    const { store, sched, open, hub } = setup({ limits: { watchBacklogEventsMax: 2, syncEventsPerRunMax: 2 } });
    store.put('a', '1');
    store.put('a', '2');
    const { sink, stream } = open();
    const ids = [0, 1, 2].map(() => stream.create({ key: b('a'), start_revision: 2 }));
    sink.slow = true;
    sched.runSoon();
    // The first response went out (the sink then asked to slow down), the second waits in
    // the backlog, the third did not fit and stays unsynced.
    expect(sink.eventsOf(ids[0])).toEqual(['PUT a=1@2', 'PUT a=2@3']);
    expect(sink.eventsOf(ids[1])).toEqual([]);
    expect(hub.metrics()).toMatchObject({ pendingEvents: 2, slowWatchers: 1 });
    sink.drain();
    sched.runSoon();
    for (const id of ids) expect(sink.eventsOf(id)).toEqual(['PUT a=1@2', 'PUT a=2@3']);
    expect(hub.metrics()).toMatchObject({ pendingEvents: 0, slowWatchers: 0 });
  });

  test('a slow stream does not hold up another stream', () => {
    const { store, open } = slowSetup();
    const slow = open();
    const fast = open();
    slow.stream.create({ key: b('a') });
    const id = fast.stream.create({ key: b('a') });
    slow.sink.slow = true;
    for (let i = 0; i < 20; i++) store.put('a', `${i}`);
    expect(fast.sink.eventsOf(id)).toHaveLength(20);
  });

  test('history compacted while the sink was slow: what was sent is a prefix, then compact_revision', () => {
    const { store, sched, open, hub } = slowSetup();
    const { sink, stream } = open();
    const id = stream.create({ key: b('a') });
    sink.slow = true;
    for (let i = 0; i < 20; i++) store.put('a', `${i}`); // 2..21
    store.compact(15);
    sink.drain();
    sched.runSoon();
    const events = sink.eventsOf(id);
    expect(events).toEqual([...Array(events.length).keys()].map((i) => `PUT a=${i}@${i + 2}`));
    expect(events.length).toBeLessThan(14);
    expect(sink.of(id).at(-1)).toMatchObject({ canceled: true, compact_revision: 15 });
    store.put('a', 'x');
    expect(sink.of(id).at(-1)).toMatchObject({ canceled: true, compact_revision: 15 });
    expect(hub.metrics().watchers).toBe(0);
  });

  test('control responses wait behind a slow sink; past the limit the stream asks to stop reading', () => {
    const { open } = setup({ limits: { watchControlBacklogMax: 3 } });
    const { sink, stream } = open();
    sink.slow = true;
    expect(stream.request(create({ key: b('a') }))).toBe(true); // sent; the sink asks to slow down
    expect(stream.request(create({ key: b('a') }))).toBe(true);
    expect(stream.request(create({ key: b('a') }))).toBe(true);
    expect(stream.request(create({ key: b('a') }))).toBe(false);
    expect(stream.acceptsRequests).toBe(false);
    sink.drain();
    expect(stream.acceptsRequests).toBe(true);
    expect(sink.responses.map((r) => r.watch_id)).toEqual([0, 1, 2, 3]);
  });

  test('a sink that closes its stream while taking a response: the other watchers are left alone', () => {
    const { store, sched, open, hub } = setup();
    for (let i = 0; i < 4; i++) store.put('a', `${i}`);
    store.compact(4);
    const { sink, stream } = open();
    stream.create({ key: b('a'), start_revision: 2 });
    stream.create({ key: b('a'), start_revision: 3 });
    stream.create({ key: b('a'), start_revision: 4 });
    const send = sink.send.bind(sink);
    sink.send = (r) => {
      const more = send(r);
      if (r.compact_revision > 0) stream.close(); // the client went away on the first cancel
      return more;
    };
    sched.runSoon();
    expect(sink.responses.filter((r) => r.compact_revision > 0)).toHaveLength(1);
    expect(hub.metrics()).toMatchObject({ streams: 0, watchers: 0, slowWatchers: 0 });
    store.put('a', 'x');
  });

  test('a sink that throws closes its stream only', () => {
    const errors: unknown[] = [];
    const { store, open, hub } = setup({ onSinkError: (_id, e) => errors.push(e) });
    const bad = open();
    const good = open();
    bad.stream.create({ key: b('a') });
    const id = good.stream.create({ key: b('a') });
    bad.sink.throwOnSend = new Error('broken pipe');
    store.put('a', '1');
    store.put('a', '2');
    expect(errors).toHaveLength(1);
    expect(bad.stream.closed).toBe(true);
    expect(good.sink.eventsOf(id)).toEqual(['PUT a=1@2', 'PUT a=2@3']);
    expect(hub.metrics()).toMatchObject({ streams: 1, watchers: 1 });
  });
});

describe('batches (revisions committed by one apply)', () => {
  test('each watcher gets one response with its events of every revision, in order, the last revision in the header', () => {
    const { store, hub, open } = setup();
    const { sink, stream } = open();
    const a = stream.create({ key: b('a') });
    const all = stream.create({ key: b('a'), range_end: b('z') });
    const c = stream.create({ key: b('c') });
    sink.clear();
    withEventsHeld(hub, () => {
      store.put('a', '1'); // 2
      store.put('b', '2'); // 3
      store.txn([{ put: 'a', value: '3' }, { put: 'b', value: '4' }]); // 4
      expect(sink.responses).toEqual([]); // held until the batch ends
    });
    expect(sink.responses.map((r) => [r.watch_id, r.revision, r.events.map(fmt)])).toEqual([
      [a, 4, ['PUT a=1@2', 'PUT a=3@4']],
      [all, 4, ['PUT a=1@2', 'PUT b=2@3', 'PUT a=3@4', 'PUT b=4@4']],
    ]);
    expect(sink.of(c)).toEqual([]);
    store.put('c', '5'); // outside a batch: one response per revision, as before
    expect(sink.of(c).map((r) => r.revision)).toEqual([5]);
  });

  test('a batch of one revision hands the store event list on unchanged; filters and prev_kv still apply', () => {
    const { store, hub, open } = setup();
    store.put('k', 'old'); // 2
    const { sink, stream } = open();
    const plain = stream.create({ key: b('k') });
    const prev = stream.create({ key: b('k'), prev_kv: true });
    const noPut = stream.create({ key: b('k'), filters: ['NOPUT'] });
    withEventsHeld(hub, () => {
      store.put('k', 'new'); // 3
      store.del('k'); // 4
    });
    expect(sink.eventsOf(plain)).toEqual(['PUT k=new@3', 'DELETE k@4']);
    expect(sink.of(plain).flatMap((r) => r.events.map((e) => e.prevKv))).toEqual([undefined, undefined]);
    expect(sink.of(prev).flatMap((r) => r.events.map((e) => (e.prevKv ? `${e.prevKv.value}@${e.prevKv.modRevision}` : '-')))).toEqual(['old@2', 'new@3']);
    expect(sink.eventsOf(noPut)).toEqual(['DELETE k@4']);
    withEventsHeld(hub, () => store.put('k', 'again')); // 5
    const last = sink.of(plain).at(-1)!;
    expect(last.events).toBe(store.log.at(-1)!.events);
  });

  test('a progress request made during a batch is answered after its events', () => {
    const { store, hub, open } = setup();
    const { sink, stream } = open();
    const id = stream.create({ key: b('a') });
    sink.clear();
    withEventsHeld(hub, () => {
      store.put('a', '1'); // 2
      stream.requestProgress();
      store.put('a', '2'); // 3
    });
    expect(sink.responses.map((r) => [r.watch_id, r.revision, r.events.length])).toEqual([
      [id, 3, 2],
      [-1, 3, 0],
    ]);
  });

  test('a watcher canceled during a batch gets nothing after its canceled response', () => {
    const { store, hub, open } = setup();
    const { sink, stream } = open();
    const gone = stream.create({ key: b('a') });
    const kept = stream.create({ key: b('a') });
    sink.clear();
    withEventsHeld(hub, () => {
      store.put('a', '1');
      stream.cancel(gone);
      store.put('a', '2');
    });
    expect(sink.of(gone).map((r) => r.canceled)).toEqual([true]);
    expect(sink.eventsOf(kept)).toEqual(['PUT a=1@2', 'PUT a=2@3']);
  });

  test('a batch that does not fit a slow stream backlog is caught up from its first revision, exactly once', () => {
    const { store, sched, hub, open } = setup({ limits: { watchBacklogEventsMax: 2, syncEventsPerRunMax: 2 } });
    const { sink, stream } = open();
    const id = stream.create({ key: b('a') });
    sink.slow = true;
    store.put('a', '0'); // 2: taken by the sink, which then asks to slow down
    store.put('a', '1'); // 3: waits in the backlog
    withEventsHeld(hub, () => {
      for (let i = 2; i < 6; i++) store.put('a', `${i}`); // 4..7: do not fit
    });
    expect(hub.metrics().slowWatchers).toBe(1);
    sink.drain();
    for (let i = 0; i < 10; i++) sched.runSoon();
    expect(sink.eventsOf(id)).toEqual([...Array(6).keys()].map((i) => `PUT a=${i}@${i + 2}`));
    expect(hub.metrics()).toMatchObject({ slowWatchers: 0, pendingEvents: 0 });
  });

  test('a watcher\'s batch response stops at batchResponseBytesMax; the next revision starts another', () => {
    const { store, hub, open } = setup({ limits: { batchResponseBytesMax: 25 } });
    const { sink, stream } = open();
    const id = stream.create({ key: b('k') });
    sink.clear();
    withEventsHeld(hub, () => {
      for (let i = 0; i < 5; i++) store.put('k', `${i}`.repeat(10)); // 11 bytes each: two fit
    });
    expect(sink.of(id).map((r) => [r.revision, r.events.map((e) => e.kv.modRevision)])).toEqual([
      [3, [2, 3]],
      [5, [4, 5]],
      [6, [6]],
    ]);
  });

  test('a full batch response that does not fit a slow stream: caught up from its first revision', () => {
    const { store, sched, hub, open } = setup({ limits: { batchResponseBytesMax: 25, watchBacklogEventsMax: 2, syncEventsPerRunMax: 2 } });
    const { sink, stream } = open();
    const id = stream.create({ key: b('k') });
    sink.slow = true;
    store.put('k', 'first'); // 2: taken by the sink, which then asks to slow down
    withEventsHeld(hub, () => {
      for (let i = 0; i < 6; i++) store.put('k', `${i}`.repeat(10)); // 3..8
    });
    expect(hub.metrics().slowWatchers).toBe(1);
    sink.drain();
    for (let i = 0; i < 10; i++) sched.runSoon();
    expect(sink.eventsOf(id)).toEqual(['PUT k=first@2', ...[...Array(6).keys()].map((i) => `PUT k=${`${i}`.repeat(10)}@${i + 3}`)]);
    expect(hub.metrics()).toMatchObject({ slowWatchers: 0, pendingEvents: 0 });
  });

  test('a revision gap inside a batch: held events go first, then the catch-up', () => {
    const { store, sched, hub, open } = setup();
    const { sink, stream } = open();
    const id = stream.create({ key: b('a'), range_end: b('z') });
    withEventsHeld(hub, () => {
      store.put('a', '1'); // 2, held
      store.jumpTo([{ put: 'b', value: 'restored' }]); // 3, not notified
      store.put('c', '2'); // 4: the hub sees the gap
    });
    sched.runSoon();
    expect(sink.eventsOf(id)).toEqual(['PUT a=1@2', 'PUT b=restored@3', 'PUT c=2@4']);
  });
});

describe('progress', () => {
  test('progress_notify: an idle synced watcher gets an empty response with the current revision each interval', () => {
    const { store, sched, open } = setup({ progressNotifyIntervalMs: 1000 });
    const { sink, stream } = open();
    const id = stream.create({ key: b('a'), progress_notify: true });
    const quiet = stream.create({ key: b('a') });
    store.put('zzz');
    sched.advance(1000);
    expect(sink.of(id).at(-1)).toEqual({
      watch_id: id,
      created: false,
      canceled: false,
      compact_revision: 0,
      cancel_reason: '',
      fragment: false,
      events: [],
      revision: 2,
    });
    expect(sink.of(quiet)).toHaveLength(1);
    // An event in the interval elides the next notification.
    store.put('a');
    const n = sink.of(id).length;
    sched.advance(1000);
    expect(sink.of(id)).toHaveLength(n);
    sched.advance(1000);
    expect(sink.of(id)).toHaveLength(n + 1);
  });

  test('the interval gets up to 10% jitter per stream (etcd)', () => {
    const { sched, hub } = setup({ progressNotifyIntervalMs: 1000, random: () => 0.5 });
    const sink = new FakeSink();
    const stream = hub.newStream(sink);
    stream.create({ key: b('a'), progress_notify: true });
    sched.advance(1049);
    expect(sink.responses).toHaveLength(1);
    sched.advance(1);
    expect(sink.responses).toHaveLength(2);
  });

  test('no periodic notification for an unsynced watcher, nor while the sink is slow', () => {
    const { store, sched, open } = setup({ progressNotifyIntervalMs: 1000 });
    store.put('a');
    const { sink, stream } = open();
    const id = stream.create({ key: b('a'), progress_notify: true, start_revision: 1 });
    sched.advance(1000); // the catch-up (runSoon inside advance) syncs it first
    sink.clear();
    sink.slow = true;
    stream.create({ key: b('b') }); // the created response is sent, and the sink says slow
    sink.clear();
    sched.advance(1000);
    expect(sink.of(id)).toHaveLength(0);
  });

  test('progress request: watch_id -1 and the current revision when all watchers are synced', () => {
    const { store, open } = setup();
    const { sink, stream } = open();
    stream.create({ key: b('a') });
    stream.create({ key: b('b') });
    store.put('c');
    stream.request({ request_union: 'progress_request', progress_request: {} });
    expect(sink.responses.at(-1)).toEqual({
      watch_id: -1,
      created: false,
      canceled: false,
      compact_revision: 0,
      cancel_reason: '',
      fragment: false,
      events: [],
      revision: 2,
    });
  });

  test('progress request with a watcher catching up: deferred until it is synced, after its events', () => {
    const { store, sched, open } = setup({ limits: { syncEventsPerRunMax: 1 } });
    for (let i = 0; i < 4; i++) store.put('a', `${i}`); // 2..5
    const { sink, stream } = open();
    const id = stream.create({ key: b('a'), start_revision: 2 });
    stream.requestProgress();
    stream.requestProgress(); // folded into the deferred one
    expect(sink.of(-1)).toHaveLength(0);
    sched.runSoon();
    const ids = sink.responses.map((r) => r.watch_id);
    expect(ids.filter((x) => x === -1)).toHaveLength(1);
    expect(ids.at(-1)).toBe(-1);
    expect(sink.eventsOf(id)).toHaveLength(4);
    expect(sink.responses.at(-1)!.revision).toBe(5);
  });

  test('progress request: no answer without watchers; deferred until a future start revision is reached', () => {
    const { store, open } = setup();
    const { sink, stream } = open();
    stream.requestProgress();
    expect(sink.responses).toHaveLength(0);
    stream.create({ key: b('a'), start_revision: 3 });
    stream.requestProgress();
    expect(sink.of(-1)).toHaveLength(0);
    store.put('x'); // 2
    expect(sink.of(-1)).toHaveLength(0);
    store.put('x'); // 3
    expect(sink.of(-1)).toEqual([expect.objectContaining({ revision: 3 })]);
  });

  test('a compacted watcher holds deferred progress until it is canceled (as etcd)', () => {
    const { store, sched, open } = setup();
    store.put('a');
    store.put('a');
    store.compact(3);
    const { sink, stream } = open();
    const id = stream.create({ key: b('a'), start_revision: 2 });
    sched.runSoon();
    stream.requestProgress();
    expect(sink.of(-1)).toHaveLength(0);
    stream.cancel(id);
    expect(sink.of(-1)).toHaveLength(0); // no watchers left: nothing to report on
  });
});

describe('fragments', () => {
  const big = (n: number) => 'x'.repeat(n);

  test('a response over the limit is split for fragment watchers only, fragment=true on all but the last', () => {
    const { store, open } = setup({ responseBytesMax: 400 });
    const { sink, stream } = open();
    const frag = stream.create({ key: b('k'), range_end: b('l'), fragment: true });
    const whole = stream.create({ key: b('k'), range_end: b('l') });
    store.txn([...Array(6).keys()].map((i) => ({ put: `k${i}`, value: big(100) })));
    const parts = sink.of(frag).filter((r) => r.events.length > 0);
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.map((r) => r.fragment)).toEqual([...parts.slice(1).map(() => true), false]);
    expect(parts.flatMap((r) => r.events.map((e) => e.kv.key.toString()))).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'k5']);
    for (const r of parts) expect(r.revision).toBe(2);
    const wholes = sink.of(whole).filter((r) => r.events.length > 0);
    expect(wholes).toHaveLength(1);
    expect(wholes[0].fragment).toBe(false);
  });

  test('small responses and single events are never split', () => {
    const { store, open } = setup({ responseBytesMax: 200 });
    const { sink, stream } = open();
    const frag = stream.create({ key: b('k'), range_end: b('l'), fragment: true });
    store.put('k', big(1000));
    store.txn([{ put: 'k1', value: 'a' }, { put: 'k2', value: 'b' }]);
    const rs = sink.of(frag).filter((r) => r.events.length > 0);
    expect(rs.map((r) => [r.events.length, r.fragment])).toEqual([
      [1, false],
      [2, false],
    ]);
  });

  test('catch-up responses are fragmented too', () => {
    const { store, sched, open } = setup({ responseBytesMax: 400 });
    for (let i = 0; i < 6; i++) store.put(`k${i}`, big(100));
    const { sink, stream } = open();
    const frag = stream.create({ key: b('k'), range_end: b('l'), fragment: true, start_revision: 1 });
    sched.runSoon();
    const parts = sink.of(frag).filter((r) => r.events.length > 0);
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.at(-1)!.fragment).toBe(false);
    expect(parts.slice(0, -1).every((r) => r.fragment)).toBe(true);
  });
});

describe('close and metrics', () => {
  test('closing a stream cancels its watchers without sending anything', () => {
    const { store, open, hub } = setup();
    const { sink, stream } = open();
    stream.create({ key: b('a') });
    stream.create({ key: b('b'), start_revision: 1 });
    expect(hub.metrics()).toMatchObject({ streams: 1, watchers: 2, slowWatchers: 1 });
    const n = sink.responses.length;
    stream.close();
    store.put('a');
    expect(sink.responses).toHaveLength(n);
    expect(sink.listenerCount).toBe(0);
    expect(hub.metrics()).toMatchObject({ streams: 0, watchers: 0, slowWatchers: 0 });
    expect(stream.create({ key: b('a') })).toBe(-1);
  });

  test('events and responses sent are counted', () => {
    const { store, open, hub } = setup();
    const { stream } = open();
    stream.create({ key: b('a') });
    store.txn([{ put: 'a' }]);
    store.put('a');
    expect(hub.metrics()).toMatchObject({ eventsSentTotal: 2, responsesSentTotal: 3 });
  });

  test('closing the hub closes its streams and stops listening', () => {
    const { store, open, hub } = setup();
    const { sink, stream } = open();
    stream.create({ key: b('a') });
    hub.close();
    store.put('a');
    expect(stream.closed).toBe(true);
    expect(sink.responses).toHaveLength(1);
  });

  test('limits are checked when the hub is built', () => {
    expect(() => setup({ limits: { syncEventsPerRunMax: 10, watchBacklogEventsMax: 5 } })).toThrow(/assertion failed/);
    expect(() => setup({ limits: { syncWatchersPerRunMax: 0 } })).toThrow(/assertion failed/);
  });
});

// A response list for debugging failures.
export function show(rs: WatchResponse[]): string[] {
  return rs.map((r) => `${r.watch_id}${r.created ? ' created' : ''}${r.canceled ? ' canceled' : ''} rev=${r.revision} n=${r.events.length}`);
}
