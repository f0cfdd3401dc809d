// The append checker, on the final lists (linearizability of each key is the register
// checker's): no element twice, no element nobody appended, every committed element in
// every key it was appended to, an element appended to two keys in both or in neither
// (atomicity), and any two elements in the same order in every key holding both.

import { AppendOp, parseList } from './history';

export interface AppendReport {
  ok: boolean;
  appends: number;
  committed: number;
  problems: string[];
}

const problemsMax = 30;

export function checkAppends(ops: readonly AppendOp[], finalValues: ReadonlyMap<string, string | null>): AppendReport {
  const problems: string[] = [];
  const add = (p: string): void => {
    if (problems.length < problemsMax) problems.push(p);
  };
  const attempted = new Map<string, string[]>();
  const committed = new Set<string>();
  for (const op of ops) {
    attempted.set(op.elem, op.keys);
    if (op.status === 'ok' && op.committed) committed.add(op.elem);
  }
  const lists = new Map<string, string[]>();
  const positions = new Map<string, Map<string, number>>();
  for (const [key, value] of finalValues) {
    const list = parseList(value);
    lists.set(key, list);
    const pos = new Map<string, number>();
    list.forEach((e, i) => {
      if (pos.has(e)) add(`${key}: element ${e} appears twice`);
      else pos.set(e, i);
      if (!attempted.has(e)) add(`${key}: element ${e} was never appended`);
      else if (!(attempted.get(e) as string[]).includes(key)) add(`${key}: element ${e} was appended to ${(attempted.get(e) as string[]).join(', ')}, not here`);
    });
    positions.set(key, pos);
  }
  for (const [elem, keys] of attempted) {
    const present = keys.filter((k) => positions.get(k)?.has(elem) === true);
    if (committed.has(elem) && present.length < keys.length) add(`committed element ${elem} is missing from ${keys.filter((k) => !present.includes(k)).join(', ')}`);
    else if (present.length > 0 && present.length < keys.length) add(`element ${elem} is in ${present.join(', ')} but not in ${keys.filter((k) => !present.includes(k)).join(', ')} (not atomic)`);
  }
  const keys = [...lists.keys()];
  for (let a = 0; a < keys.length; a++) {
    for (let b = a + 1; b < keys.length; b++) {
      const pb = positions.get(keys[b]) as Map<string, number>;
      const common = (lists.get(keys[a]) as string[]).filter((e) => pb.has(e));
      for (let i = 1; i < common.length; i++) {
        if ((pb.get(common[i - 1]) as number) > (pb.get(common[i]) as number)) {
          add(`${keys[a]} has ${common[i - 1]} before ${common[i]}, ${keys[b]} the other way round`);
          break;
        }
      }
    }
  }
  return { ok: problems.length === 0, appends: ops.length, committed: committed.size, problems };
}
