// `npm run chaos -- --seed S --duration 60 --nodes 3|5 --faults kill,pause,partition[,member]
//  [--target skiff|etcd] [--json]`: one chaos run; prints a summary per checker and, with
// --json, a last line of exactly the summary object. Exit code 0 only if every check passed.

import yargs from 'yargs';
import { faultKinds, FaultKind } from './faults';
import { runChaos } from './run';

export async function main(argv: string[]): Promise<number> {
  const a = await yargs(argv)
    .scriptName('npm run chaos --')
    .option('seed', { type: 'number', describe: 'Seed of the fault schedule and the clients (random if absent)' })
    .option('duration', { type: 'number', default: 60, describe: 'Seconds of faults and workload' })
    .option('nodes', { type: 'number', default: 3, choices: [3, 5], describe: 'Members' })
    .option('faults', { type: 'string', default: 'kill,pause,partition', describe: `Fault kinds, comma-separated: ${faultKinds.join(',')} (or none)` })
    .option('target', { type: 'string', default: 'skiff', choices: ['skiff', 'etcd'], describe: 'The store under test' })
    .option('json', { type: 'boolean', default: false, describe: 'End with one line of JSON: the summary' })
    .option('dir', { type: 'string', describe: 'Run directory (default: a new one under the temp dir)' })
    .option('keep-data', { type: 'boolean', default: false, describe: 'Keep the members\' data even if every check passes' })
    .option('election-timeout', { type: 'number', default: 1000, describe: 'Members\' --election-timeout (ms)' })
    .option('heartbeat-interval', { type: 'number', default: 100, describe: 'Members\' --heartbeat-interval (ms)' })
    .option('reads', { type: 'string', default: 'linearizable', choices: ['linearizable', 'serializable'], describe: 'Register reads; serializable ones may be stale (a self-check of the checker: it must fail)' })
    .option('quiet', { type: 'boolean', default: false, describe: 'No progress lines' })
    .strict()
    .help()
    .parseAsync();
  const faults = a.faults === 'none' ? [] : a.faults.split(',').map((s) => s.trim()).filter(Boolean);
  for (const f of faults) if (!faultKinds.includes(f as FaultKind)) throw new Error(`unknown fault kind "${f}" (known: ${faultKinds.join(', ')})`);
  const seed = a.seed ?? Math.floor(Math.random() * 2 ** 31);
  const result = await runChaos({
    seed,
    durationSec: a.duration,
    nodes: a.nodes,
    faults: faults as FaultKind[],
    target: a.target as 'skiff' | 'etcd',
    dir: a.dir,
    keepData: a['keep-data'],
    electionMs: a['election-timeout'],
    heartbeatMs: a['heartbeat-interval'],
    serializableReads: a.reads === 'serializable',
    log: a.quiet ? undefined : (line) => process.stderr.write(`${line}\n`),
  });
  for (const line of result.lines) process.stdout.write(`${line}\n`);
  process.stdout.write(`${result.passed ? 'PASSED' : 'FAILED'} (seed ${seed})\n`);
  if (a.json) process.stdout.write(`${JSON.stringify(result.summary)}\n`);
  return result.passed ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`chaos: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(2);
    },
  );
}
