// What goes into the Raft log: one request per entry, tagged with the id of the member that
// proposed it and a sequence number, so that the proposer (and only it) can hand the result
// back to the waiting client.
//
// A put, by far the most frequent entry, has a fixed binary layout; everything else is
// msgpackr-encoded. Every member decodes every entry, and msgpackr's generic decoding of the
// put (a map of a map of a map, keys read as strings) cost a seventh of a follower's
// allocation under a write load. The binary form starts with 0xc1, a byte msgpack never
// uses, so the two are told apart by the first byte and logs written before it still decode:
//   [0xc1][kind 1 = put][flags: 1 prev_kv, 2 ignore_value, 4 ignore_lease, 8 auth]
//   [m: f64 LE][n: f64 LE][lease: f64 LE][key length: u32 LE]
//   (flag 8 only:) [auth revision: f64 LE][username length: u32 LE][username, UTF-8]
//   [key][value]
// A client's put always carries auth information (user "" and revision 0 when it presented
// no credentials; see AuthAdmin.proposer); only the server's own puts carry none.

import { Packr } from 'msgpackr';
import type { AuthInfo, AuthRequest } from '../auth';
import type * as pb from '../proto';
import type { Member } from './membership';

const packr = new Packr({ useRecords: false, moreTypes: false });

export type InternalRequest =
  | { op: 'put'; req: pb.PutRequest }
  | { op: 'deleteRange'; req: pb.DeleteRangeRequest }
  | { op: 'txn'; req: pb.TxnRequest }
  | { op: 'compaction'; req: pb.CompactionRequest }
  | { op: 'leaseGrant'; req: pb.LeaseGrantRequest }
  /**
   * leaderTerm: set on the revoke of an expired lease, the term its proposer led in; the
   * applier ignores it in an entry of any other term (a deposed leader's revoke forwarded to
   * the next leader, which kept the lease alive: etcd#15247).
   */
  | { op: 'leaseRevoke'; req: pb.LeaseRevokeRequest; leaderTerm?: number }
  | { op: 'alarm'; req: pb.AlarmRequest }
  /** A member publishes its name and client URLs once it runs (etcd's publish). */
  | { op: 'memberAttributes'; memberId: number; name: string; clientUrls: string[] }
  /** Cluster.MemberUpdate: new peer URLs (etcd's ConfChangeUpdateNode, which Raft ignores). */
  | { op: 'memberUpdate'; memberId: number; peerUrls: string[] }
  /** Auth management and Authenticate (passwords already hashed). */
  | { op: 'auth'; req: AuthRequest };

export interface Envelope {
  /** Proposing member. */
  m: number;
  /** Sequence number at that member. */
  n: number;
  r: InternalRequest;
  /** Who proposed it, for permission checks when applied; absent for the server's own requests. */
  a?: AuthInfo;
}

const binaryTag = 0xc1;
const binaryPut = 1;
const putHeadBytes = 3 + 3 * 8 + 4;

export function encodeEnvelope(e: Envelope): Uint8Array {
  if (e.r.op === 'put') return encodePut(e.m, e.n, e.r.req, e.a);
  return packr.pack(e);
}

export function decodeEnvelope(b: Uint8Array): Envelope {
  if (b.length > 0 && b[0] === binaryTag) return decodeBinary(b);
  return packr.unpack(b) as Envelope;
}

const flagPrevKv = 1;
const flagIgnoreValue = 2;
const flagIgnoreLease = 4;
const flagAuth = 8;
/** The auth revision and the username's length. */
const authHeadBytes = 8 + 4;

function encodePut(m: number, n: number, req: pb.PutRequest, auth: AuthInfo | undefined): Buffer {
  const userLen = auth === undefined ? 0 : Buffer.byteLength(auth.username);
  const at = putHeadBytes + (auth === undefined ? 0 : authHeadBytes + userLen);
  const out = Buffer.allocUnsafe(at + req.key.length + req.value.length);
  out[0] = binaryTag;
  out[1] = binaryPut;
  out[2] = (req.prev_kv ? flagPrevKv : 0) | (req.ignore_value ? flagIgnoreValue : 0) | (req.ignore_lease ? flagIgnoreLease : 0) | (auth === undefined ? 0 : flagAuth);
  out.writeDoubleLE(m, 3);
  out.writeDoubleLE(n, 11);
  out.writeDoubleLE(req.lease, 19);
  out.writeUInt32LE(req.key.length, 27);
  if (auth !== undefined) {
    out.writeDoubleLE(auth.revision, putHeadBytes);
    out.writeUInt32LE(userLen, putHeadBytes + 8);
    if (userLen > 0) out.write(auth.username, putHeadBytes + authHeadBytes, 'utf8');
  }
  out.set(req.key, at);
  out.set(req.value, at + req.key.length);
  return out;
}

