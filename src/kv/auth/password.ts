// Password hashes for the auth store: scrypt with a random salt per hash (etcd uses bcrypt;
// the hash never leaves the store, so only its strength matters). Hashing happens on the
// member that receives the request, before proposing, so that applying stays
// deterministic; both directions run on libuv's thread pool and never block the loop.
//
// Format: "scrypt$<N>$<r>$<p>$<salt base64>$<hash base64>".

import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

export const passwordLimits = Object.freeze({
  /** scrypt cost parameters (N = 2^14, r = 8, p = 1: ~16 MiB and tens of ms per hash). */
  costN: 16384,
  blockSizeR: 8,
  parallelizationP: 1,
  saltBytes: 16,
  hashBytes: 32,
  /** Longest password accepted for hashing (bcrypt takes 72 bytes; this bounds the work). */
  passwordBytesMax: 4096,
});

function derive(password: string, salt: Buffer, n: number, r: number, p: number, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, bytes, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashPassword(password: string): Promise<string> {
  const l = passwordLimits;
  const salt = randomBytes(l.saltBytes);
  const key = await derive(password.slice(0, l.passwordBytesMax), salt, l.costN, l.blockSizeR, l.parallelizationP, l.hashBytes);
  return ['scrypt', l.costN, l.blockSizeR, l.parallelizationP, salt.toString('base64'), key.toString('base64')].join('$');
}

/** Whether password matches hash; false for a malformed hash. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parts = hash.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  if (![n, r, p].every((x) => Number.isInteger(x) && x > 0)) return false;
  const salt = Buffer.from(parts[4], 'base64');
  const want = Buffer.from(parts[5], 'base64');
  if (want.length === 0) return false;
  const got = await derive(password.slice(0, passwordLimits.passwordBytesMax), salt, n, r, p, want.length);
  return timingSafeEqual(got, want);
}
