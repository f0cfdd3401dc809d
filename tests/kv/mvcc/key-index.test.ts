// KeyIndex against the facts of etcd's server/mvcc/key_index_test.go.

import { KeyIndex, RevEntry } from '../../../src/kv/mvcc/key-index';
import { ValueArena } from '../../../src/kv/mvcc/value-arena';

const arena = new ValueArena(1024);

/** A put at (main, 0) holding `value`. */
function put(ki: KeyIndex, main: number, created: number, ver: number, value: string): RevEntry {
  const en = new RevEntry(ki, main, 0, false, created, ver, 0);
  arena.hold(en, Buffer.from(value));
  return en;
}

/** `[main, sub, tombstone]` entries; a put's version counts within its generation. */
function keyIndex(spec: Array<[number, number, boolean]>): KeyIndex {
  const ki = new KeyIndex('foo');
  let created = 0;
  let ver = 0;
  for (const [main, sub, tomb] of spec) {
    if (created === 0) created = main;
    ver++;
    ki.append(tomb ? new RevEntry(ki, main, sub, true, 0, 0, 0) : new RevEntry(ki, main, sub, false, created, ver, 0));
    if (tomb) {
      created = 0;
      ver = 0;
    }
  }
  return ki;
}

/** etcd's newTestKeyIndex: put 2, 4, del 6, put 8, 10, del 12, put 14, 15.1, del 16. */
function testKeyIndex(): KeyIndex {
  return keyIndex([
    [2, 0, false],
    [4, 0, false],
    [6, 0, true],
    [8, 0, false],
    [10, 0, false],
    [12, 0, true],
    [14, 0, false],
    [15, 1, false],
    [16, 0, true],
  ]);
}

const label = (ki: KeyIndex): string[] => ki.entries.map((e) => `${e.main}.${e.sub}${e.tombstone ? 't' : ''}`);

