/**
 * The outbox: the durable job queue between the Matcher and the Deliverer.
 *
 * A job is one webhook to one endpoint: `{ id (= webhook-id), endpointId, subscriptionId, type,
 * payload (the webhook body object), eventSeenAt, attempt (failed attempts so far), nextAttemptAt,
 * createdAt }`, times in ms since the epoch.
 *
 * Sublevels, every state change one atomic `db.batch`:
 *   outbox-jobs             <jobId>                         -> Job
 *   outbox-due              <nextAttemptAt 15d>!<jobId>     -> jobId   (the Deliverer's scan order)
 *   outbox-dead             <jobId>                         -> DeadLetter
 *   outbox-dead-by-time     <deadAt 15d>!<jobId>            -> jobId
 *   outbox-dead-by-endpoint <endpointId>!<deadAt 15d>!<jobId> -> jobId
 *   attempts                (see attempts.ts)
 *
 * Lifecycle: `enqueueBatch` (due now) -> `due` -> `complete` after a 2xx (the job is deleted), or
 * `reschedule` after a retryable failure, or `deadLetter` when retries are exhausted or the endpoint
 * refuses; `replayDeadLetter` / `replayAll` put dead letters back as fresh jobs (attempt 0, due now).
 *
 * Idempotent enqueue: a job whose id is already in the outbox (pending or dead) is skipped. Jobs that
 * were already delivered are not remembered here: the Matcher keeps, for the reorg window, which
 * (log, subscription) pairs it has enqueued (matches.ts) and never enqueues a pair twice, which covers
 * a block re-sent by a listener that crashed before advancing its cursor. Outside that window a
 * redelivery carries the same `webhook-id`, which receivers deduplicate on.
 *
 * `depth()` and `deadLetterCount()` are kept in memory (counted once at open, then maintained by every
 * write), so gauges cost nothing; this instance must be the only writer of the database, which LevelDB's
 * lock already guarantees across processes. Writes use LevelDB's default (no fsync): a `kill -9` of the
 * process loses nothing the OS has accepted; a power loss may lose the last writes.
 */
import { z } from 'zod';
import { EthhookError } from '../runtime/errors.ts';
import { AttemptLog, type AttemptRecord } from './attempts.ts';
import { sublevel, type Db } from './db.ts';
import { padNumber, PREFIX_END, type BatchOp } from './keys.ts';
import { KeyedSerial, Serial } from './serial.ts';

export const JOB_TYPES = ['log.created', 'log.removed'] as const;
export type JobType = (typeof JOB_TYPES)[number];

export const webhookPayloadSchema = z.object({
  type: z.enum(JOB_TYPES),
  timestamp: z.string(),
  data: z.object({
    chainId: z.number().int(),
    blockNumber: z.number().int(),
    blockHash: z.string(),
    transactionHash: z.string(),
    logIndex: z.number().int(),
    address: z.string(),
    topics: z.array(z.string()),
    data: z.string(),
    subscriptionId: z.string(),
  }),
});
export type WebhookPayload = z.infer<typeof webhookPayloadSchema>;

export const jobSchema = z.object({
  id: z.string().min(1),
  endpointId: z.string().min(1),
  subscriptionId: z.string().min(1),
  type: z.enum(JOB_TYPES),
  payload: webhookPayloadSchema,
  eventSeenAt: z.number(),
  attempt: z.number().int().min(0),
  nextAttemptAt: z.number(),
  createdAt: z.number(),
});
export type Job = z.infer<typeof jobSchema>;

/** What a producer hands to `enqueueBatch`; the outbox fills in attempt 0 and the times. */
export type NewJob = Omit<Job, 'attempt' | 'nextAttemptAt' | 'createdAt'> & Partial<Pick<Job, 'nextAttemptAt' | 'createdAt'>>;

export interface DeadLetter {
  id: string;
  job: Job;
  reason: string;
  deadAt: number;
}

export interface EnqueueResult {
  enqueued: number;
  duplicates: number;
}

