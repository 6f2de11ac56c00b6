/**
 * What a ChainListener sends to the next actor: one `chain.block` message per block, in chain order,
 * through `ask`; the listener's cursor advances only when the reply is `{ ok: true }`. Between blocks,
 * a `chain.finality` message when the chain's finality moved (see chainFinalityMessageSchema).
 *
 * A reorg is told as retractions first (`removed: true`, one per orphaned block already emitted,
 * newest first, carrying the logs that were emitted for it, each with `removed: true`), then the new
 * branch's blocks in order. Numbers are JS numbers; hex strings are lowercase.
 */
import { z } from 'zod';
import type { KvOp } from '../../store/kv.ts';

export const hash32 = z.string().regex(/^0x[0-9a-f]{64}$/, 'a lowercase 32-byte hex hash');
export const address20 = z.string().regex(/^0x[0-9a-f]{40}$/, 'a lowercase 20-byte hex address');
export const hexData = z.string().regex(/^0x([0-9a-f]{2})*$/, 'lowercase hex bytes');
const uint = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const chainLogSchema = z.object({
  address: address20,
  topics: z.array(hash32).max(4),
  data: hexData,
  blockNumber: uint,
  blockHash: hash32,
  transactionHash: hash32,
  transactionIndex: uint,
  logIndex: uint,
  removed: z.boolean(),
});
export type ChainLog = z.infer<typeof chainLogSchema>;

/** A write to the `cursors` space of the key-value store (src/store/kv.ts KvOp): a put with a value, or a delete. */
const cursorOpSchema = z.custom<KvOp>((v) => {
  const op = v as { type?: unknown; space?: unknown; key?: unknown; value?: unknown } | null;
  return (
    typeof op === 'object' &&
    op !== null &&
    op.space === 'cursors' &&
    typeof op.key === 'string' &&
    op.key.length > 0 &&
    ((op.type === 'put' && op.value !== undefined) || op.type === 'del')
  );
}, 'a write to the cursors space');

const finalityHeightsSchema = z.strictObject({ safe: uint.optional(), finalized: uint.optional() });

export const chainBlockMessageSchema = z.object({
  type: z.literal('chain.block'),
  chainId: z.number().int().positive(),
  blockNumber: uint,
  blockHash: hash32,
  parentHash: hash32,
  /** Block timestamp, seconds. */
  timestamp: uint,
  /** When the listener saw this block's header (ms since the epoch, sub-ms precision). */
  seenAt: z.number().nonnegative(),
  /** true: retraction of a block emitted before, orphaned by a reorg. */
  removed: z.boolean(),
  logs: z.array(chainLogSchema),
  /**
   * The chain's lease as the listener held it when it read the block (src/cluster/coordinator.ts): the
   * matcher writes the block's jobs fenced by it, so an instance that lost the lease writes nothing.
   */
  fence: z
    .strictObject({ type: z.literal('fence'), lease: z.string().min(1), holder: z.string().min(1), epoch: z.number().int().positive() })
    .optional(),
  /**
   * The chain cursor's ops for this block (src/store/cursors.ts `appendOps`/`retractOps`): written by the
   * receiver in the transaction of its own writes for the block, which it then acknowledges with
   * `persisted: true`; otherwise the listener writes them after the acknowledgement.
   */
  cursor: z.array(cursorOpSchema).optional(),
  /**
   * The chain's `safe` and `finalized` heights as the listener trusted them when it emitted the block
   * (finality.ts); a tag absent is unknown. The Matcher releases the jobs waiting for them.
   */
  finality: finalityHeightsSchema.optional(),
});
export type ChainBlockMessage = z.infer<typeof chainBlockMessageSchema>;

