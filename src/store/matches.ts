/**
 * Match records: which subscriptions were sent which log. The Matcher writes one record per
 * (log, subscription) in the same batch as the `log.created` job, and reads them back when the block
 * is retracted, so `log.removed` goes exactly to the subscriptions that received the log — even if the
 * subscription was deleted since (the record carries its endpoint). A retraction deletes the block's
 * records in its own batch, so a re-sent retraction produces nothing twice.
 *
 * A block that comes back after its retraction (a reorg flip-flop A -> B -> A) is a new event for
 * receivers: `retractions(block)` counts how often the block was retracted (sublevel
 * `match-retractions`, written in the retraction's batch) and the Matcher folds that generation into the
 * webhook-id, so the re-emitted `log.created` is not discarded as a duplicate of the first one.
 *
 * Keys in the `matches` sublevel: `<chainId>!<blockNumber 15d>!<blockHash>!<logIndex 6d>!<subscriptionId>`
 * -> `{ endpointId, deferred? }`, `deferred` being the key of the job in deferred.ts when the
 * subscription's confirmations held it back (a retraction deletes it there if it is still waiting). Ordered by block number per chain so `prune` drops everything below the reorg
 * window with one range delete.
 */
import { sublevel, type Db } from './level/db.ts';
import { padNumber, PREFIX_END } from './keys.ts';
import type { BatchOp } from './level/db.ts';

export interface MatchRecord {
  logIndex: number;
  subscriptionId: string;
  endpointId: string;
  /** The deferred job's key (deferred.ts), when the log.created job was deferred. */
  deferred?: string;
}

export interface BlockRef {
  chainId: number;
  blockNumber: number;
  blockHash: string;
}

export class MatchStore {
  private readonly records;
  private readonly retracted;
  /** The records' key prefix: a block's puts go into its batch at the root, full key and JSON text. */
  private readonly recordsPrefix: string;

  constructor(db: Db) {
    this.records = sublevel<{ endpointId: string; deferred?: string }>(db, 'matches');
    this.retracted = sublevel<number>(db, 'match-retractions');
    this.recordsPrefix = this.records.prefix;
  }

  key(block: BlockRef, logIndex: number, subscriptionId: string): string {
    return `${blockPrefix(block)}${padNumber(logIndex, 6)}!${subscriptionId}`;
  }

  /**
   * One put per matched (log, subscription), in the block's batch: at the root with its full key and
   * its value as JSON text, which skips abstract-level's per-operation sublevel work (a copy of the
   * operation, encoding look-ups, prefixing) that cost about as much as the write itself.
   */
  putOp(block: BlockRef, record: MatchRecord): BatchOp {
    const value =
      record.deferred === undefined ? { endpointId: record.endpointId } : { endpointId: record.endpointId, deferred: record.deferred };
    return {
      type: 'put',
      key: this.recordsPrefix + this.key(block, record.logIndex, record.subscriptionId),
      value: JSON.stringify(value),
      valueEncoding: 'utf8',
    };
  }

  delOp(block: BlockRef, record: MatchRecord): BatchOp {
    return { type: 'del', sublevel: this.records, key: this.key(block, record.logIndex, record.subscriptionId) };
  }

  /**
   * For each key, whether a record exists: one `getMany` of point reads, values left raw. Not `hasMany`,
   * whose iterator seek per key walks over the tombstones of retracted and pruned records.
   */
  async existing(keys: string[]): Promise<boolean[]> {
    if (keys.length === 0) return [];
    return (await this.records.getMany(keys, { valueEncoding: 'buffer' })).map((v) => v !== undefined);
  }

  /** Every record of one block (by hash), in log order. */
  async forBlock(block: BlockRef): Promise<MatchRecord[]> {
    const prefix = blockPrefix(block);
    const out: MatchRecord[] = [];
    for await (const [key, value] of this.records.iterator({ gt: prefix, lt: `${prefix}${PREFIX_END}` })) {
      const rest = key.slice(prefix.length);
      const sep = rest.indexOf('!');
      const record: MatchRecord = {
        logIndex: Number(rest.slice(0, sep)),
        subscriptionId: rest.slice(sep + 1),
        endpointId: value.endpointId,
      };
      if (typeof value.deferred === 'string') record.deferred = value.deferred;
      out.push(record);
    }
    return out;
  }

  /** How many times this block (by hash) was retracted: 0 for a block seen for the first time. */
  async retractions(block: BlockRef): Promise<number> {
    return (await this.retracted.get(blockPrefix(block))) ?? 0;
  }

  /** The batch operation recording one more retraction of the block; `count` is its new total. */
  retractionsOp(block: BlockRef, count: number): BatchOp {
    return { type: 'put', sublevel: this.retracted, key: blockPrefix(block), value: count };
  }

  /** Deletes the records of `chainId` for blocks below `belowBlock` (out of the reorg window). */
  async prune(chainId: number, belowBlock: number): Promise<void> {
    if (belowBlock <= 0) return;
    const range = { gte: `${chainId}!`, lt: `${chainId}!${padNumber(belowBlock)}` };
    await Promise.all([this.records.clear(range), this.retracted.clear(range)]);
  }
}

function blockPrefix(block: BlockRef): string {
  return `${block.chainId}!${padNumber(block.blockNumber)}!${block.blockHash.toLowerCase()}!`;
}
