/**
 * The Backfill actor (`/pipeline/backfill`): reads blocks of a chain again for one subscription, as
 * asked by `fromBlock`/`toBlock` at its creation or by `POST /v1/subscriptions/{id}/replay`
 * (requests and progress: src/store/backfills.ts), and enqueues what they hold through the Matcher.
 *
 * One actor per node runs every request as a task of its own (at most `maxRunning` at once; the others
 * wait their turn): the kernel's supervisors have a fixed list of children, and a task needs no
 * mailbox. The actor is supervised under the pipeline, after the chains; a restart stops its tasks and
 * starts them again from their persisted progress.
 *
 * - Which: every `pollMs` (and at once on `{ type: 'backfill.changed' }`, which the admin API sends
 *   after a write) the running requests are read from the store; a request of a chain this node
 *   follows and whose lease it holds (src/cluster/coordinator.ts) gets a task. A task ends when its
 *   request is done, cancelled or replaced, its subscription deleted, or the lease leaves this
 *   instance (the holder's Backfill takes it up from the stored progress).
 * - A task first asks the Matcher where the live path stands (an empty page): the backfill ends at
 *   `min(toBlock, that height)`, since every later block is matched live. It then reads
 *   `eth_getLogs` over ranges sized as the listener sizes its own (range-size.ts), for `pageLogs` logs
 *   (500), at most `backfillRange` blocks, halved on a refusal, with the subscription's addresses and
 *   topics as the filter, through the chain listener (`chain.history`: the chain's active provider and
 *   its throttle), and sends each page to the Matcher (`backfill.page`) in messages of at most a tenth
 *   of a second's worth of logs at `logsPerSec` (splitPage: a larger block is split over several, and
 *   the progress passes a block once its last log is sent), one per pace step: a live block waits in
 *   the Matcher behind one such message at most. The Matcher checks each against the chain cursor,
 *   enqueues the subscription's jobs through the live path's code and writes the progress in the same
 *   fenced writes. So a `kill -9` resumes from the last message written, and pairs written twice (a
 *   split block is sent again whole) are deduplicated by the match records (inside the reorg window)
 *   or reach receivers with the same `webhook-id`.
 * - Never past the live path: a page never goes above the height the Matcher reports; one the cursor
 *   does not (yet, or any more) have is refused (ETHHOOK_ERR_BACKFILL_STALE) and read again.
 * - Pace, per chain, shared by its tasks (pace.ts): at most `blocksPerSec` blocks and `requestsPerSec`
 *   JSON-RPC calls per second (an `eth_getLogs`, and a header per block with logs whose logs did not
 *   carry its timestamp: the listener's history.ts) before each read, and `logsPerSec` logs handed to
 *   the Matcher (the jobs and webhooks they become share the live path's cores) before each message. A
 *   task also waits while the outbox holds more than `maxOutboxDepth` jobs, so that live jobs do not
 *   queue behind a backfill's.
 * - Cancel: `DELETE /v1/subscriptions/{id}/replay` marks the request cancelled and tells this actor;
 *   the task stops before its next message (one already sent to the Matcher is still written; the
 *   progress stays at the last block written whole).
 * - Errors: a failed read or an unanswered page is tried again after a backoff (500 ms doubling up to
 *   30 s); a page of a subscription the Matcher has not indexed yet waits for it.
 * - Progress goes to the metrics (metrics.ts) and, when the task starts and ends and at most every
 *   NOTICE_EVERY_MS between, to the live streams as a `backfill` event (src/streams/events.ts).
 *
 * Memory: per task one page (one `eth_getLogs` answer: about `pageLogs` logs, at most the
 * provider's `maxFrameBytes`, and its blocks), its request and progress; so at most `maxRunning` pages.
 */
