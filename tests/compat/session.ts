// A scripted etcdctl session: a list of steps run in order against one cluster, producing
// a transcript of normalized outputs. The same session against etcd and against skiff
// must give the same transcript.
//
// Steps: an etcdctl call (optionally retried until its output settles), a revision mark
// (later steps compute revisions from it), a long-running etcdctl in the background
// (watch, elect) with steps run while it runs, a direct gRPC call (for what etcdctl 3.4
// cannot send), and waiting for a key to go (a lease's expiry).

import * as pb from '../../src/kv/proto';
import type { StoreCluster } from '../helpers/cluster';
import { EtcdctlProcess, EtcdctlResult, runEtcdctl } from '../helpers/etcdctl';
import { IdTable } from './normalize';

export type Marks = Record<string, number>;

/** What a step's arguments may depend on: revision marks, and lease ids seen so far. */
export interface StepContext {
  m: Marks;
  /** The n-th lease id (1-based, <lease:n> in transcripts) as etcdctl takes it: 16 hex digits. */
  lease(n: number): string;
}
type Dyn<T> = T | ((c: StepContext) => T);

export interface GrpcContext {
  kv: pb.ServiceClient<'KV'>;
  marks: Marks;
  /** Lease ids seen so far in the session, in order (decimal strings: etcd's exceed 2^53). */
  leases: string[];
}

export type Step =
  | {
      ctl: Dyn<string[]>;
      input?: Dyn<string>;
      /** Shown instead of the arguments and input (for big inputs). */
      label?: string;
      /** Applied after normalization (canonical orders). */
      canon?: (out: string) => string;
      /** Retried (up to 3 s) until the raw stdout satisfies this. */
      until?: (stdout: string) => boolean;
    }
  | { mark: string }
  | {
      bg: Dyn<string[]>;
      label?: string;
      ready: (stdout: string) => boolean;
      during: Step[];
      done: (stdout: string) => boolean;
      signal?: NodeJS.Signals;
    }
  | { grpc: string; run: (c: GrpcContext) => Promise<unknown> }
  | { gone: string; withinMs: number };

export interface TranscriptEntry {
  step: string;
  out: string;
}

/** Limits of a session run, kept together. */
export const sessionLimits = Object.freeze({
  backgroundWaitMs: 10_000,
  settleMs: 3_000,
  settlePollMs: 100,
  gonePollMs: 100,
});

const resolve = <T>(v: Dyn<T>, c: StepContext): T => (typeof v === 'function' ? (v as (c: StepContext) => T)(c) : v);

function describeResult(r: EtcdctlResult): string {
  return `${r.stdout}${r.stderr ? `[stderr]\n${r.stderr}` : ''}[exit ${r.code}]`;
}

/** An output for the transcript: stdout and stderr each normalized, then each canonicalized. */
type Output = string | EtcdctlResult;

function ctlLabel(args: string[], input: string | undefined): string {
  const shown = args.map((a) => (a === '' || /[\s"'$]/.test(a) ? JSON.stringify(a) : a)).join(' ');
  return `etcdctl ${shown}${input ? ` <<< ${JSON.stringify(input)}` : ''}`;
}

export class SessionRunner {
  readonly transcript: TranscriptEntry[] = [];
  private readonly marks: Marks = {};
  private ids!: IdTable;
  private readonly ep: string;

  constructor(private readonly cluster: StoreCluster) {
    this.ep = cluster.endpoints();
  }

  async run(steps: Step[]): Promise<TranscriptEntry[]> {
    const ml = await runEtcdctl(this.ep, ['member', 'list', '-w', 'json']);
    if (ml.code !== 0) throw new Error(`member list failed: ${ml.stderr}`);
    this.ids = IdTable.fromMemberListJson(ml.stdout, this.cluster.members);
    const kv = pb.createClient('KV', this.cluster.members[0].clientUrl.replace('http://', ''));
    try {
      await this.steps(steps, kv);
    } finally {
      kv.close();
    }
    return this.transcript;
  }

  private record(step: string, raw: Output, canon: (s: string) => string = (s) => s): void {
    const out =
      typeof raw === 'string'
        ? canon(this.ids.normalize(raw))
        : describeResult({ code: raw.code, stdout: raw.stdout && canon(this.ids.normalize(raw.stdout)), stderr: raw.stderr && canon(this.ids.normalize(raw.stderr)) });
    this.transcript.push({ step: this.ids.normalize(step), out });
  }

  private async steps(steps: Step[], kv: pb.ServiceClient<'KV'>): Promise<void> {
    for (const step of steps) await this.step(step, kv);
  }

  private async step(step: Step, kv: pb.ServiceClient<'KV'>): Promise<void> {
    const m = this.marks;
    const c: StepContext = {
      m,
      lease: (n) => {
        const id = this.ids.leaseIds()[n - 1];
        if (id === undefined) throw new Error(`no lease ${n} seen yet`);
        return id.toString(16).padStart(16, '0');
      },
    };
    if ('mark' in step) {
      const r = await runEtcdctl(this.ep, ['get', 'mark', '-w', 'json']);
      const rev = /"revision":(\d+)/.exec(r.stdout);
      if (!rev) throw new Error(`mark ${step.mark}: no revision in ${describeResult(r)}`);
      m[step.mark] = Number(rev[1]);
      this.transcript.push({ step: `mark ${step.mark}`, out: `revision ${rev[1]}` });
    } else if ('ctl' in step) {
      const args = resolve(step.ctl, c);
      const input = step.input === undefined ? undefined : resolve(step.input, c);
      let r = await runEtcdctl(this.ep, args, { input: input ?? '' });
      if (step.until) {
        const deadline = Date.now() + sessionLimits.settleMs;
        while (!step.until(r.stdout) && Date.now() < deadline) {
          await new Promise((res) => setTimeout(res, sessionLimits.settlePollMs));
          r = await runEtcdctl(this.ep, args, { input: input ?? '' });
        }
      }
      this.record(step.label ?? ctlLabel(args, input), r, step.canon);
    } else if ('bg' in step) {
      const args = resolve(step.bg, c);
      const label = `${step.label ?? ctlLabel(args, undefined)} &`;
      const p = EtcdctlProcess.start(this.ep, args);
      try {
        await p.waitForStdout(step.ready, sessionLimits.backgroundWaitMs, `${label}: ready`);
        await this.steps(step.during, kv);
        await p.waitForStdout(step.done, sessionLimits.backgroundWaitMs, `${label}: done`);
      } catch (e) {
        await p.stop('SIGKILL');
        throw e;
      }
      const signal = step.signal ?? 'SIGTERM';
      this.record(`${label} (then kill -${signal.slice(3)})`, await p.stop(signal));
    } else if ('grpc' in step) {
      let out: string;
      try {
        out = JSON.stringify(await step.run({ kv, marks: m, leases: this.ids.leaseIds().map(String) }));
      } catch (e) {
        const err = e as { code?: number; details?: string };
        out = `error ${err.code}: ${err.details ?? String(e)}`;
      }
      this.record(`grpc ${step.grpc}`, out);
    } else {
      const start = Date.now();
      for (;;) {
        const r = await runEtcdctl(this.ep, ['get', step.gone, '--keys-only']);
        if (r.code === 0 && r.stdout === '') break;
        if (Date.now() - start > step.withinMs) throw new Error(`${step.gone} still there after ${step.withinMs} ms`);
        await new Promise((res) => setTimeout(res, sessionLimits.gonePollMs));
      }
      this.transcript.push({ step: `wait until ${step.gone} is gone`, out: 'gone' });
    }
  }
}