/**
 * The fields of a put that asks for nothing but the write itself (no prev_kv, no
 * ignore_value/ignore_lease, no lease), read in place by readPlainPut: applying one needs no
 * request object. Its key as an index string (one latin1 char per byte, mvcc/keys.ts).
 */
export interface PlainPut {
  m: number;
  n: number;
  keyStr: string;
  /** The entry's bytes; the value is [valueStart, its end). */
  buf: Buffer;
  valueStart: number;
}

/**
 * Fills `out` when `b` is a binary put with no flags but auth and no lease, and returns true;
 * false for anything else (decodeEnvelope then). The auth information it carries is not read:
 * only call this while auth is disabled, when it does not matter on apply.
 */
export function readPlainPut(b: Uint8Array, out: PlainPut): boolean {
  if (b.length < putHeadBytes || b[0] !== binaryTag || b[1] !== binaryPut || (b[2]! & ~flagAuth) !== 0) return false;
  const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.readDoubleLE(19) !== 0) return false;
  let at = putHeadBytes;
  if ((b[2]! & flagAuth) !== 0) {
    if (at + authHeadBytes > buf.length) return false;
    at += authHeadBytes + buf.readUInt32LE(at + 8);
  }
  const keyLen = buf.readUInt32LE(27);
  if (at + keyLen > buf.length) return false;
  out.m = buf.readDoubleLE(3);
  out.n = buf.readDoubleLE(11);
  out.keyStr = buf.toString('latin1', at, at + keyLen);
  out.buf = buf;
  out.valueStart = at + keyLen;
  return true;
}

function undecodable(what: string): Error {
  return new Error(`undecodable log entry (${what})`);
}

function decodeBinary(b: Uint8Array): Envelope {
  if (b.length < putHeadBytes || b[1] !== binaryPut) throw undecodable(`binary kind ${b[1]}, ${b.length} bytes`);
  // Views of the entry's bytes, no copies: the store copies what it keeps (as msgpackr's
  // subarrays did before).
  const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const keyLen = buf.readUInt32LE(27);
  const flags = buf[2];
  let at = putHeadBytes;
  let auth: AuthInfo | undefined;
  if ((flags & flagAuth) !== 0) {
    if (at + authHeadBytes > buf.length) throw undecodable(`auth information cut short in ${buf.length} bytes`);
    const revision = buf.readDoubleLE(at);
    const userLen = buf.readUInt32LE(at + 8);
    at += authHeadBytes;
    if (at + userLen > buf.length) throw undecodable(`username of ${userLen} bytes in ${buf.length}`);
    auth = { username: buf.toString('utf8', at, at + userLen), revision };
    at += userLen;
  }
  if (at + keyLen > buf.length) throw undecodable(`key of ${keyLen} bytes in ${buf.length}`);
  const env: Envelope = {
    m: buf.readDoubleLE(3),
    n: buf.readDoubleLE(11),
    r: {
      op: 'put',
      req: {
        key: buf.subarray(at, at + keyLen),
        value: buf.subarray(at + keyLen),
        lease: buf.readDoubleLE(19),
        prev_kv: (flags & flagPrevKv) !== 0,
        ignore_value: (flags & flagIgnoreValue) !== 0,
        ignore_lease: (flags & flagIgnoreLease) !== 0,
      },
    },
  };
  if (auth !== undefined) env.a = auth;
  return env;
}

/**
 * Carried in a ConfChange's context: who waits for it, what it does to the membership
 * (absent on the entries that bootstrap a new cluster) and the member being added.
 */
export interface ConfChangeContext {
  m: number;
  n: number;
  op?: 'add' | 'promote' | 'remove';
  member?: Member;
}

export function encodeConfContext(c: ConfChangeContext): string {
  return JSON.stringify(c);
}

export function decodeConfContext(s: string | undefined): ConfChangeContext | undefined {
  if (!s) return undefined;
  try {
    return JSON.parse(s) as ConfChangeContext;
  } catch {
    return undefined;
  }
}
