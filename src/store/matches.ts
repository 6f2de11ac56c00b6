/**
 * Match records: which subscriptions were sent which log. The Matcher writes one record per
 * (log, subscription) in the same batch as the `log.created` job, and reads them back when the block
 * is retracted, so `log.removed` goes exactly to the subscriptions that received the log — even if the
 * subscription was deleted since (the record carries its endpoint). A retraction deletes the block's
 * records in its own batch, so a re-sent retraction produces nothing twice.
 *
 * A block that comes back after its retraction (a reorg flip-flop A -> B -> A) is a new event for
 * receivers: `retractions(block)` counts how often the block was retracted (space
 * `match-retractions`, written in the retraction's batch) and the Matcher folds that generation into the
 * webhook-id, so the re-emitted `log.created` is not discarded as a duplicate of the first one.
 *
 * Keys in the `matches` space (src/store/kv.ts): `<chainId>!<blockNumber 15d>!<blockHash>!<logIndex 6d>!<subscriptionId>`
 * -> `{ endpointId, deferred?, event? }`, `deferred` being the key of the job in deferred.ts when the
 * subscription's confirmations held it back (a retraction deletes it there if it is still waiting), and
 * `event` the declaration of the event the log was decoded as (src/abi/events.ts) when the subscription
 * has an abi, so its `log.removed` carries the same decoded event even if the subscription changed or
 * went since. Ordered by block number per chain so `prune` drops everything below the reorg
 * window with one range delete.
 */
import { padNumber, PREFIX_END } from './keys.ts';
import type { Kv, KvOp, KvSpace } from './kv.ts';

export interface MatchRecord {
  logIndex: number;
  subscriptionId: string;
  endpointId: string;
  /** The deferred job's key (deferred.ts), when the log.created job was deferred. */
  deferred?: string;
  /** The declaration of the event the log was decoded as, when the subscription has an abi. */
  event?: string;
}

export interface BlockRef {
  chainId: number;
  blockNumber: number;
  blockHash: string;
}

export class MatchStore {
  private readonly records: KvSpace<{ endpointId: string; deferred?: string; event?: string }>;
  private readonly retracted: KvSpace<number>;

  constructor(kv: Kv) {
    this.records = kv.space('matches');
    this.retracted = kv.space('match-retractions');
  }

  key(block: BlockRef, logIndex: number, subscriptionId: string): string {
    return `${blockPrefix(block)}${padNumber(logIndex, 6)}!${subscriptionId}`;
  }

  /** One put per matched (log, subscription), in the block's batch. */
  putOp(block: BlockRef, record: MatchRecord): KvOp {
    const value: { endpointId: string; deferred?: string; event?: string } = { endpointId: record.endpointId };
    if (record.deferred !== undefined) value.deferred = record.deferred;
    if (record.event !== undefined) value.event = record.event;
    return this.records.putOp(this.key(block, record.logIndex, record.subscriptionId), value);
  }

  delOp(block: BlockRef, record: MatchRecord): KvOp {
    return this.records.delOp(this.key(block, record.logIndex, record.subscriptionId));
  }

  /** For each key, whether a record exists (values are not read). */
  existing(keys: string[]): Promise<boolean[]> {
    return this.records.has(keys);
  }

  /** Every record of one block (by hash), in log order. */
  async forBlock(block: BlockRef): Promise<MatchRecord[]> {
    const prefix = blockPrefix(block);
    const out: MatchRecord[] = [];
    for (const [key, value] of await this.records.entries({ gt: prefix, lt: `${prefix}${PREFIX_END}` })) {
      const rest = key.slice(prefix.length);
      const sep = rest.indexOf('!');
      const record: MatchRecord = {
        logIndex: Number(rest.slice(0, sep)),
        subscriptionId: rest.slice(sep + 1),
        endpointId: value.endpointId,
      };
      if (typeof value.deferred === 'string') record.deferred = value.deferred;
      if (typeof value.event === 'string') record.event = value.event;
      out.push(record);
    }
    return out;
  }

  /** How many times this block (by hash) was retracted: 0 for a block seen for the first time. */
  async retractions(block: BlockRef): Promise<number> {
    return (await this.retractionsOf([block]))[0]!;
  }

  /** `retractions` of several blocks, in one read. */
  async retractionsOf(blocks: readonly BlockRef[]): Promise<number[]> {
    return (await this.retracted.getMany(blocks.map(blockPrefix))).map((count) => count ?? 0);
  }

  /** The batch operation recording one more retraction of the block; `count` is its new total. */
  retractionsOp(block: BlockRef, count: number): KvOp {
    return this.retracted.putOp(blockPrefix(block), count);
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
