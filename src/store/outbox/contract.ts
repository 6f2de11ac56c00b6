/**
 * The outbox: the durable job queue between the Matcher and the Deliverer, one contract with an
 * implementation per engine (src/store/level/outbox/ and src/store/postgres/outbox.ts). What a job is:
 * job.ts.
 *
 * Lifecycle: `enqueueBatch` (due now, or held behind the job it `follows`) -> `due` -> `complete` after
 * a 2xx (the job is deleted), or `reschedule` after a retryable failure, or `deadLetter` when retries
 * are exhausted or the endpoint refuses; `postpone` moves a job later without counting an attempt (it
 * was never sent); `replayDeadLetter` / `replayAll` put dead letters back as fresh jobs (attempt 0, due
 * now).
 *
 * What every implementation guarantees (test/contract/outbox.contract.ts runs the same tests on both):
 * - A job leaves the outbox only after `complete` (a 2xx) or as a dead letter; each state change lands
 *   whole (one batch, one transaction) and a call resolves only once it has landed.
 * - `enqueueBatch` writes the new jobs and `extraOps` atomically; a job whose id is already pending or
 *   dead (or repeated in the batch) is skipped, `extraOps` always written.
 * - Order of one (subscription, log): a job whose `follows` names a job still in the outbox is held,
 *   never due, until that job is completed or dead-lettered; a dead letter followed by a later job is
 *   `supersededBy` it, and replaying it is refused (ETHHOOK_ERR_DEAD_LETTER_SUPERSEDED).
 * - `due` returns jobs with nextAttemptAt <= now, earliest first, skipping `exclude` ids and the jobs of
 *   `skipEndpoints`. A job `due` returned is the caller's until it completes, reschedules, postpones or
 *   dead-letters it (an engine shared by several deliverers claims it for a limited time).
 * - `depth()` and `deadLetterCount()` cost no I/O (gauges are scraped often).
 */
import type { AttemptLog, AttemptRecord } from '../attempts.ts';
import type { KvOp } from '../kv.ts';
import type { DeadLetter, DueOptions, EnqueueResult, Job, NewJob } from './job.ts';

export interface DeadLetterQuery {
  endpointId?: string;
  /** Parked at or after this time (ms, default 0). */
  since?: number;
  /** At most this many (default 100). */
  limit?: number;
}

export interface OutboxStore {
  /**
   * How long a job `due` returned stays the caller's, ms, when the engine is shared by several
   * deliverers (after it, any of them may claim the job); undefined: it is the caller's until it changes.
   */
  readonly claimMs?: number;
  /** The attempt log, written in the same batches as the job changes that record attempts. */
  readonly attempts: AttemptLog;
  /** Jobs waiting for delivery (pending, retrying and held), for `webhook_queue_depth`. */
  depth(): number;
  /** Jobs parked as dead letters, for `webhook_dead_letters`. */
  deadLetterCount(): number;
  /** Called after each write that made jobs due (enqueue, replay), with how many; returns the unsubscribe function. */
  onEnqueue(listener: (count: number) => void): () => void;
  /** Writes the new jobs and `extraOps` atomically (see the header). */
  enqueueBatch(jobs: readonly NewJob[], extraOps?: readonly KvOp[]): Promise<EnqueueResult>;
  /** Up to `limit` jobs with nextAttemptAt <= now, earliest first (see the header). */
  due(now: number, limit: number, options?: DueOptions): Promise<Job[]>;
  /** When the earliest job is due (ms), or undefined when none is waiting: how long a Deliverer may sleep. */
  nextDueAt(): Promise<number | undefined>;
  /** The webhook body of a job as bytes: the JSON of its payload, the same bytes on every attempt. Not to be changed. */
  bodyOf(job: Job): Buffer;
  /** Resolves once every queued change is written: call it before closing the store. */
  idle(): Promise<void>;
  get(jobId: string): Promise<Job | undefined>;
  /** After a retryable failure: attempt + 1 and the new nextAttemptAt, `attempt` recorded; the updated job, or undefined when gone. */
  reschedule(job: string | Pick<Job, 'id'>, nextAttemptAt: number, attempt?: AttemptRecord): Promise<Job | undefined>;
  /** Moves nextAttemptAt to `at` without counting an attempt (the job was not sent); the updated job, or undefined when gone. */
  postpone(job: string | Pick<Job, 'id'>, at: number): Promise<Job | undefined>;
  /** After a 2xx: deletes the job (and records the attempt); false when it was already gone. */
  complete(job: string | Pick<Job, 'id'>, attempt?: AttemptRecord): Promise<boolean>;
  /** `complete` for a caller that needs no answer: resolves once the change is written, or rejects. */
  completeWithGroup(job: string | Pick<Job, 'id'>, attempt?: AttemptRecord): Promise<void>;
  /** Moves the job to the dead letters with the reason (and the last attempt); false when it was already gone. */
  deadLetter(job: string | Pick<Job, 'id'>, reason: string, attempt?: AttemptRecord): Promise<boolean>;
  getDeadLetter(id: string): Promise<DeadLetter | undefined>;
  /** Dead letters parked at or after `since`, oldest first, optionally of one endpoint. */
  listDeadLetters(options?: DeadLetterQuery): Promise<DeadLetter[]>;
  /** One dead letter back as a fresh job, due now (ETHHOOK_ERR_DEAD_LETTER_NOT_FOUND / _SUPERSEDED). */
  replayDeadLetter(id: string): Promise<Job>;
  /** Every replayable dead letter of the endpoint parked at or after `since`; how many were replayed. */
  replayAll(options: { endpointId: string; since?: number }): Promise<number>;
}
