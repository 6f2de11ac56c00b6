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
 *   again after a backoff, until it applies (order is never traded for progress). So reject only when
 *   a retry can succeed (a store failure). A message that names something absent (a subscription for
 *   an endpoint that does not exist, pausing or resuming a missing endpoint) would stall the stream
 *   forever, since no later message can come first: resolve instead, and say so in the logs (the
 *   node's store-applier.ts logs it at warn with ETHHOOK_ERR_GOVERNANCE_SKIPPED and skips it).
 * - Key rotations are handled by the stream itself and never reach the applier; the stream's own
 *   `onApplied` option (index.ts) sees every applied message, rotations included.
 */
import type { GovernancePayload } from '../../governance-protocol/protocol.ts';

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
