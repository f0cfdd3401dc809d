// One chaos run: start the cluster behind the fault proxies, run the workloads while the
// fault schedule runs, heal, let the workloads go on a moment, stop them, let watchers
// catch up and leases expire, kill -9 every member and start them all again, read back
// every member's history and the final state, and run the checkers.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkAckedWrites, FinalKey, stateFromHistory, AckedReport } from './acked-checker';
import { AppendReport, checkAppends } from './append-checker';
import { ClientPool, sleep } from './clients';
import { ChaosCluster, killAllNow, StoreKind } from './cluster';
import { FaultNetwork } from './fault-proxy';
import { defaultFaultTiming, FaultKind, Nemesis } from './faults';
import { chaosPrefix, firstAnswer, memberRevision, readHistory, readState } from './final-read';
import { HistoryEvent, nowMs, Recorder } from './history';
import { checkLeases, expiryDeadlineMs, LeaseReport, writeOutages } from './lease-checker';
import { LeaderMonitor } from './monitor';
import { checkRegisters, RegisterReport } from './register-checker';
import { Rng } from './rng';
import { socketOwnersAvailable } from './socket-owner';
import { appendKeys, runAppendClient } from './workload-append';
import { LeaseWorkloadOptions, runLeaseGranter, runLeaseKeeper, runLeaseObserver } from './workload-lease';
import { registerKeys, runRegisterClient, WorkloadContext } from './workload-register';
import { currentRevision, runWatchWriter, startWatcher, watchPrefix } from './workload-watch';
import { checkWatchers, HistoryComparer, WatchReport } from './watch-checker';

/**
 * A gap this long between acknowledged writes is an outage for the lease bound (the
 * workloads acknowledge writes every few milliseconds while the cluster has a quorum).
 */
const writeOutageMinMs = 1000;

export interface ChaosOptions {
  seed: number;
  durationSec: number;
  nodes: number;
  faults: FaultKind[];
  target: StoreKind;
  /** Run directory (members' data and logs, history, witnesses); a new temporary one if absent. */
  dir?: string;
  /** Keep the members' data even when every check passes. */
  keepData?: boolean;
  heartbeatMs?: number;
  electionMs?: number;
  opTimeoutMs?: number;
  thinkMs?: number;
  registerClients?: number;
  registerKeys?: number;
  appendClients?: number;
  appendKeys?: number;
  watchers?: number;
  watchKeys?: number;
  leaseTtlSec?: number;
  leaseKeepers?: number;
  /** Self-check: register reads serializable (stale reads allowed), which the checker must catch. */
  serializableReads?: boolean;
  /** Progress lines (the summary is returned, not logged). */
  log?: (line: string) => void;
}

export interface ChaosSummary {
  ops: number;
  linearizable: boolean;
  lost_acked: number;
  watch_ok: boolean;
  leases_ok: boolean;
  failovers: number;
  failover_ms_p50: number;
  failover_ms_max: number;
}

export interface ChaosResult {
  passed: boolean;
  summary: ChaosSummary;
  /** One line per checker, and the run's facts. */
  lines: string[];
  dir: string;
  register?: RegisterReport;
  append?: AppendReport;
  watch?: WatchReport;
  acked?: AckedReport;
  leases?: LeaseReport;
}

