/**
 * Jobs that wait for finality: a subscription with `finality: 'safe'` or `'finalized'` gets its
 * `log.created` jobs only once the chain's `safe` (or `finalized`) block has reached the log's block.
 *
 * - The heights come with each block (`finality` in chain.block: what the listener trusted when it
 *   emitted it, src/actors/chain-listener/finality.ts); a tag absent is unknown. `safe` is at least
 *   `finalized` (a finalized block is safe).
 * - `waitKey`: a job of a block that is not that final yet (or whose tag is unknown) waits in the store
 *   (src/store/deferred.ts, keyed by chain, tag, block number and the block its confirmations release
 *   it at), written in the block's batch like a job deferred for confirmations; the Matcher's match
 *   record names that key, so a retraction while it waits deletes it and nothing is ever sent for that
 *   log. A block final enough already is enqueued at once (then confirmations alone may defer it).
 * - `release`: each block (not a retraction) moves every waiting job whose block its heights make final
 *   and whose confirmations the block reached into the outbox, RELEASE_CHUNK jobs per batch, fenced like
 *   the block's own writes and before the block is acknowledged; so does a `chain.finality` message (the
 *   heights moved between blocks), at the chain's processed height. A job released carries the release's
 *   `seenAt`, so `webhook_event_to_delivery_seconds` does not count the wait it asked for, and counts in
 *   `matcher_jobs_enqueued_total` then.
 * - A job that waits while its tag is unknown (the provider does not report it, or the listener has not
 *   polled it yet) is said once per chain and tag, at info level, until the tag is known again;
 *   `matcher_jobs_deferred_total{reason}` counts the jobs that waited, by reason.
 *
 * Memory: per subscription with a finality its tag; per chain and tag the block number of the earliest
 * waiting job (so a block before it costs no read); the jobs themselves stay in the store.
 */
import type { Logger } from '../../runtime/log.ts';
import type { DeferredJobs, FinalityTag } from '../../store/deferred.ts';
import type { KvOp } from '../../store/kv.ts';
import type { OutboxStore } from '../../store/outbox/contract.ts';
import type { NewJob } from '../../store/outbox/job.ts';
import type { Subscription } from '../../store/subscriptions.ts';
import type { MatchedBlock } from './messages.ts';
import type { MatcherMetrics } from './metrics.ts';

const TAGS: readonly FinalityTag[] = ['safe', 'finalized'];

export interface FinalityWaitDeps {
  deferred: DeferredJobs;
  outbox: OutboxStore;
  logger: Logger;
  metrics?: MatcherMetrics;
  /** Jobs moved into the outbox per batch. */
  chunk: number;
}

/** Where a release stands: the chain, the height its confirmations count from, when, and the heights. */
export type ReleasePoint = Pick<MatchedBlock, 'chainId' | 'blockNumber' | 'seenAt' | 'finality'>;

/** How final the block's chain is for `tag`, as the block says (see the header); undefined: unknown. */
export function finalHeight(block: ReleasePoint, tag: FinalityTag): number | undefined {
  const f = block.finality;
  if (!f) return undefined;
  if (tag === 'finalized') return f.finalized;
  return f.safe === undefined ? f.finalized : Math.max(f.safe, f.finalized ?? 0);
}

export class FinalityWait {
  private readonly wanted = new Map<string, FinalityTag>();
  /** Per `<chainId>!<tag>`, the block number of its earliest waiting job (Infinity: none); absent: not read yet. */
  private readonly next = new Map<string, number>();
  /** `<chainId>!<tag>` said to be unknown, until it is known again. */
  private readonly unknown = new Set<string>();

  constructor(private readonly deps: FinalityWaitDeps) {}

  /** A subscription indexed (or gone: undefined). */
  put(sub: Subscription | undefined, id: string): void {
    if (sub?.finality === 'safe' || sub?.finality === 'finalized') this.wanted.set(id, sub.finality);
    else this.wanted.delete(id);
  }

  clear(): void {
    this.wanted.clear();
  }

  /** What is remembered of a chain goes (another instance wrote to it). */
  forget(chainId: number): void {
    for (const tag of TAGS) this.next.delete(`${chainId}!${tag}`);
  }

  /** The key the job waits under, or undefined when its block is final enough for its subscription (see the header). */
  waitKey(block: MatchedBlock, subscriptionId: string, job: NewJob, releaseAt: number): string | undefined {
    const tag = this.wanted.get(subscriptionId);
    if (tag === undefined) return undefined;
    const height = finalHeight(block, tag);
    if (height !== undefined && height >= block.blockNumber) return undefined;
    const at = `${block.chainId}!${tag}`;
    if (height === undefined && !this.unknown.has(at)) {
      this.unknown.add(at);
      this.deps.logger.info(
        { chainId: block.chainId, tag, blockNumber: block.blockNumber, subscriptionId },
        `jobs of subscriptions with finality '${tag}' wait: the chain's ${tag} block is not known (chain_finality_known)`,
      );
    }
    const known = this.next.get(at);
    if (known !== undefined) this.next.set(at, Math.min(known, block.blockNumber));
    this.deps.metrics?.deferred.inc({ reason: tag });
    return this.deps.deferred.finalityKey(block.chainId, tag, block.blockNumber, releaseAt, job.id);
  }

  /** Moves the jobs the block (or finality message) makes final into the outbox (see the header); resolves with how many. */
  async release(block: ReleasePoint, fenced: (ops: KvOp[]) => KvOp[]): Promise<number> {
    const { deferred, outbox, chunk } = this.deps;
    let released = 0;
    for (const tag of TAGS) {
      const height = finalHeight(block, tag);
      if (height === undefined) continue;
      const at = `${block.chainId}!${tag}`;
      this.unknown.delete(at);
      let next = this.next.get(at);
      if (next === undefined) {
        next = (await deferred.nextFinal(block.chainId, tag)) ?? Infinity;
        this.next.set(at, next);
      }
      if (height < next) continue;
      let after: string | undefined;
      for (;;) {
        const page = await deferred.finalityWaiting(block.chainId, tag, height, after, chunk);
        const due = page.filter(([, , releaseAt]) => releaseAt <= block.blockNumber);
        if (due.length > 0) {
          const jobs = due.map(([, job]) => ({ ...job, eventSeenAt: block.seenAt }));
          released += (await outbox.enqueueBatch(jobs, fenced(due.map(([key]) => deferred.delOp(key))))).enqueued;
        }
        if (page.length < chunk) break;
        after = page.at(-1)![0];
      }
      this.next.set(at, (await deferred.nextFinal(block.chainId, tag)) ?? Infinity);
    }
    this.deps.metrics?.jobs.inc({ type: 'log.created' }, released);
    return released;
  }
}
