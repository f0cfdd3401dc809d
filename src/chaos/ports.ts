// Ports for the processes a harness starts (chaos runs, tests, benchmarks), picked below the
// kernel's ephemeral range (32768-60999 here): an outgoing connection or a bind to port 0
// elsewhere on the machine can then never take a port between the moment it is picked and
// the moment a member binds it. Each user gets its own slice of the range, so that
// harnesses running at once (jest workers are separate processes) do not pick the same one.

import * as net from 'node:net';

export interface PortRange {
  min: number;
  max: number;
}

/**
 * The chaos harness's ports: above the tests' and below the ephemeral range, and clear of
 * the ports `skiff cluster up` takes (2379-2381, 22379-22381, 32379-32381), so that its
 * test can run beside a chaos test.
 */
export const CHAOS_PORTS: PortRange = Object.freeze({ min: 23_000, max: 32_000 });

/**
 * Test and benchmark ports: 10000-19999 in ten slices of 1000, one per jest worker
 * (JEST_WORKER_ID); a process outside jest takes slice 0.
 */
export function testPorts(): PortRange {
  const slot = Number(process.env.JEST_WORKER_ID ?? 0) % 10;
  return { min: 10_000 + slot * 1000, max: 11_000 + slot * 1000 };
}

/** Whether a TCP port on 127.0.0.1 can be bound now. */
export function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A function that hands out ports of `range` that bind now and that it never handed out before. */
export function portPicker(range: PortRange): () => Promise<number> {
  const handedOut = new Set<number>();
  return async () => {
    for (let attempt = 0; attempt < 1000; attempt++) {
      const port = range.min + Math.floor(Math.random() * (range.max - range.min));
      if (handedOut.has(port)) continue;
      handedOut.add(port);
      if (await canBind(port)) return port;
    }
    throw new Error(`no free port in [${range.min}, ${range.max})`);
  };
}
