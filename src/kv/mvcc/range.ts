// Range over the key index at one revision, with etcd v3.4's exact post-processing
// (etcdserver/apply.go applierV3backend.Range):
// - `count` is the number of keys in the range at the revision, before filters and limit;
// - with a sort order or any min/max filter, every key is read, then filtered, sorted and
//   truncated to `limit`; otherwise only limit+1 keys are read (in key order), and a sort
//   target other than KEY with order NONE sorts those ascending;
// - `more` is true when more than `limit` keys remained after filtering;
// - countOnly returns no kvs; keysOnly returns kvs without values.

import { KeyIndex, RevEntry } from './key-index';
import { keySpan } from './keys';
import { compareValues } from './value-arena';
import type { OrderedIndex } from './ordered-index';
import { RangeOptions, RangeResult, SortTarget } from './types';

export function rangeAt(index: OrderedIndex<KeyIndex>, opts: RangeOptions, rev: number): RangeResult {
  const limit = opts.limit !== undefined && opts.limit > 0 ? opts.limit : 0;
  const countOnly = opts.countOnly === true;
  const minMod = opts.minModRevision ?? 0;
  const maxMod = opts.maxModRevision ?? 0;
  const minCreate = opts.minCreateRevision ?? 0;
  const maxCreate = opts.maxCreateRevision ?? 0;
  const filtered = minMod !== 0 || maxMod !== 0 || minCreate !== 0 || maxCreate !== 0;
  const requestedOrder = opts.sortOrder ?? 'NONE';
  const target: SortTarget = opts.sortTarget ?? 'KEY';
  // etcd reads limit+1 keys unless it must see all of them to filter or sort.
  const readMax = requestedOrder !== 'NONE' || filtered || limit === 0 ? 0 : limit + 1;

  let count = 0;
  // The revision entries first; KeyValues are made only for those returned.
  let kvs: RevEntry[] = [];
  const visit = (ki: KeyIndex): void => {
    const kv = ki.entryAt(rev);
    if (kv === undefined) return;
    count++;
    if (!countOnly && (readMax === 0 || kvs.length < readMax)) kvs.push(kv);
  };

  const span = keySpan(opts.key, opts.rangeEnd);
  switch (span.kind) {
    case 'single': {
      const ki = index.get(span.low);
      if (ki !== undefined) visit(ki);
      break;
    }
    case 'from': {
      const high = index.maxKey();
      if (high !== undefined && high >= span.low) index.forRange(span.low, high, true, (_k, ki) => visit(ki));
      break;
    }
    case 'between':
      if (span.high > span.low) index.forRange(span.low, span.high, false, (_k, ki) => visit(ki));
      break;
  }
  if (countOnly) return { kvs: [], count, more: false };

  if (maxMod !== 0) kvs = kvs.filter((kv) => kv.main <= maxMod);
  if (minMod !== 0) kvs = kvs.filter((kv) => kv.main >= minMod);
  if (maxCreate !== 0) kvs = kvs.filter((kv) => kv.createRevision <= maxCreate);
  if (minCreate !== 0) kvs = kvs.filter((kv) => kv.createRevision >= minCreate);

  const order = target !== 'KEY' && requestedOrder === 'NONE' ? 'ASCEND' : requestedOrder;
  // ASCEND by KEY is the index's own order. The sort is stable: ties stay in key order.
  if (order === 'DESCEND' || (order === 'ASCEND' && target !== 'KEY')) {
    const cmp = comparator(target);
    kvs.sort(order === 'ASCEND' ? cmp : (a, b) => cmp(b, a));
  }

  let more = false;
  if (limit > 0 && kvs.length > limit) {
    kvs.length = limit;
    more = true;
  }
  const out = opts.keysOnly === true ? kvs.map((en) => en.kvWithoutValue()) : kvs.map((en) => en.kv);
  return { kvs: out, count, more };
}

// Keys are latin1 strings (one char per byte): string order is byte order.
function comparator(target: SortTarget): (a: RevEntry, b: RevEntry) => number {
  switch (target) {
    case 'KEY':
      return (a, b) => compareStrings(a.ki.keyStr, b.ki.keyStr);
    case 'VERSION':
      return (a, b) => a.version - b.version;
    case 'CREATE':
      return (a, b) => a.createRevision - b.createRevision;
    case 'MOD':
      return (a, b) => a.main - b.main;
    case 'VALUE':
      return compareValues;
  }
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
