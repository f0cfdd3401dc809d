// The range workload, as etcd's `benchmark range <key> --consistency=l|s`: one key with a
// 256-byte value, read over and over by N clients over C connections. Linearizable reads
// go through ReadIndex on the leader; serializable reads are answered by the member asked.

import { Connection, ConnectionPool, methods } from './grpc-client';
import { CpuMeter } from './proc-stats';
import { decodeRangeResponse, encodePut, encodeRange } from './wire';
import { benchValue, Measurement, measurement, memberPids, RunContext, runClosedLoop, warmUpLevel } from './workload';

export const rangeKey = Buffer.from('bench-range-key');

export async function runRange(ctx: RunContext, clients: number, consistency: 'linearizable' | 'serializable'): Promise<Measurement> {
  const p = ctx.params;
  const pool = new ConnectionPool(ctx.endpoints, p.connections);
  try {
    await pool.connectAll();
    await pool.conns[0].unary(methods.put, encodePut(rangeKey, benchValue(p.valueBytes)));
    const request = encodeRange({ key: rangeKey, serializable: consistency === 'serializable' });
    let wrongAnswers = 0;
    const op = async (conn: Connection): Promise<void> => {
      const msg = await conn.unary(methods.range, request);
      // The answer must hold the key: a cheap look at the bytes, not a full decode per call.
      if (msg.length < p.valueBytes) wrongAnswers++;
    };
    await warmUpLevel(pool, p, clients, (conn) => op(conn));
    // Serializable reads on followers may lag the put above: the warm-up's reads settle that,
    // and one full decode per connection checks the answer's shape.
    let wrongShapes = 0;
    for (const conn of pool.conns) {
      const r = decodeRangeResponse(await conn.unary(methods.range, request));
      if (r.kvs.length !== 1 || r.kvs[0].valueBytes !== p.valueBytes) wrongShapes++;
    }
    wrongAnswers = 0;
    const meter = new CpuMeter(memberPids(ctx.cluster));
    meter.start();
    const r = await runClosedLoop({ pool, clients, opsTotal: p.levelOpsTotal, durationMaxSec: p.levelDurationMaxSec, op: (conn) => op(conn) });
    const cpu = meter.stop();
    return measurement(
      { case: consistency === 'linearizable' ? 'range-linearizable' : 'range-serializable', system: ctx.cluster.kind, clients, connections: p.connections },
      r,
      cpu,
      {},
      [
        { name: 'decoded answers hold the key and its value', ok: wrongShapes === 0, detail: `${wrongShapes} of ${pool.conns.length} wrong` },
        { name: 'every answer holds the value', ok: wrongAnswers === 0, detail: `${wrongAnswers} answers too short` },
      ],
    );
  } finally {
    pool.close();
  }
}
