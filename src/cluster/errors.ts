/**
 * Error codes of the cluster (src/cluster/): leases and their fencing. Gathered into the one catalog
 * (`src/errors.ts`).
 */
import { defineErrorCodes } from '../runtime/errors.ts';

export const clusterErrorCodes = defineErrorCodes({
  ETHHOOK_ERR_LEASE_LOST: {
    summary:
      'a write fenced by a lease (a chain cursor, a block’s jobs, a governance apply) found the lease held by another instance or expired: the write changed nothing, and this instance stops ingesting for it',
    httpStatus: 409,
  },
  ETHHOOK_ERR_CLUSTER_CHAIN_UNKNOWN: { summary: 'the cluster follows no chain with this id', httpStatus: 404 },
  ETHHOOK_ERR_CLUSTER_LEASE_BUSY: {
    summary:
      'a write fenced by the lease is in flight (or its instance is paused inside one, until the server ends that session): the lease cannot be released now; try again in a few seconds',
    httpStatus: 503,
  },
  ETHHOOK_ERR_CLUSTER_NOT_HOLDER: {
    summary: 'another instance of the cluster ingests this chain (holds its lease): ask that instance (GET /v1/cluster names it)',
    httpStatus: 409,
  },
});
