/**
 * The `/v1` admin API over endpoints, subscriptions, delivery attempts and dead letters. The lead hands
 * `v1Routes(...)` to `createAdminBehaviour({ routes })`; the admin server does auth, zod parsing (400
 * with `field`), error bodies and audit lines for them (router.ts, server.ts).
 *
 *   POST   /v1/endpoints                      operate  { url, description?, rateLimitPerSec? }   201 { endpoint, secret }
 *   GET    /v1/endpoints                      read*    ?limit=&after=<ep id>                      { data: [endpoint], next }
 *   GET    /v1/endpoints/:id                  read*                                               { endpoint }
 *   PATCH  /v1/endpoints/:id                  operate  { url?, description?, rateLimitPerSec? (null removes) }  { endpoint }
 *   DELETE /v1/endpoints/:id                  operate  (cascades to its subscriptions)           { deleted, removedSubscriptions }
 *   POST   /v1/endpoints/:id/rotate-secret    operate  { overlapMs? } (send {} for the default)  { endpoint, secret, secretId, previousSecretExpiresAt }
 *   POST   /v1/endpoints/:id/pause            operate                                             { endpoint }
 *   POST   /v1/endpoints/:id/resume           operate                                             { endpoint }
 *   POST   /v1/endpoints/:id/enable           operate  (clears `disabled`, closes the breaker)    { endpoint }
 *   GET    /v1/endpoints/:id/attempts         operate  ?limit=&before=<ms or ISO>                 { data: [attempt], next }
 *   GET    /v1/endpoints/:id/breaker          read                                                { breaker }
 *   POST   /v1/endpoints/:id/breaker/close    operate  (closes the circuit breaker now)           { breaker }
 *   POST   /v1/endpoints/:id/breaker/probe    operate  (the next request is the probe)            { breaker }
 *   POST   /v1/subscriptions                  operate  { endpointId, chainId, addresses?, topics?, confirmations?, finality? }  201 { subscription }
 *                                                     (a chainId this node does not follow: 400 naming `chainId`, listing those it does)
 *   GET    /v1/subscriptions                  read*    ?limit=&after=<sub id>&endpointId=&chainId=  { data: [subscription], next }
 *                                                     (`fromBlock`, `toBlock`: a backfill of its history too; 201 { subscription, backfill })
 *   GET    /v1/subscriptions/:id              read*                                               { subscription, backfill }
 *   POST   /v1/subscriptions/:id/replay       operate  { fromBlock, toBlock? }                    202 { backfill }  (one running: 409)
 *   DELETE /v1/subscriptions/:id/replay       operate  (cancels the running backfill)             { backfill }
 *   DELETE /v1/subscriptions/:id              operate                                             { deleted }
 *   GET    /v1/dead-letters                   operate  ?endpointId=&since=<ms or ISO>&limit=      { data: [deadLetter] }
 *   POST   /v1/dead-letters/:id/replay        operate                                             { replayed: 1, job }
 *   POST   /v1/dead-letters/replay            operate  { endpointId, since? }                     { replayed }
 *
 * Roles. Every write needs `operate`, and so does everything that reveals customer data: webhook URLs
 * (they often carry a capability token), descriptions, subscription filters, attempt errors (they
 * quote the receiver's response) and dead-letter payloads. The lists and reads marked read* also
 * answer a `read` token, with the customer fields left out (views.ts): an on-call SRE with a read
 * token can see which endpoints exist, which are paused or disabled and why, and how subscriptions
 * spread over endpoints and chains, without learning where webhooks go or what they watch.
 *
 * Times are milliseconds since the epoch. Lists: `limit` 1..1000 (default 100); `next` is the cursor
 * of the following page, null on the last. Unknown ids answer 404 with the store's code
 * (ETHHOOK_ERR_ENDPOINT_NOT_FOUND, _SUBSCRIPTION_NOT_FOUND, _DEAD_LETTER_NOT_FOUND); a refused target
 * URL answers 400 ETHHOOK_ERR_TARGET_REFUSED with `field: "url"` and the reason (target.ts).
 * Secrets appear in the create and rotate-secret answers only, never in a log line or a later read.
 * Every change is told to the Matcher or the Deliverer, and acknowledged, before the answer (src/pipeline-notices.ts);
 * in a cluster it is also sent to the other instances (src/cluster/notices.ts), without waiting for them.
 */
