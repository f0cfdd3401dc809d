// `skiff store`: one member of the etcd-compatible store, started with etcd's own flags
// (also read from ETCD_* environment variables, as etcd does).

import * as v8 from 'node:v8';
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';

import { checkTlsUrls, ConfigError, createLogger, EtcdServer, selfCert, parseInitialCluster, parseUrls, serverDefaults, ServerConfig, validateConfig } from '../../kv';
import { startIdleGc } from '../idle-gc';

interface StoreArgs {
  name: string;
  'data-dir'?: string;
  'listen-client-urls': string;
  'advertise-client-urls'?: string;
  'listen-peer-urls': string;
  'initial-advertise-peer-urls'?: string;
  'initial-cluster'?: string;
  'initial-cluster-state': string;
  'initial-cluster-token': string;
  'heartbeat-interval': number;
  'election-timeout': number;
  'snapshot-count': number;
  'quota-backend-bytes': number;
  'auto-compaction-retention': string;
  'auto-compaction-mode': string;
  'max-request-bytes': number;
  'max-txn-ops': number;
  'listen-metrics-urls'?: string;
  'log-level': string;
  'cert-file': string;
  'key-file': string;
  'trusted-ca-file': string;
  'client-cert-auth': boolean;
  'peer-cert-file': string;
  'peer-key-file': string;
  'peer-trusted-ca-file': string;
  'peer-client-cert-auth': boolean;
  'auto-tls': boolean;
  'peer-auto-tls': boolean;
  'auth-token': string;
  'auth-token-ttl': number;
}

/** Builds the server configuration from the flags, with etcd's defaults and derivations. */
export function storeConfig(a: StoreArgs): ServerConfig {
  const listenPeerUrls = parseUrls('listen-peer-urls', a['listen-peer-urls']);
  const initialAdvertisePeerUrls = parseUrls('initial-advertise-peer-urls', a['initial-advertise-peer-urls'] ?? serverDefaults.listenPeerUrl);
  const listenClientUrls = parseUrls('listen-client-urls', a['listen-client-urls']);
  const advertiseClientUrls = parseUrls('advertise-client-urls', a['advertise-client-urls'] ?? serverDefaults.listenClientUrl);
  const state = a['initial-cluster-state'];
  if (state !== 'new' && state !== 'existing') throw new ConfigError(`invalid value "${state}" for flag -initial-cluster-state: valid values are "new" or "existing"`);
  const mode = a['auto-compaction-mode'];
  if (mode !== 'periodic' && mode !== 'revision') throw new ConfigError(`unknown auto-compaction-mode "${mode}"`);
  const level = a['log-level'];
  if (level !== 'debug' && level !== 'info' && level !== 'warn' && level !== 'error') throw new ConfigError(`unknown log level "${level}"`);
  const config: ServerConfig = {
    name: a.name,
    dataDir: path.resolve(a['data-dir'] ?? `${a.name}.etcd`),
    listenClientUrls,
    advertiseClientUrls,
    listenPeerUrls,
    initialAdvertisePeerUrls,
    // etcd's default initial cluster is this member alone at its advertised peer URLs.
    initialCluster: parseInitialCluster(a['initial-cluster'] ?? initialAdvertisePeerUrls.map((u) => `${a.name}=${u}`).join(',')),
    initialClusterState: state,
    initialClusterToken: a['initial-cluster-token'],
    heartbeatIntervalMs: a['heartbeat-interval'],
    electionTimeoutMs: a['election-timeout'],
    snapshotCount: a['snapshot-count'],
    quotaBackendBytes: a['quota-backend-bytes'] > 0 ? a['quota-backend-bytes'] : serverDefaults.quotaBackendBytes,
    autoCompactionMode: mode,
    autoCompactionRetention: a['auto-compaction-retention'],
    maxRequestBytes: a['max-request-bytes'],
    maxTxnOps: a['max-txn-ops'],
    listenMetricsUrls: a['listen-metrics-urls'] ? parseUrls('listen-metrics-urls', a['listen-metrics-urls']) : [],
    logLevel: level,
    clientTls: { certFile: a['cert-file'], keyFile: a['key-file'], trustedCaFile: a['trusted-ca-file'], clientCertAuth: a['client-cert-auth'] },
    peerTls: { certFile: a['peer-cert-file'], keyFile: a['peer-key-file'], trustedCaFile: a['peer-trusted-ca-file'], clientCertAuth: a['peer-client-cert-auth'] },
    authTokenTtlMs: a['auth-token-ttl'] * 1000,
  };
  // etcd's --auth-token: "simple" (the default) or "jwt,..."; only simple tokens are served.
  const tokenType = a['auth-token'].split(',')[0];
  if (tokenType !== 'simple') throw new ConfigError(`unsupported --auth-token "${a['auth-token']}": only "simple" is supported`);
  if (!(a['auth-token-ttl'] > 0)) throw new ConfigError('--auth-token-ttl must be > 0');
  validateConfig(config);
  // etcd's ClientSelfCert/PeerSelfCert: without certificate files, --auto-tls makes a
  // self-signed one under the data dir, which replaces the TLS settings of that side.
  if (a['auto-tls'] && config.clientTls?.certFile === '' && config.clientTls.keyFile === '') {
    const c = selfCert(path.join(config.dataDir, 'fixtures', 'client'), listenClientUrls);
    config.clientTls = { ...c, trustedCaFile: '', clientCertAuth: false, selfSigned: true };
  }
  if (a['peer-auto-tls'] && config.peerTls?.certFile === '' && config.peerTls.keyFile === '') {
    const c = selfCert(path.join(config.dataDir, 'fixtures', 'peer'), listenPeerUrls);
    config.peerTls = { ...c, trustedCaFile: '', clientCertAuth: false, selfSigned: true };
  }
  checkTlsUrls(config);
  return config;
}