export const runDefaults = Object.freeze({
  heartbeatMs: 100,
  electionMs: 1000,
  opTimeoutMs: 2000,
  thinkMs: 2,
  registerClients: 6,
  registerKeys: 5,
  appendClients: 3,
  appendKeys: 4,
  watchers: 3,
  watchKeys: 8,
  leaseTtlSec: 3,
  leaseKeepers: 2,
  /** The workloads go on this long on the healed cluster before they stop. */
  settleMs: 3000,
  startupMs: 30_000,
  /** After the full restart: members healthy, caught up, and histories read. */
  restartMs: 60_000,
  historyReadMs: 300_000,
  /** Lease expiry slack beyond the election timeout: check interval, commit, a busy machine. */
  leaseSlackMs: 1500,
});

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const p = { ...runDefaults, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) } as typeof runDefaults & ChaosOptions;
  if (!socketOwnersAvailable()) throw new Error('the fault proxy needs /proc (Linux) to tell which member opened a connection');
  const dir = o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), `skiff-chaos-${o.target}-${o.seed}-`));
  fs.mkdirSync(dir, { recursive: true });
  const logFile = fs.openSync(path.join(dir, 'chaos.log'), 'a');
  let originMs = nowMs();
  const log = (line: string): void => {
    const text = `[${((nowMs() - originMs) / 1000).toFixed(1).padStart(6)}s] ${line}`;
    fs.writeSync(logFile, `${text}\n`);
    o.log?.(text);
  };
  const rng = new Rng(o.seed);
  const network = new FaultNetwork(log);
  const onSignal = (sig: NodeJS.Signals): void => {
    killAllNow();
    process.stderr.write(`chaos: ${sig}: every member stopped; run directory ${dir}\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.on('exit', killAllNow);

  let cluster: ChaosCluster | undefined;
  let pool: ClientPool | undefined;
  let monitor: LeaderMonitor | undefined;
  const lines: string[] = [];
  const problems: string[] = [];
  let removeData = false;
  try {
    log(`chaos: ${o.target}, ${o.nodes} members, seed ${o.seed}, ${o.durationSec} s, faults ${o.faults.join(',') || 'none'}; run directory ${dir}`);
    cluster = await ChaosCluster.start({ kind: o.target, nodes: o.nodes, dir, heartbeatMs: p.heartbeatMs, electionMs: p.electionMs, network, log });
    if (!(await cluster.waitHealthy(p.startupMs))) throw new Error(`the cluster did not become healthy within ${p.startupMs} ms; see the member logs in ${dir}`);
    pool = new ClientPool(cluster.members.map((_, i) => (cluster as ChaosCluster).address(i)));
    monitor = new LeaderMonitor(cluster, pool);
    monitor.start();
    const rec = new Recorder();
    originMs = nowMs();
    log('cluster up; workloads start');

    let writesStopped = false;
    const ctx: WorkloadContext = { pool, rec, opTimeoutMs: p.opTimeoutMs, thinkMs: p.thinkMs, serializableReads: o.serializableReads === true, stopped: () => writesStopped };
    const leaseOptions: LeaseWorkloadOptions = { ttlSec: p.leaseTtlSec, grantEveryMs: 700, keepAliveEveryMs: Math.max(200, Math.floor((p.leaseTtlSec * 1000) / 4)), observeEveryMs: 250 };
    const rKeys = registerKeys(p.registerKeys);
    const writers: Promise<void>[] = [];
    let client = 0;
    for (let i = 0; i < p.registerClients; i++) writers.push(runRegisterClient(ctx, client++, rng.fork(), rKeys));
    for (let i = 0; i < p.appendClients; i++) writers.push(runAppendClient(ctx, client++, rng.fork(), () => appendKeys(p.appendKeys, nowMs() - originMs)));
    writers.push(runWatchWriter(ctx, client++, rng.fork(), p.watchKeys));
    writers.push(runLeaseGranter(ctx, rng.fork(), leaseOptions));
    for (let i = 0; i < p.leaseKeepers; i++) writers.push(runLeaseKeeper(ctx, i, rng.fork(), leaseOptions));
    let observing = true;
    const observer = runLeaseObserver(ctx, leaseOptions, () => !observing);
    const watchers = Array.from({ length: p.watchers }, (_, w) => startWatcher(ctx, w, watchPrefix));

    const nemesis = new Nemesis(cluster, network, monitor, pool, rng.fork(), o.faults, defaultFaultTiming, log);
    await nemesis.run(originMs + o.durationSec * 1000);
    log('faults over; healing');
    await nemesis.healAll();
    if (!(await cluster.waitHealthy(p.restartMs))) problems.push('the cluster was not healthy after the faults were healed');
    const healedMs = nowMs();
    await sleep(p.settleMs);
    writesStopped = true;
    await Promise.all(writers);
    const ackedAfterHeal = rec.writeAcks.filter((w) => w.invokeMs >= healedMs).length;
    log(`workloads stopped; ${ackedAfterHeal} writes acknowledged after healing`);
    if (ackedAfterHeal === 0) problems.push('no write was acknowledged after the faults were healed');

    // Watchers catch up to the current revision; leases expire.
    const revNow = (await currentRevision(ctx)) ?? rec.latestWatchedRev;
    await Promise.all(watchers.map((w) => w.finish(revNow)));
    const bound = p.electionMs + p.leaseSlackMs;
    const termRises = (): number[] => [...(monitor?.termRises ?? []), ...rec.termRises].sort((a, b) => a - b);
    // Leader faults of the schedule, stretches in which no member named a leader, and
    // stretches in which no write was acknowledged (no quorum, whoever led).
    const outages = (): { startMs: number; endMs: number; what: string }[] =>
      writeOutages(rec.writeAcks.map((w) => w.ackMs), writeOutageMinMs).map((o) => ({ ...o, what: 'no write acknowledged' }));
    const disruptions = (): { startMs: number; endMs: number; what: string }[] => [...nemesis.leaderDisruptions, ...(monitor?.leaderless.stretches ?? []), ...outages()].sort((a, b) => a.startMs - b.startMs);
    const lastDeadline = Math.max(0, ...rec.leases.filter((l) => !l.keepAlive).map((l) => expiryDeadlineMs(l, termRises(), bound, disruptions())));
    while (nowMs() < lastDeadline + 1000) await sleep(200);
    observing = false;
    await observer;
    monitor.stop();
    log('watchers caught up, leases expired; kill -9 every member and start them again');

    // Every member killed at once and started again: acknowledged writes must survive.
    // Members removed whose add back never went through are not members: not started, not read.
    const finalMembers = nemesis.members();
    await cluster.stopAll();
    for (const i of finalMembers) cluster.spawn(i);
    let history: HistoryEvent[] | undefined;
    let finalState: Map<string, FinalKey> | undefined;
    const restartDeadline = nowMs() + p.restartMs;
    // The first member's history is kept; the others are compared with it as they arrive.
    const divergence: string[] = [];
    let membersRead = 0;
    let firstRead = '';
    try {
      if (!(await cluster.waitHealthy(p.restartMs, finalMembers))) throw new Error('members not healthy after the full restart');
      // A lease the old leader had not revoked yet gets its TTL again from the new one, and
      // its revoke would land while the members are read one after another (seen: one member
      // read without the lease's delete, the others with it). Let those revokes happen first.
      const ttlMaxMs = Math.max(0, ...rec.leases.map((l) => l.ttlSec * 1000));
      if (ttlMaxMs > 0) await sleep(ttlMaxMs + p.electionMs + p.leaseSlackMs);
      let finalRev: number | undefined;
      while (finalRev === undefined && nowMs() < restartDeadline) {
        finalRev = await currentRevision(ctx);
        if (finalRev === undefined) await sleep(200);
      }
      if (finalRev === undefined) throw new Error('no linearizable read succeeded after the full restart');
      for (const i of finalMembers) {
        while ((await memberRevision(pool.members[i], 2000).catch(() => 0)) < finalRev) {
          if (nowMs() > restartDeadline) throw new Error(`${cluster.members[i].name} did not catch up to revision ${finalRev}`);
          await sleep(200);
        }
        const name = cluster.members[i].name;
        if (history === undefined) {
          history = await readHistory(pool.members[i], finalRev, p.historyReadMs);
          firstRead = name;
        } else {
          const c = new HistoryComparer({ member: firstRead, events: history }, name);
          await readHistory(pool.members[i], finalRev, p.historyReadMs, (e) => c.push(e));
          const d = c.result();
          if (d !== undefined) divergence.push(d);
        }
        membersRead++;
      }
      // Its own deadline: reading long histories back can take longer than restartMs.
      const readPool = pool;
      const state = await firstAnswer(finalMembers, (i) => readState(readPool.members[i], chaosPrefix, 5000), nowMs() + p.restartMs, nowMs);
      if (state === undefined) throw new Error('the final state could not be read');
      finalState = state.kvs;
    } catch (e) {
      problems.push(`reading back after the full restart: ${String(e)}`);
      log(`reading back failed: ${String(e)}`);
    }
    problems.push(...divergence.map((d) => `replicas differ: ${d}`));
    if (history !== undefined && finalState !== undefined) {
      const replayed = stateFromHistory(history.filter((e) => e.key.startsWith(chaosPrefix)));
      const diffs: string[] = [];
      for (const [k, v] of replayed) {
        const f = finalState.get(k);
        if (f === undefined || f.modRev !== v.modRev || f.value !== v.value) diffs.push(`${k}: history says ${v.value}@${v.modRev}, the read ${f ? `${f.value}@${f.modRev}` : 'nothing'}`);
      }
      for (const k of finalState.keys()) if (!replayed.has(k)) diffs.push(`${k}: read, but the history deleted it or never had it`);
      problems.push(...diffs.slice(0, 10).map((d) => `final state vs history: ${d}`));
    }
    log('checking');

    // Checkers.
    const inHistory = new Set<string>();
    for (const e of history ?? []) if (e.type === 'PUT') inHistory.add(`${e.key}\u0000${e.value}`);
    const register = checkRegisters(rec.registerOps, {
      applied: history === undefined ? undefined : (key, value) => inHistory.has(`${key}\u0000${value}`),
      outDir: dir,
      originMs,
    });
    const readBack = history !== undefined && finalState !== undefined;
    const aKeys = [...new Set(rec.appendOps.flatMap((a) => a.keys))];
    const finalValues = new Map<string, string | null>(aKeys.map((k) => [k, finalState?.get(k)?.value ?? null]));
    const append = readBack ? checkAppends(rec.appendOps, finalValues) : undefined;
    const watch = readBack ? checkWatchers({ watchers: watchers.map((w) => w.record), coveredRevs: watchers.map((w) => w.coveredRev()), history: history ?? [] }) : undefined;
    const acked = readBack ? checkAckedWrites(rec.acked, history, finalState) : undefined;
    // Nothing read back: no acknowledged write can be shown to have survived.
    const lostAcked = acked !== undefined ? acked.lost.length : rec.acked.length;
    const leases = checkLeases({ leases: rec.leases, observations: rec.leaseObservations, termRises: termRises(), disruptions: disruptions(), electionMs: p.electionMs, slackMs: p.leaseSlackMs, originMs });

    // Failovers: from a leader's kill or isolation to the next acknowledged write sent after it.
    const acks = [...rec.writeAcks].sort((a, b) => a.invokeMs - b.invokeMs);
    const failovers: { ms: number; atMs: number; what: string }[] = [];
    const unrecovered: string[] = [];
    for (const f of nemesis.failoverStarts) {
      let first = Infinity;
      for (const a of acks) if (a.invokeMs >= f.atMs && a.ackMs < first) first = a.ackMs;
      if (first === Infinity) unrecovered.push(f.what);
      else failovers.push({ ms: first - f.atMs, atMs: f.atMs, what: f.what });
    }
    failovers.sort((a, b) => a.ms - b.ms);
    const failoverMs = failovers.map((f) => f.ms);

    const memberOk = cluster.unexpectedExits.length === 0;
    const linearizable = register.ok && append?.ok === true;
    const summary: ChaosSummary = {
      ops: register.ops,
      linearizable,
      lost_acked: lostAcked,
      watch_ok: watch?.ok === true,
      leases_ok: leases.ok,
      failovers: failoverMs.length,
      failover_ms_p50: Math.round(percentile(failoverMs, 50)),
      failover_ms_max: Math.round(failoverMs.length > 0 ? failoverMs[failoverMs.length - 1] : 0),
    };
    const passed = linearizable && lostAcked === 0 && watch?.ok === true && leases.ok && memberOk && problems.length === 0;

    const ok = (b: boolean): string => (b ? 'ok' : 'FAILED');
    const byKind = new Map<string, number>();
    for (const e of nemesis.events) byKind.set(e.kind, (byKind.get(e.kind) ?? 0) + 1);
    lines.push(`chaos: ${o.target}, ${o.nodes} members, seed ${o.seed}, ${o.durationSec} s, faults ${o.faults.join(',') || 'none'}`);
    lines.push(`faults: ${nemesis.events.length} (${[...byKind].map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}); failovers ${failoverMs.length}: p50 ${summary.failover_ms_p50} ms, max ${summary.failover_ms_max} ms [${failoverMs.map((x) => Math.round(x)).join(', ')}]${unrecovered.length ? `; ${unrecovered.length} with no acknowledged write after` : ''}`);
    // The slowest ones, with what started them: a long one usually overlaps another fault.
    for (const f of failovers.slice(-3).reverse()) lines.push(`  failover of ${Math.round(f.ms)} ms from ${((f.atMs - originMs) / 1000).toFixed(1)} s: ${f.what}`);
    for (const n of nemesis.notes) lines.push(`note: ${n}`);
    const slowest = register.keys.reduce((m, k) => Math.max(m, k.elapsedMs), 0);
    lines.push(
      `linearizability: ${ok(register.ok)} - ${register.ops} ops on ${register.keys.length} keys; unknown outcome: ${register.droppedUnapplied} never applied or never seen, ${register.resolved} seen applied, ${register.unknownKept} open; slowest key ${(slowest / 1000).toFixed(2)} s`,
    );
    for (const k of register.keys.filter((x) => x.verdict !== 'ok')) lines.push(`  ${k.key}: ${k.verdict}${k.reason ? ` (${k.reason})` : ''}${k.witnessFile ? `; smallest failing sub-history (${k.witnessOps} ops): ${k.witnessFile}` : ''}`);
    for (const a of register.anomalies.slice(0, 10)) lines.push(`  revision anomaly: ${a}`);
    const unchecked = 'NOT CHECKED - nothing could be read back after the full restart (see history)';
    if (append === undefined) lines.push(`append: ${unchecked}`);
    else {
      lines.push(`append: ${ok(append.ok)} - ${append.appends} txns, ${append.committed} elements committed`);
      for (const pr of append.problems.slice(0, 10)) lines.push(`  ${pr}`);
    }
    if (watch === undefined) lines.push(`watch: ${unchecked}`);
    else {
      const reconnects = watch.watchers.reduce((s, w) => s + w.segments - 1, 0);
      lines.push(`watch: ${ok(watch.ok)} - ${watch.watchers.length} watchers, ${watch.watchers.map((w) => w.events).join('/')} events, ${reconnects} reconnects`);
      for (const pr of watch.problems.slice(0, 15)) lines.push(`  watcher ${pr.watcher}: ${pr.kind}: ${pr.detail}`);
    }
    if (acked === undefined) lines.push(`acknowledged writes: ${unchecked}; all ${rec.acked.length} count as lost`);
    else {
      lines.push(`acknowledged writes: ${ok(lostAcked === 0)} - ${acked.acked} acknowledged, ${lostAcked} lost (checked after kill -9 of every member and a restart)`);
      for (const l of acked.lost.slice(0, 10)) lines.push(`  ${l.why} (${l.write.source})`);
    }
    lines.push(`leases: ${ok(leases.ok)} - ${leases.expiring} expiring (${leases.expiryChecked} past their deadline and checked), ${leases.keptAlive} kept alive, ${leases.observations} reads`);
    for (const pr of leases.problems.slice(0, 10)) lines.push(`  lease ${pr.lease} (${pr.key}): ${pr.kind}: ${pr.detail}`);
    lines.push(`history: ${ok(problems.length === 0)} - ${membersRead} members read back, ${history?.length ?? 0} events${divergence.length === 0 && membersRead > 1 ? ', identical' : ''}`);
    for (const pr of problems.slice(0, 10)) lines.push(`  ${pr}`);
    lines.push(`members: ${ok(memberOk)} - ${cluster.unexpectedExits.length} unexpected exits`);
    for (const x of cluster.unexpectedExits) lines.push(`  ${x.member} exited at ${((x.atMs - originMs) / 1000).toFixed(1)}s (code ${x.code}, signal ${x.signal})`);
    lines.push(`network: ${network.stats.connections} peer connections proxied, ${network.stats.refused} refused by cuts, ${network.stats.unidentified} unidentified`);
    lines.push(`run directory: ${dir}${passed && !o.keepData ? ' (member data removed)' : ''}`);

    removeData = passed && o.keepData !== true;
    if (!passed) {
      fs.writeFileSync(path.join(dir, 'history.json'), JSON.stringify({ registerOps: rec.registerOps, appendOps: rec.appendOps, acked: rec.acked, watchers: rec.watchers, leases: rec.leases, leaseObservations: rec.leaseObservations.map((x) => ({ ...x, keys: [...x.keys] })), faults: nemesis.events, failoverStarts: nemesis.failoverStarts, leaderDisruptions: disruptions(), termRises: termRises(), originMs }));
      lines.push(`history written to ${path.join(dir, 'history.json')}`);
    }
    fs.writeFileSync(path.join(dir, 'summary.txt'), `${lines.join('\n')}\n${JSON.stringify(summary)}\n`);
    for (const l of lines) fs.writeSync(logFile, `${l}\n`);
    return { passed, summary, lines, dir, register, append, watch, acked, leases };
  } finally {
    pool?.close();
    monitor?.stop();
    await cluster?.stopAll();
    await network.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', killAllNow);
    fs.closeSync(logFile);
    if (cluster !== undefined && removeData) for (const m of cluster.members) fs.rmSync(m.dataDir, { recursive: true, force: true });
  }
}
