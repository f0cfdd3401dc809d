// Property: whatever the interleaving of writes, compactions, watch creations (past, current
// and future start revisions), cancels, slow and draining sinks, catch-up turns and progress
// requests, every watcher receives exactly the events of its range from its start revision,
// once each, in revision order, one revision never split across responses (except
// fragments) — or a gap-free prefix of them followed by a compact_revision cancel, when the
// history it needed was compacted. A progress response (watch_id -1) never overtakes events.

import fc from 'fast-check';
import { WatchHub } from '../../../src/kv/watch';
import type { MvccEvent, WatchCreateRequest, WatchFilterType, WatchResponse, WatchStream } from '../../../src/kv/watch';
import { b, FakeSink, FakeStore, ManualScheduler, Op, str } from './fakes';
import { withEventsHeld } from '../../helpers/hold-events';

const KEYS = ['a', 'b', 'c', 'd', 'e'];

type Cmd =
  | { t: 'txn'; ops: Op[] }
  | { t: 'watch'; s: number; sel: number; start: { kind: 'now' } | { kind: 'past'; back: number } | { kind: 'future'; ahead: number }; filters: WatchFilterType[]; prevKv: boolean; fragment: boolean }
  | { t: 'cancel'; pick: number }
  | { t: 'slow'; s: number }
  | { t: 'drain'; s: number }
  | { t: 'step' }
  | { t: 'compact'; back: number }
  | { t: 'progress'; s: number }
  | { t: 'burst'; s: number; ops: Op[] }
  | { t: 'batch'; items: BatchItem[] };

/** What can happen while one apply commits several revisions (WatchHub.holdEvents). */
type BatchItem = { t: 'txn'; ops: Op[] } | { t: 'progress'; s: number } | { t: 'cancel'; pick: number };

const key = fc.constantFrom(...KEYS);
const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ put: key, value: fc.constantFrom('x', 'y', 'z'.repeat(130)) }), weight: 3 },
  { arbitrary: fc.record({ del: key }), weight: 1 },
);
const stream = fc.nat({ max: 2 });
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant('txn' as const), ops: fc.array(op, { minLength: 1, maxLength: 3 }) }), weight: 8 },
  {
    arbitrary: fc.record({
      t: fc.constant('watch' as const),
      s: stream,
      sel: fc.nat({ max: 3 }),
      start: fc.oneof(
        fc.constant({ kind: 'now' as const }),
        fc.record({ kind: fc.constant('past' as const), back: fc.nat({ max: 25 }) }),
        fc.record({ kind: fc.constant('future' as const), ahead: fc.integer({ min: 1, max: 4 }) }),
      ),
      filters: fc.constantFrom<WatchFilterType[]>([], ['NOPUT'], ['NODELETE']),
      prevKv: fc.boolean(),
      fragment: fc.boolean(),
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ t: fc.constant('cancel' as const), pick: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('slow' as const), s: stream }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('drain' as const), s: stream }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('step' as const) }), weight: 4 },
  { arbitrary: fc.record({ t: fc.constant('compact' as const), back: fc.nat({ max: 10 }) }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('progress' as const), s: stream }), weight: 1 },
  // Revisions committed by one apply, with a progress request or a cancel among them.
  {
    arbitrary: fc.record({
      t: fc.constant('batch' as const),
      items: fc.array(
        fc.oneof(
          { arbitrary: fc.record({ t: fc.constant('txn' as const), ops: fc.array(op, { minLength: 1, maxLength: 3 }) }), weight: 6 },
          { arbitrary: fc.record({ t: fc.constant('progress' as const), s: stream }), weight: 1 },
          { arbitrary: fc.record({ t: fc.constant('cancel' as const), pick: fc.nat() }), weight: 1 },
        ),
        { minLength: 1, maxLength: 5 },
      ),
    }),
    weight: 3,
  },
  // A slow sink while writes keep coming: overflows its backlog.
  { arbitrary: fc.record({ t: fc.constant('burst' as const), s: stream, ops: fc.array(op, { minLength: 2, maxLength: 8 }) }), weight: 2 },
);

interface Tracked {
  s: number;
  id: number;
  req: WatchCreateRequest;
  /** First revision it must see. */
  from: number;
  canceledByUser: boolean;
}

function selector(sel: number): Pick<WatchCreateRequest, 'key' | 'range_end'> {
  switch (sel) {
    case 0:
      return { key: b('a') };
    case 1:
      return { key: b('b'), range_end: b('d') };
    case 2:
      return { key: b('c'), range_end: Buffer.from([0]) };
    default:
      return { key: Buffer.alloc(0), range_end: Buffer.from([0]) };
  }
}