describe('KeyIndex (etcd key_index_test facts)', () => {
  test('get after compact(4): state at each revision', () => {
    const ki = testKeyIndex();
    ki.compact(4, () => undefined);
    // [rev, modRevision, createRevision, version] or undefined (not found)
    const want: Array<[number, [number, number, number] | undefined]> = [
      [17, undefined],
      [16, undefined],
      [15, [15, 14, 2]],
      [14, [14, 14, 1]],
      [13, undefined],
      [12, undefined],
      [11, [10, 8, 2]],
      [10, [10, 8, 2]],
      [9, [8, 8, 1]],
      [8, [8, 8, 1]],
      [7, undefined],
      [6, undefined],
      [5, [4, 2, 2]],
      [4, [4, 2, 2]],
      [3, undefined], // compacted away (etcd: not found)
      [2, undefined],
      [1, undefined],
      [0, undefined],
    ];
    for (const [rev, w] of want) {
      const got = ki.at(rev);
      expect([rev, got === undefined ? undefined : [got.modRevision, got.createRevision, got.version]]).toEqual([rev, w]);
    }
  });

  // TestKeyIndexCompactAndKeep: the revisions left after compact(rev).
  const compactTable: Array<[number, string[]]> = [
    [1, ['2.0', '4.0', '6.0t', '8.0', '10.0', '12.0t', '14.0', '15.1', '16.0t']],
    [2, ['2.0', '4.0', '6.0t', '8.0', '10.0', '12.0t', '14.0', '15.1', '16.0t']],
    [3, ['2.0', '4.0', '6.0t', '8.0', '10.0', '12.0t', '14.0', '15.1', '16.0t']],
    [4, ['4.0', '6.0t', '8.0', '10.0', '12.0t', '14.0', '15.1', '16.0t']],
    [5, ['4.0', '6.0t', '8.0', '10.0', '12.0t', '14.0', '15.1', '16.0t']],
    [6, ['8.0', '10.0', '12.0t', '14.0', '15.1', '16.0t']],
    [7, ['8.0', '10.0', '12.0t', '14.0', '15.1', '16.0t']],
    [8, ['8.0', '10.0', '12.0t', '14.0', '15.1', '16.0t']],
    [9, ['8.0', '10.0', '12.0t', '14.0', '15.1', '16.0t']],
    [10, ['10.0', '12.0t', '14.0', '15.1', '16.0t']],
    [11, ['10.0', '12.0t', '14.0', '15.1', '16.0t']],
    [12, ['14.0', '15.1', '16.0t']],
    [13, ['14.0', '15.1', '16.0t']],
    [14, ['14.0', '15.1', '16.0t']],
    [15, ['15.1', '16.0t']],
    [16, []],
  ];

  test('continuous compaction', () => {
    const ki = testKeyIndex();
    for (const [rev, want] of compactTable) {
      ki.compact(rev, () => undefined);
      expect([rev, label(ki)]).toEqual([rev, want]);
    }
  });

  test('jump compaction', () => {
    const ki = testKeyIndex();
    compactTable.forEach(([rev, want], i) => {
      if ((i % 2 === 0 && i < 6) || (i % 2 === 1 && i > 6)) {
        ki.compact(rev, () => undefined);
        expect([rev, label(ki)]).toEqual([rev, want]);
      }
    });
  });

  test('once compaction', () => {
    for (const [rev, want] of compactTable) {
      const ki = testKeyIndex();
      ki.compact(rev, () => undefined);
      expect([rev, label(ki)]).toEqual([rev, want]);
    }
  });

  test('compaction reports exactly the dropped entries and marks them out of the index', () => {
    const ki = testKeyIndex();
    const all = [...ki.entries];
    const dropped: string[] = [];
    ki.compact(12, (e) => dropped.push(`${e.main}.${e.sub}${e.tombstone ? 't' : ''}`));
    expect(dropped).toEqual(['2.0', '4.0', '6.0t', '8.0', '10.0', '12.0t']);
    expect(all.filter((e) => !e.inIndex).length).toBe(6);
  });

  test('a key alone in its index, then with more revisions, then alone again after compaction', () => {
    // One revision is held without an array; the reads must not tell the difference.
    const ki = keyIndex([[3, 0, false]]);
    expect(label(ki)).toEqual(['3.0']);
    expect(ki.at(2)).toBeUndefined();
    expect(ki.at(3)?.version).toBe(1);
    expect(ki.latestEntry()?.main).toBe(3);
    ki.append(put(ki, 5, 3, 2, 'v'));
    ki.append(new RevEntry(ki, 7, 1, true, 0, 0, 0));
    expect(label(ki)).toEqual(['3.0', '5.0', '7.1t']);
    expect(ki.at(6)?.version).toBe(2);
    expect(ki.latest()).toBeUndefined();
    ki.compact(5, () => undefined);
    expect(label(ki)).toEqual(['5.0', '7.1t']);
    ki.append(put(ki, 9, 9, 1, 'w'));
    ki.compact(8, () => undefined);
    expect(label(ki)).toEqual(['9.0']);
    expect(Buffer.from(ki.at(9)!.value).toString()).toBe('w');
    expect(ki.at(8)).toBeUndefined();
    ki.append(new RevEntry(ki, 10, 0, true, 0, 0, 0));
    ki.compact(10, () => undefined);
    expect(ki.isEmpty()).toBe(true);
    expect(ki.entries).toEqual([]);
    expect(ki.at(10)).toBeUndefined();
  });

  test('compaction past the last modification keeps the latest put', () => {
    // TestKeyIndexCompactOnFurtherRev
    const ki = keyIndex([
      [1, 0, false],
      [2, 0, false],
    ]);
    ki.compact(3, () => undefined);
    expect(label(ki)).toEqual(['2.0']);
    expect(ki.at(3)?.createRevision).toBe(1);
    expect(ki.at(3)?.version).toBe(2);
  });

  test('appending out of order or two tombstones in a row is a bug', () => {
    const ki = keyIndex([[5, 0, false]]);
    expect(() => ki.append(put(ki, 5, 5, 2, 'x'))).toThrow(/assertion failed/);
    ki.append(new RevEntry(ki, 7, 0, true, 0, 0, 0));
    expect(() => ki.append(new RevEntry(ki, 8, 0, true, 0, 0, 0))).toThrow(/assertion failed/);
  });
});
