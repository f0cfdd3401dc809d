// Public face of the lessor. The applier, the Lease service and the server import only this.

export { Lessor } from './lessor';
export type { LessorOptions, LeaseInfo, LeaseTimeToLive, LessorState, ExpiredLeaseOutcome } from './lessor';
export { LeaseError, isLeaseError } from './errors';
export type { LeaseErrorCode } from './errors';
export {
  leaseTtlSecondsMax,
  leaseRevokeRatePerSecond,
  expiredCheckIntervalMs,
  expiredLeasesPerCheckMax,
  expiredLeaseRetryMsDefault,
  minLeaseTtlSecondsFor,
} from './limits';
