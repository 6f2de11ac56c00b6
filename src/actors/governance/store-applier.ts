/**
 * The node's GovernanceApplier (applier.ts): applies governance messages to the EndpointStore and the
 * SubscriptionStore, then tells the pipeline, the way the `/v1` admin routes do (the Matcher gets
 * `subscriptions.changed`, the Deliverer `deliverer.endpoint-changed`; `notices` is
 * `pipelineNotices(lookup)` of src/pipeline-notices.ts).
 *
 * Idempotent by seq: every method first reads what is stored and writes only the difference, so a
 * message applied again after a crash (the height is recorded after the apply) changes nothing twice.
 *
 * - `endpoint.upsert` creates the endpoint (with the message's id and secret) or replaces its
 *   configuration: url, description, rateLimitPerSec (absent removes it). A `secret` that is not
 *   already the newest signing secret is rotated in with the usual overlap (the previous one keeps
 *   signing for `secretOverlapMs` (24 h by default), so receivers can switch). `paused` and `disabled` are
 *   operational state, not configuration: an upsert keeps them.
 * - `endpoint.delete` deletes the endpoint and its subscriptions (removeEndpointCascade).
 * - `endpoint.pause` / `endpoint.resume` set `paused`.
 * - `subscription.upsert` creates the subscription or, when its filter or endpoint differ, replaces it
 *   (same id, same createdAt). Its abi, events and filter are checked as the admin API checks them
 *   (src/store/subscriptions.ts); a payload they refuse is skipped (ETHHOOK_ERR_GOVERNANCE_SKIPPED, the
 *   reason naming the field): no later message could make it valid.
 * - `subscription.delete` deletes it.
 *
 * What the stream cannot fix never throws: a rejection makes the stream ask for the same message again
 * forever (applier.ts), so a message that refers to something absent (a subscription for a missing
 * endpoint, pausing a deleted endpoint) is logged at warn with ETHHOOK_ERR_GOVERNANCE_SKIPPED and
 * skipped, and the stream moves on: no later message could make the earlier one applicable, and order
 * matters more than a message that names nothing. A store failure (LevelDB) still rejects: a retry can
 * fix that one.
 *
 * Governance notices on the live event streams come from the stream's `onApplied` (index.ts), which
 * also sees key rotations: those never reach an applier.
 */