import type { Registry } from 'prom-client';
import { EthhookError, describeError, isEthhookError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import { sleep, Wakeup } from '../../runtime/timers.ts';
import type { ActorContext, Behaviour } from '../../runtime/types.ts';
import { backoffDelay } from '../../supervision/backoff.ts';
import { BackfillStore, type BackfillProgress, type BackfillState, type RunningBackfill } from '../../store/backfills.ts';
import type { FenceSource } from '../../store/fenced-kv.ts';
import type { Kv } from '../../store/kv.ts';
import type { SubscriptionStore } from '../../store/subscriptions.ts';
import type { BackfillStreamEvent } from '../../streams/events.ts';
import { chainListenerPath } from '../../tree.ts';
import type { ChainHistoryRequest, ChainLog, HistoryBlock, HistoryReadReply } from '../chain-listener/messages.ts';
import { RangeSize } from '../chain-listener/range-size.ts';
import type { BackfillPage, BackfillPageAck } from '../matcher/messages.ts';
import { DEFAULT_BACKFILL_OPTIONS, type BackfillOptions } from './options.ts';
import { BackfillPace } from './pace.ts';
import { getBackfillMetrics, type BackfillMetrics } from './metrics.ts';

/** Progress notices on the live streams, at most this often per backfill (besides its start and end). */
export const NOTICE_EVERY_MS = 5_000;
const RETRY = { minMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2 };
/** Wait before asking again for a page the Matcher refused as stale, or while the outbox is full. */
const RECHECK_MS = 250;

export interface BackfillChain {
  chainId: number;
  name: string;
  backfillRange: number;
}

export interface BackfillDeps {
  kv: Kv;
  subscriptions: SubscriptionStore;
  /** The outbox's depth (no I/O): backfills wait while it is above `maxOutboxDepth`. */
  outboxDepth(): number;
  chains: readonly BackfillChain[];
  /** The chain's lease (src/cluster/coordinator.ts); absent: this instance holds every chain. */
  lease?(chainId: number): FenceSource;
  registry: Registry;
  logger?: Logger;
  /** Progress notices for the live streams. */
  publish?(event: BackfillStreamEvent): void;
  options?: Partial<BackfillOptions>;
  /** Path of the Matcher. */
  matcher: string;
  /** How long a page or read may take before it is asked again. Default 30 s. */
  askTimeoutMs?: number;
}

/** Told by the admin API after it wrote a request or a cancellation. Answered `{ ok: true }`. */
export interface BackfillChanged {
  type: 'backfill.changed';
  subscriptionId?: string;
}

interface Task {
  readonly wakeup: Wakeup;
  readonly done: Promise<void>;
}

export function createBackfill(deps: BackfillDeps): Behaviour<BackfillChanged> {
  const options: BackfillOptions = { ...DEFAULT_BACKFILL_OPTIONS, ...deps.options };
  const store = new BackfillStore(deps.kv);
  const chains = new Map(deps.chains.map((c) => [c.chainId, c]));
  const metrics: BackfillMetrics = getBackfillMetrics(
    deps.registry,
    deps.chains.map((c) => c.name),
  );
  const paces = new Map<number, BackfillPace>();
  const chunkLogs = chunkLogsOf(options);
  const askTimeoutMs = deps.askTimeoutMs ?? 30_000;
  let abort = new AbortController();
  let scan: Wakeup = new Wakeup(abort.signal);
  let loop: Promise<void> = Promise.resolve();
  const tasks = new Map<string, Task>();
  /** Blocks left per running task, for `backfill_lag_blocks`. */
  const lags = new Map<string, { chain: string; blocks: number }>();

  const paceOf = (chainId: number): BackfillPace => {
    let pace = paces.get(chainId);
    if (!pace) paces.set(chainId, (pace = new BackfillPace(options.blocksPerSec, options.requestsPerSec, options.logsPerSec)));
    return pace;
  };
  const fenceOf = (chainId: number) => deps.lease?.(chainId).current();
  const held = (chainId: number) => deps.lease === undefined || fenceOf(chainId) !== undefined;
  const setLag = (subscriptionId: string, chain: string, blocks: number | undefined) => {
    if (blocks === undefined) lags.delete(subscriptionId);
    else lags.set(subscriptionId, { chain, blocks });
    let sum = 0;
    for (const l of lags.values()) if (l.chain === chain) sum += l.blocks;
    metrics.lag.set({ chain }, sum);
  };

  async function scanLoop(ctx: ActorContext<BackfillChanged>, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        for (const entry of await store.running()) {
          if (tasks.size >= options.maxRunning) break;
          if (tasks.has(entry.subscriptionId) || !chains.has(entry.chainId) || !held(entry.chainId)) continue;
          startTask(ctx, entry, signal);
        }
      } catch (err) {
        ctx.log.warn({ err: describeError(err) }, 'backfill: reading the running requests failed');
      }
      await scan.wait(options.pollMs);
    }
  }

  function startTask(ctx: ActorContext<BackfillChanged>, entry: RunningBackfill, signal: AbortSignal): void {
    const chain = chains.get(entry.chainId)!;
    const wakeup = new Wakeup(signal);
    const log = ctx.log.child({ chainId: entry.chainId, subscriptionId: entry.subscriptionId, backfillId: entry.requestId });
    metrics.running.inc({ chain: chain.name });
    const done = runTask(ctx, chain, entry, wakeup, log, signal)
      .catch((err: unknown) => {
        if (!signal.aborted) ctx.fail(err);
      })
      .finally(() => {
        tasks.delete(entry.subscriptionId);
        setLag(entry.subscriptionId, chain.name, undefined);
        metrics.running.dec({ chain: chain.name });
        scan.wake();
      });
    tasks.set(entry.subscriptionId, { wakeup, done });
  }

  async function runTask(
    ctx: ActorContext<BackfillChanged>,
    chain: BackfillChain,
    entry: RunningBackfill,
    wakeup: Wakeup,
    log: Logger,
    signal: AbortSignal,
  ): Promise<void> {
    const { subscriptionId, requestId, chainId } = entry;
    const request = await store.request(subscriptionId);
    let progress: BackfillProgress | undefined = request?.id === requestId ? await store.progress(requestId) : undefined;
    if (!request || !progress) return;
    if (progress.done || request.cancelledAt !== undefined) {
      // A scan's listing read before the request ended starts a task on it once its last task is gone;
      // an entry left in the running index (its ending write and the entry's removal are one batch, so
      // only a store written otherwise has one) is removed, so that no scan starts it again.
      log.debug({ at: progress.at }, 'backfill already ended: nothing to run');
      await store.unindex(request);
      return;
    }
    const range = new RangeSize(chain.backfillRange, options.pageLogs);
    const pace = paceOf(chainId);
    let live: number | undefined;
    /** The messages of the last read not yet written by the Matcher: one page at most. */
    let pending: Chunk[] = [];
    let failures = 0;
    let noticeAt = 0;
    const notice = (state: BackfillState, force: boolean) => {
      const now = Date.now();
      if (!deps.publish || (!force && now - noticeAt < NOTICE_EVERY_MS)) return;
      noticeAt = now;
      deps.publish({
        kind: 'backfill',
        chainId,
        subscriptionId,
        backfillId: requestId,
        state,
        from: request.from,
        to: progress!.end ?? request.to ?? null,
        height: progress!.at,
        at: now,
      });
    };
    const retryLater = async (why: string, context: Record<string, unknown> = {}) => {
      failures++;
      if (failures === 1 || failures % 10 === 0) log.warn({ ...context, attempt: failures, why }, 'backfill: trying again');
      await wakeup.wait(backoffDelay(failures, RETRY));
    };
    log.info({ from: request.from, to: request.to ?? null, at: progress.at }, 'backfill running');
    notice('running', true);

    while (!signal.aborted) {
      const current = await store.request(subscriptionId);
      if (!current || current.id !== requestId || current.cancelledAt !== undefined) {
        log.info({ at: progress.at }, current?.id === requestId ? 'backfill cancelled' : 'backfill replaced or its subscription deleted');
        if (current?.id === requestId) notice('cancelled', true);
        return;
      }
      const fence = fenceOf(chainId);
      if (!held(chainId)) {
        log.info({ at: progress.at }, 'backfill paused here: the chain lease is held by another instance, which goes on');
        return;
      }
      if (deps.outboxDepth() > options.maxOutboxDepth) {
        await wakeup.wait(RECHECK_MS);
        continue;
      }
      const wait = pending.length === 0 ? pace.readWaitMs(Date.now()) : pace.logsWaitMs(Date.now());
      if (wait > 0) {
        await sleep(wait, signal);
        continue;
      }

      if (pending.length === 0) {
        // Where the live path stands, before the first page and whenever the pages caught up with it.
        const from = progress.at + 1;
        if (live !== undefined && progress.end !== undefined && from <= Math.min(progress.end, live)) {
          const to = Math.min(progress.end, live, from + range.blocks - 1);
          const sub = await deps.subscriptions.get(subscriptionId);
          if (!sub) {
            await store.forget(subscriptionId);
            log.info('backfill ended: its subscription was deleted');
            return;
          }
          const read = await askListener(ctx, chainId, {
            type: 'chain.history',
            from,
            to,
            filter: { ...(sub.addresses ? { address: sub.addresses } : {}), ...(sub.topics ? { topics: sub.topics } : {}) },
          });
          if (!read.ok) {
            if (read.error.code === 'ETHHOOK_ERR_RPC_RANGE_TOO_LARGE') {
              range.refused(to - from + 1);
              continue;
            }
            await retryLater(`read of blocks ${from}..${to} failed: ${read.error.code}`, { from, to, error: read.error.message });
            continue;
          }
          pace.chargeRead(to - from + 1, read.calls, Date.now());
          range.read(to - from + 1, read.logs.length, read.blocks.length);
          const after = { at: to, end: progress.end, ...(to >= progress.end ? { done: true as const } : {}) };
          pending = splitPage(pageBlocks(read.blocks, read.logs), chunkLogs, progress, after, to - from + 1);
          // Its first message waits on the logs' pace, as every other.
          continue;
        } else if (live !== undefined && progress.end !== undefined && from > progress.end) {
          pending = [{ blocks: [], logs: 0, progress: { at: progress.at, end: progress.end, done: true }, blocksRead: 0 }];
        } else {
          pending = [{ blocks: [], logs: 0, progress, blocksRead: 0 }];
        }
      }
      const chunk = pending[0]!;
      let ack: BackfillPageAck;
      try {
        ack = await ask<BackfillPageAck>(ctx, deps.matcher, {
          type: 'backfill.page',
          chainId,
          subscriptionId,
          requestId,
          seenAt: Date.now(),
          blocks: chunk.blocks,
          progress: chunk.progress,
          ...(fence ? { fence } : {}),
        } satisfies BackfillPage);
      } catch (err) {
        pending = [];
        if (signal.aborted) return;
        await retryLater(`the Matcher did not answer: ${isEthhookError(err) ? err.code : String(err)}`);
        continue;
      }
      if (!ack.ok) {
        // The next step reads again from the last progress written (a block split over several
        // messages is sent again whole: its pairs are deduplicated as any page written twice).
        pending = [];
        if (ack.code === 'ETHHOOK_ERR_LEASE_LOST') {
          deps.lease?.(chainId).suspect();
          return;
        }
        if (ack.code === 'ETHHOOK_ERR_SUBSCRIPTION_NOT_FOUND' && !(await deps.subscriptions.get(subscriptionId))) {
          await store.forget(subscriptionId);
          log.info('backfill ended: its subscription was deleted');
          return;
        }
        if (ack.liveFrom !== undefined) live = ack.liveFrom;
        await wakeup.wait(RECHECK_MS);
        continue;
      }
      failures = 0;
      live = ack.liveFrom;
      pending.shift();
      if (progress.end === undefined) {
        // The probe: the backfill ends where the live path has taken over, or at `toBlock` if earlier.
        progress = { ...progress, end: Math.min(request.to ?? Number.POSITIVE_INFINITY, live) };
        continue;
      }
      pace.chargeLogs(chunk.logs, Date.now());
      progress = chunk.progress;
      if (chunk.logs > 0 || chunk.blocksRead > 0) {
        metrics.blocks.inc({ chain: chain.name }, chunk.blocksRead);
        metrics.jobs.inc({ chain: chain.name }, ack.jobs);
        metrics.height.set({ chain: chain.name }, progress.at);
      }
      setLag(subscriptionId, chain.name, Math.max(0, progress.end! - progress.at));
      if (progress.done) {
        log.info({ at: progress.at }, 'backfill done');
        notice('done', true);
        return;
      }
      notice('running', false);
    }
  }

  async function askListener(ctx: ActorContext<BackfillChanged>, chainId: number, msg: ChainHistoryRequest): Promise<HistoryReadReply> {
    try {
      return await ask<HistoryReadReply>(ctx, chainListenerPath(chainId), msg);
    } catch (err) {
      const code = isEthhookError(err) ? err.code : 'ETHHOOK_ERR_LISTENER_STOPPED';
      return { ok: false, error: { code, message: String((err as Error)?.message ?? err), context: {} } };
    }
  }

  function ask<T>(ctx: ActorContext<BackfillChanged>, path: string, msg: unknown): Promise<T> {
    const ref = ctx.lookup(path);
    if (!ref) return Promise.reject(new EthhookError('ETHHOOK_ERR_LISTENER_STOPPED', `no actor at ${path}`, { actor: path }));
    return ref.ask<T>(msg, { timeoutMs: askTimeoutMs });
  }

  async function stopAll(): Promise<void> {
    abort.abort();
    scan.wake();
    for (const t of tasks.values()) t.wakeup.wake();
    await loop;
    await Promise.all([...tasks.values()].map((t) => t.done));
  }

  return {
    preStart(ctx) {
      abort = new AbortController();
      scan = new Wakeup(abort.signal);
      loop = scanLoop(ctx, abort.signal);
    },
    receive(msg) {
      if (msg?.type !== 'backfill.changed') {
        throw new EthhookError('ETHHOOK_ERR_BACKFILL_BAD_MESSAGE', 'backfill: unknown message', {
          messageType: String((msg as { type?: unknown } | null)?.type),
        });
      }
      if (msg.subscriptionId !== undefined) tasks.get(msg.subscriptionId)?.wakeup.wake();
      scan.wake();
      return { ok: true };
    },
    postStop: stopAll,
    preRestart: stopAll,
    health() {
      return { ok: true, detail: `${tasks.size} backfill(s) running` };
    },
  };
}

