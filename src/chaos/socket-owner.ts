// Which process opened a TCP connection to us, on Linux: the connection's client end is a
// line of /proc/net/tcp (local port = the peer's port, remote port = ours) with a socket
// inode, and the process holding that inode has a /proc/<pid>/fd/N link "socket:[inode]".
//
// The fault proxy needs it: every member reaches a peer through the same proxy port (a
// member's id comes from its advertised peer URLs, so all members must list the same ones),
// and all of them connect from 127.0.0.1; only the owning process tells who is calling.

import * as fs from 'node:fs';

/** Hex of a port as /proc/net/tcp prints it. */
function hexPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, '0');
}

/** Inode of the socket with local port `localPort` connected to remote port `remotePort` on loopback. */
async function socketInode(localPort: number, remotePort: number): Promise<number | undefined> {
  const local = `:${hexPort(localPort)}`;
  const remote = `:${hexPort(remotePort)}`;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = await fs.promises.readFile(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      if (f[1].endsWith(local) && f[2].endsWith(remote)) {
        const inode = Number(f[9]);
        if (inode > 0) return inode;
      }
    }
  }
  return undefined;
}

/** Whether process pid holds socket inode. */
async function holdsInode(pid: number, inode: number): Promise<boolean> {
  const want = `socket:[${inode}]`;
  let fds: string[];
  try {
    fds = await fs.promises.readdir(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    try {
      if ((await fs.promises.readlink(`/proc/${pid}/fd/${fd}`)) === want) return true;
    } catch {
      // closed meanwhile
    }
  }
  return false;
}

/**
 * Which of the candidate processes (pid -> label) owns the client end of the connection
 * from 127.0.0.1:peerPort to our 127.0.0.1:ourPort; undefined if none does (any more).
 */
export async function connectionOwner<L>(peerPort: number, ourPort: number, candidates: ReadonlyMap<number, L>): Promise<L | undefined> {
  const inode = await socketInode(peerPort, ourPort);
  if (inode === undefined) return undefined;
  for (const [pid, label] of candidates) if (await holdsInode(pid, inode)) return label;
  return undefined;
}

/** Whether the lookups work here (Linux with /proc). */
export function socketOwnersAvailable(): boolean {
  return fs.existsSync('/proc/net/tcp') && fs.existsSync(`/proc/${process.pid}/fd`);
}
