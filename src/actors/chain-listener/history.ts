/**
 * A Backfill's read of past blocks (`chain.history`, src/actors/backfill/): the logs `filter` selects in
 * blocks `from..to`, and for each block they are in, its number, hash and timestamp (what a webhook
 * payload takes from the block), with the JSON-RPC calls it took (what the Backfill's pace charges).
 *
 * - One `eth_getLogs`. A log outside `from..to` is ETHHOOK_ERR_RPC_MALFORMED (the provider answered
 *   another question; nothing of it is written). The logs of one block must all name one `blockHash`,
 *   else ETHHOOK_ERR_CHAIN_INCONSISTENT (the chain moved under the answer): read again.
 * - A block's timestamp comes from its logs when every one of them carries a `blockTimestamp` (anvil,
 *   reth and recent geth put it in every log of `eth_getLogs`), each a valid quantity and all the same:
 *   that block costs no other call. Otherwise its header is read (`eth_getBlockByNumber`, the blocks
 *   still to read in JSON-RPC batches of up to 100, rpc-source.ts: one round trip, each call of a batch
 *   counted, as providers bill them), and a header whose hash is not its logs' is
 *   ETHHOOK_ERR_CHAIN_INCONSISTENT (the chain moved between the two reads).
 * - For a block read from its logs alone, that its hash is canonical is the Matcher's own check of
 *   each page (src/actors/matcher/matcher.ts): a block at or
 *   below the chain cursor's processed height, with the hash the cursor's reorg window has for it (a
 *   block older than the window is final), else the page is refused and read again; a block of a branch
 *   the live path has not left yet is written with match records, which the live path's retraction
 *   reaches. The parent hash is not read: nothing downstream of a page uses it.
 * - A range the node refuses is ETHHOOK_ERR_RPC_RANGE_TOO_LARGE, as for the live reads.
 */
import { EthhookError } from '../../runtime/errors.ts';
import type { HistoryBlock, HistoryRead } from './messages.ts';
import type { LogFilter, RpcChainSource } from './rpc-source.ts';

export type HistorySource = Pick<RpcChainSource, 'historyLogs' | 'headersByNumbers'>;

export async function readHistory(
  source: HistorySource,
  chainId: number,
  from: number,
  to: number,
  filter: LogFilter,
): Promise<HistoryRead> {
  const { logs, timestamps } = await source.historyLogs(from, to, filter);
  const inconsistent = (block: number) =>
    new EthhookError('ETHHOOK_ERR_CHAIN_INCONSISTENT', `block ${block} changed while blocks ${from}..${to} were read`, { chainId, block });
  const hashes = new Map<number, string>();
  for (const l of logs) {
    if (l.blockNumber < from || l.blockNumber > to) {
      throw new EthhookError(
        'ETHHOOK_ERR_RPC_MALFORMED',
        `eth_getLogs for blocks ${from}..${to} answered a log of block ${l.blockNumber}`,
        {
          method: 'eth_getLogs',
          chainId,
          from,
          to,
          block: l.blockNumber,
        },
      );
    }
    const hash = hashes.get(l.blockNumber);
    if (hash === undefined) hashes.set(l.blockNumber, l.blockHash);
    else if (hash !== l.blockHash) throw inconsistent(l.blockNumber);
  }
  const unread = [...hashes.keys()].filter((n) => !timestamps.has(n));
  const headers = unread.length === 0 ? [] : await source.headersByNumbers(unread);
  const times = new Map(timestamps);
  for (const [i, header] of headers.entries()) {
    const n = unread[i]!;
    if (!header || header.hash !== hashes.get(n)) throw inconsistent(n);
    times.set(n, header.timestamp);
  }
  const blocks: HistoryBlock[] = [...hashes]
    .sort(([a], [b]) => a - b)
    .map(([number, hash]) => ({ number, hash, timestamp: times.get(number)! }));
  return { logs, blocks, calls: 1 + unread.length };
}
