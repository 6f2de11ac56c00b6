/**
 * Configuration of one chain followed by a ChainListener (zod). The node schema embeds
 * `chainConfigSchema` as the items of its `chains` array; several chains may be followed at once.
 *
 * - `wsUrl` is the primary transport (`eth_subscribe newHeads`); `httpUrl`, when set, is polled after
 *   `wsFailuresBeforeFallback` WebSocket failures in a row, until the WebSocket works again.
 * - `confirmations`: a block is emitted once it is that many blocks below the head (0 = at the head).
 * - `maxReorgDepth`: how many emitted blocks are remembered to undo; a deeper reorg stops the listener.
 * - `backfillRange`: the largest `eth_getLogs` block range; halved when the node refuses a range.
 * - `startBlock`: where a chain with no persisted cursor starts (`latest` = the first confirmed head).
 * - Durations take milliseconds or strings with a unit (`"10s"`); unknown keys are refused.
 */
export { chainConfigSchema, reconnectSchema, type ChainConfig, type ChainConfigInput, type ReconnectConfig } from '../../config/chain.ts';
