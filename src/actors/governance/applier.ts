/**
 * What the GovernanceStream applies messages through. The node implements it over its endpoint and
 * subscription stores; tests use an in-memory one (test/support/governance.ts).
 *
 * Contract:
 * - Calls come strictly in sequence, one at a time: the next starts after the previous one resolved.
 * - Every method must be idempotent for a given `seq`: the stream records its height only after the
 *   call resolved, so a crash in between replays the same message after the restart. Upserts overwrite;
 *   deleting, pausing or resuming what does not exist resolves without error.
 * - A rejection is not a skip: the stream logs it, counts it, and asks the server for the same message
 *   again after a backoff, until it applies. A rejection for a permanent reason (a subscription for an
 *   endpoint that does not exist) therefore stalls the stream at that message, visibly (the status'
 *   `lastError`, the logs), until its cause is fixed: order is never traded for progress.
 * - Key rotations are handled by the stream itself and never reach the applier.
 */
import type { GovernancePayload } from './protocol.ts';

export interface ApplyMeta {
  /** The message's sequence number: the idempotency key. */
  seq: number;
  /** The fingerprint of the key that signed it (for the audit trail). */
  keyId: string;
}

export interface GovernanceApplier {
  endpointUpsert(payload: GovernancePayload<'endpoint.upsert'>, meta: ApplyMeta): Promise<void>;
  endpointDelete(payload: GovernancePayload<'endpoint.delete'>, meta: ApplyMeta): Promise<void>;
  endpointPause(payload: GovernancePayload<'endpoint.pause'>, meta: ApplyMeta): Promise<void>;
  endpointResume(payload: GovernancePayload<'endpoint.resume'>, meta: ApplyMeta): Promise<void>;
  subscriptionUpsert(payload: GovernancePayload<'subscription.upsert'>, meta: ApplyMeta): Promise<void>;
  subscriptionDelete(payload: GovernancePayload<'subscription.delete'>, meta: ApplyMeta): Promise<void>;
}