/**
 * One message to the Matcher: a part of a read's blocks (a block with more logs than a message takes
 * is split over several), the progress written with it (`at` moves to the last block whose logs are
 * all sent; the read's last message carries the read's own progress), its logs (what the pace charges)
 * and, on the read's last message, the blocks the read covered (for the metrics).
 */
interface Chunk {
  blocks: BackfillPage['blocks'];
  logs: number;
  progress: BackfillProgress;
  blocksRead: number;
}

/**
 * The logs one message to the Matcher carries: at most `pageLogs`, and at most a tenth of a second at
 * `logsPerSec`, so that the pace spreads a page's jobs over its second instead of writing them at once
 * (a live block waits in the Matcher behind one message at most).
 */
export function chunkLogsOf(options: Pick<BackfillOptions, 'pageLogs' | 'logsPerSec'>): number {
  return Math.max(1, Math.min(options.pageLogs, Math.ceil(options.logsPerSec / 10)));
}

/**
 * A read of `blocksRead` blocks as messages of at most `maxLogs` logs each, in chain order (see Chunk):
 * the last carries the read's progress `after` and its `blocksRead`.
 */
export function splitPage(
  blocks: BackfillPage['blocks'],
  maxLogs: number,
  before: BackfillProgress,
  after: BackfillProgress,
  blocksRead: number,
): Chunk[] {
  const chunks: Chunk[] = [];
  let current: BackfillPage['blocks'] = [];
  let logs = 0;
  let at = before.at;
  const flush = () => {
    chunks.push({ blocks: current, logs, progress: { at, ...(before.end !== undefined ? { end: before.end } : {}) }, blocksRead: 0 });
    current = [];
    logs = 0;
  };
  for (const b of blocks) {
    let i = 0;
    do {
      const part = b.logs.slice(i, i + maxLogs - logs);
      current.push({ ...b, logs: part });
      logs += part.length;
      i += part.length;
      if (i >= b.logs.length) at = b.number;
      if (logs >= maxLogs) flush();
    } while (i < b.logs.length);
  }
  if (current.length > 0 || chunks.length === 0) flush();
  chunks.at(-1)!.progress = after;
  chunks.at(-1)!.blocksRead = blocksRead;
  return chunks;
}

/** The page's blocks: each block (ascending) with its logs, in the order `eth_getLogs` gave them. */
function pageBlocks(blocks: readonly HistoryBlock[], logs: readonly ChainLog[]) {
  const byNumber = new Map<number, ChainLog[]>();
  for (const l of logs) {
    const list = byNumber.get(l.blockNumber);
    if (list) list.push(l);
    else byNumber.set(l.blockNumber, [l]);
  }
  return blocks.map((b) => ({ number: b.number, hash: b.hash, timestamp: b.timestamp, logs: byNumber.get(b.number) ?? [] }));
}