import { DEFAULT_ROTATION_OVERLAP_MS, type EndpointStore } from '../../../store/endpoints.ts';
import type { OutboxStore } from '../../../store/outbox/contract.ts';
import type { SubscriptionStore } from '../../../store/subscriptions.ts';
import type { Route } from '../router.ts';
import { EthhookError, describeError, isEthhookError } from '../../../runtime/errors.ts';
import type { BackfillStore } from '../../../store/backfills.ts';
import { ACTOR_PATHS } from '../../../tree.ts';
import type { BreakerView } from '../../deliverer/circuit-breaker.ts';
import type { DelivererMessage } from '../../deliverer/messages.ts';
import { breakerRoutes } from './breakers.ts';
import type { V1Context } from './context.ts';
import { deadLetterRoutes } from './dead-letters.ts';
import { endpointRoutes } from './endpoints.ts';
import { DEFAULT_NOTICE_TIMEOUT_MS, pipelineNotices, type Lookup, type PipelineNotices } from '../../../pipeline-notices.ts';
import { subscriptionRoutes } from './subscriptions.ts';
import { targetGuard, type CheckTarget } from './target.ts';

export interface V1RoutesOptions {
  endpoints: EndpointStore;
  subscriptions: SubscriptionStore;
  outbox: OutboxStore;
  /** Finds `/pipeline/matcher` and `/pipeline/deliverer` (the ActorSystem's `lookup`). */
  lookup: Lookup;
  /** The chain ids this node follows: a subscription for any other is refused. */
  chains: readonly number[];
  config: {
    /** Overlap of a rotation that names none. Default 24 h. */
    secretOverlapMs?: number;
    /** `security.allowPrivateTargets`: accept targets on private, loopback and link-local addresses. */
    allowPrivateTargets: boolean;
    /** `security.requireHttpsTargets`: refuse plain http targets. */
    requireHttpsTargets: boolean;
  };
  /** Replaces the SSRF check of src/target-policy/ssrf.ts (its DNS, in tests). */
  checkTarget?: CheckTarget;
  /** Backfill requests (src/store/backfills.ts), run by `/pipeline/backfill`. */
  backfills: BackfillStore;
  /** How long a request waits for the Matcher or Deliverer to acknowledge a change. Default 2 s. */
  noticeTimeoutMs?: number;
  /** The notices to send instead of this node's own (a cluster's: src/cluster/notices.ts). */
  notices?: PipelineNotices;
}

export function v1Routes(options: V1RoutesOptions): Route[] {
  const ctx: V1Context = {
    endpoints: options.endpoints,
    subscriptions: options.subscriptions,
    outbox: options.outbox,
    chains: [...options.chains].sort((a, b) => a - b),
    notices: options.notices ?? pipelineNotices(options.lookup, options.noticeTimeoutMs),
    backfills: options.backfills,
    backfillChanged: backfillNotice(options.lookup, options.noticeTimeoutMs ?? DEFAULT_NOTICE_TIMEOUT_MS),
    breaker: delivererBreaker(options.lookup, options.noticeTimeoutMs ?? DEFAULT_NOTICE_TIMEOUT_MS),
    guardTarget: targetGuard(options.config, options.checkTarget),
    secretOverlapMs: options.config.secretOverlapMs ?? DEFAULT_ROTATION_OVERLAP_MS,
  };
  return [...endpointRoutes(ctx), ...breakerRoutes(ctx), ...subscriptionRoutes(ctx), ...deadLetterRoutes(ctx)];
}

/** Tells this node's Backfill actor of a request's change; it polls the store anyway, so a failure is a debug line. */
function backfillNotice(lookup: Lookup, timeoutMs: number): V1Context['backfillChanged'] {
  return async (subscriptionId, log) => {
    try {
      await lookup(ACTOR_PATHS.backfill)?.ask({ type: 'backfill.changed', subscriptionId }, { timeoutMs });
    } catch (err) {
      log.debug({ subscriptionId, err: describeError(err) }, 'backfill notice not acknowledged; the actor reads the store on its own');
    }
  };
}

/** Asks this node's Deliverer for an endpoint's breaker (breakers.ts); any failure to answer is a 503. */
function delivererBreaker(lookup: Lookup, timeoutMs: number): V1Context['breaker'] {
  return async (endpointId, action) => {
    const unavailable = (why: string, cause?: unknown) =>
      new EthhookError(
        'ETHHOOK_ERR_DELIVERER_UNAVAILABLE',
        `the Deliverer cannot answer for the breaker of ${endpointId}: ${why}`,
        { endpointId },
        { cause },
      );
    const ref = lookup(ACTOR_PATHS.deliverer);
    if (ref === undefined) throw unavailable('this node runs no Deliverer');
    let view: BreakerView | null;
    try {
      view = await ref.ask<BreakerView | null>(
        { type: 'deliverer.breaker', endpointId, ...(action ? { action } : {}) } satisfies DelivererMessage,
        { timeoutMs },
      );
    } catch (err) {
      throw unavailable(isEthhookError(err) ? err.code : String(err), err);
    }
    if (view === null) throw unavailable('its delivery loop is not running');
    return view;
  };
}

export type { CheckTarget } from './target.ts';
