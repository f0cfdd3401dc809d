// The replicated state machine of a simulated node: the hash chain of every entry applied so
// far. Two state machines agree iff they applied the same entries in the same order, and the
// chain travels in snapshots, so a node restored from a snapshot can be checked too.

import { Entry, EntryType } from '../types';
import { mix, mixString } from './trace';

/** Identity of an applied entry: its term, type and data (its index is its position). */
export function entryKey(e: Entry): string {
  return `${e.term}/${e.type === EntryType.ConfChange ? 'cc' : 'n'}/${bytesToLatin1(e.data)}`;
}

export function chainHash(previous: number, index: number, key: string): number {
  return mixString(mix(previous, index), key);
}

export class SimStateMachine {
  /** invariant: appliedIndex only grows, one entry at a time or by a snapshot restore. */
  appliedIndex = 0;
  hash = 0;

  static restore(data: Uint8Array, metadataIndex: number): SimStateMachine {
    const sm = new SimStateMachine();
    if (data.byteLength === 0) {
      // Bootstrap snapshot (index 0) or an empty storage: nothing applied yet.
      if (metadataIndex !== 0) throw new Error(`snapshot at ${metadataIndex} carries no state machine data`);
      return sm;
    }
    const decoded = JSON.parse(bytesToLatin1(data)) as { appliedIndex: number; hash: number };
    sm.appliedIndex = decoded.appliedIndex;
    sm.hash = decoded.hash;
    return sm;
  }

  apply(e: Entry): void {
    this.hash = chainHash(this.hash, e.index, entryKey(e));
    this.appliedIndex = e.index;
  }

  snapshotData(): Uint8Array {
    return latin1ToBytes(JSON.stringify({ appliedIndex: this.appliedIndex, hash: this.hash }));
  }
}

export function bytesToLatin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

export function latin1ToBytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i) & 0xff;
  return b;
}
