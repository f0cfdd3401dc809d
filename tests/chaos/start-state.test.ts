import { startState } from '../../src/chaos/cluster';

describe('startState (--initial-cluster-state of a member start)', () => {
  test('an original member restarts as it began', () => {
    const m = {};
    expect(startState(m, 'new')).toBe('new');
    expect(startState(m)).toBe('new');
  });

  test('a member added back restarts "existing" ever after (kill -9, heal, the final restart)', () => {
    const m = {};
    startState(m, 'new');
    expect(startState(m, 'existing')).toBe('existing');
    expect(startState(m)).toBe('existing');
    expect(startState(m)).toBe('existing');
  });
});
