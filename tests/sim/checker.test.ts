// The checkers themselves, on hand-made situations: each invariant must fire on a situation
// that breaks it (a checker that cannot fail is worthless) and stay quiet on one that does not.

import { Entry, EntryType } from '../../src/raft/types';
import { encodeConfChange } from '../../src/raft/confchange';
import { SafetyChecker, arrayLogView } from '../../src/raft/sim';
import { SimStateMachine, latin1ToBytes } from '../../src/raft/sim/state-machine';

function newChecker(): SafetyChecker {
  let step = 0;
  return new SafetyChecker({ seed: 42, step: () => step++, tick: () => 0 });
}

function entry(index: number, term: number, data = `e${index}`, type = EntryType.Normal): Entry {
  return { index, term, type, data: latin1ToBytes(data) };
}

function confChange(index: number, term: number): Entry {
  return { index, term, type: EntryType.ConfChange, data: encodeConfChange({ transition: 'auto', changes: [{ type: 'addLearner', nodeId: 9 }] }) };
}

function invariants(c: SafetyChecker): string[] {
  return c.violations.map((v) => v.invariant);
}

describe('election safety', () => {
  test('two leaders in one term is a violation, with the seed', () => {
    const c = newChecker();
    c.observeLeader(1, 5);
    c.observeLeader(1, 5);
    c.observeLeader(2, 6);
    expect(c.ok).toBe(true);
    c.observeLeader(3, 5);
    expect(invariants(c)).toEqual(['election-safety']);
    expect(c.violations[0].seed).toBe(42);
    expect(c.violations[0].detail).toContain('term 5 has two leaders: 1 and 3');
  });
});

describe('log matching', () => {
  test('same index and term with different data is a violation', () => {
    const c = newChecker();
    c.observeStoredEntry(1, entry(4, 2, 'a'), 2);
    c.observeStoredEntry(2, entry(4, 2, 'a'), 2);
    expect(c.ok).toBe(true);
    c.observeStoredEntry(3, entry(4, 2, 'b'), 2);
    expect(invariants(c)).toEqual(['log-matching']);
  });

  test('same index and term after different predecessors is a violation', () => {
    const c = newChecker();
    c.observeStoredEntry(1, entry(4, 3, 'a'), 2);
    c.observeStoredEntry(2, entry(4, 3, 'a'), 1);
    expect(invariants(c)).toEqual(['log-matching']);
  });

  test('different terms at one index are not a violation (uncommitted suffixes differ)', () => {
    const c = newChecker();
    c.observeStoredEntry(1, entry(4, 2, 'a'), 2);
    c.observeStoredEntry(2, entry(4, 3, 'b'), 2);
    expect(c.ok).toBe(true);
  });
});

describe('state machine safety', () => {
  test('a divergent applied sequence is a violation', () => {
    const c = newChecker();
    c.observeApply(1, 0, entry(1, 1, 'x'));
    c.observeApply(1, 1, entry(2, 1, 'y'));
    c.observeApply(2, 0, entry(1, 1, 'x'));
    expect(c.ok).toBe(true);
    c.observeApply(2, 1, entry(2, 1, 'z'));
    expect(invariants(c)).toEqual(['state-machine-safety']);
  });

  test('the same data from another term at an index is a divergence too', () => {
    const c = newChecker();
    c.observeApply(1, 0, entry(1, 1, ''));
    c.observeApply(2, 0, entry(1, 2, ''));
    expect(invariants(c)).toEqual(['state-machine-safety']);
  });

  test('entries handed out as committed join the history before anyone applies them', () => {
    const c = newChecker();
    c.observeCommitted(1, [entry(1, 1, 'x'), entry(2, 1, 'y')]);
    expect(c.historyLength).toBe(2);
    c.observeApply(2, 0, entry(1, 1, 'x'));
    c.observeApply(2, 1, entry(2, 2, 'w'));
    expect(invariants(c)).toEqual(['state-machine-safety']);
  });

  test('skipping an index is a violation', () => {
    const c = newChecker();
    c.observeApply(1, 0, entry(1, 1));
    c.observeApply(1, 1, entry(3, 1));
    expect(invariants(c)).toEqual(['state-machine-safety']);
  });

  test('a snapshot restore must match the history', () => {
    const c = newChecker();
    const good = new SimStateMachine();
    for (const e of [entry(1, 1, 'x'), entry(2, 1, 'y')]) {
      c.observeApply(1, good.appliedIndex, e);
      good.apply(e);
    }
    const restored = SimStateMachine.restore(good.snapshotData(), 2);
    c.observeRestore(2, 0, restored.appliedIndex, restored.hash);
    expect(c.ok).toBe(true);
    const bad = new SimStateMachine();
    bad.apply(entry(1, 1, 'x'));
    bad.apply(entry(2, 1, 'not y'));
    c.observeRestore(3, 0, bad.appliedIndex, bad.hash);
    expect(invariants(c)).toEqual(['state-machine-safety']);
  });

  test('restoring an older snapshot over a newer state is a violation', () => {
    const c = newChecker();
    c.observeApply(1, 0, entry(1, 1));
    c.observeApply(1, 1, entry(2, 1));
    c.observeRestore(1, 2, 1, 0);
    expect(invariants(c)).toEqual(['state-machine-safety']);
  });
});

