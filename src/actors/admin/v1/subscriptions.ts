/**
 * `/v1/subscriptions`: create, list (by endpoint and chain, paged by id), read, delete. See index.ts
 * for the table of routes, roles and answers.
 *
 * After a create or a delete the Matcher is told (`subscriptions.changed` with the id upserted or
 * removed), so matching follows without a restart. A subscription for an unknown endpoint is a 404
 * naming the field `endpointId`; one for a chain this node does not follow is a 400 naming `chainId`
 * and listing the chains it does (it would never match, and a typo would go unnoticed).
 */
import { EthhookError, isEthhookError } from '../../../runtime/errors.ts';
import { defineRoute, type Route } from '../router.ts';
import { roleOf, type V1Context } from './context.ts';
import { SubscriptionCreateBody, SubscriptionListQuery } from './schemas.ts';
import { pageById, subscriptionFor } from './views.ts';

export function subscriptionRoutes(ctx: V1Context): Route[] {
  const { subscriptions, notices } = ctx;
  return [
    defineRoute<SubscriptionCreateBody>({
      method: 'POST',
      path: '/v1/subscriptions',
      auth: 'operate',
      body: SubscriptionCreateBody,
      audit: { action: 'subscription.create', target: ({ body }) => body.endpointId },
      handle: async ({ body, log }) => {
        if (!ctx.chains.includes(body.chainId)) {
          throw new EthhookError(
            'ETHHOOK_ERR_ADMIN_INVALID_REQUEST',
            `body.chainId: this node follows chain ${ctx.chains.join(', ') || '(none)'}; ${body.chainId} is not one of them`,
            { field: 'chainId', chains: ctx.chains },
          );
        }
        const sub = await subscriptions.create(body).catch((err: unknown) => {
          if (isEthhookError(err, 'ETHHOOK_ERR_ENDPOINT_NOT_FOUND'))
            throw new EthhookError(err.code, err.message, { ...err.context, field: 'endpointId' });
          throw err;
        });
        log.info({ subscriptionId: sub.id, endpointId: sub.endpointId }, 'subscription created');
        await notices.subscriptionsChanged({ upserted: [sub.id] }, log);
        return { status: 201, json: { subscription: sub } };
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
        json: { subscription: subscriptionFor(roleOf(principal), await subscriptions.require(params.id!)) },
      }),
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
        await notices.subscriptionsChanged({ removed: [id] }, log);
        return { json: { deleted: id } };
      },
    }),
  ];
}
