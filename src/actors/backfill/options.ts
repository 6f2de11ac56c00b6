/**
 * The Backfill actor's options and their defaults (config `backfill.*`, each key named like its option):
 * - `blocksPerSec` (2,000) and `requestsPerSec` (20): what one chain's backfills take from its provider,
 *   together, per second (JSON-RPC calls: an `eth_getLogs`, and a header per block with logs whose logs
 *   did not carry its timestamp, src/actors/chain-listener/history.ts);
 * - `logsPerSec` (500): the logs they hand to the Matcher per second, together: each becomes jobs to
 *   write and webhooks to send on the cores the live path uses, so this is what keeps live deliveries'
 *   latency while a backfill runs (a page is sent in messages of a tenth of a second's worth). The
 *   default is what keeps the live p99 within 2x of idle on a 2-core machine that also runs the chain
 *   node and the receiver (bench:e2e's backfill phase; at 1,000 it did not, in most runs): a bigger
 *   machine takes more;
 * - `maxRunning` (4): backfills this node runs at once;
 * - `pollMs` (1 s): how often the store is read for requests (another instance may have written one);
 * - `maxOutboxDepth` (10,000): a backfill waits while the outbox holds more jobs than this, so live
 *   jobs do not queue behind it;
 * - `pageLogs` (500): the logs a page aims at (its block range is sized from the density of the last
 *   one, at most the chain's `backfillRange`). The Matcher takes one message at a time, so a live block
 *   that comes while a page is written waits for that page: small pages keep that wait short, at the
 *   price of more `eth_getLogs` calls (within `requestsPerSec`).
 */
export const DEFAULT_BACKFILL_OPTIONS = {
  blocksPerSec: 2_000,
  requestsPerSec: 20,
  logsPerSec: 500,
  maxRunning: 4,
  pollMs: 1_000,
  maxOutboxDepth: 10_000,
  pageLogs: 500,
} as const;

export type BackfillOptions = { -readonly [K in keyof typeof DEFAULT_BACKFILL_OPTIONS]: number };
