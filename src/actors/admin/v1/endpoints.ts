/**
 * `/v1/endpoints`: create, list, read, change, delete, rotate the secret, pause, resume, re-enable,
 * and the attempt log. See index.ts for the table of routes, roles and answers.
 *
 * - The signing secret is answered by create and rotate-secret only, never logged, never shown again.
 * - A URL (on create or patch) passes the target check (target.ts) before anything is written.
 * - Every write is audited (target: the endpoint id; on create the URL's origin, as the id does not
 *   exist yet) and then told to the Deliverer; `enable` also closes the endpoint's circuit breaker; a
 *   delete cascades to the endpoint's subscriptions and tells the Matcher which ones went.
 * - Attempts are listed newest first and paged by time (`before`, ms); see `attemptPage`.
 */
import { EthhookError, isEthhookError } from '../../../runtime/errors.ts';
import type { AttemptLog, AttemptRecord } from '../../../store/attempts.ts';
import { endpointView, type Endpoint } from '../../../store/endpoints.ts';
import { removeEndpointCascade } from '../../../store/subscriptions.ts';
import { defineRoute, type Route } from '../router.ts';
import { roleOf, type V1Context } from './context.ts';
import { AttemptListQuery, EndpointCreateBody, EndpointListQuery, EndpointPatchBody, RotateSecretBody } from './schemas.ts';
import { endpointFor, pageById, type Page } from './views.ts';

const byId = { target: ({ params }: { params: Readonly<Record<string, string>> }) => params.id };

