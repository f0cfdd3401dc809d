// `skiff snapshot restore`: a new member's data directory from a snapshot file written by
// `etcdctl snapshot save` against skiff (format in maintenance.ts: the store's snapshot
// stream, padding, a footer, and the sha256 of it all). As etcdctl's restore does for etcd: the data is kept (keys, revisions,
// leases); the cluster gets a fresh identity from --initial-cluster and
// --initial-cluster-token; the Raft log is bootstrapped with the new membership, and the
// store's consistent index is set to the end of that bootstrap so that nothing of it is
// applied twice. Starting every restored member gives a new cluster with the snapshot's
// keys.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DiskStorage } from '../../raft';
import { MvccStore } from '../mvcc';
import type { StoreMeta } from './applier';
import { ConfigError, MemberUrls } from './config';
import { idToHex } from './ids';
import { maintenanceLimits, snapshotFooterBytes, snapshotStreamBytes } from './maintenance';
import { Membership } from './membership';
import { encodeConfContext } from './requests';

export interface SnapshotRestoreOptions {
  snapshotPath: string;
  name: string;
  dataDir: string;
  initialCluster: MemberUrls[];
  initialClusterToken: string;
  initialAdvertisePeerUrls: string[];
  /** Do not check the sha256 at the end of the file (etcdctl's --skip-hash-check). */
  skipHashCheck: boolean;
}

export interface SnapshotRestoreResult {
  memberId: number;
  clusterId: number;
  revision: number;
  compactRevision: number;
  keys: number;
}

async function sha256Of(file: string, endInclusive: number): Promise<Buffer> {
  const h = createHash('sha256');
  if (endInclusive >= 0) for await (const c of fs.createReadStream(file, { start: 0, end: endInclusive })) h.update(c as Buffer);
  return h.digest();
}

export async function restoreSnapshot(o: SnapshotRestoreOptions): Promise<SnapshotRestoreResult> {
  const initial = Membership.initial(o.initialCluster, o.initialClusterToken);
  const self = initial.byName(o.name);
  if (!self) throw new ConfigError(`couldn't find local name "${o.name}" in the initial cluster configuration`);
  if ([...self.peerUrls].sort().join(',') !== [...o.initialAdvertisePeerUrls].sort().join(',')) {
    throw new ConfigError(`--initial-cluster has ${o.name}=${self.peerUrls.join(',')} but missing from --initial-advertise-peer-urls=${o.initialAdvertisePeerUrls.join(',')}`);
  }
  if (fs.existsSync(o.dataDir)) throw new ConfigError(`data-dir "${o.dataDir}" exists`);

  const size = (await fs.promises.stat(o.snapshotPath)).size;
  const checksumBytes = maintenanceLimits.snapshotChecksumBytes;
  if (size < checksumBytes + snapshotFooterBytes) throw new Error(`snapshot file "${o.snapshotPath}" is too short (${size} bytes)`);
  const stored = Buffer.alloc(checksumBytes);
  const footer = Buffer.alloc(snapshotFooterBytes);
  const fd = await fs.promises.open(o.snapshotPath, 'r');
  try {
    await fd.read(footer, 0, snapshotFooterBytes, size - checksumBytes - snapshotFooterBytes);
    await fd.read(stored, 0, checksumBytes, size - checksumBytes);
  } finally {
    await fd.close();
  }
  const streamBytes = snapshotStreamBytes(size, footer);
  if (!o.skipHashCheck && !(await sha256Of(o.snapshotPath, size - checksumBytes - 1)).equals(stored)) {
    throw new Error('expected sha256 does not match the snapshot file (use --skip-hash-check to restore anyway)');
  }

  const memberDir = path.join(o.dataDir, 'member');
  await fs.promises.mkdir(memberDir, { recursive: true });
  try {
    const chunks = fs.createReadStream(o.snapshotPath, { start: 0, end: streamBytes - 1 }) as AsyncIterable<Uint8Array>;
    const store = await MvccStore.restoreSnapshot<StoreMeta>(path.join(memberDir, 'kv'), chunks);
    const old = store.savedMeta;
    // The bootstrap entries of the new log: one per member, applied already (in the meta below).
    const members = initial.list();
    const voters = members.map((m) => m.id);
    const confState = { voters, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
    const meta: StoreMeta = {
      consistentIndex: members.length,
      term: 1,
      confState,
      membership: initial.state(),
      leases: old?.leases ?? { leases: [] },
      // A new cluster starts with no alarm; one still due is raised again by the quota check.
      alarms: [],
      // Users, roles and whether auth is on come along, as etcd's auth bucket does.
      auth: old?.auth,
    };
    await store.flush(meta);
    const result = { revision: store.revision, compactRevision: store.compactRevision, keys: store.indexedKeyCount };
    await store.close();

    const storage = await DiskStorage.open(path.join(memberDir, 'raft'));
    try {
      const contexts = new Map(members.map((m) => [m.id, encodeConfContext({ m: 0, n: 0, op: 'add', member: m })]));
      await storage.bootstrap(confState, contexts);
    } finally {
      await storage.close();
    }
    // The identity EtcdServer reads at start (etcd-server.ts loadIdentity).
    await fs.promises.writeFile(path.join(memberDir, 'identity.json'), JSON.stringify({ memberId: self.id, clusterId: initial.clusterId }));
    return { memberId: self.id, clusterId: initial.clusterId, ...result };
  } catch (e) {
    await fs.promises.rm(o.dataDir, { recursive: true, force: true });
    throw e;
  }
}

export function describeRestore(r: SnapshotRestoreResult): string {
  return `restored snapshot: member ${idToHex(r.memberId)} of cluster ${idToHex(r.clusterId)}, revision ${r.revision}, ${r.keys} keys`;
}
