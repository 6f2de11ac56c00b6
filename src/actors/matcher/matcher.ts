/**
 * The Matcher actor: turns `chain.block` messages into delivery jobs in the outbox, then acknowledges.
 *
 * - preStart loads every subscription (of the endpoints this instance owns) into the index;
 *   `subscriptions.changed` patches it, so changes apply without a restart. A restart rebuilds it.
 * - A block (`removed: false`): each log is matched through the index; every (log, subscription) pair
 *   not already recorded becomes a `log.created` job plus a match record, all in ONE outbox batch;
 *   only then does `receive` resolve `{ ok: true, jobs }`, which lets the listener advance its cursor.
 *   A block re-sent after a crash finds its pairs recorded and enqueues nothing twice.
 * - A retraction (`removed: true`): the block's match records say which subscriptions received which
 *   log; each gets a `log.removed` job, and the records are deleted in the same batch. Subscriptions
 *   that never got the log get nothing. The block's retraction count goes up in that batch too, so a
 *   block that comes back (reorg flip-flop) gets new webhook-ids (see jobs.ts).
 * - Match records older than `reorgWindowBlocks` behind the newest block of a chain are pruned every
 *   64 blocks: a retraction can only concern blocks inside the listener's reorg window.
 * - Any failure (invalid message, LevelDB error) rejects the ask: the listener keeps its cursor and
 *   sends the block again; the supervisor sees a panic.
 * - `publish` (optional) gets every log of a block, matched or not, once its jobs are in the outbox:
 *   `log.created`, or `log.removed` for a retraction (the live event streams, src/streams/). It must
 *   not block. A publish that throws is logged (once per block) and does not fail the block: its jobs
 *   are written, and a rejected ack would only make the listener send it again. A block sent again
 *   after a crash is published again: stream clients may see a log twice, where webhooks are
 *   deduplicated by the match records.
 */
