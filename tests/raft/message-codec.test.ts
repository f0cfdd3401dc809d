// The peer transport's binary form of Raft messages: every field round-trips, damaged input
// is refused.

import { decodeMessage, encodeMessage } from '../../src/raft/message-codec';
import { EntryType, message, Message, MessageTypes } from '../../src/raft/types';

const enc = new TextEncoder();

function roundTrip(m: Message): Message {
  return decodeMessage(encodeMessage(m));
}

function plain(m: Message): unknown {
  return { ...m, entries: m.entries.map((e) => ({ ...e, data: Buffer.from(e.data).toString('hex') })) };
}

describe('raft message codec', () => {
  test('every message type and field round-trips', () => {
    for (const type of MessageTypes) {
      const m = message({
        type,
        to: 2465171390001628,
        from: 3,
        term: 7,
        logTerm: 6,
        index: 123456789012,
        commit: 99,
        reject: type.endsWith('Resp'),
        rejectHint: 41,
        entries: [
          { term: 6, index: 100, type: EntryType.Normal, data: enc.encode('put a') },
          { term: 7, index: 101, type: EntryType.ConfChange, data: new Uint8Array(0) },
        ],
      });
      expect(plain(roundTrip(m))).toEqual(plain(m));
    }
  });

  test('context and snapshot round-trip', () => {
    const m = message({
      type: 'MsgSnap',
      to: 1,
      from: 2,
      term: 3,
      context: 'CampaignTransfer ünïcode',
      snapshot: { data: new Uint8Array(0), metadata: { index: 10, term: 3, confState: { voters: [1, 2, 3], learners: [4], votersOutgoing: [], learnersNext: [], autoLeave: false } } },
    });
    const d = roundTrip(m);
    expect(d.context).toBe(m.context);
    expect(d.snapshot?.metadata).toEqual(m.snapshot!.metadata);
    expect(roundTrip(message({ type: 'MsgHeartbeat' })).context).toBeUndefined();
  });

  test('entries of 1 MiB and empty batches', () => {
    const data = Buffer.alloc(1 << 20, 7);
    const d = roundTrip(message({ type: 'MsgApp', entries: [{ term: 1, index: 1, type: EntryType.Normal, data }] }));
    expect(Buffer.compare(Buffer.from(d.entries[0].data), data)).toBe(0);
    expect(roundTrip(message({ type: 'MsgApp' })).entries).toEqual([]);
  });

  test('truncated or unknown input is refused', () => {
    const b = encodeMessage(message({ type: 'MsgApp', entries: [{ term: 1, index: 1, type: EntryType.Normal, data: enc.encode('abc') }] }));
    expect(() => decodeMessage(b.subarray(0, b.length - 1))).toThrow();
    expect(() => decodeMessage(Buffer.concat([b, Buffer.from([0])]))).toThrow();
    expect(() => decodeMessage(Buffer.from([9, 0, 0]))).toThrow();
    const badType = Buffer.from(b);
    badType[1] = 250;
    expect(() => decodeMessage(badType)).toThrow();
  });
});
