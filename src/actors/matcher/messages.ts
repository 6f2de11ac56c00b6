/**
 * What the Matcher receives.
 * - `chain.block` (from a ChainListener, by `ask`): the listener's own message
 *   (src/actors/chain-listener/messages.ts), checked as `matcherBlockSchema` says below. The reply
 *   `{ ok: true, jobs }` comes only after the block's jobs are in the outbox; any failure rejects the
 *   ask, so the listener keeps its cursor and resends.
 * - `chain.finality` (from a ChainListener, by `ask`, between blocks): the chain's finality moved
 *   (chain-listener/messages.ts chainFinalityMessageSchema). Reply `{ ok: true, jobs }` once the jobs
 *   it makes final are in the outbox, FinalityUnanchoredAck, or LeaseLostAck.
 * - `backfill.page` (from the Backfill actor, by `ask`): see backfillPageSchema and BackfillPageAck.
 * - `subscriptions.changed` (from the admin API or the governance stream, after the store write):
 *   `upserted` ids are re-read from the store, `removed` ids leave the index; with neither, the whole
 *   index is reloaded. Reply `{ ok: true, size }` (subscriptions indexed).
 */
import { z } from 'zod';
import {
  chainBlockMessageSchema,
  chainFinalityMessageSchema,
  type ChainBlockMessage,
  type ChainFinalityMessage,
  type ChainLog,
} from '../chain-listener/messages.ts';

export { chainBlockMessageSchema, chainFinalityMessageSchema, type ChainBlockMessage, type ChainFinalityMessage, type ChainLog };

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

const uint = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/**
 * A page of a Backfill (src/actors/backfill/): blocks of one chain read again for one subscription,
 * ascending, each with the logs `eth_getLogs` selected for it, and the backfill's progress once they
 * are enqueued. The Matcher enqueues only the pairs of that subscription, through the live path's own
 * code (see matcher.ts). An empty page asks only where the live path stands (`liveFrom`).
 */
export const backfillPageSchema = z.strictObject({
  type: z.literal('backfill.page'),
  chainId: z.number().int().positive(),
  subscriptionId: z.string().min(1),
  requestId: z.string().min(1),
  /** When the page was read (ms): the jobs' `eventSeenAt`. */
  seenAt: z.number().nonnegative(),
  blocks: z.array(
    z.strictObject({
      number: uint,
      hash: chainBlockMessageSchema.shape.blockHash,
      timestamp: uint,
      logs: z.array(z.custom<ChainLog>(isChainLog, 'a log with every field of its type')),
    }),
  ),
  progress: z.strictObject({ at: z.number().int().min(-1), end: uint.optional(), done: z.literal(true).optional() }),
  fence: chainBlockMessageSchema.shape.fence,
});
export type BackfillPage = z.infer<typeof backfillPageSchema>;

/** The schema a message of that `type` is checked against; undefined for a type the Matcher does not take. */
export function matcherSchemaFor(
  msg: unknown,
):
  | typeof matcherBlockSchema
  | typeof chainFinalityMessageSchema
  | typeof subscriptionsChangedSchema
  | typeof backfillPageSchema
  | undefined {
  const type = typeof msg === 'object' && msg !== null ? (msg as { type?: unknown }).type : undefined;
  if (type === 'chain.block') return matcherBlockSchema;
  if (type === 'chain.finality') return chainFinalityMessageSchema;
  if (type === 'subscriptions.changed') return subscriptionsChangedSchema;
  return type === 'backfill.page' ? backfillPageSchema : undefined;
}
export type MatcherMessage = ChainBlockMessage | ChainFinalityMessage | SubscriptionsChanged | BackfillPage;

/** A block as the Matcher's writes use it: a backfilled block comes without its parent's hash (nothing needs it). */
export type MatchedBlock = Omit<ChainBlockMessage, 'parentHash'>;

/**
 * The answer to a `backfill.page`: written, with `liveFrom` the highest block the live path has taken
 * (the chain cursor's processed height, or a block the Matcher handled whose cursor write is still on
 * its way); or refused, nothing written: `STALE` (a block above the processed height, or whose hash is
 * not the one the chain cursor's window has: read again later; or the page's request is no longer the
 * subscription's current one, or was cancelled: the Backfill task ends), `SUBSCRIPTION_NOT_FOUND` (not indexed:
 * deleted, or its notice still on its way), `LEASE_LOST`.
 */
export type BackfillPageAck =
  | { ok: true; jobs: number; liveFrom: number }
  | { ok: false; code: 'ETHHOOK_ERR_BACKFILL_STALE' | 'ETHHOOK_ERR_SUBSCRIPTION_NOT_FOUND' | 'ETHHOOK_ERR_LEASE_LOST'; liveFrom?: number };

export interface BlockAck {
  ok: true;
  /** Jobs written to the outbox for this block (duplicates of an earlier delivery of the block excluded). */
  jobs: number;
  /** The block's `cursor` ops were written with its jobs (absent: the listener writes them). */
  persisted?: true;
}

/**
 * A `chain.finality` whose anchor the chain cursor does not hold (above the processed height, or
 * another hash there): nothing released, and not acknowledged, so the listener tells it again after
 * its next poll.
 */
export interface FinalityUnanchoredAck {
  ok: false;
  code: 'ETHHOOK_ERR_FINALITY_UNANCHORED';
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
