/**
 * What a job is, on either engine: the job record and its webhook payload (zod schemas), what a
 * producer hands to `enqueueBatch`, a dead letter, and the checks and encodings every outbox applies
 * the same way (a new job's record, the body bytes, due order). The queue itself is
 * src/store/outbox/contract.ts.
 */
import { z } from 'zod';
import { EthhookError } from '../../runtime/errors.ts';

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
    /** The decoded log, for a subscription with an abi (src/actors/matcher/jobs.ts); null: it did not decode. */
    event: z
      .object({ name: z.string(), signature: z.string(), args: z.union([z.record(z.string(), z.unknown()), z.array(z.unknown())]) })
      .nullable()
      .optional(),
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
  /** The id of the job that must leave the outbox before this one is due (see the module header). */
  follows: z.string().min(1).optional(),
  /**
   * Enqueued by a backfill (src/actors/backfill/): its `eventSeenAt` is when its page was read, not
   * when a head was seen, so it counts in no `pipeline_stage_seconds` stage (src/pipeline-stages.ts).
   */
  backfill: z.literal(true).optional(),
});
export type Job = z.infer<typeof jobSchema>;

/** What a producer hands to `enqueueBatch`; the outbox fills in attempt 0 and the times. */
export type NewJob = Omit<Job, 'attempt' | 'nextAttemptAt' | 'createdAt'> & Partial<Pick<Job, 'nextAttemptAt' | 'createdAt'>>;

export interface DeadLetter {
  id: string;
  job: Job;
  reason: string;
  deadAt: number;
  /** The job, following this one, that was made due (or sent) after it: a replay is refused. */
  supersededBy?: string;
}

/** What `due` skips: ids (jobs the caller has in hand) and endpoints (that cannot take more now). */
export interface DueOptions {
  exclude?: ReadonlySet<string>;
  skipEndpoints?: ReadonlySet<string>;
}

export interface EnqueueResult {
  enqueued: number;
  duplicates: number;
}

/** A dead letter that `replayAll` puts back: there, and not superseded. */
export function replayable(letter: DeadLetter | undefined): letter is DeadLetter {
  return letter !== undefined && letter.supersededBy === undefined;
}

/** `at`, or ETHHOOK_ERR_INVALID_INPUT when it is not a finite time. */
export function finiteTime(at: number, what: string): number {
  if (Number.isFinite(at)) return at;
  throw new EthhookError('ETHHOOK_ERR_INVALID_INPUT', 'nextAttemptAt must be a finite time in ms', {
    what,
    issues: [{ path: 'nextAttemptAt', message: `got ${at}` }],
  });
}

/**
 * The stored job for a producer's NewJob: attempt 0, due at `now` unless it says otherwise; fields a
 * NewJob does not declare are not carried into the record. Runs once per matched log, so it checks what
 * the queue itself relies on (ids, type, times) with plain comparisons rather than `jobSchema`, whose
 * walk over the whole payload cost more than the rest of an enqueue: the producer, the Matcher, builds
 * payloads from blocks it has validated. Throws ETHHOOK_ERR_INVALID_INPUT naming the field.
 */
export function newJobRecord(j: NewJob, now: number): Job {
  const bad = !isId(j.id)
    ? 'id'
    : !isId(j.endpointId)
      ? 'endpointId'
      : !isId(j.subscriptionId)
        ? 'subscriptionId'
        : !JOB_TYPES.includes(j.type)
          ? 'type'
          : typeof j.payload !== 'object' || j.payload === null || j.payload.type !== j.type
            ? 'payload.type'
            : !Number.isFinite(j.eventSeenAt)
              ? 'eventSeenAt'
              : j.nextAttemptAt !== undefined && !Number.isFinite(j.nextAttemptAt)
                ? 'nextAttemptAt'
                : j.createdAt !== undefined && !Number.isFinite(j.createdAt)
                  ? 'createdAt'
                  : j.follows !== undefined && !isId(j.follows)
                    ? 'follows'
                    : j.backfill !== undefined && j.backfill !== true
                      ? 'backfill'
                      : undefined;
  if (bad !== undefined) {
    throw new EthhookError('ETHHOOK_ERR_INVALID_INPUT', `invalid job: ${bad}`, {
      jobId: String(j.id),
      issues: [{ path: bad, message: 'missing or malformed' }],
    });
  }
  const job: Job = {
    id: j.id,
    endpointId: j.endpointId,
    subscriptionId: j.subscriptionId,
    type: j.type,
    payload: j.payload,
    eventSeenAt: j.eventSeenAt,
    attempt: 0,
    nextAttemptAt: j.nextAttemptAt ?? now,
    createdAt: j.createdAt ?? now,
  };
  if (j.follows !== undefined) job.follows = j.follows;
  if (j.backfill === true) job.backfill = true;
  return job;
}

function isId(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0;
}

/** The payload's JSON, UTF-8. */
export function payloadBytes(job: Job): Buffer {
  return Buffer.from(JSON.stringify(job.payload));
}

/** Due order: earliest nextAttemptAt first, then by id. */
export function byDue(a: Job, b: Job): number {
  return a.nextAttemptAt - b.nextAttemptAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
