// A client in its own process, to be killed with SIGKILL: what a crashed application looks
// like to the store (its connections drop, its keep-alives stop). Closing an in-process
// etcd3 client is not the same: etcd3's close() leaves open lease keep-alive streams running.

import { ChildProcess, spawn } from 'node:child_process';
import { repoRoot } from './cluster';

export interface ClientProcess {
  proc: ChildProcess;
  /** Resolves with what the script passed to ready(); rejects if it exits first or times out. */
  ready(timeoutMs?: number): Promise<string>;
  /** kill -9, resolves once the process exited. */
  kill(): Promise<void>;
}

const running = new Set<ChildProcess>();

/**
 * Runs `body` (an async function body) in a new Node.js process with `client` (an Etcd3
 * client on `endpoints`) and `ready(value)` in scope.
 */
export function spawnClientScript(endpoints: string[], body: string): ClientProcess {
  const code = [
    `const { Etcd3 } = require('etcd3');`,
    `const client = new Etcd3({ hosts: ${JSON.stringify(endpoints)} });`,
    `const ready = (v) => process.stdout.write('READY ' + String(v) + '\\n');`,
    `(async () => { ${body} })().catch((e) => { console.error(e); process.exit(1); });`,
  ].join('\n');
  const proc = spawn(process.execPath, ['-e', code], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let stdout = '';
  let stderr = '';
  let exit: string | undefined;
  proc.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  proc.once('exit', (code, signal) => {
    running.delete(proc);
    exit = String(code ?? signal);
  });
  const kill = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGKILL');
    await exited;
  };
  const ready = async (timeoutMs = 10_000): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /READY (.*)\n/.exec(stdout);
      if (m) return m[1];
      if (exit !== undefined) throw new Error(`client process exited (${exit}) before ready; stderr: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`client process not ready within ${timeoutMs} ms; stderr: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { proc, ready, kill };
}

/** Kills every client process still running (for afterAll). */
export async function killClientProcesses(): Promise<void> {
  await Promise.all(
    [...running].map(async (p) => {
      if (p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill('SIGKILL');
      await exited;
    }),
  );
}
