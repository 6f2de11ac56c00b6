/**
 * What the Matcher receives.
 * - `chain.block` (from a ChainListener, by `ask`): the schema is the listener's own
 *   (src/actors/chain-listener/messages.ts). The reply `{ ok: true, jobs }` comes only after the block's
 *   jobs are in the outbox; any failure rejects the ask, so the listener keeps its cursor and resends.
 * - `subscriptions.changed` (from the admin API or the governance stream, after the store write):
 *   `upserted` ids are re-read from the store, `removed` ids leave the index; with neither, the whole
 *   index is reloaded. Reply `{ ok: true, size }` (subscriptions indexed).
 */
import { z } from 'zod';
import { chainBlockMessageSchema, type ChainBlockMessage, type ChainLog } from '../chain-listener/messages.ts';

export { chainBlockMessageSchema, type ChainBlockMessage, type ChainLog };

export const subscriptionsChangedSchema = z.strictObject({
  type: z.literal('subscriptions.changed'),
  upserted: z.array(z.string()).optional(),
  removed: z.array(z.string()).optional(),
});
export type SubscriptionsChanged = z.infer<typeof subscriptionsChangedSchema>;

export const matcherMessageSchema = z.discriminatedUnion('type', [chainBlockMessageSchema, subscriptionsChangedSchema]);
export type MatcherMessage = ChainBlockMessage | SubscriptionsChanged;

export interface BlockAck {
  ok: true;
  /** Jobs written to the outbox for this block (duplicates of an earlier delivery of the block excluded). */
  jobs: number;
}

export interface SubscriptionsAck {
  ok: true;
  size: number;
}
