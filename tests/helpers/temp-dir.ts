// A temporary directory for one test body, removed afterwards even when the body fails.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export async function withTempDir(prefix: string, f: (dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  try {
    await f(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
