/**
 * The Matcher actor: turns `chain.block` messages into delivery jobs in the outbox, then acknowledges.
 *
 * - preStart loads every subscription into the index;
 *   `subscriptions.changed` patches it, so changes apply without a restart. A restart rebuilds it.
 * - A block (`removed: false`): each log is matched through the index; every (log, subscription) pair
 *   not already recorded becomes a `log.created` job plus a match record, all in ONE outbox batch;
 *   only then does `receive` resolve `{ ok: true, jobs }`, which lets the listener advance its cursor.
 *   A block re-sent after a crash finds its pairs recorded and enqueues nothing twice.
 * - A retraction (`removed: true`): the block's match records say which subscriptions received which
 *   log; each gets a `log.removed` job, and the records are deleted in the same batch. Subscriptions
 *   that never got the log get nothing. The block's retraction count goes up in that batch too, so a
 *   block that comes back (reorg flip-flop) gets new webhook-ids (see jobs.ts).
 * - Confirmations: a subscription asking for more confirmations than its chain's listener waits for
 *   (`chainConfirmations`) gets its `log.created` jobs deferred (src/store/deferred.ts) by the
 *   difference, in blocks: written with the block's batch, and moved into the outbox, in one batch, by
 *   the block of that chain that makes the log deep enough, before that block is acknowledged. So a
 *   crash loses none (the listener re-sends a block until it is acknowledged, and the deferred jobs
 *   are in LevelDB). A retraction of a log whose job is still deferred deletes the job: the receiver
 *   hears nothing of it, neither `log.created` nor `log.removed`. The released job's `eventSeenAt` is
 *   the releasing block's, so `webhook_event_to_delivery_seconds` does not count the wait it asked for.
 * - Match records older than `reorgWindowBlocks` behind the newest block of a chain are pruned every
 *   64 blocks: a retraction can only concern blocks inside the listener's reorg window.
 * - Any failure (invalid message, LevelDB error) rejects the ask: the listener keeps its cursor and
 *   sends the block again; the supervisor sees a panic.
 * - The block's cursor ops (`cursor`, the listener's reorg window and position for the block) are
 *   written in the same batch as its jobs and match records, and the answer says so (`persisted:
 *   true`); a block that writes nothing leaves them to the listener. So jobs never commit without the
 *   cursor knowing their block, which a later reorg must retract.
 * - Fencing (a cluster, src/cluster/coordinator.ts): a block that carries its chain's `fence` has every
 *   write of it (jobs, match records, deferred jobs, their release) fenced by it (src/store/kv.ts,
 *   KvFence), so an instance that lost the chain's lease while the block was on its way writes
 *   nothing. Such a refusal is answered `{ ok: false, code: 'ETHHOOK_ERR_LEASE_LOST' }`, not thrown: it
 *   is no fault of the matcher. A fence of a new epoch drops what the matcher remembers of the chain
 *   (the next deferred release, the pruning heights): another instance wrote to it meanwhile.
 * - `publish` (optional) gets every log of a block, matched or not, once its jobs are in the outbox:
 *   `log.created`, or `log.removed` for a retraction (the live event streams, src/streams/). It must
 *   not block. A publish that throws is logged (once per block) and does not fail the block: its jobs
 *   are written, and a rejected ack would only make the listener send it again. A block sent again
 *   after a crash is published again: stream clients may see a log twice, where webhooks are
 *   deduplicated by the match records.
 */
