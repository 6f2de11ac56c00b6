/**
 * What the Deliverer receives.
 * - `deliverer.wake`: look at the outbox now (the loop also wakes by itself on every enqueue in this
 *   process; this is for writers elsewhere). Reply `{ ok: true }`.
 * - `deliverer.endpoint-changed` (from the admin API or the governance stream, after the store write):
 *   forget the cached endpoint so edits, rotations, pauses and re-enabling apply at once; `deleted`
 *   also drops its breaker and rate-limit state. Reply `{ ok: true }`.
 * - `deliverer.status`: the loop's state for the admin API. Reply `DeliveryLoopStatus`.
 * - `deliverer.breaker { endpointId, action? }`: an endpoint's circuit breaker, after the operator's
 *   `close` or `probe` when `action` is given (circuit-breaker.ts). Reply `BreakerView`, or null while
 *   the loop is not running.
 */
import { z } from 'zod';
import { BREAKER_ACTIONS } from './circuit-breaker.ts';

export const delivererMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('deliverer.wake') }),
  z.strictObject({
    type: z.literal('deliverer.endpoint-changed'),
    endpointId: z.string().min(1),
    deleted: z.boolean().optional(),
  }),
  z.strictObject({ type: z.literal('deliverer.status') }),
  z.strictObject({
    type: z.literal('deliverer.breaker'),
    endpointId: z.string().min(1),
    action: z.enum(BREAKER_ACTIONS).optional(),
  }),
]);
export type DelivererMessage = z.infer<typeof delivererMessageSchema>;
