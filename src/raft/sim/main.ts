// `node dist/src/raft/sim/main.js [--seed S] [--seeds N] [--nodes 3|5] [--json] [--trace] [--until-failure[=checker]]`
// (what `npm run sim -- ...` runs). With --seed alone, replays that one seed.

import { simMain } from './index';

export function parseSimArgs(argv: readonly string[]): Parameters<typeof simMain>[0] {
  const opts: Parameters<typeof simMain>[0] = { seeds: 100, nodes: 3, json: false };
  let seedsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): number => {
      const v = inline ?? argv[++i];
      const n = Number(v);
      if (v === undefined || !Number.isInteger(n)) throw new Error(`${flag} needs an integer, got ${v}`);
      return n;
    };
    if (flag === '--seed') opts.seed = value();
    else if (flag === '--seeds') {
      opts.seeds = value();
      seedsGiven = true;
    } else if (flag === '--nodes') {
      const n = value();
      if (n !== 3 && n !== 5) throw new Error('--nodes must be 3 or 5');
      opts.nodes = n;
    } else if (flag === '--json') opts.json = true;
    else if (flag === '--trace') opts.trace = true;
    else if (flag === '--until-failure') opts.untilFailure = inline === 'checker' ? 'checker' : true;
    else throw new Error(`unknown option ${arg}`);
  }
  if (opts.seed !== undefined && !seedsGiven) opts.seeds = 1;
  return opts;
}

if (require.main === module) {
  try {
    process.exitCode = simMain(parseSimArgs(process.argv.slice(2)));
  } catch (e) {
    console.error(`sim: ${(e as Error).message}`);
    process.exitCode = 2;
  }
}
