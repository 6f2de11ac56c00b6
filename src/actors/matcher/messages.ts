/**
 * What the Matcher receives.
 * - `chain.block` (from a ChainListener, by `ask`): the listener's own message
 *   (src/actors/chain-listener/messages.ts), checked as `matcherBlockSchema` says below. The reply
 *   `{ ok: true, jobs }` comes only after the block's jobs are in the outbox; any failure rejects the
 *   ask, so the listener keeps its cursor and resends.
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

const isIndex = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;

/** A log's shape: every field, of its type; hex formats are the listener's check (see matcherBlockSchema). */
function isChainLog(v: unknown): v is ChainLog {
  if (typeof v !== 'object' || v === null) return false;
  const l = v as Record<keyof ChainLog, unknown>;
  return (
    typeof l.address === 'string' &&
    Array.isArray(l.topics) &&
    l.topics.length <= 4 &&
    l.topics.every((t) => typeof t === 'string') &&
    typeof l.data === 'string' &&
    isIndex(l.blockNumber) &&
    typeof l.blockHash === 'string' &&
    typeof l.transactionHash === 'string' &&
    isIndex(l.transactionIndex) &&
    isIndex(l.logIndex) &&
    typeof l.removed === 'boolean'
  );
}

/**
 * A `chain.block` as the Matcher checks it: the envelope in full (chainBlockMessageSchema: hashes,
 * numbers, times), each log's shape (every field, of its type) and that every log belongs to the block.
 * Each log's hex strings are not checked again: the listener built each log from an `eth_getLogs` result
 * it validated field by field (chain-listener/eth-schemas.ts), and checking them again, with a copy of
 * each log, cost a quarter of the Matcher's time per log. Logs are passed on as they came, uncopied.
 */
export const matcherBlockSchema = chainBlockMessageSchema
  .extend({ logs: z.array(z.custom<ChainLog>(isChainLog, 'a log with every field of its type')) })
  .refine((b) => b.logs.every((l) => l.blockHash === b.blockHash && l.blockNumber === b.blockNumber), {
    message: 'a log of another block',
    path: ['logs'],
  });

/** The schema a message of that `type` is checked against; undefined for a type the Matcher does not take. */
export function matcherSchemaFor(msg: unknown): typeof matcherBlockSchema | typeof subscriptionsChangedSchema | undefined {
  const type = typeof msg === 'object' && msg !== null ? (msg as { type?: unknown }).type : undefined;
  return type === 'chain.block' ? matcherBlockSchema : type === 'subscriptions.changed' ? subscriptionsChangedSchema : undefined;
}
export type MatcherMessage = ChainBlockMessage | SubscriptionsChanged;

export interface BlockAck {
  ok: true;
  /** Jobs written to the outbox for this block (duplicates of an earlier delivery of the block excluded). */
  jobs: number;
  /** The block's `cursor` ops were written with its jobs (absent: the listener writes them). */
  persisted?: true;
}

/** A block whose fenced writes were refused: this instance no longer holds the chain's lease. */
export interface LeaseLostAck {
  ok: false;
  code: 'ETHHOOK_ERR_LEASE_LOST';
}

export interface SubscriptionsAck {
  ok: true;
  size: number;
}
