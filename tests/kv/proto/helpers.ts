// Shared by the proto tests: a grpc-js server on 127.0.0.1 with a free port, stopped
// for sure; finding etcd's own binaries.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';

export interface RunningServer {
  server: grpc.Server;
  port: number;
  address: string;
  stop(): Promise<void>;
}

/** Starts `server` on 127.0.0.1 with an OS-chosen port. */
export async function startServer(server: grpc.Server): Promise<RunningServer> {
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, boundPort) => {
      if (error !== null) reject(error);
      else resolve(boundPort);
    });
  });
  return {
    server,
    port,
    address: `127.0.0.1:${port}`,
    stop: () => stopServer(server),
  };
}

const SERVER_STOP_GRACE_MS = 2000;

/** Graceful shutdown, forced after SERVER_STOP_GRACE_MS (open streams would hold it). */
export function stopServer(server: grpc.Server): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, SERVER_STOP_GRACE_MS);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A free TCP port on 127.0.0.1 (for processes that need a port named up front). */
export { freePort } from '../../helpers/cluster';

/**
 * Path of an executable: the override alone when one is given (so a bogus override
 * simulates a missing binary), else /usr/bin, then PATH; undefined when absent.
 */
export function findBinary(name: string, override?: string): string | undefined {
  const candidates: string[] = [];
  if (override !== undefined && override !== '') {
    candidates.push(override);
  } else {
    candidates.push(path.join('/usr/bin', name));
    for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
      if (dir !== '') candidates.push(path.join(dir, name));
    }
  }
  for (const candidate of candidates) {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

export const isCI = process.env.CI === 'true';
