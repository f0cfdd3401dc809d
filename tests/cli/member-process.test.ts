import * as fs from 'node:fs';
import * as path from 'node:path';

import { memberMallocEnv, memberNodeFlags, memberProcess, repoRoot, skiffBin } from '../../src/cli/member-process';

describe('memberProcess', () => {
  it('runs bin/skiff store with this node, the member flags first and the extra flags after them', () => {
    const p = memberProcess(['--name=m1', '--data-dir=/tmp/x'], ['--cpu-prof'], {});
    expect(p.command).toBe(process.execPath);
    expect(p.args).toEqual([...memberNodeFlags, '--cpu-prof', skiffBin, 'store', '--name=m1', '--data-dir=/tmp/x']);
    expect(memberNodeFlags).toContain('--max-semi-space-size=8');
    expect(memberNodeFlags).toContain('--single-threaded-gc');
  });

  it('sets the malloc settings, and a value already in the environment wins', () => {
    const p = memberProcess([], [], { PATH: '/bin', MALLOC_ARENA_MAX: '8' });
    expect(p.env).toEqual({ ...memberMallocEnv, PATH: '/bin', MALLOC_ARENA_MAX: '8' });
    expect(p.env.MALLOC_TRIM_THRESHOLD_).toBe('131072');
    expect(p.env.MALLOC_MMAP_THRESHOLD_).toBe('262144');
  });

  it('finds the repository root and the CLI entry point', () => {
    expect(JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).name).toBe('skiff');
    expect(fs.existsSync(skiffBin)).toBe(true);
  });
});
