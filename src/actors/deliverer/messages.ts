/**
 * What the Deliverer receives.
 * - `deliverer.wake`: look at the outbox now (the loop also wakes by itself on every enqueue in this
 *   process; this is for writers elsewhere). Reply `{ ok: true }`.
 * - `deliverer.endpoint-changed` (from the admin API or the governance stream, after the store write):
 *   forget the cached endpoint so edits, rotations, pauses and re-enabling apply at once; `deleted`
 *   also drops its breaker and rate-limit state. Reply `{ ok: true }`.
 * - `deliverer.status`: the loop's state for the admin API. Reply `DeliveryLoopStatus`.
 */
import { z } from 'zod';

export const delivererMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('deliverer.wake') }),
  z.strictObject({
    type: z.literal('deliverer.endpoint-changed'),
    endpointId: z.string().min(1),
    deleted: z.boolean().optional(),
  }),
  z.strictObject({ type: z.literal('deliverer.status') }),
]);
export type DelivererMessage = z.infer<typeof delivererMessageSchema>;
