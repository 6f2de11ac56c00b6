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
 * - Finality: a subscription with `finality: 'safe' | 'finalized'` has its `log.created` jobs wait in
 *   the store until the chain's tag (the heights each block carries) reaches their block, and their
 *   confirmations too (finality-wait.ts); released by a block like confirmation-deferred jobs, and
 *   deleted likewise by a retraction while they wait. A `chain.finality` message (the chain's finality
 *   moved between blocks) releases them as a block would, at the chain cursor's processed height (for
 *   their confirmations), fenced by its fence; only when the cursor holds the message's `anchor` (the
 *   final block, by number and hash) at or below that height, so a release never runs ahead of a
 *   retraction on its way. Otherwise it releases nothing and answers ETHHOOK_ERR_FINALITY_UNANCHORED:
 *   the listener tells it again after its next poll, and the blocks carry the heights too.
 * - Decoded events and filters (src/abi/log-decoder.ts): a candidate the index found for a subscription
 *   with an abi is decoded (once per log and event, whatever the number of subscriptions sharing it) and
 *   its job carries `event` (null when it does not decode: delivered all the same, counted in
 *   `matcher_decode_failures_total`); a subscription's filter then keeps or drops the pair (dropped:
 *   `matcher_filtered_total`). The match record names the event's declaration, so a retraction sends
 *   the same `event` in its `log.removed`, decoding the retracted log again.
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
 * - A backfilled page (`backfill.page`, from src/actors/backfill/): blocks read again for one
 *   subscription. It is checked against the chain cursor first: every block at or below its processed
 *   height, with the hash the cursor's reorg window has for it (blocks older than the window are
 *   final), else nothing is written (`ETHHOOK_ERR_BACKFILL_STALE`). Then its blocks go through the
 *   live path's `emitBlocks`, restricted to that subscription: the same jobs and webhook-ids, match
 *   records (so a later reorg retracts them like live ones, and a pair already enqueued is not
 *   enqueued twice), deferral; all of the message's blocks in one read of their match records and one
 *   of their retraction counts, at once, and ONE batch, with the backfill's progress and fenced like
 *   live jobs (a message of many sparse blocks holds the Matcher, and a live block behind it, for one
 *   write, not one per block); then deferred jobs the chain is already deep enough for are released.
 *   Its blocks carry the finality heights of the chain's last live block written (or finality message
 *   released), so a subscription with `finality` has the jobs of blocks already final go at once, and
 *   only the others wait. Because the Matcher handles one message at a time, a page lands either
 *   before a retraction of its block (which then finds its records) or after it (and is refused). For
 *   that, a retraction writes its cursor ops itself even when it has nothing to retract.
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
import type { Kv, KvFence, KvOp } from '../../store/kv.ts';
import { BackfillStore } from '../../store/backfills.ts';
import { CursorStore } from '../../store/cursors.ts';
import type { OutboxStore } from '../../store/outbox/contract.ts';
import type { NewJob } from '../../store/outbox/job.ts';
import type { Subscription, SubscriptionStore } from '../../store/subscriptions.ts';
import { logStreamEvent, type StreamEvent } from '../../streams/events.ts';
import { FinalityWait } from './finality-wait.ts';
import { buildJob, eventTimestamp } from './jobs.ts';
import {
  matcherSchemaFor,
  type BackfillPage,
  type BackfillPageAck,
  type BlockAck,
  type ChainBlockMessage,
  type ChainFinalityMessage,
  type FinalityUnanchoredAck,
  type LeaseLostAck,
  type MatchedBlock,
  type ChainLog,
  type SubscriptionsAck,
  type SubscriptionsChanged,
} from './messages.ts';
import { getMatcherMetrics, type MatcherMetrics } from './metrics.ts';
import { pipelineStages, type PipelineStages } from '../../pipeline-stages.ts';
import { SubscriptionIndex } from './subscription-index.ts';
import { LogDecoder, type DecodingSpec } from '../../abi/log-decoder.ts';
import { loadViem } from '../../abi/viem.ts';
import type { WebhookEvent } from '../../abi/decode.ts';

export const DEFAULT_REORG_WINDOW_BLOCKS = 1024;
const NOTHING_WRITTEN = { jobs: 0, persisted: false } as const;

