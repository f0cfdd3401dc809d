// Acknowledged writes survive: every acknowledged put (or delete) is in the key space's
// history at the revision it was acknowledged with, and the key's final state is that write
// or a later one; checked after every member was killed and restarted.

import type { AckedWrite, HistoryEvent } from './history';

export interface FinalKey {
  value: string;
  modRev: number;
}

export interface AckedReport {
  ok: boolean;
  acked: number;
  lost: { write: AckedWrite; why: string }[];
}

export function checkAckedWrites(acked: readonly AckedWrite[], history: readonly HistoryEvent[] | undefined, finalState: ReadonlyMap<string, FinalKey> | undefined): AckedReport {
  const byRevKey = new Map<string, HistoryEvent>();
  const lastChange = new Map<string, HistoryEvent>();
  for (const e of history ?? []) {
    byRevKey.set(`${e.rev}\u0000${e.key}`, e);
    lastChange.set(e.key, e);
  }
  const lost: AckedReport['lost'] = [];
  for (const w of acked) {
    const what = w.value === null ? 'delete' : `put ${JSON.stringify(w.value)}`;
    if (history !== undefined) {
      const e = byRevKey.get(`${w.rev}\u0000${w.key}`);
      if (e === undefined) {
        lost.push({ write: w, why: `acknowledged ${what} of ${w.key} at rev ${w.rev} is not in the history` });
        continue;
      }
      if (e.type !== (w.value === null ? 'DELETE' : 'PUT') || e.value !== w.value) {
        lost.push({ write: w, why: `acknowledged ${what} of ${w.key} at rev ${w.rev}, the history has ${e.type} ${e.value ?? ''} there` });
        continue;
      }
    }
    if (finalState !== undefined) {
      const f = finalState.get(w.key);
      if (f !== undefined && f.modRev < w.rev) {
        lost.push({ write: w, why: `acknowledged ${what} of ${w.key} at rev ${w.rev}; the key now holds an older write (mod_revision ${f.modRev})` });
        continue;
      }
      if (f !== undefined && f.modRev === w.rev && (w.value === null || f.value !== w.value)) {
        lost.push({ write: w, why: `acknowledged ${what} of ${w.key} at rev ${w.rev}; the key now holds ${JSON.stringify(f.value)} at that revision` });
        continue;
      }
      if (f === undefined && w.value !== null) {
        // Gone: only a later delete (or lease expiry) may have removed it.
        const last = lastChange.get(w.key);
        if (history !== undefined && (last === undefined || last.type !== 'DELETE' || last.rev <= w.rev)) {
          lost.push({ write: w, why: `acknowledged ${what} of ${w.key} at rev ${w.rev}; the key is gone without a later delete` });
          continue;
        }
      }
    }
  }
  return { ok: lost.length === 0, acked: acked.length, lost };
}

/** The state the history leads to: each key's last change, if a put. */
export function stateFromHistory(history: readonly HistoryEvent[]): Map<string, FinalKey> {
  const out = new Map<string, FinalKey>();
  for (const e of history) {
    if (e.type === 'PUT') out.set(e.key, { value: e.value ?? '', modRev: e.rev });
    else out.delete(e.key);
  }
  return out;
}