function inRange(req: WatchCreateRequest, k: string): boolean {
  const from = req.key!.length === 0 ? '\x00' : str(req.key!);
  if (req.range_end === undefined) return k === from;
  if (req.range_end.length === 1 && req.range_end[0] === 0) return k >= from;
  return k >= from && k < str(req.range_end);
}

function show(ev: MvccEvent, prevKv: boolean): string {
  const prev = prevKv && ev.prevKv ? ` prev=${str(ev.prevKv.value)}@${ev.prevKv.modRevision}` : '';
  if (!prevKv && ev.prevKv) return 'UNWANTED PREVKV';
  return `${ev.type} ${str(ev.kv.key)}=${str(ev.kv.value)}@${ev.kv.modRevision}${prev}`;
}

function expectedEvents(store: FakeStore, w: Tracked): { rev: number; text: string }[] {
  const out: { rev: number; text: string }[] = [];
  for (const re of store.log) {
    if (re.revision < w.from) continue;
    for (const ev of re.events) {
      if (!inRange(w.req, str(ev.kv.key))) continue;
      if (w.req.filters!.includes('NOPUT') && ev.type === 'PUT') continue;
      if (w.req.filters!.includes('NODELETE') && ev.type === 'DELETE') continue;
      out.push({ rev: re.revision, text: show(w.req.prev_kv === true ? ev : { type: ev.type, kv: ev.kv }, w.req.prev_kv === true) });
    }
  }
  return out;
}

interface Seen {
  created: number;
  messages: { rev: number; text: string }[][];
  pendingFragment: { rev: number; text: string }[] | undefined;
  canceledAt: number | undefined;
  compactRevision: number;
}

function parse(sink: FakeSink, prevKvOf: (id: number) => boolean): Map<number, Seen> {
  const seen = new Map<number, Seen>();
  sink.responses.forEach((r: WatchResponse, i) => {
    if (r.watch_id === -1) return;
    let s = seen.get(r.watch_id);
    if (r.created) {
      expect(s).toBeUndefined();
      seen.set(r.watch_id, { created: i, messages: [], pendingFragment: undefined, canceledAt: undefined, compactRevision: 0 });
      return;
    }
    expect(s).toBeDefined();
    s = s!;
    if (s.canceledAt !== undefined) {
      // Nothing after a cancel, but for etcd's answer to the client's cancel of a watcher
      // the compaction canceled (its id stays taken until then): canceled once more.
      expect(s.compactRevision > 0 && r.canceled && r.compact_revision === 0 && r.events.length === 0).toBe(true);
      return;
    }
    if (r.canceled) {
      expect(s.pendingFragment).toBeUndefined();
      s.canceledAt = i;
      s.compactRevision = r.compact_revision;
      return;
    }
    if (r.events.length === 0) return; // periodic progress
    const evs = r.events.map((ev) => ({ rev: ev.kv.modRevision, text: show(ev, prevKvOf(r.watch_id)) }));
    const msg = [...(s.pendingFragment ?? []), ...evs];
    if (r.fragment) {
      s.pendingFragment = msg;
    } else {
      s.pendingFragment = undefined;
      s.messages.push(msg);
    }
  });
  return seen;
}