import type { Registry } from 'prom-client';
import { describeError, EthhookError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import type { Behaviour } from '../../runtime/types.ts';
import type { Db } from '../../store/db.ts';
import { MatchStore, type MatchRecord } from '../../store/matches.ts';
import type { NewJob, Outbox } from '../../store/outbox.ts';
import type { Subscription, SubscriptionStore } from '../../store/subscriptions.ts';
import { logStreamEvent, type StreamEvent } from '../../streams/events.ts';
import { buildJob, eventTimestamp } from './jobs.ts';
import {
  matcherMessageSchema,
  type BlockAck,
  type ChainBlockMessage,
  type ChainLog,
  type SubscriptionsAck,
  type SubscriptionsChanged,
} from './messages.ts';
import { getMatcherMetrics, type MatcherMetrics } from './metrics.ts';
import { SubscriptionIndex } from './subscription-index.ts';

export const DEFAULT_REORG_WINDOW_BLOCKS = 1024;
const PRUNE_EVERY_BLOCKS = 64;

export interface MatcherDeps {
  db: Db;
  subscriptions: SubscriptionStore;
  outbox: Outbox;
  logger: Logger;
  registry?: Registry;
  /** Cluster sharding: only subscriptions of endpoints this instance delivers are indexed. Default: all. */
  ownsEndpoint?: (endpointId: string) => boolean;
  /** How many blocks back a retraction can reach (>= the listeners' maxReorgDepth). Default 1024. */
  reorgWindowBlocks?: number;
  /** Every log of every block, after its jobs are written (the StreamHub's `publish`). */
  publish?: (event: StreamEvent) => void;
}

export interface Matcher extends Behaviour<unknown> {
  /** The live index (read-only use: tests, admin diagnostics). */
  readonly index: SubscriptionIndex;
}

export function createMatcher(deps: MatcherDeps): Matcher {
  const { subscriptions, outbox, logger } = deps;
  const owns = deps.ownsEndpoint ?? (() => true);
  const window = deps.reorgWindowBlocks ?? DEFAULT_REORG_WINDOW_BLOCKS;
  const matches = new MatchStore(deps.db);
  const metrics: MatcherMetrics | undefined = deps.registry ? getMatcherMetrics(deps.registry) : undefined;
  const index = new SubscriptionIndex();
  const newest = new Map<number, number>();
  const lastPrune = new Map<number, number>();

  const put = (sub: Subscription | undefined, id: string) => {
    if (sub && owns(sub.endpointId)) index.add(sub);
    else index.remove(id);
  };

  async function reload(): Promise<void> {
    index.clear();
    for await (const sub of subscriptions.iterate()) put(sub, sub.id);
    metrics?.subscriptions.set(index.size);
    logger.info({ subscriptions: index.size }, 'matcher index loaded');
  }

  async function onChanged(msg: SubscriptionsChanged): Promise<SubscriptionsAck> {
    if (msg.upserted === undefined && msg.removed === undefined) {
      await reload();
    } else {
      for (const id of msg.removed ?? []) index.remove(id);
      for (const id of msg.upserted ?? []) put(await subscriptions.get(id), id);
      metrics?.subscriptions.set(index.size);
    }
    return { ok: true, size: index.size };
  }

  async function onBlock(block: ChainBlockMessage): Promise<BlockAck> {
    const started = performance.now();
    const written = block.removed ? await retract(block) : await emit(block);
    if (deps.publish) publish(deps.publish, block);
    await maybePrune(block);
    metrics?.blockDuration.observe((performance.now() - started) / 1000);
    return { ok: true, jobs: written };
  }

  function publish(to: (event: StreamEvent) => void, block: ChainBlockMessage): void {
    const at = Date.now();
    let failed = 0;
    let error: unknown;
    // A retraction's logs carry `removed: true` themselves (chain-listener/messages.ts).
    for (const log of block.logs) {
      try {
        to(logStreamEvent(block.chainId, log, at));
      } catch (err) {
        failed++;
        error = err;
      }
    }
    if (failed > 0) {
      logger.warn({ chainId: block.chainId, blockNumber: block.blockNumber, failed, err: describeError(error) }, 'matcher: publishing logs to the live streams failed');
    }
  }

  async function emit(block: ChainBlockMessage): Promise<number> {
    metrics?.logs.inc(block.logs.length);
    const pairs: Array<{ log: ChainLog; record: MatchRecord }> = [];
    for (const log of block.logs) {
      for (const sub of index.match(block.chainId, log)) {
        pairs.push({ log, record: { logIndex: log.logIndex, subscriptionId: sub.id, endpointId: sub.endpointId } });
      }
    }
    if (pairs.length === 0) return 0;
    const seen = await matches.existing(pairs.map((p) => matches.key(block, p.record.logIndex, p.record.subscriptionId)));
    const fresh = pairs.filter((_, i) => !seen[i]);
    if (fresh.length < pairs.length) {
      logger.info(
        { chainId: block.chainId, blockNumber: block.blockNumber, skipped: pairs.length - fresh.length },
        'block seen before: its recorded matches are not enqueued again',
      );
    }
    if (fresh.length === 0) return 0;
    const generation = await matches.retractions(block);
    const timestamp = eventTimestamp(block);
    const jobs = fresh.map((p) => buildJob(block, p.log, p.record, 'log.created', timestamp, generation));
    const { enqueued } = await outbox.enqueueBatch(jobs, fresh.map((p) => matches.putOp(block, p.record)));
    metrics?.jobs.inc({ type: 'log.created' }, enqueued);
    return enqueued;
  }

  async function retract(block: ChainBlockMessage): Promise<number> {
    const records = await matches.forBlock(block);
    if (records.length === 0) return 0;
    const generation = await matches.retractions(block);
    const logs = new Map<number, ChainLog>(block.logs.map((l) => [l.logIndex, l]));
    const timestamp = eventTimestamp(block);
    const jobs: NewJob[] = [];
    let missing = 0;
    for (const r of records) {
      const log = logs.get(r.logIndex);
      if (log) jobs.push(buildJob(block, log, r, 'log.removed', timestamp, generation));
      else missing++;
    }
    if (missing > 0) {
      logger.warn(
        { chainId: block.chainId, blockNumber: block.blockNumber, blockHash: block.blockHash, missing },
        'retraction lacks logs that were delivered: no log.removed for them',
      );
    }
    const ops = [...records.map((r) => matches.delOp(block, r)), matches.retractionsOp(block, generation + 1)];
    const { enqueued } = await outbox.enqueueBatch(jobs, ops);
    metrics?.jobs.inc({ type: 'log.removed' }, enqueued);
    return enqueued;
  }

  async function maybePrune(block: ChainBlockMessage): Promise<void> {
    const top = Math.max(newest.get(block.chainId) ?? 0, block.blockNumber);
    newest.set(block.chainId, top);
    if (top - (lastPrune.get(block.chainId) ?? 0) < PRUNE_EVERY_BLOCKS) return;
    lastPrune.set(block.chainId, top);
    await matches.prune(block.chainId, top - window);
  }

  return {
    index,
    async preStart() {
      await reload();
    },
    async receive(msg: unknown) {
      const parsed = matcherMessageSchema.safeParse(msg);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new EthhookError('ETHHOOK_ERR_MATCHER_BAD_MESSAGE', `invalid matcher message: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`, {
          messageType: typeof msg === 'object' && msg !== null ? String((msg as { type?: unknown }).type) : typeof msg,
        });
      }
      return parsed.data.type === 'chain.block' ? onBlock(parsed.data) : onChanged(parsed.data);
    },
    health() {
      return { ok: true, detail: `${index.size} subscriptions indexed` };
    },
  };
}
