// Running Debian's etcdctl (API v3) from tests: one-shot commands that resolve with the
// exit code and both outputs (never throw on a non-zero exit), and long-running ones
// (watch, lease keep-alive, lock, elect) started as child processes that are stopped by
// pid. Every long-running process is tracked so that `stopAllEtcdctl()` in afterAll ends
// whatever a failed test left behind.

import { ChildProcess, spawn } from 'node:child_process';

export interface EtcdctlResult {
  /** Exit code; -1 when it was killed (by signal or by the timeout). */
  code: number;
  stdout: string;
  stderr: string;
}

/** Limits of the etcdctl runs, kept together. */
export const etcdctlLimits = Object.freeze({
  /** A one-shot command that takes longer than this is killed (SIGKILL) and reported as code -1. */
  commandTimeoutMs: 15_000,
  /** Grace period between SIGTERM and SIGKILL when stopping a long-running etcdctl. */
  stopGraceMs: 2_000,
  /** Output kept per stream of a long-running process. */
  outputBytesMax: 4 * 1024 * 1024,
});

const running = new Set<EtcdctlProcess>();

function etcdctlEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, ETCDCTL_API: '3', ...extra };
}

/** Runs `etcdctl --endpoints=<endpoints> args...` with `input` on stdin. */
export function runEtcdctl(endpoints: string, args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<EtcdctlResult> {
  const p = EtcdctlProcess.start(endpoints, args, { input: opts.input ?? '' });
  return p.exited(opts.timeoutMs ?? etcdctlLimits.commandTimeoutMs);
}

/** Like runEtcdctl, but resolves with stdout and rejects (with stderr) unless the exit code is 0. */
export async function etcdctlOk(endpoints: string, args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<string> {
  const r = await runEtcdctl(endpoints, args, opts);
  if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** One etcdctl child process; its outputs are collected as they come. */
export class EtcdctlProcess {
  readonly proc: ChildProcess;
  private out = '';
  private err = '';
  private exitCode: number | undefined;
  private readonly exit: Promise<number>;
  private readonly listeners = new Set<() => void>();

  private constructor(
    proc: ChildProcess,
    /** Leads its own process group (signals go to the group). */
    private readonly group: boolean,
  ) {
    this.proc = proc;
    proc.stdout!.setEncoding('utf8');
    proc.stderr!.setEncoding('utf8');
    proc.stdout!.on('data', (d: string) => {
      if (this.out.length < etcdctlLimits.outputBytesMax) this.out += d;
      this.notify();
    });
    proc.stderr!.on('data', (d: string) => {
      if (this.err.length < etcdctlLimits.outputBytesMax) this.err += d;
      this.notify();
    });
    // 'close' comes after both output streams ended: everything printed is in out/err.
    this.exit = new Promise((resolve) => {
      proc.on('close', (code) => {
        this.exitCode = code ?? -1;
        running.delete(this);
        this.notify();
        resolve(this.exitCode);
      });
      proc.on('error', (e) => {
        this.err += String(e);
        this.exitCode = -1;
        running.delete(this);
        this.notify();
        resolve(-1);
      });
    });
    running.add(this);
  }

  /**
   * Starts etcdctl. `input` (when given) is written to stdin, which is then closed; without
   * it stdin stays open (etcdctl's interactive commands wait on it). `detached` puts the
   * process in its own process group, so that stop() also ends what it started (lock's
   * command).
   */
  static start(endpoints: string, args: string[], opts: { input?: string | Buffer; env?: Record<string, string>; detached?: boolean } = {}): EtcdctlProcess {
    const proc = spawn('etcdctl', [`--endpoints=${endpoints}`, ...args], {
      env: etcdctlEnv(opts.env),
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: opts.detached ?? false,
    });
    const p = new EtcdctlProcess(proc, opts.detached ?? false);
    proc.stdin!.on('error', () => undefined); // the process may exit before reading it all
    if (opts.input !== undefined) proc.stdin!.end(opts.input);
    return p;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get stdout(): string {
    return this.out;
  }

  get stderr(): string {
    return this.err;
  }

  get done(): boolean {
    return this.exitCode !== undefined;
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  /** Resolves once `pred(stdout)` holds; rejects after timeoutMs or if the process exits first without it holding. */
  waitForStdout(pred: (stdout: string) => boolean, timeoutMs: number, what = 'output'): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (pred(this.out)) {
          finish();
          resolve(this.out);
        } else if (this.exitCode !== undefined) {
          finish();
          reject(new Error(`etcdctl exited (${this.exitCode}) before ${what}\nstdout: ${this.out}\nstderr: ${this.err}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\nstdout: ${this.out}\nstderr: ${this.err}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Waits for the exit (SIGKILL after timeoutMs); resolves with the exit code and outputs. */
  async exited(timeoutMs: number): Promise<EtcdctlResult> {
    const timer = setTimeout(() => this.signal('SIGKILL'), timeoutMs);
    try {
      const code = await this.exit;
      return { code, stdout: this.out, stderr: this.err };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a signal to the process (to its group when started detached), by pid. */
  signal(sig: NodeJS.Signals): void {
    if (this.exitCode !== undefined || this.proc.pid === undefined) return;
    try {
      process.kill(this.group ? -this.proc.pid : this.proc.pid, sig);
    } catch {
      // already gone
    }
  }

  /** Stops the process: `sig` (SIGTERM by default), then SIGKILL after a grace period. */
  async stop(sig: NodeJS.Signals = 'SIGTERM'): Promise<EtcdctlResult> {
    this.signal(sig);
    const timer = setTimeout(() => this.signal('SIGKILL'), etcdctlLimits.stopGraceMs);
    try {
      const code = await this.exit;
      return { code, stdout: this.out, stderr: this.err };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Stops every etcdctl process these helpers started that is still running (for afterAll). */
export async function stopAllEtcdctl(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop('SIGKILL')));
}