import { isEthhookError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import { DEFAULT_ROTATION_OVERLAP_MS, type EndpointStore } from '../../store/endpoints.ts';
import { abiFields, removeEndpointCascade, type Subscription, type SubscriptionStore } from '../../store/subscriptions.ts';
import type { AbiFields } from '../../abi/subscription-fields.ts';
import type { PipelineNotices } from '../../pipeline-notices.ts';
import type { ApplyMeta, GovernanceApplier } from './applier.ts';
import type { GovernanceErrorCode } from './errors.ts';
import type { GovernancePayload, GovernanceType } from '../../governance-protocol/protocol.ts';

export interface StoreApplierOptions {
  endpoints: EndpointStore;
  subscriptions: SubscriptionStore;
  notices: PipelineNotices;
  logger: Logger;
  /** How long a replaced secret keeps signing. Default DEFAULT_ROTATION_OVERLAP_MS (24 h). */
  secretOverlapMs?: number;
}

const SKIP_CODE: GovernanceErrorCode = 'ETHHOOK_ERR_GOVERNANCE_SKIPPED';

export function createStoreApplier(options: StoreApplierOptions): GovernanceApplier {
  const { endpoints, subscriptions, notices, logger } = options;

  const skip = (type: GovernanceType, meta: ApplyMeta, reason: string, context: Record<string, unknown>) => {
    logger.warn(
      { seq: meta.seq, type, keyId: meta.keyId, code: SKIP_CODE, reason, ...context },
      'governance message skipped: nothing to apply it to',
    );
  };
  /** Runs a write that fails with `code` when its target vanished meanwhile; false if it did. */
  const unlessMissing = async (code: string, write: () => Promise<unknown>): Promise<boolean> => {
    try {
      await write();
      return true;
    } catch (err) {
      if (isEthhookError(err, code)) return false;
      throw err;
    }
  };

  const setPaused = async (type: 'endpoint.pause' | 'endpoint.resume', id: string, meta: ApplyMeta) => {
    const paused = type === 'endpoint.pause';
    const endpoint = await endpoints.get(id);
    const applied =
      endpoint !== undefined &&
      (endpoint.paused === paused || (await unlessMissing('ETHHOOK_ERR_ENDPOINT_NOT_FOUND', () => endpoints.setPaused(id, paused))));
    if (!applied) return skip(type, meta, 'no such endpoint', { endpointId: id });
    await notices.endpointChanged(id, logger);
  };

  const upsertEndpoint = async (p: GovernancePayload<'endpoint.upsert'>, meta: ApplyMeta): Promise<void> => {
    const existing = await endpoints.get(p.id);
    if (existing === undefined) {
      // Created meanwhile (by the admin API): replace it like any existing one.
      if (!(await unlessMissing('ETHHOOK_ERR_ENDPOINT_EXISTS', () => endpoints.create(p)))) return upsertEndpoint(p, meta);
      logger.info({ seq: meta.seq, endpointId: p.id }, 'governance: endpoint created');
    } else {
      const { url, description, rateLimitPerSec } = p;
      if (existing.url !== url || existing.description !== description || existing.rateLimitPerSec !== rateLimitPerSec) {
        await endpoints.update(p.id, { url, description, rateLimitPerSec: rateLimitPerSec ?? null });
      }
      if (p.secret !== undefined && endpoints.activeSecrets(existing)[0] !== p.secret) {
        await endpoints.rotateSecret(p.id, options.secretOverlapMs ?? DEFAULT_ROTATION_OVERLAP_MS, { secret: p.secret });
      }
      logger.info({ seq: meta.seq, endpointId: p.id }, 'governance: endpoint replaced');
    }
    await notices.endpointChanged(p.id, logger);
  };

  return {
    endpointUpsert: upsertEndpoint,

    async endpointDelete(p, meta) {
      const removed = await removeEndpointCascade(endpoints, subscriptions, p.id);
      if (removed === undefined) {
        logger.info({ seq: meta.seq, endpointId: p.id }, 'governance: endpoint to delete was already gone');
      } else {
        if (removed.length > 0) await notices.subscriptionsChanged({ removed }, logger);
        await notices.endpointChanged(p.id, logger, true);
        logger.info({ seq: meta.seq, endpointId: p.id, removedSubscriptions: removed.length }, 'governance: endpoint deleted');
      }
    },

    endpointPause: (p, meta) => setPaused('endpoint.pause', p.id, meta),
    endpointResume: (p, meta) => setPaused('endpoint.resume', p.id, meta),

    async subscriptionUpsert(p, meta) {
      const type = 'subscription.upsert';
      if ((await endpoints.get(p.endpointId)) === undefined) {
        return skip(type, meta, 'its endpoint does not exist', { subscriptionId: p.id, endpointId: p.endpointId });
      }
      let fields: AbiFields;
      try {
        fields = await abiFields(p);
      } catch (err) {
        if (!isEthhookError(err, 'ETHHOOK_ERR_INVALID_INPUT')) throw err;
        return skip(type, meta, err.message, { subscriptionId: p.id, field: err.context.field });
      }
      const existing = await subscriptions.get(p.id);
      if (existing === undefined || !sameSubscription(existing, p, fields)) {
        if (existing !== undefined) await subscriptions.remove(p.id);
        // createdAt is kept: a replaced subscription keeps its place in listings.
        if (!(await unlessMissing('ETHHOOK_ERR_ENDPOINT_NOT_FOUND', () => subscriptions.create(p, existing?.createdAt)))) {
          if (existing !== undefined) await notices.subscriptionsChanged({ removed: [p.id] }, logger);
          return skip(type, meta, 'its endpoint was deleted meanwhile', { subscriptionId: p.id, endpointId: p.endpointId });
        }
        logger.info(
          { seq: meta.seq, subscriptionId: p.id, endpointId: p.endpointId },
          existing ? 'governance: subscription replaced' : 'governance: subscription created',
        );
      }
      // Told even when nothing changed: after a crash between the write and the notice, this is the notice.
      await notices.subscriptionsChanged({ upserted: [p.id] }, logger);
    },

    async subscriptionDelete(p, meta) {
      if ((await subscriptions.remove(p.id)) !== undefined)
        logger.info({ seq: meta.seq, subscriptionId: p.id }, 'governance: subscription deleted');
      await notices.subscriptionsChanged({ removed: [p.id] }, logger);
    },
  };
}

/** The stored subscription already says what the payload says (both normalized by the store's schemas). */
function sameSubscription(stored: Subscription, p: GovernancePayload<'subscription.upsert'>, fields: AbiFields): boolean {
  const wanted = {
    endpointId: p.endpointId,
    chainId: p.chainId,
    addresses: p.addresses && p.addresses.length > 0 ? p.addresses : undefined,
    topics: fields.topics,
    confirmations: p.confirmations,
    finality: p.finality,
    abi: fields.abi,
    filter: fields.filter,
  };
  const have = {
    endpointId: stored.endpointId,
    chainId: stored.chainId,
    addresses: stored.addresses,
    topics: stored.topics,
    confirmations: stored.confirmations,
    finality: stored.finality,
    abi: stored.abi,
    filter: stored.filter,
  };
  return JSON.stringify(wanted) === JSON.stringify(have);
}
