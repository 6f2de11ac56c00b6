/**
 * Configuration of one chain followed by a ChainListener (zod). The node schema embeds
 * `chainConfigSchema` as the items of its `chains` array; several chains may be followed at once.
 *
 * - `wsUrl` is the primary transport (`eth_subscribe newHeads`); `httpUrl`, when set, is polled after
 *   `wsFailuresBeforeFallback` WebSocket failures in a row, until the WebSocket works again.
 * - `confirmations`: a block is emitted once it is that many blocks below the head (0 = at the head).
 * - `maxReorgDepth` (64): how many emitted blocks are remembered to undo; a deeper reorg stops the
 *   listener until an operator resets the chain's cursor (runbooks/chains.md).
 * - `backfillRange`: the largest `eth_getLogs` block range; halved when the node refuses a range.
 * - `targetLogsPerRead`: each range read is sized, from the density of the last one, to return about
 *   this many logs (1 block at least, `backfillRange` at most); a block with more logs is one read.
 *   2,000 logs are ~1.3 MB of JSON and ~3 MB parsed, and the listener holds two reads at most; that is
 *   enough per round trip to keep the pipeline busy while the next read is under way, and well under
 *   the 10,000 results at which hosted nodes refuse an `eth_getLogs`.
 * - `maxFrameBytes`: the largest inbound frame (64 MiB). With reads sized by logs, frames are normally
 *   about a megabyte; the limit is what one block's logs may weigh, and so what the listener may buffer
 *   for one read (~3x that once parsed). It stays high because a block whose logs do not fit can never
 *   be read: a 45M-gas block of LOG0s holds ~110,000 logs, ~40 MB of JSON. Raise it for chains whose
 *   blocks can carry more.
 * - `startBlock`: where a chain with no persisted cursor starts (`latest` = the confirmed head at the
 *   listener's first session); pinned in the store at that session, before the node reports ready.
 * - Durations take milliseconds or strings with a unit (`"10s"`); unknown keys are refused.
 */
import { z } from 'zod';
import { duration } from './duration.ts';

const wsUrl = z.url({ protocol: /^wss?$/, error: 'must be a ws:// or wss:// URL' });
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });
/** A duration (`250`, `"10s"`, `"2m"`) that must be above zero. */
const period = () => duration().refine((ms) => ms > 0, 'must be above zero');

export const reconnectSchema = z
  .strictObject({
    minMs: period().default(250),
    maxMs: period().default(30_000),
    factor: z.number().min(1).default(2),
    jitter: z.number().min(0).max(1).default(0.2),
  })
  .refine((r) => r.minMs <= r.maxMs, 'reconnect.minMs must be <= reconnect.maxMs');

export const chainConfigSchema = z
  .strictObject({
    chainId: z.number().int().positive(),
    /** Metric label and log field: 1-32 characters of a-z 0-9 -. */
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'must be 1-32 characters of a-z 0-9 -'),
    wsUrl,
    httpUrl: httpUrl.optional(),
    confirmations: z.number().int().min(0).max(1_000).default(0),
    maxReorgDepth: z.number().int().min(1).max(10_000).default(64),
    backfillRange: z.number().int().min(1).max(100_000).default(2_000),
    targetLogsPerRead: z.number().int().min(1).max(1_000_000).default(2_000),
    startBlock: z.union([z.number().int().min(0), z.literal('latest')]).default('latest'),
    requestTimeoutMs: period().default(10_000),
    /** How long the next actor may take to acknowledge a block before the listener asks again. */
    ackTimeoutMs: period().default(30_000),
    /** Period of HTTP polling (fallback mode). */
    pollIntervalMs: period().default(1_000),
    /** A WebSocket session without a head for this long asks for the latest block (a liveness check). */
    heartbeatMs: period().default(10_000),
    wsFailuresBeforeFallback: z.number().int().min(1).default(3),
    /**
     * Inbound frames larger than this are refused (the connection is dropped and re-established; a log
     * range whose answer was too large is split). One block's logs must fit.
     */
    maxFrameBytes: z.number().int().min(1_024).default(64 * 1024 * 1024),
    reconnect: reconnectSchema.prefault({}),
  })
  .refine((c) => c.confirmations <= c.maxReorgDepth, {
    message: 'confirmations must not exceed maxReorgDepth',
    path: ['confirmations'],
  });

export type ChainConfig = z.infer<typeof chainConfigSchema>;
/** What a config file may say: every field with a default is optional. */
export type ChainConfigInput = z.input<typeof chainConfigSchema>;
export type ReconnectConfig = z.infer<typeof reconnectSchema>;
