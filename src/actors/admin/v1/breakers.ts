/**
 * `/v1/endpoints/:id/breaker`: an endpoint's circuit breaker in this node's Deliverer, and the
 * operator's way to end an outage's back-off once the receiver is fixed (runbooks/webhooks.md).
 *
 *   GET  /v1/endpoints/:id/breaker         read     { breaker }
 *   POST /v1/endpoints/:id/breaker/close   operate  closes it now, nothing counted against the endpoint  { breaker }
 *   POST /v1/endpoints/:id/breaker/probe   operate  the next request is the probe (ends the cool-down)   { breaker }
 *
 * `breaker` is circuit-breaker.ts's `BreakerView`: `state` (closed, open, half-open), `openUntil`,
 * `cooldownMs`, `consecutiveFailures`, `window: { calls, failures }`. Either action releases the jobs
 * held behind the breaker at once. The breaker lives in the Deliverer's memory: an unknown endpoint is
 * a 404, a Deliverer that is not running or does not answer within the notice timeout a 503
 * ETHHOOK_ERR_DELIVERER_UNAVAILABLE. In a cluster, ask the instance that delivers the endpoint (on the
 * others its breaker is always closed). The actions are audited.
 */
import type { BreakerAction } from '../../deliverer/circuit-breaker.ts';
import { defineRoute, type Route } from '../router.ts';
import type { V1Context } from './context.ts';

export function breakerRoutes(ctx: V1Context): Route[] {
  const answer = async (id: string, action?: BreakerAction) => {
    await ctx.endpoints.require(id);
    return { json: { breaker: await ctx.breaker(id, action) } };
  };
  const act = (action: BreakerAction) =>
    defineRoute({
      method: 'POST',
      path: `/v1/endpoints/:id/breaker/${action}`,
      auth: 'operate',
      audit: { action: `endpoint.breaker.${action}`, target: ({ params }) => params.id },
      handle: ({ params }) => answer(params.id!, action),
    });
  return [
    defineRoute({ method: 'GET', path: '/v1/endpoints/:id/breaker', auth: 'read', handle: ({ params }) => answer(params.id!) }),
    act('close'),
    act('probe'),
  ];
}
