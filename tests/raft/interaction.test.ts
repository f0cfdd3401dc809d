// Scripted interaction tests: each file under testdata/ is a script with its golden trace.
// Regenerate the traces after an intended change with: REWRITE=1 npx jest tests/raft/interaction

import * as fs from 'node:fs';
import * as path from 'node:path';
import { runFile } from './interaction/datadriven';
import { InteractionEnv, parseCommand } from './interaction/env';

const dir = path.join(__dirname, 'testdata');
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.txt')).sort();

describe('raft interaction scripts', () => {
  test.each(files)('%s', (file) => {
    const env = new InteractionEnv();
    const failures = runFile(path.join(dir, file), (command) => env.run(parseCommand(command)));
    expect(failures).toEqual([]);
  });
});
