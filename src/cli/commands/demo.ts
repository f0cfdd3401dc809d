// `skiff demo`: what `npm start` runs. Today the project's working part is the Raft core and
// its simulator, so the demo runs a short simulation on 3 and on 5 nodes and says what next.

import type { CommandModule } from 'yargs';

import { simMain } from '../../raft/sim';

/** The demo's runs, kept small so that it ends within seconds. */
export const demoRuns = [
  { nodes: 3, seeds: 50 },
  { nodes: 5, seeds: 20 },
] as const;

export const demoCommand: CommandModule = {
  command: 'demo',
  describe: 'Run a short Raft simulation (50 seeds on 3 nodes, 20 on 5) and print a summary',
  handler: () => {
    console.log('skiff demo: the Raft core under the deterministic simulator.');
    console.log('Each seed runs a cluster through message delay, loss, duplication, reordering,');
    console.log('partitions and crashes while safety is checked at every step, then heals it');
    console.log('and checks that a leader is elected and proposals commit.\n');

    const results: { nodes: number; seeds: number; exitCode: number }[] = [];
    for (const run of demoRuns) {
      console.log(`--- ${run.seeds} seeds on ${run.nodes} nodes ---`);
      const exitCode = simMain({ seeds: run.seeds, nodes: run.nodes, json: false });
      results.push({ nodes: run.nodes, seeds: run.seeds, exitCode });
      console.log('');
    }

    console.log('Summary:');
    for (const result of results) {
      const verdict = result.exitCode === 0 ? 'ok' : 'FAILED (each failing seed is printed above with its replay command)';
      console.log(`  ${result.nodes} nodes, ${result.seeds} seeds: ${verdict}`);
    }
    console.log('\nTry next:');
    console.log('  npm run sim -- --seeds 1000             more seeds');
    console.log('  npm run sim -- --seeds 200 --nodes 5    a 5-member cluster');
    console.log('  npm run sim -- --seed 42                replay one seed');
    console.log('  npm run sim -- --seed 42 --trace        ... printing every event to stderr');
    console.log('  npm test                                the test suite');

    process.exitCode = results.every((result) => result.exitCode === 0) ? 0 : 1;
  },
};
