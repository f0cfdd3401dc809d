// A seed replays exactly: same seed, same trace, same result; another seed, another run.

import { runSeed } from '../../src/raft/sim';

describe('determinism', () => {
  test.each([3, 5] as const)('the same seed gives an identical trace twice (%i nodes)', (nodes) => {
    const a = runSeed({ seed: 7, nodes, verbose: true });
    const b = runSeed({ seed: 7, nodes, verbose: true });
    expect(a.trace!.length).toBeGreaterThan(1000);
    expect(b.trace).toEqual(a.trace);
    const { trace: _ta, ...restA } = a;
    const { trace: _tb, ...restB } = b;
    expect(restB).toEqual(restA);
  });

  test('a quiet run has the same trace hash as a verbose one', () => {
    const quiet = runSeed({ seed: 11, nodes: 3 });
    const verbose = runSeed({ seed: 11, nodes: 3, verbose: true });
    expect(quiet.traceHash).toBe(verbose.traceHash);
    expect(quiet.steps).toBe(verbose.steps);
  });

  test('different seeds give different runs', () => {
    const hashes = new Set([1, 2, 3, 4].map((seed) => runSeed({ seed, nodes: 3 }).traceHash));
    expect(hashes.size).toBe(4);
  });
});