export interface OutboxOptions {
  /** Attempt records kept per endpoint (default 1000). */
  attemptsPerEndpoint?: number;
  /** Clock, for tests. */
  now?: () => number;
}

const REPLAY_CHUNK = 500;

export class Outbox {
  readonly attempts: AttemptLog;
  private readonly jobs;
  private readonly dueIndex;
  private readonly dead;
  private readonly deadByTime;
  private readonly deadByEndpoint;
  private readonly now: () => number;
  private readonly bulk = new Serial();
  private readonly perJob = new KeyedSerial();
  private readonly listeners = new Set<(count: number) => void>();
  private pending = 0;
  private parked = 0;

  private constructor(
    private readonly db: Db,
    options: OutboxOptions,
  ) {
    this.jobs = sublevel<Job>(db, 'outbox-jobs');
    this.dueIndex = sublevel<string>(db, 'outbox-due');
    this.dead = sublevel<DeadLetter>(db, 'outbox-dead');
    this.deadByTime = sublevel<string>(db, 'outbox-dead-by-time');
    this.deadByEndpoint = sublevel<string>(db, 'outbox-dead-by-endpoint');
    this.attempts = new AttemptLog(db, options.attemptsPerEndpoint);
    this.now = options.now ?? Date.now;
  }

  static async open(db: Db, options: OutboxOptions = {}): Promise<Outbox> {
    const outbox = new Outbox(db, options);
    for await (const _ of outbox.jobs.keys()) outbox.pending++;
    for await (const _ of outbox.dead.keys()) outbox.parked++;
    return outbox;
  }

  /** Jobs waiting for delivery (pending and retrying), for `webhook_queue_depth`. */
  depth(): number {
    return this.pending;
  }

  /** Jobs parked as dead letters, for `webhook_dead_letters`. */
  deadLetterCount(): number {
    return this.parked;
  }