export const storeCommand: CommandModule<object, StoreArgs> = {
  command: 'store',
  describe: 'Run one member of the etcd-compatible store (takes etcd flags)',
  builder: (y: Argv) =>
    y
      // etcd reads ETCD_<FLAG>; the prefix includes the underscore so that etcdctl's own
      // variables (ETCDCTL_API=3, commonly exported) are not taken for flags.
      .env('ETCD_')
      .option('name', { type: 'string', default: serverDefaults.name, describe: 'Human-readable name for this member' })
      .option('data-dir', { type: 'string', describe: 'Path to the data directory (default: ${name}.etcd)' })
      .option('listen-client-urls', { type: 'string', default: serverDefaults.listenClientUrl, describe: 'List of URLs to listen on for client traffic' })
      .option('advertise-client-urls', { type: 'string', describe: "List of this member's client URLs to advertise to the public" })
      .option('listen-peer-urls', { type: 'string', default: serverDefaults.listenPeerUrl, describe: 'List of URLs to listen on for peer traffic' })
      .option('initial-advertise-peer-urls', { type: 'string', describe: "List of this member's peer URLs to advertise to the rest of the cluster" })
      .option('initial-cluster', { type: 'string', describe: 'Initial cluster configuration for bootstrapping (name=url,...)' })
      .option('initial-cluster-state', { type: 'string', default: 'new', describe: "Initial cluster state ('new' or 'existing')" })
      .option('initial-cluster-token', { type: 'string', default: serverDefaults.initialClusterToken, describe: 'Initial cluster token for the cluster during bootstrap' })
      .option('heartbeat-interval', { type: 'number', default: serverDefaults.heartbeatIntervalMs, describe: 'Time (in milliseconds) of a heartbeat interval' })
      .option('election-timeout', { type: 'number', default: serverDefaults.electionTimeoutMs, describe: 'Time (in milliseconds) for an election to timeout' })
      .option('snapshot-count', { type: 'number', default: serverDefaults.snapshotCount, describe: 'Number of committed transactions to trigger a snapshot to disk' })
      .option('quota-backend-bytes', { type: 'number', default: 0, describe: 'Raise alarms when backend size exceeds the given quota (0 defaults to low space quota)' })
      .option('auto-compaction-retention', { type: 'string', default: '0', describe: 'Auto compaction retention for mvcc key value store. 0 means disable auto compaction' })
      .option('auto-compaction-mode', { type: 'string', default: 'periodic', describe: "Interpret 'auto-compaction-retention' one of: periodic|revision" })
      .option('max-request-bytes', { type: 'number', default: serverDefaults.maxRequestBytes, describe: 'Maximum client request size in bytes the server will accept' })
      .option('max-txn-ops', { type: 'number', default: serverDefaults.maxTxnOps, describe: 'Maximum number of operations permitted in a transaction' })
      .option('listen-metrics-urls', { type: 'string', describe: 'List of URLs to listen on for the metrics and health endpoints' })
      .option('log-level', { type: 'string', default: 'info', describe: 'Configures log level. Only supports debug, info, warn, error' })
      .option('cert-file', { type: 'string', default: '', describe: 'Path to the client server TLS cert file' })
      .option('key-file', { type: 'string', default: '', describe: 'Path to the client server TLS key file' })
      .option('trusted-ca-file', { type: 'string', default: '', describe: 'Path to the client server TLS trusted CA cert file (client certificates are then required)' })
      .option('client-cert-auth', { type: 'boolean', default: false, describe: 'Enable client cert authentication (the certificate CN is the auth user)' })
      .option('peer-cert-file', { type: 'string', default: '', describe: 'Path to the peer server TLS cert file' })
      .option('peer-key-file', { type: 'string', default: '', describe: 'Path to the peer server TLS key file' })
      .option('peer-trusted-ca-file', { type: 'string', default: '', describe: 'Path to the peer server TLS trusted CA file' })
      .option('peer-client-cert-auth', { type: 'boolean', default: false, describe: 'Enable peer client cert authentication' })
      .option('auto-tls', { type: 'boolean', default: false, describe: 'Client TLS using generated certificates' })
      .option('peer-auto-tls', { type: 'boolean', default: false, describe: 'Peer TLS using generated certificates' })
      .option('auth-token', { type: 'string', default: 'simple', describe: "Specify auth token type: only 'simple' is supported" })
      .option('auth-token-ttl', { type: 'number', default: 300, describe: 'The lifetime in seconds of the auth token' }) as unknown as Argv<StoreArgs>,
  handler: async (args) => {
    let config: ServerConfig;
    let growingPercent: number;
    try {
      config = storeConfig(args);
      growingPercent = heapGrowingPercent(process.env.SKIFF_HEAP_GROWING_PERCENT);
    } catch (e) {
      if (e instanceof ConfigError) {
        process.stderr.write(`skiff store: ${e.message}\n`);
        process.exitCode = 1;
        return;
      }
      throw e;
    }
    v8.setFlagsFromString(`--heap-growing-percent=${growingPercent}`);
    const logger = createLogger({ name: config.name, level: config.logLevel });
    const server = await EtcdServer.start(config, logger);
    if (process.env.SKIFF_IDLE_GC !== 'off') startIdleGc((c) =>
        logger.info(
          { skipped: c.skipped, pauseMs: Math.round(c.pauseMs), heapUsedMiB: Math.round(c.heapUsedBytes / 1048576), heapUsedAfterMiB: Math.round(c.heapUsedAfterBytes / 1048576) },
          c.skipped ? 'quiet after a burst: heap too large to compact without a long pause' : 'quiet after a burst: compacted the heap to give memory back',
        ),
      );
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'received signal; shutting down');
      server.stop().then(
        () => process.exit(0),
        (e: unknown) => {
          logger.error({ err: String(e) }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    await server.closed;
  },
};

/**
 * Go's flag package accepts `-flag` as well as `--flag`; scripts written for etcd use both.
 * Rewrites single-dash long flags to the double-dash form yargs expects.
 */
export function normalizeGoFlags(argv: string[]): string[] {
  return argv.map((a) => (/^-[a-z][a-z0-9-]+(=.*)?$/.test(a) && !/^-[a-z]$/.test(a) ? `-${a}` : a));
}

/**
 * How far V8 lets the old generation grow past what survived the last full collection before
 * it starts the next one (SKIFF_HEAP_GROWING_PERCENT; V8's --heap-growing-percent). The
 * default, 0, leaves it to V8's heuristics, which allow up to 300% on a fast machine (Go's
 * GOGC, which etcd runs with, is 100%). A smaller value trades write throughput for memory:
 * with 100k puts of 256 bytes over 3 members a member's resident set 2 s after the load was
 * 195-236 MiB with the heuristics, 168-173 MiB at 50% (etcd 173-180), 158 MiB at 20%; the
 * full benchmark at 50% measured 0.97x etcd's memory, but put throughput at 128 clients fell
 * from 7157-7996 to 6301-7926 ops/s and its p99 rose from 59-62 to 60-78 ms (more full
 * collections, each marking the whole live heap). Set before anything big is allocated.
 */
export const heapGrowingPercentDefault = 0;

export function heapGrowingPercent(env: string | undefined): number {
  if (env === undefined || env === '') return heapGrowingPercentDefault;
  const n = Number(env);
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`SKIFF_HEAP_GROWING_PERCENT must be a whole number >= 0, not "${env}"`);
  return n;
}