describe('leader completeness', () => {
  test('a new leader missing an entry committed in an earlier term is a violation', () => {
    const c = newChecker();
    c.observeApply(1, 0, entry(1, 1, 'a'));
    c.observeApply(1, 1, entry(2, 2, 'b'));
    c.observeLeader(3, 4);
    expect(c.leaderLogCheckPending(3, 4)).toBe(true);
    c.checkLeaderLog(3, 4, arrayLogView([entry(1, 1, 'a'), entry(2, 3, 'c'), entry(3, 4, '')]));
    expect(invariants(c)).toEqual(['leader-completeness']);
    expect(c.violations[0].detail).toContain('lacks committed entry 2');
  });

  test('a complete log, or one whose snapshot covers the entries, passes', () => {
    const c = newChecker();
    c.observeApply(1, 0, entry(1, 1, 'a'));
    c.observeApply(1, 1, entry(2, 2, 'b'));
    c.observeLeader(3, 4);
    c.checkLeaderLog(3, 4, arrayLogView([entry(1, 1, 'a'), entry(2, 2, 'b'), entry(3, 4, '')]));
    c.observeLeader(2, 5);
    c.checkLeaderLog(2, 5, arrayLogView([entry(3, 4, '')], { index: 2, term: 2 }));
    expect(c.ok).toBe(true);
    expect(c.leaderLogCheckPending(3, 4)).toBe(false);
  });

  test('a snapshot that is not on the history is a violation', () => {
    const c = newChecker();
    c.observeApply(1, 0, entry(1, 1, 'a'));
    c.observeApply(1, 1, entry(2, 2, 'b'));
    c.observeLeader(3, 4);
    c.checkLeaderLog(3, 4, arrayLogView([], { index: 2, term: 3 }));
    expect(invariants(c)).toEqual(['leader-completeness']);
  });

  test('entries committed after the election are not required', () => {
    const c = newChecker();
    c.observeApply(1, 0, entry(1, 1, 'a'));
    c.observeLeader(3, 4);
    c.observeApply(1, 1, entry(2, 2, 'b')); // committed later (by a later leader, say)
    c.checkLeaderLog(3, 4, arrayLogView([entry(1, 1, 'a')]));
    expect(c.ok).toBe(true);
  });
});

describe('linearizable reads', () => {
  test('a read index below a commit made before the read was asked is a violation', () => {
    const c = newChecker();
    c.observeCommit(7);
    c.observeReadRequest('r1');
    c.observeCommit(9);
    c.observeReadState(2, { index: 7, context: 'r1' });
    expect(c.ok).toBe(true);
    c.observeReadRequest('r2');
    c.observeReadState(2, { index: 8, context: 'r2' });
    expect(invariants(c)).toEqual(['linearizable-read']);
    expect(c.violations[0].detail).toContain('9 was committed before it was asked');
  });

  test('a read state nobody asked for is a violation', () => {
    const c = newChecker();
    c.observeReadState(1, { index: 3, context: 'never-asked' });
    expect(invariants(c)).toEqual(['linearizable-read']);
  });
});

describe('configuration changes', () => {
  test('a leader appending a conf change while another is uncommitted is a violation', () => {
    const c = newChecker();
    const log = [entry(1, 1), confChange(2, 1), confChange(3, 1)];
    c.observeLeaderEntries(1, 1, [log[2]], arrayLogView(log), 2);
    expect(c.ok).toBe(true);
    c.observeLeaderEntries(1, 1, [log[2]], arrayLogView(log), 1);
    expect(invariants(c)).toEqual(['conf-change-safety']);
  });

  test('conf changes of earlier leaders, or committed ones, do not count', () => {
    const c = newChecker();
    const log = [confChange(1, 1), confChange(2, 1), entry(3, 2), confChange(4, 2)];
    c.observeLeaderEntries(1, 2, [log[1]], arrayLogView(log), 0); // an entry of term 1: not this leader's
    c.observeLeaderEntries(1, 2, [log[3]], arrayLogView(log), 2);
    expect(c.ok).toBe(true);
  });
});
