// The put workload, as etcd's `benchmark put`: 8-byte keys holding the varint of an index
// in the key space (random, or sequential with putSequentialKeys), 256-byte values, N
// clients over C connections.

import { ConnectionPool, methods } from './grpc-client';
import type { CaseName } from './params';
import { CpuMeter } from './proc-stats';
import { encodePut } from './wire';
import { benchValue, Measurement, measurement, memberPids, RunContext, runClosedLoop, warmUpLevel } from './workload';

/** etcd benchmark's key: binary.PutVarint (zigzag) of n into a zeroed keyBytes buffer. */
export function benchKey(n: number, keyBytes: number): Buffer {
  const k = Buffer.alloc(keyBytes);
  let z = n * 2; // zigzag of a non-negative n
  let o = 0;
  while (z >= 0x80) {
    k[o++] = (z & 0x7f) | 0x80;
    z = Math.floor(z / 128);
  }
  k[o] = z;
  return k;
}

/** A small xorshift PRNG: the same key sequence for both systems. */
export function keyPicker(space: number, sequential: boolean, seed = 0x9e3779b9): (i: number) => number {
  if (sequential) return (i) => i % space;
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % space;
  };
}

export async function runPut(ctx: RunContext, clients: number, caseName: CaseName = 'put'): Promise<Measurement> {
  const p = ctx.params;
  const value = benchValue(p.valueBytes);
  const pick = keyPicker(p.putKeySpaceSize, p.putSequentialKeys);
  const pool = new ConnectionPool(ctx.endpoints, p.connections);
  try {
    // The warm-up writes keys of the same space, picked with another seed.
    const warmPick = keyPicker(p.putKeySpaceSize, p.putSequentialKeys, 0x85ebca6b);
    await warmUpLevel(pool, p, clients, (conn, i) => conn.unary(methods.put, encodePut(benchKey(warmPick(i), p.putKeyBytes), value)));
    const meter = new CpuMeter(memberPids(ctx.cluster));
    meter.start();
    const r = await runClosedLoop({
      pool,
      clients,
      opsTotal: p.levelOpsTotal,
      durationMaxSec: p.levelDurationMaxSec,
      op: (conn, i) => conn.unary(methods.put, encodePut(benchKey(pick(i), p.putKeyBytes), value)),
    });
    const cpu = meter.stop();
    return measurement({ case: caseName, system: ctx.cluster.kind, clients, connections: p.connections }, r, cpu);
  } finally {
    pool.close();
  }
}
