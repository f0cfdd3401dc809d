// Member and cluster ids, computed as etcd computes them (sha1 of the sorted peer URLs and
// the cluster token; the cluster id from the sorted member ids), then cut to 53 bits so that
// they stay exact as JavaScript numbers on the wire (clients treat them as opaque).

import { createHash } from 'node:crypto';

const bits53 = 2n ** 53n;

function sha1Id(b: Buffer): number {
  const h = createHash('sha1').update(b).digest();
  // The top 53 bits of etcd's 64-bit id: the same ordering, exact in a double.
  return Number(h.readBigUInt64BE(0) >> 11n) || 1;
}

export function computeMemberId(peerUrls: string[], clusterToken: string, joinedAtUnixSeconds?: number): number {
  const joined = [...peerUrls].sort().join('');
  const extra = joinedAtUnixSeconds === undefined ? '' : String(joinedAtUnixSeconds);
  return sha1Id(Buffer.from(joined + clusterToken + extra));
}

export function computeClusterId(memberIds: number[]): number {
  const sorted = [...memberIds].sort((a, b) => a - b);
  const b = Buffer.alloc(8 * sorted.length);
  sorted.forEach((id, i) => b.writeBigUInt64BE(BigInt(id), 8 * i));
  return sha1Id(b);
}

/** An id as etcd prints it: lower-case hex without leading zeros. */
export function idToHex(id: number): string {
  return BigInt(id).toString(16);
}

export function isSafeId(id: number): boolean {
  return Number.isInteger(id) && id > 0 && BigInt(id) < bits53;
}
