// `npm run bench` — skiff against Debian's etcd, side by side, on this machine.
//
//   npm run bench                        every workload, full size (minutes; run it on a quiet machine)
//   npm run bench -- --quick             a few seconds per workload, small key counts (the CI smoke version)
//   npm run bench -- --workloads put,range,watch,failover,memory
//   npm run bench -- --runs 3            repeat everything and report medians
//   npm run bench -- --json              JSON on stdout instead of the table
//   npm run bench -- --out DIR           write the results file and chart to DIR (default bench/results)
//   npm run bench -- --no-save           write no results file
//   npm run bench -- --profile DIR       a V8 CPU profile of every skiff member in DIR (node --cpu-prof)
//   npm run bench -- --cold              no warm-up load: every level measured from its first request
//
// Progress goes to stderr; the table (or the JSON) to stdout.

import * as path from 'node:path';
import { hasProgram } from '../tests/helpers/cluster';
import { WorkloadName, workloadNames } from './params';
import { formatTable, resultsDir, toJson, writeResults } from './report';
import { runBench, stopActiveClusters } from './runner';

export interface CliOptions {
  quick: boolean;
  workloads: WorkloadName[];
  runs: number;
  json: boolean;
  outDir: string | undefined;
  /** --profile: CPU profiles of the skiff members go here. */
  profileDir?: string;
  /** --clients: only these client levels of put and range. */
  clientLevels?: number[];
  /** --cold: no warm-up load (BenchParams.warmupOps). */
  cold: boolean;
}

const usage = `usage: npm run bench -- [--quick] [--workloads ${workloadNames.join(',')}] [--runs N] [--json] [--out DIR | --no-save] [--profile DIR] [--clients 1,16,128] [--cold]`;

export function parseArgs(argv: readonly string[]): CliOptions {
  const o: CliOptions = { quick: false, workloads: [...workloadNames], runs: 1, json: false, outDir: resultsDir, cold: false };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].includes('=') ? [argv[i].slice(0, argv[i].indexOf('=')), argv[i].slice(argv[i].indexOf('=') + 1)] : [argv[i], undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${usage}`);
      return v;
    };
    switch (flag) {
      case '--quick':
        o.quick = true;
        break;
      case '--json':
        o.json = true;
        break;
      case '--cold':
        o.cold = true;
        break;
      case '--workloads': {
        const ws = value()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        for (const w of ws) if (!workloadNames.includes(w as WorkloadName)) throw new Error(`unknown workload "${w}"\n${usage}`);
        o.workloads = ws as WorkloadName[];
        break;
      }
      case '--runs': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1) throw new Error(`--runs takes a whole number >= 1\n${usage}`);
        o.runs = n;
        break;
      }
      case '--out':
        o.outDir = value();
        break;
      case '--no-save':
        o.outDir = undefined;
        break;
      case '--clients': {
        const levels = value()
          .split(',')
          .map((v) => Number(v.trim()));
        if (levels.length === 0 || levels.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--clients takes whole numbers >= 1, comma-separated\n${usage}`);
        o.clientLevels = levels;
        break;
      }
      case '--profile':
        o.profileDir = path.resolve(value());
        break;
      case '--help':
      case '-h':
        throw new Error(usage);
      default:
        throw new Error(`unknown option ${argv[i]}\n${usage}`);
    }
  }
  return o;
}

export async function main(argv: readonly string[]): Promise<number> {
  let opts: CliOptions;
  try {
    opts = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 2;
  }
  if (!hasProgram('etcd')) {
    process.stderr.write('etcd is not installed: apt-get install etcd-server (the benchmark compares against it)\n');
    return 2;
  }
  const onSignal = (): void => {
    process.stderr.write('\ninterrupted: stopping the clusters\n');
    void stopActiveClusters().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const result = await runBench({ quick: opts.quick, workloads: opts.workloads, runs: opts.runs, log: (line) => process.stderr.write(`${line}\n`), profileDir: opts.profileDir, cold: opts.cold, ...(opts.clientLevels ? { clientLevels: opts.clientLevels } : {}) });
  process.stdout.write(`${opts.json ? toJson(result) : formatTable(result)}\n`);
  if (opts.outDir !== undefined) {
    const files = writeResults(result, opts.outDir);
    process.stderr.write(`results: ${files.json}\nchart:   ${files.svg}\n`);
  }
  return result.checksOk ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`bench: ${e instanceof Error ? e.stack : String(e)}\n`);
      void stopActiveClusters().finally(() => process.exit(1));
    },
  );
}