/** `ops` with the block's fence, when it carries one. */
function fenced(block: MatchedBlock, ops: KvOp[]): KvOp[] {
  if (block.fence) ops.push(block.fence);
  return ops;
}

/** `ops` with the block's cursor ops and its fence (see the header): all of the block's writes in one batch. */
function withBlockOps(block: MatchedBlock, ops: KvOp[]): KvOp[] {
  if (block.cursor) ops.push(...block.cursor);
  return fenced(block, ops);
}

/** Deferred jobs moved into the outbox per batch. */
const RELEASE_CHUNK = 1_000;
const PRUNE_EVERY_BLOCKS = 64;

type FinalityHeights = NonNullable<MatchedBlock['finality']>;

/** Each tag's higher height of the two (a tag known to one only keeps it). */
function laterHeights(before: FinalityHeights | undefined, next: FinalityHeights): FinalityHeights {
  const out: FinalityHeights = { ...before, ...next };
  if (before?.safe !== undefined && next.safe !== undefined) out.safe = Math.max(before.safe, next.safe);
  if (before?.finalized !== undefined && next.finalized !== undefined) out.finalized = Math.max(before.finalized, next.finalized);
  return out;
}

/** A (log, subscription) match of a block, and the log's decoded event when its subscription has an abi. */
interface Pair {
  block: MatchedBlock;
  log: ChainLog;
  record: MatchRecord;
  event?: WebhookEvent | null;
}

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
  readonly index: SubscriptionIndex<DecodingSpec>;
}

