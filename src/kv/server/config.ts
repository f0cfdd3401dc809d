// The store server's configuration, from etcd's own flag names and defaults, so that a
// script that starts etcd starts skiff with only the binary changed.

import type { TlsFiles } from './tls';

export interface MemberUrls {
  name: string;
  peerUrls: string[];
}

export interface ServerConfig {
  name: string;
  dataDir: string;
  listenClientUrls: string[];
  advertiseClientUrls: string[];
  listenPeerUrls: string[];
  initialAdvertisePeerUrls: string[];
  initialCluster: MemberUrls[];
  initialClusterState: 'new' | 'existing';
  initialClusterToken: string;
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  snapshotCount: number;
  quotaBackendBytes: number;
  /** etcd's --auto-compaction-mode: 'periodic' (retention is a duration) or 'revision'. */
  autoCompactionMode: 'periodic' | 'revision';
  /** '0' disables. periodic: hours ('1') or a duration ('30m', '1h'); revision: a count. */
  autoCompactionRetention: string;
  maxRequestBytes: number;
  maxTxnOps: number;
  listenMetricsUrls: string[];
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** --cert-file, --key-file, --trusted-ca-file, --client-cert-auth (absent: no TLS). */
  clientTls?: TlsFiles;
  /** --peer-cert-file, --peer-key-file, --peer-trusted-ca-file, --peer-client-cert-auth. */
  peerTls?: TlsFiles;
  /** --auth-token-ttl: how long an unused simple token lives (default 300 s). */
  authTokenTtlMs?: number;
}

/** etcd's defaults (etcd 3.4 `embed.NewConfig`). */
export const serverDefaults = Object.freeze({
  name: 'default',
  listenClientUrl: 'http://localhost:2379',
  listenPeerUrl: 'http://localhost:2380',
  initialClusterToken: 'etcd-cluster',
  heartbeatIntervalMs: 100,
  electionTimeoutMs: 1000,
  snapshotCount: 100_000,
  /** etcd's DefaultQuotaBytes: 2 GiB. */
  quotaBackendBytes: 2 * 1024 * 1024 * 1024,
  /** etcd's MaxQuotaBytes: 8 GiB. */
  quotaBackendBytesMax: 8 * 1024 * 1024 * 1024,
  /** 1.5 MiB, etcd's DefaultMaxRequestBytes. */
  maxRequestBytes: 1.5 * 1024 * 1024,
  maxTxnOps: 128,
});

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function parseUrls(flag: string, value: string): string[] {
  const urls = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const u of urls) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new ConfigError(`invalid value "${value}" for flag -${flag}: URL address does not have the form "host:port": ${u}`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:' && parsed.protocol !== 'unix:' && parsed.protocol !== 'unixs:') {
      throw new ConfigError(`invalid value "${value}" for flag -${flag}: URL scheme must be http, https, unix, or unixs: ${u}`);
    }
  }
  return urls;
}

/** Parses `name1=http://a:2380,name1=http://b:2380,name2=...` (a name may repeat for several URLs). */
export function parseInitialCluster(value: string): MemberUrls[] {
  const byName = new Map<string, string[]>();
  for (const part of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--initial-cluster: expected name=url, got "${part}"`);
    const name = part.slice(0, eq);
    const url = parseUrls('initial-cluster', part.slice(eq + 1))[0];
    byName.set(name, [...(byName.get(name) ?? []), url]);
  }
  return [...byName].map(([name, peerUrls]) => ({ name, peerUrls }));
}

/** Parses etcd's periodic retention: a bare number is hours; else a Go-style duration (1h30m, 10m, 90s). */
export function parseRetentionMs(value: string): number {
  if (/^\d+$/.test(value)) return Number(value) * 3600_000;
  const re = /(\d+(?:\.\d+)?)(h|m|s|ms)/g;
  let total = 0;
  let consumed = 0;
  for (const m of value.matchAll(re)) {
    const n = Number(m[1]);
    total += m[2] === 'h' ? n * 3600_000 : m[2] === 'm' ? n * 60_000 : m[2] === 's' ? n * 1000 : n;
    consumed += m[0].length;
  }
  if (consumed !== value.length) throw new ConfigError(`invalid auto compaction retention "${value}"`);
  return total;
}

/** Host and port to bind for a listen URL (localhost binds 127.0.0.1: servers bind loopback only). */
export function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  const host = u.hostname === 'localhost' || u.hostname === '' ? '127.0.0.1' : u.hostname.replace(/^\[|\]$/g, '');
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  return { host, port };
}

export function validateConfig(c: ServerConfig): void {
  if (c.heartbeatIntervalMs <= 0) throw new ConfigError('--heartbeat-interval must be > 0');
  if (c.electionTimeoutMs < 5 * c.heartbeatIntervalMs) {
    throw new ConfigError(`--election-timeout[${c.electionTimeoutMs}ms] should be at least as 5 times as --heartbeat-interval[${c.heartbeatIntervalMs}ms]`);
  }
  if (c.electionTimeoutMs > 50000) throw new ConfigError(`--election-timeout[${c.electionTimeoutMs}ms] is too long, and should be set less than 50 seconds`);
  const self = c.initialCluster.find((m) => m.name === c.name);
  if (!self) throw new ConfigError(`couldn't find local name "${c.name}" in the initial cluster configuration`);
  const advertised = [...c.initialAdvertisePeerUrls].sort().join(',');
  const listed = [...self.peerUrls].sort().join(',');
  if (advertised !== listed) {
    throw new ConfigError(`--initial-cluster has ${c.name}=${listed} but missing from --initial-advertise-peer-urls=${advertised}`);
  }
  if (c.maxRequestBytes <= 0) throw new ConfigError('--max-request-bytes must be > 0');
  if (c.quotaBackendBytes > serverDefaults.quotaBackendBytesMax) {
    // etcd logs a warning and goes on; so do we (the caller logs).
  }
}
