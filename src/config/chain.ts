/**
 * Configuration of one chain followed by a ChainListener (zod). The node schema embeds
 * `chainConfigSchema` as the items of its `chains` array; several chains may be followed at once.
 *
 * - `providers`: the chain's RPC providers, 1 to 16, each `{ name, wsUrl?, httpUrl?, weight,
 *   maxRequestsPerSecond?, maxBlockRange? }`. A provider's `wsUrl` is its primary transport
 *   (`eth_subscribe newHeads`); its `httpUrl`, when set, is polled after `wsFailuresBeforeFallback`
 *   WebSocket failures in a row, until the WebSocket works again (after reads that failed over an open
 *   WebSocket, it is tried again after `failbackAfterMs` of polling); a provider with only `httpUrl` is
 *   polled every `pollIntervalMs`. The single form (`wsUrl`/`httpUrl` on the chain) is one provider
 *   named `primary`; the parsed config always has `providers` and never the single form.
 * - Choosing among providers (provider-pool.ts): the listener reads from the healthy provider of the
 *   highest `weight` (the first listed among equals). A provider is unhealthy while its session is
 *   down, while it reports `eth_syncing`, when it lags the highest head by more than `maxLagBlocks`,
 *   when its head stood still for `stallTimeoutMs` while another provider's moved past it, and for
 *   `failbackAfterMs` after it failed a read; it is chosen again once healthy.
 * - `quorum` (1): how many providers must show a block's hash before it is emitted (and a reorg is
 *   acted on); at most the number of providers.
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
 * - `finalityPollMs` (6 s): how often the chain's `safe` and `finalized` blocks are asked of the provider
 *   read from (src/actors/chain-listener/finality.ts), for subscriptions with `finality`.
 * - Durations take milliseconds or strings with a unit (`"10s"`); unknown keys are refused.
 */
import { z } from 'zod';
import { DEFAULT_FINALITY_POLL_MS } from '../actors/chain-listener/finality.ts';
import { duration } from './duration.ts';

const wsUrl = z.url({ protocol: /^wss?$/, error: 'must be a ws:// or wss:// URL' });
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });
/** A duration (`250`, `"10s"`, `"2m"`) that must be above zero. */
const period = () => duration().refine((ms) => ms > 0, 'must be above zero');
/** Metric label and log field: 1-32 characters of a-z 0-9 -. */
const label = z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'must be 1-32 characters of a-z 0-9 -');

/** The most providers one chain may list: each holds a connection, a head and a few counters. */
export const MAX_PROVIDERS = 16;
/** The name the single form's provider (`wsUrl`/`httpUrl` on the chain) gets. */
export const SINGLE_PROVIDER_NAME = 'primary';

export const providerConfigSchema = z
  .strictObject({
    name: label,
    wsUrl: wsUrl.optional(),
    httpUrl: httpUrl.optional(),
    /** Higher is preferred; among equals, the first listed. */
    weight: z.number().int().min(1).max(1_000).default(1),
    /** Token bucket on this provider's calls (a batch counts each call); unlimited when unset. */
    maxRequestsPerSecond: z.number().positive().max(100_000).optional(),
    /** The largest block range read from this provider in one `eth_getLogs` (below `backfillRange`). */
    maxBlockRange: z.number().int().min(1).max(100_000).optional(),
  })
  .refine((p) => p.wsUrl !== undefined || p.httpUrl !== undefined, { message: 'a provider needs a wsUrl or an httpUrl', path: ['wsUrl'] });
export type ProviderConfig = z.infer<typeof providerConfigSchema>;

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
    name: label,
    /** The single form: one provider named `primary`. Not with `providers`. */
    wsUrl: wsUrl.optional(),
    httpUrl: httpUrl.optional(),
    providers: z.array(providerConfigSchema).min(1).max(MAX_PROVIDERS).optional(),
    quorum: z.number().int().min(1).max(MAX_PROVIDERS).default(1),
    /** A provider whose head is more than this many blocks below the highest head is not read from. */
    maxLagBlocks: z.number().int().min(0).max(100_000).default(5),
    /** A provider whose head has not moved for this long while another's moved past it is not read from. */
    stallTimeoutMs: period().default(30_000),
    /** A provider that failed a read (or that an operator moved off) is not chosen again for this long. */
    failbackAfterMs: period().default(60_000),
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
    /** How often the `safe` and `finalized` blocks are polled (finality.ts). */
    finalityPollMs: period().default(DEFAULT_FINALITY_POLL_MS),
    wsFailuresBeforeFallback: z.number().int().min(1).default(3),
    /**
     * Inbound frames larger than this are refused (the connection is dropped and re-established; a log
     * range whose answer was too large is split). One block's logs must fit.
     */
    maxFrameBytes: z
      .number()
      .int()
      .min(1_024)
      .default(64 * 1024 * 1024),
    reconnect: reconnectSchema.prefault({}),
  })
  .refine((c) => c.confirmations <= c.maxReorgDepth, {
    message: 'confirmations must not exceed maxReorgDepth',
    path: ['confirmations'],
  })
  .superRefine((c, ctx) => {
    const single = c.wsUrl !== undefined || c.httpUrl !== undefined;
    if (c.providers && single) {
      ctx.addIssue({ code: 'custom', path: ['providers'], message: 'list providers, or set wsUrl/httpUrl for one: not both' });
    } else if (!c.providers && !single) {
      ctx.addIssue({ code: 'custom', path: ['wsUrl'], message: 'a chain needs a wsUrl (or an httpUrl, or providers)' });
    }
    const names = new Set<string>();
    const urls = new Set<string>();
    c.providers?.forEach((p, i) => {
      if (names.has(p.name))
        ctx.addIssue({ code: 'custom', path: ['providers', i, 'name'], message: `provider name "${p.name}" is listed twice` });
      names.add(p.name);
      for (const key of ['wsUrl', 'httpUrl'] as const) {
        const url = p[key];
        if (url === undefined) continue;
        // The same node listed twice would vote twice: a quorum of one.
        if (urls.has(url)) ctx.addIssue({ code: 'custom', path: ['providers', i, key], message: "this URL is another provider's too" });
        urls.add(url);
      }
    });
    const count = c.providers?.length ?? 1;
    if (c.quorum > count)
      ctx.addIssue({ code: 'custom', path: ['quorum'], message: `quorum ${c.quorum} is more than the ${count} provider(s) listed` });
  })
  .transform(({ wsUrl: ws, httpUrl: http, providers, ...rest }) => ({
    ...rest,
    providers: providers ?? [providerConfigSchema.parse({ name: SINGLE_PROVIDER_NAME, wsUrl: ws, httpUrl: http })],
  }));

export type ChainConfig = z.infer<typeof chainConfigSchema>;
/** What a config file may say: every field with a default is optional. */
export type ChainConfigInput = z.input<typeof chainConfigSchema>;
export type ReconnectConfig = z.infer<typeof reconnectSchema>;