  /** Called after each write that made jobs due (enqueue, replay), with how many; returns the unsubscribe function. */
  onEnqueue(listener: (count: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Writes the new jobs and `extraOps` in ONE LevelDB batch: all of them land, or none. Jobs whose id is
   * already pending or dead (or repeated in `jobs`) are skipped; `extraOps` are always written.
   */
  async enqueueBatch(jobs: readonly NewJob[], extraOps: readonly BatchOp[] = []): Promise<EnqueueResult> {
    const now = this.now();
    const fresh: Job[] = [];
    const seen = new Set<string>();
    for (const j of jobs) {
      if (seen.has(j.id)) continue;
      seen.add(j.id);
      fresh.push(jobSchema.parse({ ...j, attempt: 0, nextAttemptAt: j.nextAttemptAt ?? now, createdAt: j.createdAt ?? now }));
    }
    return this.bulk.run(async () => {
      const ids = fresh.map((j) => j.id);
      const [live, parked] = ids.length > 0 ? await Promise.all([this.jobs.getMany(ids), this.dead.getMany(ids)]) : [[], []];
      const toWrite = fresh.filter((_, i) => live[i] === undefined && parked[i] === undefined);
      const ops: BatchOp[] = [...extraOps];
      for (const job of toWrite) ops.push(...this.putJobOps(job));
      if (ops.length > 0) await this.db.batch(ops);
      this.pending += toWrite.length;
      if (toWrite.length > 0) this.notify(toWrite.length);
      return { enqueued: toWrite.length, duplicates: jobs.length - toWrite.length };
    });
  }

  /**
   * Up to `limit` jobs with nextAttemptAt <= now, earliest first. `exclude` skips ids the caller already
   * has in flight, so they do not hide the jobs behind them.
   */
  async due(now: number, limit: number, options: { exclude?: ReadonlySet<string> } = {}): Promise<Job[]> {
    const ids: string[] = [];
    for await (const id of this.dueIndex.values({ lt: `${padNumber(now + 1)}` })) {
      if (options.exclude?.has(id)) continue;
      ids.push(id);
      if (ids.length >= limit) break;
    }
    if (ids.length === 0) return [];
    return (await this.jobs.getMany(ids)).filter((j): j is Job => j !== undefined);
  }

  /** When the earliest job is due (ms), or undefined when the outbox is empty: how long a Deliverer may sleep. */
  async nextDueAt(): Promise<number | undefined> {
    const [first] = await this.dueIndex.keys({ limit: 1 }).all();
    return first === undefined ? undefined : Number(first.slice(0, 15));
  }

  async get(jobId: string): Promise<Job | undefined> {
    return this.jobs.get(jobId);
  }

  /**
   * After a retryable failure: the stored job gets attempt + 1 and the new nextAttemptAt, and `attempt`
   * is recorded, in one batch. Resolves with the updated job, or undefined when the job is gone.
   */
  async reschedule(job: Pick<Job, 'id'>, nextAttemptAt: number, attempt?: AttemptRecord): Promise<Job | undefined> {
    if (!Number.isFinite(nextAttemptAt)) {
      throw new EthhookError('ETHHOOK_ERR_INVALID_INPUT', 'nextAttemptAt must be a finite time in ms', {
        what: 'reschedule',
        issues: [{ path: 'nextAttemptAt', message: `got ${nextAttemptAt}` }],
      });
    }
    return this.perJob.run(job.id, async () => {
      const stored = await this.jobs.get(job.id);
      if (!stored) return undefined;
      const next: Job = { ...stored, attempt: stored.attempt + 1, nextAttemptAt };
      const ops: BatchOp[] = [
        { type: 'del', sublevel: this.dueIndex, key: dueKey(stored) },
        ...this.putJobOps(next),
      ];
      if (attempt) ops.push(this.attempts.putOp(attempt));
      await this.db.batch(ops);
      if (attempt) await this.attempts.written(attempt.endpointId);
      return next;
    });
  }

  /** After a 2xx: deletes the job (and records the attempt). Resolves false when the job was already gone. */
  complete(jobId: string, attempt?: AttemptRecord): Promise<boolean> {
    return this.perJob.run(jobId, async () => {
      const stored = await this.jobs.get(jobId);
      if (!stored) return false;
      const ops: BatchOp[] = this.delJobOps(stored);
      if (attempt) ops.push(this.attempts.putOp(attempt));
      await this.db.batch(ops);
      this.pending--;
      if (attempt) await this.attempts.written(attempt.endpointId);
      return true;
    });
  }

  /**
   * Moves the job to the dead letters atomically, with the reason (and the last attempt, which counts
   * as one more attempt). Resolves false when the job was already gone.
   */
  deadLetter(job: Pick<Job, 'id'>, reason: string, attempt?: AttemptRecord): Promise<boolean> {
    return this.perJob.run(job.id, async () => {
      const stored = await this.jobs.get(job.id);
      if (!stored) return false;
      const deadAt = this.now();
      const letter: DeadLetter = {
        id: stored.id,
        job: attempt ? { ...stored, attempt: stored.attempt + 1 } : stored,
        reason,
        deadAt,
      };
      const ops: BatchOp[] = [...this.delJobOps(stored), ...this.putDeadOps(letter)];
      if (attempt) ops.push(this.attempts.putOp(attempt));
      await this.db.batch(ops);
      this.pending--;
      this.parked++;
      if (attempt) await this.attempts.written(attempt.endpointId);
      return true;
    });
  }

  async getDeadLetter(id: string): Promise<DeadLetter | undefined> {
    return this.dead.get(id);
  }

  /** Dead letters parked at or after `since` (ms, default 0), oldest first, optionally of one endpoint. */
  async listDeadLetters(options: { endpointId?: string; since?: number; limit?: number } = {}): Promise<DeadLetter[]> {
    const since = padNumber(options.since ?? 0);
    const limit = options.limit ?? 100;
    const ids =
      options.endpointId === undefined
        ? await this.deadByTime.values({ gte: since, limit }).all()
        : await this.deadByEndpoint
            .values({ gte: `${options.endpointId}!${since}`, lt: `${options.endpointId}!${PREFIX_END}`, limit })
            .all();
    if (ids.length === 0) return [];
    return (await this.dead.getMany(ids)).filter((d): d is DeadLetter => d !== undefined);
  }

  /** Puts one dead letter back as a fresh job, due now. Throws ETHHOOK_ERR_DEAD_LETTER_NOT_FOUND. */
  replayDeadLetter(id: string): Promise<Job> {
    return this.bulk.run(async () => {
      const letter = await this.dead.get(id);
      if (!letter) throw new EthhookError('ETHHOOK_ERR_DEAD_LETTER_NOT_FOUND', `no dead letter ${id}`, { jobId: id });
      const [job] = await this.revive([letter]);
      return job!;
    });
  }

  /**
   * Replays every dead letter of `endpointId` parked at or after `since` (ms), in batches of 500;
   * resolves with how many were replayed.
   */
  replayAll(options: { endpointId: string; since?: number }): Promise<number> {
    return this.bulk.run(async () => {
      const prefix = `${options.endpointId}!`;
      let from = `${prefix}${padNumber(options.since ?? 0)}`;
      let total = 0;
      for (;;) {
        const entries = await this.deadByEndpoint.iterator({ gte: from, lt: `${prefix}${PREFIX_END}`, limit: REPLAY_CHUNK }).all();
        if (entries.length === 0) return total;
        const letters = (await this.dead.getMany(entries.map(([, id]) => id))).filter((d): d is DeadLetter => d !== undefined);
        total += (await this.revive(letters)).length;
        from = `${entries[entries.length - 1]![0]}\x00`;
      }
    });
  }

  private async revive(letters: DeadLetter[]): Promise<Job[]> {
    const now = this.now();
    const jobs = letters.map((l) => ({ ...l.job, attempt: 0, nextAttemptAt: now }));
    const ops: BatchOp[] = letters.flatMap((l) => this.delDeadOps(l));
    for (const job of jobs) ops.push(...this.putJobOps(job));
    await this.db.batch(ops);
    this.parked -= letters.length;
    this.pending += jobs.length;
    this.notify(jobs.length);
    return jobs;
  }

  /** Listeners run on a later microtask: a throwing listener is loud but cannot fail a committed write. */
  private notify(count: number): void {
    for (const l of this.listeners) queueMicrotask(() => l(count));
  }

  private putJobOps(job: Job): BatchOp[] {
    return [
      { type: 'put', sublevel: this.jobs, key: job.id, value: job },
      { type: 'put', sublevel: this.dueIndex, key: dueKey(job), value: job.id },
    ];
  }

  private delJobOps(job: Job): BatchOp[] {
    return [
      { type: 'del', sublevel: this.jobs, key: job.id },
      { type: 'del', sublevel: this.dueIndex, key: dueKey(job) },
    ];
  }

  private putDeadOps(letter: DeadLetter): BatchOp[] {
    const at = padNumber(letter.deadAt);
    return [
      { type: 'put', sublevel: this.dead, key: letter.id, value: letter },
      { type: 'put', sublevel: this.deadByTime, key: `${at}!${letter.id}`, value: letter.id },
      { type: 'put', sublevel: this.deadByEndpoint, key: `${letter.job.endpointId}!${at}!${letter.id}`, value: letter.id },
    ];
  }

  private delDeadOps(letter: DeadLetter): BatchOp[] {
    const at = padNumber(letter.deadAt);
    return [
      { type: 'del', sublevel: this.dead, key: letter.id },
      { type: 'del', sublevel: this.deadByTime, key: `${at}!${letter.id}` },
      { type: 'del', sublevel: this.deadByEndpoint, key: `${letter.job.endpointId}!${at}!${letter.id}` },
    ];
  }
}

function dueKey(job: Pick<Job, 'id' | 'nextAttemptAt'>): string {
  return `${padNumber(job.nextAttemptAt)}!${job.id}`;
}
