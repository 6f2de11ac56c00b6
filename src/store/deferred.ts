/**
 * Deferred jobs: `log.created` jobs of subscriptions that ask for more confirmations than their chain's
 * listener waits for. The Matcher writes one here instead of into the outbox, in the same batch as the
 * block's other jobs and match records, with the block number at which the log is deep enough
 * (`releaseAt`); each later block of the chain moves the jobs that are due into the outbox in one batch.
 *
 * Keys in the `deferred-jobs` space (src/store/kv.ts): `<chainId 10d>!<releaseAt 15d>!<jobId>` -> the job (a NewJob),
 * ordered per chain by release height, so the due jobs of a chain are one range read from its start.
 */
import { padNumber, PREFIX_END } from './keys.ts';
import type { Kv, KvOp, KvSpace } from './kv.ts';
import type { NewJob } from './outbox/job.ts';

const RELEASE_AT = 11;

export class DeferredJobs {
  private readonly jobs: KvSpace<NewJob>;

  constructor(kv: Kv) {
    this.jobs = kv.space('deferred-jobs');
  }

  key(chainId: number, releaseAt: number, jobId: string): string {
    return `${padNumber(chainId, 10)}!${padNumber(releaseAt)}!${jobId}`;
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
    const [first] = await this.jobs.keys({ gt: `${chain}!`, lt: `${chain}!${PREFIX_END}`, limit: 1 });
    return first === undefined ? undefined : Number(first.slice(RELEASE_AT, RELEASE_AT + 15));
  }
}