/**
 * The chain's finality moved beyond what the Matcher was told with the last block it acknowledged
 * (finality.ts): sent by the ingesting listener after the poll that trusted the new heights, so that
 * jobs they make final are released without waiting for a block (a chain may stop making blocks).
 * `anchor` is the block the higher height was trusted from: the Matcher releases only when its chain
 * cursor holds that block (a height alone does not name a branch, and a retraction may be on its way).
 * It carries the chain's `fence` as blocks do, and is acknowledged as they are (`{ ok: true }`, or
 * `{ ok: false, code: 'ETHHOOK_ERR_LEASE_LOST' }`); one not acknowledged is sent again after the next poll.
 */
export const chainFinalityMessageSchema = z.strictObject({
  type: z.literal('chain.finality'),
  chainId: z.number().int().positive(),
  finality: finalityHeightsSchema,
  anchor: z.strictObject({ number: uint, hash: hash32 }),
  /** When the poll trusted these heights (ms since the epoch): the released jobs' `eventSeenAt`. */
  seenAt: z.number().nonnegative(),
  fence: chainBlockMessageSchema.shape.fence,
});
export type ChainFinalityMessage = z.infer<typeof chainFinalityMessageSchema>;

/** The reply the listener waits for before it advances its cursor (`persisted`: the receiver wrote the block's `cursor` ops). */
export const chainBlockAckSchema = z.object({ ok: z.boolean(), persisted: z.boolean().optional() }).passthrough();
export type ChainBlockAck = z.infer<typeof chainBlockAckSchema>;

/** Asked of the listener itself (admin API): where it stands. */
export interface ChainStatusRequest {
  type: 'chain.status';
}
/** Asked of the listener itself (admin API): move off `provider` for `holdMs` (0 releases a hold). */
export interface ChainFailoverRequest {
  type: 'chain.failover';
  provider: string;
  holdMs: number;
}
/**
 * Asked of the listener by a Backfill (src/actors/backfill/): the logs `filter` selects in blocks
 * `from..to` with their blocks' numbers, hashes and timestamps (history.ts), read from the chain's
 * active provider. Answered with a HistoryReadReply.
 */
export interface ChainHistoryRequest {
  type: 'chain.history';
  from: number;
  to: number;
  filter: { address?: string[]; topics?: Array<null | string | string[]> };
}
export type ChainListenerRequest = ChainStatusRequest | ChainFailoverRequest | ChainHistoryRequest;

/** A block that holds logs of a history read: what a webhook payload takes from the block (history.ts). */
export interface HistoryBlock {
  number: number;
  hash: string;
  /** Seconds. */
  timestamp: number;
}
export interface HistoryRead {
  logs: ChainLog[];
  /** One per block the logs are in, ascending. */
  blocks: HistoryBlock[];
  /** JSON-RPC calls the read made (each call of a batch counted). */
  calls: number;
}
/** The answer to `chain.history`: a failed read is answered as `{ ok: false, error }`. */
export type HistoryReadReply =
  ({ ok: true } & HistoryRead) | { ok: false; error: { code: string; message: string; context: Record<string, unknown> } };

export interface ProviderStatus {
  name: string;
  weight: number;
  health: 'healthy' | 'down' | 'syncing' | 'mismatched' | 'held' | 'lagging' | 'ahead' | 'stalled';
  transport: 'ws' | 'http' | 'none';
  head: number | null;
  /** Blocks below the chain's reference head (provider-pool.ts). */
  lag: number;
  /** ISO time until which the listener does not choose it, or null. */
  heldUntil: string | null;
}
export interface ChainStatus {
  chainId: number;
  name: string;
  /** The active provider's transport. */
  transport: 'ws' | 'http' | 'none';
  connected: boolean;
  /** The provider read from. */
  provider: string | null;
  head: number | null;
  processed: number | null;
  /** Whether this instance ingests the chain (holds its lease), or only follows its heads. */
  ingesting: boolean;
  failed: string | null;
  providers: ProviderStatus[];
}
/** The answer to `chain.failover`: an EthhookError is answered as `{ ok: false, error }`. */
export type ChainFailoverReply =
  | { ok: true; from: string; to: string | null; heldUntil: string | null }
  | { ok: false; error: { code: string; message: string; context: Record<string, unknown> } };
