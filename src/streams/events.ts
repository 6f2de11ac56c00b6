/**
 * What flows through the live event streams. Publishers (the Matcher, the GovernanceStream) hand the
 * hub one of these; clients receive it as JSON with the hub's event `id` added:
 *
 *   { "id": 42, "kind": "log.created", "chainId": 1, "blockNumber": 19000000, "blockHash": "0x…",
 *     "transactionHash": "0x…", "logIndex": 3, "address": "0x…", "topics": ["0x…"], "data": "0x…",
 *     "at": 1718000000000.25 }
 *   { "id": 43, "kind": "log.removed", …same fields: the log was orphaned by a reorg… }
 *   { "id": 44, "kind": "governance", "seq": 17, "type": "endpoint.pause", "at": 1718000000001 }
 *   { "id": 45, "kind": "backfill", "chainId": 1, "subscriptionId": "sub_…", "backfillId": "bf_…",
 *     "state": "running", "from": 18000000, "to": 19000000, "height": 18250000, "at": 1718000000002 }
 *
 * `at` is when the node saw the event (ms since the epoch, fractional allowed): clients measure their
 * lag against it. Hex strings are lowercase, as the ChainListener emits them.
 *
 * The schemas are for publishers' tests and for clients; `StreamHub.publish` does not parse (it is on
 * the pipeline's hot path and its callers are our own actors).
 */
import { z } from 'zod';
import type { ChainLog } from '../actors/chain-listener/messages.ts';

export const STREAM_EVENT_KINDS = ['log.created', 'log.removed', 'governance', 'backfill'] as const;
export type StreamEventKind = (typeof STREAM_EVENT_KINDS)[number];

const hash32 = z.string().regex(/^0x[0-9a-f]{64}$/, 'a lowercase 32-byte hex hash');
const uint = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const at = z.number().nonnegative();

export const logStreamEventSchema = z.strictObject({
  kind: z.enum(['log.created', 'log.removed']),
  chainId: z.number().int().positive(),
  blockNumber: uint,
  blockHash: hash32,
  transactionHash: hash32,
  logIndex: uint,
  address: z.string().regex(/^0x[0-9a-f]{40}$/, 'a lowercase 20-byte hex address'),
  topics: z.array(hash32).max(4),
  data: z.string().regex(/^0x([0-9a-f]{2})*$/, 'lowercase hex bytes'),
  at,
});
export type LogStreamEvent = z.infer<typeof logStreamEventSchema>;

export const governanceStreamEventSchema = z.strictObject({
  kind: z.literal('governance'),
  /** The governance message's sequence number, once applied. */
  seq: uint,
  /** The governance message type (`endpoint.upsert`, `key.rotate`, …). */
  type: z.string().min(1).max(64),
  at,
});
export type GovernanceStreamEvent = z.infer<typeof governanceStreamEventSchema>;

/**
 * A backfill's progress (src/actors/backfill/): when it starts, every few seconds while it runs, and
 * when it ends (`done` or `cancelled`). `height` is the highest block it enqueued so far; `to` is null
 * until its end is known.
 */
export const backfillStreamEventSchema = z.strictObject({
  kind: z.literal('backfill'),
  chainId: z.number().int().positive(),
  subscriptionId: z.string().min(1),
  backfillId: z.string().min(1),
  state: z.enum(['running', 'done', 'cancelled']),
  from: uint,
  to: uint.nullable(),
  height: z.number().int().min(-1),
  at,
});
export type BackfillStreamEvent = z.infer<typeof backfillStreamEventSchema>;

export const streamEventSchema = z.discriminatedUnion('kind', [
  logStreamEventSchema,
  governanceStreamEventSchema,
  backfillStreamEventSchema,
]);
export type StreamEvent = LogStreamEvent | GovernanceStreamEvent | BackfillStreamEvent;

/** What a client receives: the event and the hub's id for it. */
const id = z.number().int().positive();
export const streamMessageSchema = z.discriminatedUnion('kind', [
  logStreamEventSchema.extend({ id }),
  governanceStreamEventSchema.extend({ id }),
  backfillStreamEventSchema.extend({ id }),
]);
export type StreamMessage = z.infer<typeof streamMessageSchema>;

/** The stream event of a log the Matcher matched (or retracted: `log.removed` is true). */
export function logStreamEvent(chainId: number, log: ChainLog, at: number): LogStreamEvent {
  return {
    kind: log.removed ? 'log.removed' : 'log.created',
    chainId,
    blockNumber: log.blockNumber,
    blockHash: log.blockHash,
    transactionHash: log.transactionHash,
    logIndex: log.logIndex,
    address: log.address,
    topics: log.topics,
    data: log.data,
    at,
  };
}