function run(cmds: Cmd[]): void {
  const store = new FakeStore();
  const sched = new ManualScheduler();
  const hub = new WatchHub({
    source: store,
    scheduler: sched,
    random: () => 0,
    progressNotifyIntervalMs: 1e9,
    responseBytesMax: 300,
    limits: { watchBacklogEventsMax: 3, syncEventsPerRunMax: 2, syncWatchersPerRunMax: 2, watchControlBacklogMax: 10_000, batchResponseBytesMax: 200 },
  });
  const sinks = [new FakeSink(), new FakeSink(), new FakeSink()];
  const streams: WatchStream[] = sinks.map((s) => hub.newStream(s));
  const watchers: Tracked[] = [];

  const cancel = (pick: number): void => {
    const live = watchers.filter((w) => !w.canceledByUser);
    if (live.length === 0) return;
    const w = live[pick % live.length];
    w.canceledByUser = true;
    streams[w.s].cancel(w.id);
  };
  let batchEvents = 0;
  for (const c of cmds) {
    switch (c.t) {
      case 'txn':
        store.txn(c.ops);
        break;
      case 'watch': {
        const current = store.currentRevision();
        const start =
          c.start.kind === 'now' ? 0 : c.start.kind === 'past' ? Math.max(1, current - c.start.back) : current + c.start.ahead;
        const req: WatchCreateRequest = { ...selector(c.sel), start_revision: start, filters: c.filters, prev_kv: c.prevKv, fragment: c.fragment };
        const id = streams[c.s].create(req);
        expect(id).toBeGreaterThanOrEqual(0);
        watchers.push({ s: c.s, id, req, from: start === 0 ? current + 1 : start, canceledByUser: false });
        break;
      }
      case 'cancel':
        cancel(c.pick);
        break;
      case 'slow':
        sinks[c.s].slow = true;
        break;
      case 'drain':
        sinks[c.s].drain();
        break;
      case 'step':
        sched.step();
        break;
      case 'compact': {
        const target = store.currentRevision() - c.back;
        if (target > store.compactedRevision()) store.compact(target);
        break;
      }
      case 'progress':
        streams[c.s].requestProgress();
        break;
      case 'burst':
        sinks[c.s].slow = true;
        for (const o of c.ops) store.txn([o]);
        break;
      case 'batch':
        batchEvents = 0;
        withEventsHeld(hub, () => {
          for (const item of c.items) {
            if (item.t === 'txn') {
              store.txn(item.ops);
              batchEvents += item.ops.length;
            } else if (item.t === 'progress') streams[item.s].requestProgress();
            else cancel(item.pick);
          }
        });
        break;
    }
    const m = hub.metrics();
    // Per stream: the bound (3) plus one response taken into an empty backlog (one revision,
    // at most 3 events, or a batch's).
    expect(m.pendingEvents).toBeLessThanOrEqual(3 * (2 + Math.max(3, batchEvents)));
  }

  // Let everything through.
  for (let i = 0; i < 1000 && (sched.pendingSoon > 0 || hub.metrics().slowWatchers > 0); i++) {
    for (const s of sinks) s.drain();
    sched.runSoon();
  }
  for (const s of sinks) s.drain();
  sched.runSoon();
  expect(hub.metrics().slowWatchers).toBe(0);
  expect(hub.metrics().pendingEvents).toBe(0);

  const prevKvOf = (s: number) => (id: number) => watchers.find((w) => w.s === s && w.id === id)!.req.prev_kv === true;
  const parsed = sinks.map((sink, s) => parse(sink, prevKvOf(s)));

  for (const w of watchers) {
    const seen = parsed[w.s].get(w.id)!;
    expect(seen).toBeDefined();
    const got = seen.messages.flat();
    const want = expectedEvents(store, w);
    // One revision is never split across messages.
    for (let i = 1; i < seen.messages.length; i++) {
      expect(seen.messages[i - 1].at(-1)!.rev).toBeLessThan(seen.messages[i][0].rev);
    }
    if (seen.compactRevision > 0) {
      expect(got).toEqual(want.slice(0, got.length));
      const lastSeen = got.length > 0 ? got[got.length - 1].rev : w.from - 1;
      expect(lastSeen + 1).toBeLessThan(seen.compactRevision);
    } else if (w.canceledByUser) {
      expect(seen.canceledAt).toBeDefined();
      expect(got).toEqual(want.slice(0, got.length));
    } else {
      expect(seen.canceledAt).toBeUndefined();
      expect(got).toEqual(want);
    }
  }

  // A progress response says: every watcher of the stream has everything up to its revision.
  sinks.forEach((sink, s) => {
    sink.responses.forEach((r, i) => {
      if (r.watch_id !== -1 || r.created) return;
      for (const w of watchers.filter((x) => x.s === s)) {
        const seen = parsed[s].get(w.id)!;
        if (seen.created > i || (seen.canceledAt !== undefined && seen.canceledAt < i)) continue;
        const before = parse({ responses: sink.responses.slice(0, i) } as FakeSink, prevKvOf(s)).get(w.id)!;
        const want = expectedEvents(store, w).filter((e) => e.rev <= r.revision);
        expect(before.messages.flat()).toEqual(want);
      }
    });
  });
}

test('every watcher gets its events exactly once, in order, or a prefix then compact_revision', () => {
  fc.assert(
    fc.property(fc.array(cmd, { minLength: 1, maxLength: 120 }), (cmds) => {
      run(cmds);
    }),
    { numRuns: Number(process.env.WATCH_PROPERTY_RUNS ?? 400) },
  );
});
