// What goes into the Raft log: one msgpackr-encoded request per entry, tagged with the id
// of the member that proposed it and a sequence number, so that the proposer (and only it)
// can hand the result back to the waiting client.

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

export function encodeEnvelope(e: Envelope): Uint8Array {
  return packr.pack(e);
}

export function decodeEnvelope(b: Uint8Array): Envelope {
  return packr.unpack(b) as Envelope;
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
