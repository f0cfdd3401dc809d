// The `skiff` command. Every subcommand is one yargs CommandModule in src/cli/commands/,
// one concept per file; adding a command is adding its file and one line to `commands`.

import * as fs from 'node:fs';
import * as path from 'node:path';
import yargs from 'yargs/yargs';
import { hideBin } from 'yargs/helpers';
import type { CommandModule } from 'yargs';

import { simCommand } from './commands/sim';
import { normalizeGoFlags, storeCommand } from './commands/store';
import { clusterCommand } from './commands/cluster';
import { snapshotCommand } from './commands/snapshot';

const commands: ReadonlyArray<CommandModule<any, any>> = [clusterCommand, simCommand, snapshotCommand, storeCommand];

/**
 * The version in the project's package.json. Found by walking up from this file, because
 * the same code runs from src/cli (ts-jest) and from dist/src/cli (the build).
 */
function packageVersion(): string {
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (fs.existsSync(candidate)) {
      const pkg = JSON.parse(fs.readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'skiff' && typeof pkg.version === 'string') return pkg.version;
    }
    const parent = path.dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}

/** Runs the CLI on `argv` (the arguments after `node script`). Sets process.exitCode. */
export async function main(argv: string[]): Promise<void> {
  // `skiff store` takes etcd's flags, which Go also accepts with a single dash.
  if (argv[0] === 'store') argv = [argv[0], ...normalizeGoFlags(argv.slice(1))];
  let cli = yargs(argv)
    .scriptName('skiff')
    .usage('$0 <command> [options]')
    .version(packageVersion())
    .alias('version', 'v')
    .help()
    .alias('help', 'h')
    .strict()
    .showHelpOnFail(false, 'Run `skiff --help` (or `skiff <command> --help`) for usage.')
    .demandCommand(1, 'Name a command; see the list above.')
    .recommendCommands()
    .wrap(Math.min(100, process.stdout.columns || 100));
  for (const command of commands) cli = cli.command(command);
  await cli.parseAsync();
}

if (require.main === module) {
  void main(hideBin(process.argv));
}
