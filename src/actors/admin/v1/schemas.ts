/**
 * Zod schemas of the `/v1` request bodies and queries. The router parses with them and answers 400
 * naming the first bad field (`url`, `topics[1]`, `limit`); handlers receive the parsed values.
 *
 * Bodies reuse the store's field rules (endpoints.ts, subscriptions.ts) so the API and the store can
 * never disagree, minus what only the governance stream may set (ids, secrets). Queries arrive as
 * strings: numbers are coerced, ids are checked against the id formats (they become key prefixes).
 */
import { z } from 'zod';
import { endpointCreateSchema, endpointIdSchema, endpointUpdateSchema } from '../../../store/endpoints.ts';
import {
  checkAbiFields,
  subscriptionCreateSchema,
  subscriptionIdSchema,
  MAX_TOPIC_ALTERNATIVES,
  topicSchema,
} from '../../../store/subscriptions.ts';

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
/** Longest secret overlap a rotation may ask for: 30 days. */
export const MAX_OVERLAP_MS = 30 * 24 * 60 * 60 * 1000;

const limit = z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(DEFAULT_PAGE_SIZE);
const chainId = z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const blockNumber = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** A point in time: milliseconds since the epoch (number or digits) or an ISO 8601 date-time. */
const instant = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const ms = typeof value === 'number' ? value : /^\d{1,15}$/.test(value) ? Number(value) : isoTime(value);
  if (ms === undefined || !Number.isSafeInteger(ms) || ms < 0) {
    ctx.addIssue({ code: 'custom', message: 'must be an ISO 8601 date-time or milliseconds since the epoch' });
    return z.NEVER;
  }
  return ms;
});

function isoTime(value: string): number | undefined {
  return z.iso.datetime({ offset: true }).safeParse(value).success ? Date.parse(value) : undefined;
}

export const EndpointCreateBody = endpointCreateSchema.omit({ id: true, secret: true });
export type EndpointCreateBody = z.output<typeof EndpointCreateBody>;

export const EndpointPatchBody = endpointUpdateSchema.refine(
  (patch) => Object.keys(patch).length > 0,
  'give at least one of url, description, rateLimitPerSec',
);
export type EndpointPatchBody = z.output<typeof EndpointPatchBody>;

export const RotateSecretBody = z.strictObject({ overlapMs: z.number().int().min(0).max(MAX_OVERLAP_MS).optional() });
export type RotateSecretBody = z.output<typeof RotateSecretBody>;

/** One topic position, as `eth_getLogs` takes it: any (null), one topic, or any of a list. */
const topicPosition = z.union([z.null(), topicSchema, z.array(topicSchema).max(MAX_TOPIC_ALTERNATIVES)], {
  error: `must be null, a 32-byte 0x-prefixed hex topic, or a list of at most ${MAX_TOPIC_ALTERNATIVES} of them`,
});

/** The abi, events and filter are checked here too, so their problems are 400s naming the field like any other. */
export const SubscriptionCreateBody = subscriptionCreateSchema
  .omit({ id: true })
  .extend({
    topics: z.array(topicPosition).max(4, 'at most 4 positions (topic0..topic3)').optional(),
    /** A backfill of the subscription's history from this block (src/actors/backfill/); not stored with the subscription. */
    fromBlock: blockNumber.optional(),
    toBlock: blockNumber.optional(),
  })
  .superRefine(checkAbiFields)
  .superRefine(checkBackfillRange);
export type SubscriptionCreateBody = z.output<typeof SubscriptionCreateBody>;

/** A backfill's range: `toBlock` (absent: up to where the live path took over) not below `fromBlock`. */
export function checkBackfillRange(body: { fromBlock?: number | undefined; toBlock?: number | undefined }, ctx: z.RefinementCtx): void {
  if (body.toBlock === undefined) return;
  if (body.fromBlock === undefined) ctx.addIssue({ code: 'custom', path: ['fromBlock'], message: 'toBlock needs a fromBlock' });
  else if (body.toBlock < body.fromBlock) ctx.addIssue({ code: 'custom', path: ['toBlock'], message: 'must be >= fromBlock' });
}

export const ReplayBody = z.strictObject({ fromBlock: blockNumber, toBlock: blockNumber.optional() }).superRefine(checkBackfillRange);
export type ReplayBody = z.output<typeof ReplayBody>;

export const EndpointListQuery = z.strictObject({ limit, after: endpointIdSchema.optional() });
export type EndpointListQuery = z.output<typeof EndpointListQuery>;

export const AttemptListQuery = z.strictObject({ limit, before: instant.optional() });
export type AttemptListQuery = z.output<typeof AttemptListQuery>;

export const SubscriptionListQuery = z.strictObject({
  limit,
  after: subscriptionIdSchema.optional(),
  endpointId: endpointIdSchema.optional(),
  chainId: chainId.optional(),
});
export type SubscriptionListQuery = z.output<typeof SubscriptionListQuery>;

export const DeadLetterListQuery = z.strictObject({ limit, endpointId: endpointIdSchema.optional(), since: instant.optional() });
export type DeadLetterListQuery = z.output<typeof DeadLetterListQuery>;

export const ReplayAllBody = z.strictObject({ endpointId: endpointIdSchema, since: instant.optional() });
export type ReplayAllBody = z.output<typeof ReplayAllBody>;