import type { Registry } from 'prom-client';
import { describeError, EthhookError, isEthhookError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import type { Behaviour } from '../../runtime/types.ts';
import { DeferredJobs } from '../../store/deferred.ts';
import { MatchStore, type MatchRecord } from '../../store/matches.ts';
import type { Kv, KvOp } from '../../store/kv.ts';
import type { OutboxStore } from '../../store/outbox/contract.ts';
import type { NewJob } from '../../store/outbox/job.ts';
import type { Subscription, SubscriptionStore } from '../../store/subscriptions.ts';
import { logStreamEvent, type StreamEvent } from '../../streams/events.ts';
import { buildJob, eventTimestamp } from './jobs.ts';
import {
  matcherSchemaFor,
  type BlockAck,
  type ChainBlockMessage,
  type LeaseLostAck,
  type ChainLog,
  type SubscriptionsAck,
  type SubscriptionsChanged,
} from './messages.ts';
import { getMatcherMetrics, type MatcherMetrics } from './metrics.ts';
import { pipelineStages, type PipelineStages } from '../../pipeline-stages.ts';
import { SubscriptionIndex } from './subscription-index.ts';

export const DEFAULT_REORG_WINDOW_BLOCKS = 1024;
const NOTHING_WRITTEN = { jobs: 0, persisted: false } as const;

/** `ops` with the block's fence, when it carries one. */
function fenced(block: ChainBlockMessage, ops: KvOp[]): KvOp[] {
  if (block.fence) ops.push(block.fence);
  return ops;
}

/** `ops` with the block's cursor ops and its fence (see the header): all of the block's writes in one batch. */
function withBlockOps(block: ChainBlockMessage, ops: KvOp[]): KvOp[] {
  if (block.cursor) ops.push(...block.cursor);
  return fenced(block, ops);
}

/** Deferred jobs moved into the outbox per batch. */
const RELEASE_CHUNK = 1_000;
const PRUNE_EVERY_BLOCKS = 64;

export interface MatcherDeps {
  kv: Kv;
  subscriptions: SubscriptionStore;
  outbox: OutboxStore;
  logger: Logger;
  registry?: Registry;
  /** How many blocks back a retraction can reach (>= the listeners' maxReorgDepth). Default 1024. */
  reorgWindowBlocks?: number;
  /** Each chain's listener confirmations (config `chains[].confirmations`); absent: 0. */
  chainConfirmations?: ReadonlyMap<number, number>;
  /** Every log of every block, after its jobs are written (the StreamHub's `publish`). */
  publish?: (event: StreamEvent) => void;
}

export interface Matcher extends Behaviour<unknown> {
  /** The live index (read-only use: tests, admin diagnostics). */
  readonly index: SubscriptionIndex;
}

export function createMatcher(deps: MatcherDeps): Matcher {
  const { subscriptions, outbox, logger } = deps;
  const window = deps.reorgWindowBlocks ?? DEFAULT_REORG_WINDOW_BLOCKS;
  const matches = new MatchStore(deps.kv);
  const deferred = new DeferredJobs(deps.kv);
  /** Subscriptions (indexed here) with confirmations set: id -> confirmations. */
  const wanted = new Map<string, number>();
  /** Per chain, the release height of its earliest deferred job (Infinity: none); absent: not read yet. */
  const nextRelease = new Map<number, number>();
  const metrics: MatcherMetrics | undefined = deps.registry ? getMatcherMetrics(deps.registry) : undefined;
  const stages: PipelineStages | undefined = deps.registry ? pipelineStages(deps.registry) : undefined;
  const index = new SubscriptionIndex();
  const newest = new Map<number, number>();
  const lastPrune = new Map<number, number>();

  const put = (sub: Subscription | undefined, id: string) => {
    if (sub) index.add(sub);
    else index.remove(id);
    if (sub?.confirmations) wanted.set(id, sub.confirmations);
    else wanted.delete(id);
  };
  /** Blocks a subscription's jobs wait beyond the chain's listener. */
  const extraDepth = (chainId: number, subscriptionId: string): number =>
    Math.max(0, (wanted.get(subscriptionId) ?? 0) - (deps.chainConfirmations?.get(chainId) ?? 0));

  async function reload(): Promise<void> {
    index.clear();
    wanted.clear();
    for await (const sub of subscriptions.iterate()) put(sub, sub.id);
    metrics?.subscriptions.set(index.size);
    logger.info({ subscriptions: index.size }, 'matcher index loaded');
  }

  async function onChanged(msg: SubscriptionsChanged): Promise<SubscriptionsAck> {
    if (msg.upserted === undefined && msg.removed === undefined) {
      await reload();
    } else {
      for (const id of msg.removed ?? []) {
        index.remove(id);
        wanted.delete(id);
      }
      for (const id of msg.upserted ?? []) put(await subscriptions.get(id), id);
      metrics?.subscriptions.set(index.size);
    }
    return { ok: true, size: index.size };
  }

  /** The epoch each chain's blocks were last fenced with. */
  const epochs = new Map<number, number>();

  async function onBlock(block: ChainBlockMessage): Promise<BlockAck | LeaseLostAck> {
    const started = performance.now();
    if (block.fence && epochs.get(block.chainId) !== block.fence.epoch) {
      epochs.set(block.chainId, block.fence.epoch);
      nextRelease.delete(block.chainId);
      newest.delete(block.chainId);
      lastPrune.delete(block.chainId);
    }
    let written: number;
    let persisted: boolean;
    try {
      const first = block.removed ? await retract(block) : await emit(block);
      persisted = first.persisted;
      written = first.jobs + (block.removed ? 0 : await release(block));
    } catch (err) {
      if (!isEthhookError(err, 'ETHHOOK_ERR_LEASE_LOST')) throw err;
      logger.warn(
        { chainId: block.chainId, blockNumber: block.blockNumber, lease: block.fence?.lease },
        'block not written: the chain lease was lost',
      );
      return { ok: false, code: 'ETHHOOK_ERR_LEASE_LOST' };
    }
    if (deps.publish) publish(deps.publish, block);
    await maybePrune(block);
    metrics?.blockDuration.observe((performance.now() - started) / 1000);
    return persisted ? { ok: true, jobs: written, persisted } : { ok: true, jobs: written };
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
      logger.warn(
        { chainId: block.chainId, blockNumber: block.blockNumber, failed, err: describeError(error) },
        'matcher: publishing logs to the live streams failed',
      );
    }
  }

  /** The block's jobs; `persisted`: its cursor ops were written with them. */
  async function emit(block: ChainBlockMessage): Promise<{ jobs: number; persisted: boolean }> {
    metrics?.logs.inc(block.logs.length);
    const pairs: Array<{ log: ChainLog; record: MatchRecord }> = [];
    for (const log of block.logs) {
      for (const sub of index.match(block.chainId, log)) {
        pairs.push({ log, record: { logIndex: log.logIndex, subscriptionId: sub.id, endpointId: sub.endpointId } });
      }
    }
    if (pairs.length === 0) return NOTHING_WRITTEN;
    stages?.reached('matched', block.seenAt, Date.now());
    // Both reads at once: a live block waits for one LevelDB round trip instead of two.
    const [seen, generation] = await Promise.all([
      matches.existing(pairs.map((p) => matches.key(block, p.record.logIndex, p.record.subscriptionId))),
      matches.retractions(block),
    ]);
    const fresh = pairs.filter((_, i) => !seen[i]);
    if (fresh.length < pairs.length) {
      logger.info(
        { chainId: block.chainId, blockNumber: block.blockNumber, skipped: pairs.length - fresh.length },
        'block seen before: its recorded matches are not enqueued again',
      );
    }
    if (fresh.length === 0) return NOTHING_WRITTEN;
    const timestamp = eventTimestamp(block);
    const jobs: NewJob[] = [];
    const ops: KvOp[] = [];
    let earliest = Infinity;
    for (const p of fresh) {
      const job = buildJob(block, p.log, p.record, 'log.created', timestamp, generation);
      const extra = extraDepth(block.chainId, p.record.subscriptionId);
      if (extra === 0) jobs.push(job);
      else {
        const releaseAt = block.blockNumber + extra;
        p.record.deferred = deferred.key(block.chainId, releaseAt, job.id);
        ops.push(deferred.putOp(p.record.deferred, job));
        earliest = Math.min(earliest, releaseAt);
      }
      ops.push(matches.putOp(block, p.record));
    }
    const { enqueued } = await outbox.enqueueBatch(jobs, withBlockOps(block, ops));
    stages?.reached('committed', block.seenAt, Date.now());
    const known = nextRelease.get(block.chainId);
    if (known !== undefined) nextRelease.set(block.chainId, Math.min(known, earliest));
    metrics?.jobs.inc({ type: 'log.created' }, enqueued);
    return { jobs: enqueued, persisted: block.cursor !== undefined };
  }

  /** Moves the chain's deferred jobs that this block makes deep enough into the outbox. */
  async function release(block: ChainBlockMessage): Promise<number> {
    let next = nextRelease.get(block.chainId);
    if (next === undefined) {
      next = (await deferred.nextRelease(block.chainId)) ?? Infinity;
      nextRelease.set(block.chainId, next);
    }
    if (block.blockNumber < next) return 0;
    let released = 0;
    for (;;) {
      const due = await deferred.due(block.chainId, block.blockNumber, RELEASE_CHUNK);
      if (due.length === 0) break;
      const jobs = due.map(([, job]) => ({ ...job, eventSeenAt: block.seenAt }));
      released += (
        await outbox.enqueueBatch(
          jobs,
          fenced(
            block,
            due.map(([key]) => deferred.delOp(key)),
          ),
        )
      ).enqueued;
      if (due.length < RELEASE_CHUNK) break;
    }
    nextRelease.set(block.chainId, (await deferred.nextRelease(block.chainId)) ?? Infinity);
    metrics?.jobs.inc({ type: 'log.created' }, released);
    return released;
  }

  async function retract(block: ChainBlockMessage): Promise<{ jobs: number; persisted: boolean }> {
    const records = await matches.forBlock(block);
    if (records.length === 0) return NOTHING_WRITTEN;
    const generation = await matches.retractions(block);
    const logs = new Map<number, ChainLog>(block.logs.map((l) => [l.logIndex, l]));
    const timestamp = eventTimestamp(block);
    const jobs: NewJob[] = [];
    const ops: KvOp[] = [];
    // A job still deferred was never sent: it is deleted, and nothing is sent for its log.
    const waiting = records.filter((r) => r.deferred !== undefined);
    const held = await deferred.existing(waiting.map((r) => r.deferred!));
    const stillDeferred = new Set(waiting.filter((_, i) => held[i]).map((r) => r.deferred));
    let missing = 0;
    for (const r of records) {
      if (r.deferred !== undefined && stillDeferred.has(r.deferred)) {
        ops.push(deferred.delOp(r.deferred));
        continue;
      }
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
    ops.push(...records.map((r) => matches.delOp(block, r)), matches.retractionsOp(block, generation + 1));
    const { enqueued } = await outbox.enqueueBatch(jobs, withBlockOps(block, ops));
    metrics?.jobs.inc({ type: 'log.removed' }, enqueued);
    return { jobs: enqueued, persisted: block.cursor !== undefined };
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
      const messageType = typeof msg === 'object' && msg !== null ? String((msg as { type?: unknown }).type) : typeof msg;
      const schema = matcherSchemaFor(msg);
      if (schema === undefined) {
        throw new EthhookError('ETHHOOK_ERR_MATCHER_BAD_MESSAGE', `invalid matcher message: unknown type ${messageType}`, { messageType });
      }
      const parsed = schema.safeParse(msg);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new EthhookError(
          'ETHHOOK_ERR_MATCHER_BAD_MESSAGE',
          `invalid matcher message: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`,
          { messageType },
        );
      }
      return parsed.data.type === 'chain.block' ? onBlock(parsed.data) : onChanged(parsed.data);
    },
    health() {
      return { ok: true, detail: `${index.size} subscriptions indexed` };
    },
  };
}
