// `skiff snapshot restore <file>`: builds a new member's data directory from a snapshot
// saved with `etcdctl snapshot save` against skiff, with etcdctl's restore flags and
// defaults. Run it once per member of the new cluster (same file, same --initial-cluster
// and --initial-cluster-token), then start each member with `skiff store` on its data dir.

import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';

import { ConfigError, describeRestore, parseInitialCluster, parseUrls, restoreSnapshot } from '../../kv';

interface RestoreArgs {
  file: string;
  name: string;
  'data-dir'?: string;
  'initial-cluster': string;
  'initial-cluster-token': string;
  'initial-advertise-peer-urls': string;
  'skip-hash-check': boolean;
}

const restoreCommand: CommandModule<object, RestoreArgs> = {
  command: 'restore <file>',
  describe: 'Restores a snapshot into a new member data directory',
  builder: (y: Argv) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'Snapshot file written by `etcdctl snapshot save`' })
      .option('name', { type: 'string', default: 'default', describe: 'Human-readable name for this member' })
      .option('data-dir', { type: 'string', describe: 'Path to the data directory (default: ${name}.etcd)' })
      .option('initial-cluster', { type: 'string', default: 'default=http://localhost:2380', describe: 'Initial cluster configuration for restore bootstrap' })
      .option('initial-cluster-token', { type: 'string', default: 'etcd-cluster', describe: 'Initial cluster token for the etcd cluster during restore bootstrap' })
      .option('initial-advertise-peer-urls', { type: 'string', default: 'http://localhost:2380', describe: "List of this member's peer URLs to advertise to the rest of the cluster" })
      .option('skip-hash-check', { type: 'boolean', default: false, describe: 'Ignore snapshot integrity hash value' }) as unknown as Argv<RestoreArgs>,
  handler: async (a) => {
    try {
      const result = await restoreSnapshot({
        snapshotPath: path.resolve(a.file),
        name: a.name,
        dataDir: path.resolve(a['data-dir'] ?? `${a.name}.etcd`),
        initialCluster: parseInitialCluster(a['initial-cluster']),
        initialClusterToken: a['initial-cluster-token'],
        initialAdvertisePeerUrls: parseUrls('initial-advertise-peer-urls', a['initial-advertise-peer-urls']),
        skipHashCheck: a['skip-hash-check'],
      });
      process.stdout.write(`${describeRestore(result)}\n`);
    } catch (e) {
      if (!(e instanceof ConfigError) && !(e instanceof Error)) throw e;
      process.stderr.write(`Error: ${e.message}\n`);
      process.exitCode = 1;
    }
  },
};

export const snapshotCommand: CommandModule<object, object> = {
  command: 'snapshot <command>',
  describe: 'Restore a store snapshot saved with `etcdctl snapshot save`',
  builder: (y: Argv) => y.command(restoreCommand).demandCommand(1, 'Name a snapshot command: restore') as Argv,
  handler: () => undefined,
};
