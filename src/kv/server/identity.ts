// Who this member is: its id and its cluster's id, decided when it first starts and kept in
// identity.json in its data directory.

import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../../raft';
import { ServerConfig } from './config';
import { idToHex } from './ids';
import { Membership } from './membership';
import { discoverCluster } from './peer-members';
import { channelCredentials } from './tls';

/** A member joining an existing cluster looks for it this long before giving up. */
const joinDiscoveryMs = 30_000;

export interface Identity {
  memberId: number;
  clusterId: number;
  /** A member that joined an existing cluster: its peers' URLs as it found them (its transport's first peers). */
  joinedPeers?: { id: number; peerUrl: string }[];
}

/** Credentials for connections to peers: TLS when this member's peer URLs are https. */
export function peerChannelCredentials(config: ServerConfig): grpc.ChannelCredentials {
  return channelCredentials(config.initialAdvertisePeerUrls[0] ?? config.listenPeerUrls[0], config.peerTls);
}

/**
 * The member's id and the cluster's id, fixed when the member first started: from the
 * initial cluster for a new cluster (etcd computes the same from the same flags); from the
 * members of --initial-cluster for one joining an existing cluster (the id `member add`
 * gave it, found by its peer URLs, as etcd's GetClusterFromRemotePeers does).
 */
export async function loadIdentity(memberDir: string, config: ServerConfig, logger: Logger): Promise<Identity> {
  const file = path.join(memberDir, 'identity.json');
  try {
    return JSON.parse(await fs.promises.readFile(file, 'utf8')) as Identity;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  let identity: Identity;
  if (config.initialClusterState === 'existing') {
    const own = new Set(config.initialAdvertisePeerUrls);
    const peerUrls = config.initialCluster.flatMap((m) => m.peerUrls).filter((u) => !own.has(u));
    const found = await discoverCluster({
      selfPeerUrls: config.initialAdvertisePeerUrls,
      peerUrls,
      timeoutMs: joinDiscoveryMs,
      attemptTimeoutMs: Math.max(1000, config.electionTimeoutMs),
      credentials: peerChannelCredentials(config),
    });
    const joinedPeers = found.membership.members.filter((m) => m.id !== found.selfId && m.peerUrls.length > 0).map((m) => ({ id: m.id, peerUrl: m.peerUrls[0] }));
    identity = { memberId: found.selfId, clusterId: found.clusterId, joinedPeers };
    logger.info({ id: idToHex(found.selfId), cluster: idToHex(found.clusterId), from: idToHex(found.memberId) }, 'joining an existing cluster');
  } else {
    const initial = Membership.initial(config.initialCluster, config.initialClusterToken);
    const self = initial.byName(config.name);
    if (!self) throw new Error(`couldn't find local name "${config.name}" in the initial cluster configuration`);
    identity = { memberId: self.id, clusterId: initial.clusterId };
  }
  const tmp = `${file}.tmp`;
  await fs.promises.writeFile(tmp, JSON.stringify(identity));
  await fs.promises.rename(tmp, file);
  return identity;
}
