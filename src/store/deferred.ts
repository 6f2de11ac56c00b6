/**
 * Deferred jobs: `log.created` jobs that wait in the store before they go into the outbox, either for
 * more confirmations than their chain's listener waits for, or for the chain's `safe` or `finalized`
 * block to reach their log's block (the subscription's `finality`). The Matcher writes one here instead
 * of into the outbox, in the same batch as the block's other jobs and match records; a later block of the
 * chain moves the jobs that are due into the outbox in one batch (per RELEASE_CHUNK).
 *
 * Keys in the `deferred-jobs` space (src/store/kv.ts) -> the job (a NewJob):
 * - waiting for confirmations: `<chainId 10d>!<releaseAt 15d>!<jobId>`, `releaseAt` being the block
 *   number at which the log is deep enough; ordered per chain by release height, so the due jobs of a
 *   chain are one range read from its start;
 * - waiting for finality: `<chainId 10d>!<tag>!<blockNumber 15d>!<releaseAt 15d>!<jobId>`, `tag` being
 *   `safe` or `finalized`: due once the tag's height reaches `blockNumber` and the chain's block
 *   `releaseAt` (its confirmations, the log's own block when it asks for none beyond the chain's) was
 *   reached. Letters sort after digits, so these keys lie after a chain's confirmation keys.
 */
import { padNumber, PREFIX_END } from './keys.ts';
import type { Kv, KvOp, KvSpace } from './kv.ts';
import type { NewJob } from './outbox/job.ts';
import type { Finality } from './subscriptions.ts';

const RELEASE_AT = 11;
/** After every confirmation key of a chain (`:` sorts right after `9`) and before its finality keys. */
const CONFIRMATION_KEYS_END = ':';

/** The finalities jobs wait for (`latest` waits for nothing). */
export type FinalityTag = Exclude<Finality, 'latest'>;

export class DeferredJobs {
  private readonly jobs: KvSpace<NewJob>;

  constructor(kv: Kv) {
    this.jobs = kv.space('deferred-jobs');
  }

  key(chainId: number, releaseAt: number, jobId: string): string {
    return `${padNumber(chainId, 10)}!${padNumber(releaseAt)}!${jobId}`;
  }

  /** The key of a job waiting for the chain's `tag` block to reach `blockNumber` (see the header). */
  finalityKey(chainId: number, tag: FinalityTag, blockNumber: number, releaseAt: number, jobId: string): string {
    return `${padNumber(chainId, 10)}!${tag}!${padNumber(blockNumber)}!${padNumber(releaseAt)}!${jobId}`;
  }

  putOp(key: string, job: NewJob): KvOp {
    return this.jobs.putOp(key, job);
  }

  delOp(key: string): KvOp {
    return this.jobs.delOp(key);
  }

  /** For each key, whether the job is still deferred (values are not read). */
  existing(keys: string[]): Promise<boolean[]> {
    return this.jobs.has(keys);
  }

  /** The chain's jobs due at `height` (releaseAt <= height), earliest first, at most `limit`. */
  async due(chainId: number, height: number, limit: number): Promise<Array<[key: string, job: NewJob]>> {
    const chain = padNumber(chainId, 10);
    return this.jobs.entries({ gt: `${chain}!`, lt: `${chain}!${padNumber(height + 1)}`, limit });
  }

  /** The release height of the chain's earliest deferred job, or undefined when it has none. */
  async nextRelease(chainId: number): Promise<number | undefined> {
    const chain = padNumber(chainId, 10);
    const [first] = await this.jobs.keys({ gt: `${chain}!`, lt: `${chain}!${CONFIRMATION_KEYS_END}`, limit: 1 });
    return first === undefined ? undefined : Number(first.slice(RELEASE_AT, RELEASE_AT + 15));
  }

  /**
   * The chain's jobs waiting for `tag` whose block is at most `height`, earliest block first, after the
   * key `after` (paging), at most `limit`; each with its `releaseAt`, which the caller compares.
   */
  async finalityWaiting(
    chainId: number,
    tag: FinalityTag,
    height: number,
    after: string | undefined,
    limit: number,
  ): Promise<Array<[key: string, job: NewJob, releaseAt: number]>> {
    const prefix = `${padNumber(chainId, 10)}!${tag}!`;
    const entries = await this.jobs.entries({ gt: after ?? prefix, lt: `${prefix}${padNumber(height + 1)}`, limit });
    const at = prefix.length + 16;
    return entries.map(([key, job]) => [key, job, Number(key.slice(at, at + 15))]);
  }

  /** The block number of the chain's earliest job waiting for `tag`, or undefined when it has none. */
  async nextFinal(chainId: number, tag: FinalityTag): Promise<number | undefined> {
    const prefix = `${padNumber(chainId, 10)}!${tag}!`;
    const [first] = await this.jobs.keys({ gt: prefix, lt: `${prefix}${PREFIX_END}`, limit: 1 });
    return first === undefined ? undefined : Number(first.slice(prefix.length, prefix.length + 15));
  }
}
