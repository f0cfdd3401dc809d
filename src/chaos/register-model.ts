// The sequential specification of one key used as a register: read, write, and
// compare-and-swap (a txn comparing the key's mod_revision). Every write in a run writes a
// value no other write writes, so a mod_revision names exactly one written value and the
// compare "mod_revision == r" is the compare "value == the value written at r"; the model
// works on values, interned to integers.

import type { Model } from './linearizability';

/** The key does not exist (mod_revision 0). */
export const ABSENT = -1;
/** Any value: the state at the start of a window cut out of a longer history. */
export const UNKNOWN_STATE = -2;

export type RegisterInput =
  | { f: 'read' }
  | { f: 'write'; value: number }
  /** Succeeds, writing value, when the key holds expected (ABSENT: does not exist). */
  | { f: 'cas'; expected: number; value: number };

export type RegisterOutput =
  | { f: 'read'; value: number }
  | { f: 'write' }
  /** observed: the value the failed txn's failure branch read, when it read one. */
  | { f: 'cas'; ok: boolean; observed?: number };

export const registerModel: Model<number, RegisterInput, RegisterOutput> = {
  init: () => ABSENT,
  stateKey: (s) => s,
  step(s, input, output) {
    switch (input.f) {
      case 'read': {
        // A read with an unknown outcome tells nothing; callers leave those out.
        if (output === undefined || output.f !== 'read') return s;
        if (s === UNKNOWN_STATE) return output.value;
        return s === output.value ? s : undefined;
      }
      case 'write':
        return input.value;
      case 'cas': {
        if (output === undefined || output.f !== 'cas') {
          // Took effect at this point (the point "never" is the end of the history).
          if (s === UNKNOWN_STATE) return UNKNOWN_STATE;
          return s === input.expected ? input.value : s;
        }
        if (output.ok) return s === UNKNOWN_STATE || s === input.expected ? input.value : undefined;
        if (s === UNKNOWN_STATE) {
          if (output.observed === undefined) return UNKNOWN_STATE;
          return output.observed === input.expected ? undefined : output.observed;
        }
        if (s === input.expected) return undefined;
        if (output.observed !== undefined && output.observed !== s) return undefined;
        return s;
      }
    }
  },
};

/** Whether the op leaves the state as it found it whenever the model allows it (removing it from a history keeps a linearizable history linearizable). */
export function isReadOnly(input: RegisterInput, output: RegisterOutput | undefined): boolean {
  if (input.f === 'read') return true;
  return input.f === 'cas' && output !== undefined && output.f === 'cas' && !output.ok;
}
