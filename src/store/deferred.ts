/**
 * Deferred jobs: `log.created` jobs of subscriptions that ask for more confirmations than their chain's
 * listener waits for. The Matcher writes one here instead of into the outbox, in the same batch as the
 * block's other jobs and match records, with the block number at which the log is deep enough
 * (`releaseAt`); each later block of the chain moves the jobs that are due into the outbox in one batch.
 *
 * Keys in the `deferred-jobs` sublevel: `<chainId 10d>!<releaseAt 15d>!<jobId>` -> the job (a NewJob),
 * ordered per chain by release height, so the due jobs of a chain are one range read from its start.
 */
import { sublevel, type Db } from './level/db.ts';
import { padNumber, PREFIX_END } from './keys.ts';
import type { BatchOp } from './level/db.ts';
import type { NewJob } from './outbox.ts';

const RELEASE_AT = 11;

export class DeferredJobs {
  private readonly jobs;

  constructor(db: Db) {
    this.jobs = sublevel<NewJob>(db, 'deferred-jobs');
  }

  key(chainId: number, releaseAt: number, jobId: string): string {
    return `${padNumber(chainId, 10)}!${padNumber(releaseAt)}!${jobId}`;
  }

  putOp(key: string, job: NewJob): BatchOp {
    return { type: 'put', sublevel: this.jobs, key, value: job };
  }

  delOp(key: string): BatchOp {
    return { type: 'del', sublevel: this.jobs, key };
  }

  /** For each key, whether the job is still deferred (one `getMany`). */
  async existing(keys: string[]): Promise<boolean[]> {
    if (keys.length === 0) return [];
    return (await this.jobs.getMany(keys)).map((v) => v !== undefined);
  }

  /** The chain's jobs due at `height` (releaseAt <= height), earliest first, at most `limit`. */
  async due(chainId: number, height: number, limit: number): Promise<Array<[key: string, job: NewJob]>> {
    const chain = padNumber(chainId, 10);
    return this.jobs.iterator({ gt: `${chain}!`, lt: `${chain}!${padNumber(height + 1)}`, limit }).all();
  }

  /** The release height of the chain's earliest deferred job, or undefined when it has none. */
  async nextRelease(chainId: number): Promise<number | undefined> {
    const chain = padNumber(chainId, 10);
    const [first] = await this.jobs.keys({ gt: `${chain}!`, lt: `${chain}!${PREFIX_END}`, limit: 1 }).all();
    return first === undefined ? undefined : Number(first.slice(RELEASE_AT, RELEASE_AT + 15));
  }
}
