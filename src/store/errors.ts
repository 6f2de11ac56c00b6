/**
 * Error codes of the store (endpoints, subscriptions, secrets, outbox). Gathered into the one catalog
 * (`src/errors.ts`). Contexts carry ids and field paths, never a secret or the master key.
 */
import { defineErrorCodes } from '../runtime/errors.ts';

export const storeErrorCodes = defineErrorCodes({
  ETHHOOK_ERR_INVALID_INPUT: {
    summary: 'a record given to the store failed validation (the context names the field)',
    httpStatus: 400,
  },
  ETHHOOK_ERR_ENDPOINT_NOT_FOUND: { summary: 'no endpoint has this id', httpStatus: 404 },
  ETHHOOK_ERR_ENDPOINT_EXISTS: { summary: 'an endpoint with this id already exists', httpStatus: 409 },
  ETHHOOK_ERR_SUBSCRIPTION_NOT_FOUND: { summary: 'no subscription has this id', httpStatus: 404 },
  ETHHOOK_ERR_SUBSCRIPTION_EXISTS: { summary: 'a subscription with this id already exists', httpStatus: 409 },
  ETHHOOK_ERR_BACKFILL_RUNNING: {
    summary:
      'the subscription has a backfill running already (one at a time): cancel it (DELETE /v1/subscriptions/{id}/replay) or wait for it',
    httpStatus: 409,
  },
  ETHHOOK_ERR_BACKFILL_NOT_RUNNING: { summary: 'the subscription has no backfill running to cancel', httpStatus: 404 },
  ETHHOOK_ERR_DEAD_LETTER_NOT_FOUND: { summary: 'no dead letter has this id', httpStatus: 404 },
  ETHHOOK_ERR_DEAD_LETTER_SUPERSEDED: {
    summary:
      'the dead letter was followed by a later webhook of the same log and subscription (its retraction, or its next creation): replayed, it would reach the receiver after that one',
    httpStatus: 409,
  },
  ETHHOOK_ERR_MASTER_KEY_INVALID: {
    summary: 'the master key (ETHHOOK_MASTER_KEY or <dataDir>/master.key) is not 32 bytes of base64 or hex',
    httpStatus: 500,
  },
  ETHHOOK_ERR_MASTER_KEY_MISSING: {
    summary: 'no master key is configured and generating one is not allowed (production)',
    httpStatus: 500,
  },
  ETHHOOK_ERR_MASTER_KEY_MISMATCH: {
    summary:
      'the master key opens none of the stored webhook secrets: the node was started with another key than its store was written with',
    httpStatus: 500,
  },
  ETHHOOK_ERR_STORE_LOCKED: {
    summary:
      "the store is held by a running node (LevelDB's lock on its directory, or live instances of a cluster on a PostgreSQL schema, for an offline command); stop it, use the admin API, or give this node another store",
    httpStatus: 409,
  },
  ETHHOOK_ERR_STORE_UNAVAILABLE: {
    summary:
      'the PostgreSQL store kept failing with transient errors (connection refused or lost, statement timeout, serialization failure) for longer than the operation waits (60 s): the context names the operation and the last error',
    httpStatus: 503,
  },
  ETHHOOK_ERR_STORE_SCHEMA_NEWER: {
    summary:
      'the PostgreSQL schema was migrated by a newer ethhook (its schema_migrations holds a version this one has no migration for): run that version, or restore the database',
    httpStatus: 500,
  },
  ETHHOOK_ERR_STORE_SERVER_TOO_OLD: {
    summary: 'the PostgreSQL server is older than the oldest the store supports (15): the context names its version',
    httpStatus: 500,
  },
  ETHHOOK_ERR_SECRET_DECRYPT: {
    summary: 'an endpoint secret could not be decrypted: wrong master key or tampered record',
    httpStatus: 500,
  },
});

export type StoreErrorCode = keyof typeof storeErrorCodes;
