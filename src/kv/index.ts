// The public face of the store layer.
export { EtcdServer, serverVersion } from './server/etcd-server';
export { ConfigError, parseInitialCluster, parseUrls, serverDefaults, validateConfig, hostPort } from './server/config';
export type { ServerConfig, MemberUrls } from './server/config';
export { createLogger } from './server/logger';
export { checkTlsUrls } from './server/tls';
export { selfCert } from './server/self-cert';
export type { TlsFiles } from './server/tls';
export { describeRestore, restoreSnapshot } from './server/snapshot-restore';
export type { SnapshotRestoreOptions, SnapshotRestoreResult } from './server/snapshot-restore';