export function createMatcher(deps: MatcherDeps): Matcher {
  const { subscriptions, outbox, logger } = deps;
  const window = deps.reorgWindowBlocks ?? DEFAULT_REORG_WINDOW_BLOCKS;
  const matches = new MatchStore(deps.kv);
  const cursors = new CursorStore(deps.kv);
  const backfills = new BackfillStore(deps.kv);
  const deferred = new DeferredJobs(deps.kv);
  /** Subscriptions (indexed here) with confirmations set: id -> confirmations. */
  const wanted = new Map<string, number>();
  /** Per chain, the release height of its earliest deferred job (Infinity: none); absent: not read yet. */
  const nextRelease = new Map<number, number>();
  const metrics: MatcherMetrics | undefined = deps.registry ? getMatcherMetrics(deps.registry) : undefined;
  const stages: PipelineStages | undefined = deps.registry ? pipelineStages(deps.registry) : undefined;
  const finality = new FinalityWait({ deferred, outbox, logger, metrics, chunk: RELEASE_CHUNK });
  /** Each subscription's decoding spec (abi and filter) is kept in its slot of the index. */
  const index = new SubscriptionIndex<DecodingSpec>();
  const decoder = new LogDecoder(() => metrics?.decodeFailures.inc());
  const newest = new Map<number, number>();
  /**
   * Per chain, the finality heights of the last live block written (or finality message released):
   * a backfilled page's blocks, all at or below the processed height and checked against the
   * cursor, are as final as those heights say, so its jobs wait only for what is not final yet.
   */
  const heights = new Map<number, FinalityHeights>();
  const lastPrune = new Map<number, number>();

  const put = (sub: Subscription | undefined, id: string) => {
    // The new spec is made before the old one is given back, so an abi both share stays parsed.
    const before = index.spec(id);
    if (sub) index.add(sub, decoder.acquire(sub));
    else index.remove(id);
    if (before !== undefined) decoder.release(before);
    if (sub?.confirmations) wanted.set(id, sub.confirmations);
    else wanted.delete(id);
    finality.put(sub, id);
  };
  /** Blocks a subscription's jobs wait beyond the chain's listener. */
  const extraDepth = (chainId: number, subscriptionId: string): number =>
    Math.max(0, (wanted.get(subscriptionId) ?? 0) - (deps.chainConfirmations?.get(chainId) ?? 0));

  async function reload(): Promise<void> {
    index.clear();
    decoder.clear();
    wanted.clear();
    finality.clear();
    for await (const sub of subscriptions.iterate()) {
      if (sub.abi !== undefined) await loadViem();
      put(sub, sub.id);
    }
    metrics?.subscriptions.set(index.size);
    logger.info({ subscriptions: index.size }, 'matcher index loaded');
  }

  async function onChanged(msg: SubscriptionsChanged): Promise<SubscriptionsAck> {
    if (msg.upserted === undefined && msg.removed === undefined) {
      await reload();
    } else {
      for (const id of msg.removed ?? []) put(undefined, id);
      for (const id of msg.upserted ?? []) {
        const sub = await subscriptions.get(id);
        if (sub?.abi !== undefined) await loadViem();
        put(sub, id);
      }
      metrics?.subscriptions.set(index.size);
    }
    return { ok: true, size: index.size };
  }

  /** The epoch each chain's blocks were last fenced with. */
  const epochs = new Map<number, number>();

  /** A fence of a new epoch: another instance wrote to the chain meanwhile, what is remembered of it goes. */
  function noteFence(chainId: number, fence: KvFence | undefined): void {
    if (fence && epochs.get(chainId) !== fence.epoch) {
      epochs.set(chainId, fence.epoch);
      nextRelease.delete(chainId);
      finality.forget(chainId);
      heights.delete(chainId);
      newest.delete(chainId);
      lastPrune.delete(chainId);
    }
  }

  async function onBlock(block: ChainBlockMessage): Promise<BlockAck | LeaseLostAck> {
    const started = performance.now();
    noteFence(block.chainId, block.fence);
    let written: number;
    let persisted: boolean;
    try {
      const first = block.removed ? await retract(block) : await emit(block);
      persisted = first.persisted;
      written = first.jobs + (block.removed ? 0 : (await release(block)) + (await finality.release(block, (ops) => fenced(block, ops))));
    } catch (err) {
      if (!isEthhookError(err, 'ETHHOOK_ERR_LEASE_LOST')) throw err;
      logger.warn(
        { chainId: block.chainId, blockNumber: block.blockNumber, lease: block.fence?.lease },
        'block not written: the chain lease was lost',
      );
      return { ok: false, code: 'ETHHOOK_ERR_LEASE_LOST' };
    }
    if (!block.removed && block.finality) heights.set(block.chainId, block.finality);
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

  /** The live block's jobs; `persisted`: its cursor ops were written with them. */
  async function emit(block: MatchedBlock): Promise<{ jobs: number; persisted: boolean }> {
    metrics?.logs.inc(block.logs.length);
    const jobs = await emitBlocks([block], undefined, (ops) => withBlockOps(block, ops));
    if (jobs === undefined) return NOTHING_WRITTEN;
    return { jobs, persisted: block.cursor !== undefined };
  }

  /**
   * The jobs of `blocks` (one chain's), with their match records and deferred jobs, in ONE outbox
   * batch, `finish` adding the batch's other ops (cursor, progress, fence). `only`: backfilled blocks,
   * whose pairs of that one subscription are enqueued (and which count in no live metric). Undefined
   * when no pair is left to enqueue: nothing was written, `finish` was not called.
   */
  async function emitBlocks(
    blocks: readonly MatchedBlock[],
    only: string | undefined,
    finish: (ops: KvOp[]) => KvOp[],
  ): Promise<number | undefined> {
    const pairs: Pair[] = [];
    let filtered = 0;
    for (const block of blocks) {
      for (const log of block.logs) {
        for (const sub of index.match(block.chainId, log)) {
          if (only !== undefined && sub.id !== only) continue;
          const record: MatchRecord = { logIndex: log.logIndex, subscriptionId: sub.id, endpointId: sub.endpointId };
          // A candidate of the topic index: decoded (once per log and event) and filtered when its subscription asks.
          const spec = sub.spec;
          const decoding = spec && decoder.decode(spec, log);
          if (spec !== undefined && !decoder.accepts(spec, log, decoding)) filtered++;
          else if (decoding === undefined) pairs.push({ block, log, record });
          else {
            record.event = decoding.declaration;
            pairs.push({ block, log, record, event: decoding.event });
          }
        }
      }
      decoder.forgetLog();
    }
    if (filtered > 0 && only === undefined) metrics?.filtered.inc(filtered);
    if (pairs.length === 0) return undefined;
    const live = only === undefined ? blocks[0] : undefined;
    if (live) stages?.reached('matched', live.seenAt, Date.now());
    // The records and the retraction counts at once: a live block waits for one read instead of two.
    const withPairs = blocks.length === 1 ? blocks : [...new Set(pairs.map((p) => p.block))];
    const [seen, generations] = await Promise.all([
      matches.existing(pairs.map((p) => matches.key(p.block, p.record.logIndex, p.record.subscriptionId))),
      matches.retractionsOf(withPairs),
    ]);
    const fresh = pairs.filter((_, i) => !seen[i]);
    if (fresh.length < pairs.length) {
      const first = pairs.find((_, i) => seen[i])!.block;
      logger.info(
        { chainId: first.chainId, blockNumber: first.blockNumber, blocks: blocks.length, skipped: pairs.length - fresh.length },
        'block seen before: its recorded matches are not enqueued again',
      );
    }
    if (fresh.length === 0) return undefined;
    const jobs: NewJob[] = [];
    const ops: KvOp[] = [];
    let earliest = Infinity;
    let block: MatchedBlock | undefined;
    let timestamp = '';
    let generation = 0;
    // `fresh` is in block order, as `withPairs` is: each block's generation is the next one's.
    let at = -1;
    for (const p of fresh) {
      if (p.block !== block) {
        block = p.block;
        timestamp = eventTimestamp(block);
        while (withPairs[++at] !== block);
        generation = generations[at]!;
      }
      const job = buildJob(block, p.log, p.record, 'log.created', timestamp, generation, p.event);
      if (!live) job.backfill = true;
      const extra = extraDepth(block.chainId, p.record.subscriptionId);
      const releaseAt = block.blockNumber + extra;
      const waiting = finality.waitKey(block, p.record.subscriptionId, job, releaseAt);
      if (waiting !== undefined) {
        p.record.deferred = waiting;
        ops.push(deferred.putOp(waiting, job));
      } else if (extra === 0) jobs.push(job);
      else {
        p.record.deferred = deferred.key(block.chainId, releaseAt, job.id);
        ops.push(deferred.putOp(p.record.deferred, job));
        metrics?.deferred.inc({ reason: 'confirmations' });
        earliest = Math.min(earliest, releaseAt);
      }
      ops.push(matches.putOp(block, p.record));
    }
    const { enqueued } = await outbox.enqueueBatch(jobs, finish(ops));
    if (live) stages?.reached('committed', live.seenAt, Date.now());
    const chainId = blocks[0]!.chainId;
    const known = nextRelease.get(chainId);
    if (known !== undefined) nextRelease.set(chainId, Math.min(known, earliest));
    metrics?.jobs.inc({ type: 'log.created' }, enqueued);
    return enqueued;
  }

  /** Moves the chain's deferred jobs that this block makes deep enough into the outbox. */
  async function release(block: MatchedBlock): Promise<number> {
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
    if (records.length === 0) {
      // Its cursor ops are written here all the same: until they land, a backfilled page of this
      // block would pass the check against the cursor and leave records no retraction reaches.
      if (!block.cursor) return NOTHING_WRITTEN;
      await deps.kv.batch(withBlockOps(block, []));
      return { jobs: 0, persisted: true };
    }
    const generation = await matches.retractions(block);
    // A record that names an event is retracted with that event decoded again.
    if (records.some((r) => r.event !== undefined)) await loadViem();
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
      // The event the log.created carried: decoded again as the event its record names.
      if (log)
        jobs.push(
          buildJob(block, log, r, 'log.removed', timestamp, generation, r.event === undefined ? undefined : decoder.eventOf(r.event, log)),
        );
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

  /** The chain's finality moved between blocks: the waiting jobs it makes final, as deep as the chain is processed. */
  async function onFinality(msg: ChainFinalityMessage): Promise<{ ok: true; jobs: number } | FinalityUnanchoredAck | LeaseLostAck> {
    noteFence(msg.chainId, msg.fence);
    const unanchored = { ok: false, code: 'ETHHOOK_ERR_FINALITY_UNANCHORED' } as const;
    const position = await cursors.position(msg.chainId);
    if (position === undefined || msg.anchor.number > position.next - 1) return unanchored;
    // A block older than the cursor's window is final for the listener too (it cannot be retracted).
    const [hash] = await cursors.hashes(msg.chainId, [msg.anchor.number]);
    if (hash !== undefined && hash !== msg.anchor.hash) return unanchored;
    const at = { chainId: msg.chainId, blockNumber: position.next - 1, seenAt: msg.seenAt, finality: msg.finality };
    try {
      const jobs = await finality.release(at, (ops) => (msg.fence ? [...ops, msg.fence] : ops));
      heights.set(msg.chainId, laterHeights(heights.get(msg.chainId), msg.finality));
      return { ok: true, jobs };
    } catch (err) {
      if (!isEthhookError(err, 'ETHHOOK_ERR_LEASE_LOST')) throw err;
      return { ok: false, code: 'ETHHOOK_ERR_LEASE_LOST' };
    }
  }

  /** A Backfill's page (messages.ts backfillPageSchema, BackfillPageAck). */
  async function onBackfillPage(page: BackfillPage): Promise<BackfillPageAck> {
    noteFence(page.chainId, page.fence);
    if (!index.has(page.subscriptionId)) return { ok: false, code: 'ETHHOOK_ERR_SUBSCRIPTION_NOT_FOUND' };
    const position = await cursors.position(page.chainId);
    const processed = position === undefined ? -1 : position.next - 1;
    const liveFrom = Math.max(processed, newest.get(page.chainId) ?? -1);
    const hashes = await cursors.hashes(
      page.chainId,
      page.blocks.map((b) => b.number),
    );
    const stale =
      page.progress.at > processed || page.blocks.some((b, i) => b.number > processed || (hashes[i] !== undefined && hashes[i] !== b.hash));
    if (stale) return { ok: false, code: 'ETHHOOK_ERR_BACKFILL_STALE', liveFrom };
    // A page of a request cancelled or replaced while it was on its way writes nothing: the Backfill
    // task reads the request again before its next step and ends.
    const current = await backfills.request(page.subscriptionId);
    if (current?.id !== page.requestId || current.cancelledAt !== undefined)
      return { ok: false, code: 'ETHHOOK_ERR_BACKFILL_STALE', liveFrom };
    let written = 0;
    const known = heights.get(page.chainId);
    try {
      const blocks = page.blocks.map((b): MatchedBlock => ({
        type: 'chain.block',
        chainId: page.chainId,
        blockNumber: b.number,
        blockHash: b.hash,
        timestamp: b.timestamp,
        seenAt: page.seenAt,
        removed: false,
        logs: b.logs,
        ...(known ? { finality: known } : {}),
        ...(page.fence ? { fence: page.fence } : {}),
      }));
      // The page's jobs and its progress in one batch: the progress moves exactly when its jobs land.
      const request = { id: page.requestId, chainId: page.chainId, subscriptionId: page.subscriptionId };
      const finish = (ops: KvOp[]): KvOp[] => {
        ops.push(...backfills.progressOps(request, page.progress));
        if (page.fence) ops.push(page.fence);
        return ops;
      };
      const jobs = await emitBlocks(blocks, page.subscriptionId, finish);
      if (jobs === undefined) await deps.kv.batch(finish([]));
      else written += jobs;
      const last = page.blocks.at(-1);
      // Jobs deferred for their subscription's confirmations whose depth the chain has passed already.
      if (last) {
        written += await release({
          type: 'chain.block',
          chainId: page.chainId,
          blockNumber: processed,
          blockHash: last.hash,
          timestamp: last.timestamp,
          seenAt: page.seenAt,
          removed: false,
          logs: [],
          ...(page.fence ? { fence: page.fence } : {}),
        });
      }
    } catch (err) {
      if (!isEthhookError(err, 'ETHHOOK_ERR_LEASE_LOST')) throw err;
      return { ok: false, code: 'ETHHOOK_ERR_LEASE_LOST' };
    }
    return { ok: true, jobs: written, liveFrom };
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
      const data = parsed.data;
      if (data.type === 'chain.block') return onBlock(data);
      if (data.type === 'chain.finality') return onFinality(data);
      return data.type === 'backfill.page' ? onBackfillPage(data) : onChanged(data);
    },
    health() {
      return { ok: true, detail: `${index.size} subscriptions indexed` };
    },
  };
}
