/**
 * `/v1/subscriptions`: create, list (by endpoint and chain, paged by id), read, delete, and backfills of
 * their history (`replay`). See index.ts for the table of routes, roles and answers.
 *
 * After a create or a delete the Matcher is told (`subscriptions.changed` with the id upserted or
 * removed), so matching follows without a restart. A subscription for an unknown endpoint is a 404
 * naming the field `endpointId`; one for a chain this node does not follow is a 400 naming `chainId`
 * and listing the chains it does (it would never match, and a typo would go unnoticed).
 *
 * Backfills (src/actors/backfill/, requests in src/store/backfills.ts): `fromBlock` (and `toBlock`) on
 * a create, or `POST /v1/subscriptions/:id/replay { fromBlock, toBlock? }`, records a request and tells
 * the Backfill actor; `toBlock` below `fromBlock` is a 400 naming `toBlock`, a second request while one
 * runs a 409 (ETHHOOK_ERR_BACKFILL_RUNNING). `DELETE /v1/subscriptions/:id/replay` cancels the running
 * one (404 ETHHOOK_ERR_BACKFILL_NOT_RUNNING when none runs). A read shows the latest request's
 * progress as `backfill: { id, from, to, at, state }` (null when there was none).
 */
import { EthhookError, isEthhookError } from '../../../runtime/errors.ts';
import { defineRoute, type Route } from '../router.ts';
import { roleOf, type V1Context } from './context.ts';
import { ReplayBody, SubscriptionCreateBody, SubscriptionListQuery } from './schemas.ts';
import { pageById, subscriptionFor } from './views.ts';

export function subscriptionRoutes(ctx: V1Context): Route[] {
  const { subscriptions, notices, backfills } = ctx;
  const followed = (chainId: number) => {
    if (!ctx.chains.includes(chainId)) {
      throw new EthhookError(
        'ETHHOOK_ERR_ADMIN_INVALID_REQUEST',
        `body.chainId: this node follows chain ${ctx.chains.join(', ') || '(none)'}; ${chainId} is not one of them`,
        { field: 'chainId', chains: ctx.chains },
      );
    }
  };
  return [
    defineRoute<SubscriptionCreateBody>({
      method: 'POST',
      path: '/v1/subscriptions',
      auth: 'operate',
      body: SubscriptionCreateBody,
      audit: { action: 'subscription.create', target: ({ body }) => body.endpointId },
      handle: async ({ body, log }) => {
        followed(body.chainId);
        const { fromBlock, toBlock, ...fields } = body;
        const sub = await subscriptions.create(fields).catch((err: unknown) => {
          if (isEthhookError(err, 'ETHHOOK_ERR_ENDPOINT_NOT_FOUND'))
            throw new EthhookError(err.code, err.message, { ...err.context, field: 'endpointId' });
          throw err;
        });
        log.info({ subscriptionId: sub.id, endpointId: sub.endpointId }, 'subscription created');
        await notices.subscriptionsChanged({ upserted: [sub.id] }, log);
        if (fromBlock === undefined) return { status: 201, json: { subscription: sub } };
        const backfill = await backfills.start({ subscriptionId: sub.id, chainId: sub.chainId, from: fromBlock, to: toBlock });
        log.info({ subscriptionId: sub.id, backfill }, 'backfill requested');
        await ctx.backfillChanged(sub.id, log);
        return { status: 201, json: { subscription: sub, backfill } };
      },
    }),

    defineRoute<undefined, SubscriptionListQuery>({
      method: 'GET',
      path: '/v1/subscriptions',
      auth: 'read',
      query: SubscriptionListQuery,
      handle: async ({ query, principal }) => {
        const { limit, ...filters } = query;
        const page = pageById(await subscriptions.list({ ...filters, limit: limit + 1 }), limit);
        return { json: { data: page.data.map((s) => subscriptionFor(roleOf(principal), s)), next: page.next } };
      },
    }),

    defineRoute({
      method: 'GET',
      path: '/v1/subscriptions/:id',
      auth: 'read',
      handle: async ({ params, principal }) => ({
        json: {
          subscription: subscriptionFor(roleOf(principal), await subscriptions.require(params.id!)),
          backfill: (await backfills.view(params.id!)) ?? null,
        },
      }),
    }),

    defineRoute<ReplayBody>({
      method: 'POST',
      path: '/v1/subscriptions/:id/replay',
      auth: 'operate',
      body: ReplayBody,
      audit: { action: 'subscription.replay', target: ({ params }) => params.id },
      handle: async ({ params, body, log }) => {
        const sub = await subscriptions.require(params.id!);
        followed(sub.chainId);
        const backfill = await backfills.start({ subscriptionId: sub.id, chainId: sub.chainId, from: body.fromBlock, to: body.toBlock });
        log.info({ subscriptionId: sub.id, backfill }, 'replay requested');
        await ctx.backfillChanged(sub.id, log);
        return { status: 202, json: { backfill } };
      },
    }),

    defineRoute({
      method: 'DELETE',
      path: '/v1/subscriptions/:id/replay',
      auth: 'operate',
      audit: { action: 'subscription.replay-cancel', target: ({ params }) => params.id },
      handle: async ({ params, log }) => {
        const sub = await subscriptions.require(params.id!);
        const backfill = await backfills.cancel(sub.id);
        log.info({ subscriptionId: sub.id, backfill }, 'backfill cancelled');
        await ctx.backfillChanged(sub.id, log);
        return { json: { backfill } };
      },
    }),

    defineRoute({
      method: 'DELETE',
      path: '/v1/subscriptions/:id',
      auth: 'operate',
      audit: { action: 'subscription.delete', target: ({ params }) => params.id },
      handle: async ({ params, log }) => {
        const id = params.id!;
        const removed = await subscriptions.remove(id);
        if (removed === undefined)
          throw new EthhookError('ETHHOOK_ERR_SUBSCRIPTION_NOT_FOUND', `no subscription ${id}`, { subscriptionId: id });
        await backfills.forget(id);
        await notices.subscriptionsChanged({ removed: [id] }, log);
        return { json: { deleted: id } };
      },
    }),
  ];
}