export function endpointRoutes(ctx: V1Context): Route[] {
  const { endpoints, notices } = ctx;

  /** A state change of one endpoint: written, told to the Deliverer, answered with the whole view. */
  const change = (action: string, write: (id: string) => Promise<Endpoint>) =>
    defineRoute({
      method: 'POST',
      path: `/v1/endpoints/:id/${action}`,
      auth: 'operate',
      audit: { action: `endpoint.${action}`, ...byId },
      handle: async ({ params, log }) => {
        const endpoint = await write(params.id!);
        await notices.endpointChanged(endpoint.id, log);
        return { json: { endpoint: endpointView(endpoint) } };
      },
    });

  return [
    defineRoute<EndpointCreateBody>({
      method: 'POST',
      path: '/v1/endpoints',
      auth: 'operate',
      body: EndpointCreateBody,
      audit: { action: 'endpoint.create', target: ({ body }) => new URL(body.url).origin },
      handle: async ({ body, log }) => {
        await ctx.guardTarget(body.url);
        const { endpoint, secret } = await endpoints.create(body);
        log.info({ endpointId: endpoint.id }, 'endpoint created');
        return { status: 201, json: { endpoint: endpointView(endpoint), secret } };
      },
    }),

    defineRoute<undefined, EndpointListQuery>({
      method: 'GET',
      path: '/v1/endpoints',
      auth: 'read',
      query: EndpointListQuery,
      handle: async ({ query, principal }) => {
        const rows = await endpoints.list({ limit: query.limit + 1, ...(query.after ? { after: query.after } : {}) });
        const page = pageById(rows, query.limit);
        return { json: { data: page.data.map((e) => endpointFor(roleOf(principal), e)), next: page.next } };
      },
    }),

    defineRoute({
      method: 'GET',
      path: '/v1/endpoints/:id',
      auth: 'read',
      handle: async ({ params, principal }) => ({
        json: { endpoint: endpointFor(roleOf(principal), await endpoints.require(params.id!)) },
      }),
    }),

    defineRoute<EndpointPatchBody>({
      method: 'PATCH',
      path: '/v1/endpoints/:id',
      auth: 'operate',
      body: EndpointPatchBody,
      audit: { action: 'endpoint.update', ...byId },
      handle: async ({ params, body, log }) => {
        await endpoints.require(params.id!);
        if (body.url !== undefined) await ctx.guardTarget(body.url);
        const endpoint = await endpoints.update(params.id!, body);
        await notices.endpointChanged(endpoint.id, log);
        return { json: { endpoint: endpointView(endpoint) } };
      },
    }),

    defineRoute({
      method: 'DELETE',
      path: '/v1/endpoints/:id',
      auth: 'operate',
      audit: { action: 'endpoint.delete', ...byId },
      handle: async ({ params, log }) => {
        const id = params.id!;
        const removed = await removeEndpointCascade(endpoints, ctx.subscriptions, id);
        if (removed === undefined) throw new EthhookError('ETHHOOK_ERR_ENDPOINT_NOT_FOUND', `no endpoint ${id}`, { endpointId: id });
        if (removed.length > 0) await notices.subscriptionsChanged({ removed }, log);
        await notices.endpointChanged(id, log, true);
        return { json: { deleted: id, removedSubscriptions: removed } };
      },
    }),

    defineRoute<RotateSecretBody>({
      method: 'POST',
      path: '/v1/endpoints/:id/rotate-secret',
      auth: 'operate',
      body: RotateSecretBody,
      audit: { action: 'endpoint.rotate-secret', ...byId },
      handle: async ({ params, body, log }) => {
        const { endpoint, secret } = await endpoints.rotateSecret(params.id!, body.overlapMs ?? ctx.secretOverlapMs);
        await notices.endpointChanged(endpoint.id, log);
        // The new secret is first; the one that signed until now is second and keeps signing until then.
        const [fresh, previous] = endpoint.secrets;
        return {
          json: { endpoint: endpointView(endpoint), secret, secretId: fresh!.id, previousSecretExpiresAt: previous?.expiresAt ?? null },
        };
      },
    }),

    change('pause', (id) => endpoints.setPaused(id, true)),
    change('resume', (id) => endpoints.setPaused(id, false)),
    // Re-enabled after the receiver was fixed: a fresh start, so the breaker closes too (best effort:
    // the endpoint is enabled whatever the Deliverer says, and its breaker reopens only on new failures).
    defineRoute({
      method: 'POST',
      path: '/v1/endpoints/:id/enable',
      auth: 'operate',
      audit: { action: 'endpoint.enable', ...byId },
      handle: async ({ params, log }) => {
        const endpoint = await endpoints.enable(params.id!);
        await notices.endpointChanged(endpoint.id, log);
        await ctx.breaker(endpoint.id, 'close').catch((err: unknown) => {
          log.warn(
            { endpointId: endpoint.id, code: isEthhookError(err) ? err.code : undefined },
            'endpoint enabled, but its circuit breaker was not closed; close it with POST /v1/endpoints/:id/breaker/close',
          );
        });
        return { json: { endpoint: endpointView(endpoint) } };
      },
    }),

    defineRoute<undefined, AttemptListQuery>({
      method: 'GET',
      path: '/v1/endpoints/:id/attempts',
      auth: 'operate',
      query: AttemptListQuery,
      handle: async ({ params, query }) => {
        const endpoint = await endpoints.require(params.id!);
        return { json: await attemptPage(ctx.outbox.attempts, endpoint.id, query.limit, query.before) };
      },
    }),
  ];
}

/**
 * One page of attempts, newest first. The cursor is a time (`before`: strictly older than), so a page
 * never ends inside a millisecond, whose other records the next page would skip: the records of the
 * page's last millisecond are held back for the next page when they do not all fit. When one
 * millisecond alone fills the page, the page grows to hold all of it.
 */
export async function attemptPage(
  log: AttemptLog,
  endpointId: string,
  limit: number,
  before?: number,
): Promise<Page<AttemptRecord, number>> {
  const rows = await log.list(endpointId, { limit: limit + 1, ...(before !== undefined ? { before } : {}) });
  if (rows.length <= limit) return { data: rows, next: null };
  const edge = rows[limit - 1]!.at;
  let data = rows.slice(0, limit);
  if (rows[limit]!.at === edge) {
    data = data.filter((r) => r.at !== edge);
    if (data.length === 0) {
      const wide = await log.list(endpointId, { before: edge + 1, limit: 2 * log.keepPerEndpoint });
      data = wide.filter((r) => r.at === edge);
    }
  }
  return { data, next: data[data.length - 1]!.at };
}
