/**
 * `/v1/dead-letters`: the jobs the Deliverer gave up on, and their replay. See index.ts for the table.
 *
 * - The list is oldest first from `since` (parked at or after; ISO time or ms), optionally of one
 *   endpoint, at most `limit`. To read on, pass the last item's `deadAt` as `since` (items parked in
 *   that same millisecond come again).
 * - A replay puts the job back in the outbox as a fresh job (attempt 0, due now), keeping its id, so
 *   the receiver sees the same `webhook-id`. The Deliverer in this process wakes by itself on it.
 * - A dead letter superseded by a later webhook of the same log and subscription (its `log.removed`, or
 *   the `log.created` of the block come back; `supersededBy` in the listing) is not replayed: one alone
 *   is refused (409 ETHHOOK_ERR_DEAD_LETTER_SUPERSEDED), a replay of all leaves it parked. Replayed, it
 *   would reach the receiver after the webhook that retracts or replaces it.
 * - Replaying for an endpoint that no longer exists is refused (404 ETHHOOK_ERR_ENDPOINT_NOT_FOUND):
 *   the jobs would only die again.
 */
import { EthhookError } from '../../../runtime/errors.ts';
import { defineRoute, type Route } from '../router.ts';
import type { V1Context } from './context.ts';
import { DeadLetterListQuery, ReplayAllBody } from './schemas.ts';
import { deadLetterView } from './views.ts';

export function deadLetterRoutes(ctx: V1Context): Route[] {
  const { outbox, endpoints } = ctx;
  return [
    defineRoute<undefined, DeadLetterListQuery>({
      method: 'GET',
      path: '/v1/dead-letters',
      auth: 'operate',
      query: DeadLetterListQuery,
      handle: async ({ query }) => ({ json: { data: (await outbox.listDeadLetters(query)).map(deadLetterView) } }),
    }),

    defineRoute({
      method: 'POST',
      path: '/v1/dead-letters/:id/replay',
      auth: 'operate',
      audit: { action: 'dead-letter.replay', target: ({ params }) => params.id },
      handle: async ({ params }) => {
        const id = params.id!;
        const letter = await outbox.getDeadLetter(id);
        if (letter === undefined) throw new EthhookError('ETHHOOK_ERR_DEAD_LETTER_NOT_FOUND', `no dead letter ${id}`, { jobId: id });
        await requireEndpointOf(letter.job.endpointId, `dead letter ${id}`);
        const job = await outbox.replayDeadLetter(id);
        return { json: { replayed: 1, job: { id: job.id, endpointId: job.endpointId, nextAttemptAt: job.nextAttemptAt } } };
      },
    }),

    defineRoute<ReplayAllBody>({
      method: 'POST',
      path: '/v1/dead-letters/replay',
      auth: 'operate',
      body: ReplayAllBody,
      audit: { action: 'dead-letter.replay-all', target: ({ body }) => body.endpointId },
      handle: async ({ body, log }) => {
        await requireEndpointOf(body.endpointId, 'the replay', 'endpointId');
        const replayed = await outbox.replayAll(body);
        log.info({ endpointId: body.endpointId, since: body.since, replayed }, 'dead letters replayed');
        return { json: { replayed } };
      },
    }),
  ];

  async function requireEndpointOf(endpointId: string, what: string, field?: string): Promise<void> {
    if ((await endpoints.get(endpointId)) !== undefined) return;
    throw new EthhookError('ETHHOOK_ERR_ENDPOINT_NOT_FOUND', `${what} is for endpoint ${endpointId}, which does not exist`, {
      endpointId,
      ...(field ? { field } : {}),
    });
  }
}
