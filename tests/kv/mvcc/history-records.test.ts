// The history (every change since the compacted revision, one flat list in revision order)
// as rebuilt from disk: watch catch-up after a reopen and a compaction, and the checks that
// find missing revision records.

import { ClassicLevel } from 'classic-level';
import { MvccStore, isMvccError } from '../../../src/kv/mvcc';
import { REV_KEY_BYTES, writeRevKey } from '../../../src/kv/mvcc/encoding';
import { withTempDir } from '../../helpers/temp-dir';

const b = (s: string): Uint8Array => Buffer.from(s);

const withDir = (f: (dir: string) => Promise<void>): Promise<void> => withTempDir('mvcc-history-', f);

/** Revisions 2..6: put a; txn(put b, put c, delete a); put b; txn(delete b, put d); put c. */
async function build(dir: string): Promise<void> {
  const st = await MvccStore.open(dir);
  st.put(b('a'), b('1'));
  let tw = st.write();
  tw.put(b('b'), b('2'));
  tw.put(b('c'), b('3'));
  tw.deleteRange(b('a'));
  tw.end();
  st.put(b('b'), b('4'));
  tw = st.write();
  tw.deleteRange(b('b'));
  tw.put(b('d'), b('5'));
  tw.end();
  st.put(b('c'), b('6'));
  await st.flush(undefined);
  await st.close();
}

function summary(st: MvccStore, fromRevision: number, eventsMax?: number): string[] {
  const r = st.eventsBetween({ fromRevision, eventsMax });
  return [...r.revisions.map((rev) => `${rev.revision}:` + rev.events.map((e) => `${e.type[0]}${Buffer.from(e.kv.key).toString()}${Buffer.from(e.kv.value).toString()}`).join(',')), `next ${r.nextRevision}`];
}

async function deleteRecord(dir: string, main: number, sub: number): Promise<void> {
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  const k = Buffer.alloc(REV_KEY_BYTES);
  writeRevKey(k, 0, main, sub);
  await db.del(k);
  await db.close();
}

async function openError(dir: string): Promise<string> {
  try {
    const st = await MvccStore.open(dir);
    await st.close();
    return 'opened';
  } catch (e) {
    return isMvccError(e, 'ERR_STORE_CORRUPT') ? (e as Error).message : String(e);
  }
}

describe('history records', () => {
  test('events by revision, before and after a reopen, a compaction and another reopen', () =>
    withDir(async (dir) => {
      await build(dir);
      const st = await MvccStore.open(dir);
      const all = ['2:Pa1', '3:Pb2,Pc3,Da', '4:Pb4', '5:Db,Pd5', '6:Pc6', 'next 7'];
      expect(summary(st, 1)).toEqual(all);
      expect(summary(st, 3, 4)).toEqual(['3:Pb2,Pc3,Da', '4:Pb4', 'next 5']);
      expect(summary(st, 5)).toEqual(all.slice(3));
      st.compact(4);
      expect(summary(st, 4)).toEqual(all.slice(2));
      expect(() => st.eventsBetween({ fromRevision: 3 })).toThrow();
      expect(Buffer.from(st.get(b('c'), 4)!.value).toString()).toBe('3');
      await st.flush(undefined);
      await st.close();
      const again = await MvccStore.open(dir);
      expect(summary(again, 4)).toEqual(all.slice(2));
      expect(again.revision).toBe(6);
      again.put(b('e'), b('7'));
      expect(summary(again, 6)).toEqual(['6:Pc6', '7:Pe7', 'next 8']);
      await again.close();
    }));

  test('a missing revision is found when the store is opened', () =>
    withDir(async (dir) => {
      await build(dir);
      await deleteRecord(dir, 4, 0);
      expect(await openError(dir)).toBe('mvcc: corrupt store: no record of revision 4');
    }));

  test('a missing sub revision is found when the store is opened', () =>
    withDir(async (dir) => {
      await build(dir);
      await deleteRecord(dir, 3, 1);
      expect(await openError(dir)).toBe('mvcc: corrupt store: revision 3 misses sub revisions');
    }));
});
