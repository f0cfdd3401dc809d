// `skiff sim`: runs the deterministic Raft simulator over a range of seeds.

import type { Argv, CommandModule } from 'yargs';

import { simMain, type SimMainOptions } from '../../raft/sim';

/** Defaults and limits of the command line, kept together. */
export const simSeedsDefault = 100;
export const simSeedsMax = 1_000_000;
export const simNodesChoices = [3, 5] as const;
export type SimNodes = (typeof simNodesChoices)[number];

interface SimArgs {
  seeds?: number;
  seed?: number;
  nodes: number;
  json: boolean;
  trace: boolean;
}

/**
 * Resolves the command line into simulator options: `--seed S` alone runs that one seed;
 * `--seed S --seeds N` runs seeds S..S+N-1; `--seeds N` alone runs N seeds from the
 * simulator's own first seed; neither runs `simSeedsDefault` seeds.
 */
export function simOptions(args: SimArgs): SimMainOptions {
  const seeds = args.seeds ?? (args.seed === undefined ? simSeedsDefault : 1);
  const nodes = args.nodes === 5 ? 5 : 3;
  const options: SimMainOptions = { seeds, nodes, json: args.json };
  if (args.seed !== undefined) options.seed = args.seed;
  if (args.trace) options.trace = true;
  return options;
}

function checkSimArgs(args: SimArgs): true {
  if (args.seeds !== undefined) {
    if (!Number.isInteger(args.seeds) || args.seeds < 1 || args.seeds > simSeedsMax) {
      throw new Error(`--seeds must be an integer from 1 to ${simSeedsMax}`);
    }
  }
  if (args.seed !== undefined) {
    if (!Number.isSafeInteger(args.seed) || args.seed < 0) {
      throw new Error('--seed must be a non-negative integer');
    }
  }
  return true;
}

export const simCommand: CommandModule<object, SimArgs> = {
  command: 'sim',
  describe: 'Run the deterministic Raft simulator: faults, then a liveness check, per seed',
  builder: (yargs: Argv) =>
    yargs
      .option('seeds', {
        type: 'number',
        describe: `How many seeds to run (default ${simSeedsDefault}; 1 when --seed is given alone)`,
      })
      .option('seed', {
        type: 'number',
        describe: 'First seed; alone, replays just that seed',
      })
      .option('nodes', {
        type: 'number',
        choices: simNodesChoices,
        default: 3,
        describe: 'Cluster size',
      })
      .option('json', {
        type: 'boolean',
        default: false,
        describe: 'Print the result as JSON, on the last line printed',
      })
      .option('trace', {
        type: 'boolean',
        default: false,
        describe: 'Print every event of every seed to stderr (meant for one seed)',
      })
      .check(checkSimArgs)
      .example('$0 sim --seeds 1000', 'run seeds from the first one, 1000 of them')
      .example('$0 sim --seed 42', 'replay seed 42 alone')
      .example('$0 sim --seed 42 --trace', 'replay seed 42, printing every event')
      .example('$0 sim --seed 42 --seeds 10 --nodes 5', 'seeds 42..51 on 5 nodes') as Argv<SimArgs>,
  handler: (args) => {
    process.exitCode = simMain(simOptions(args));
  },
};
