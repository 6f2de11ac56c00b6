/**
 * The outbox (src/store/outbox/contract.ts) on PostgreSQL, built for several node instances sharing one
 * schema: each enqueues, claims due jobs and writes their outcomes. Tables (migrations/001_init.sql):
 *   outbox_jobs  (id, endpoint_id, due_at = nextAttemptAt, held_by, claimed_by, claim_until, job json)
 *   outbox_dead  (id, endpoint_id, dead_at, superseded_by, letter json)
 * and the attempt pages in `kv` (AttemptLog over the Kv, its ops written in the outbox's transactions;
 * its writer id is `owner`, so instances recording attempts of one endpoint never overwrite each other's pages).
 * `job` and `letter` are `json`, not `jsonb`: PostgreSQL keeps their text, so a job read back has its
 * payload's fields in the order they were written and `bodyOf` (the payload's JSON) gives the same bytes
 * on every attempt, whichever instance sends it. A job's text is written with its payload as the last
 * field (`jobText`, as the LevelDB record is), and a claim reads it as text: the body is then that
 * text's tail, encoded once, instead of the payload serialized again from the parsed job.
 *
 * Options of `PgOutbox.open(pool, kv, options)`:
 * - `owner` (required): this instance's id, written in the claims it takes. At open, the claims
 *   recorded under it are released: a restarted instance takes its jobs back at once; at `close` (a
 *   drained instance, after its deliverer stopped) too, so the other instances take them at once.
 * - `claimMs` (default 45,000): how long a job `due` returned stays this instance's; longer than a
 *   request's timeout plus a margin, so a job is not sent twice while its first send is in flight.
 * - `attemptsPerEndpoint` (AttemptLog's default), `now` (clock, for tests), `recountEveryMs` (default
 *   5,000: see the counts below).
 *
 * Claims. `due(now, limit)` is ONE statement: it claims (claimed_by = owner, claim_until = now +
 * claimMs) up to `limit` jobs that are not held, due by `now`, and unclaimed, claimed by another
 * instance whose claim has expired, or claimed by this instance — and returns them, earliest first.
 * `FOR UPDATE SKIP LOCKED` lets instances claim side by side without waiting on each other's rows. A
 * job this instance claimed is returned to it again (the claim renewed), as the LevelDB outbox returns
 * a job until it changes: the caller's `exclude` (its jobs in flight) is what keeps them out of its
 * next scans, and a job it let go of (a Deliverer that dropped it, or restarted) is found again at
 * once instead of after the claim. Another instance sees the job again only after `claimMs`.
 * `reschedule` and `postpone` release the claim (the job is due at its new time, for any instance).
 *
 * Changes (`complete`, `reschedule`, `postpone`, `deadLetter`) apply to a job unless another instance
 * holds a live claim on it (claimed_by another owner, claim_until > now): then the change does nothing,
 * as for a job that is gone (`complete` and `deadLetter` resolve false, `reschedule` and `postpone`
 * undefined). So a job whose claim expired and was taken over is the new holder's alone; a job never
 * claimed (an admin's or a test's call by id) may be changed by any instance. Claims compare the
 * instances' clocks (`now`): their skew must stay well below `claimMs`.
 *
 * Group commit: the changes queued while the previous group was being written form the next group,
 * ONE transaction. A group of completions of distinct jobs (the common case) is one round trip: a
 * query of two statements in one implicit transaction (`completeAllSql`) locks the group's jobs this
 * instance may change and, only when that is all of them, deletes them and writes their attempt pages;
 * its second statement, with a snapshot of its own, releases the followers of the group's jobs that are
 * gone. When some job was gone or another's, nothing was written (the attempt numbers are taken back,
 * AttemptLog.rewind, unless the pool ran the statement more than once: an earlier run may have landed
 * with its pages) and the group takes the general path. The general path: the group's rows locked (`FOR UPDATE`, in id order; the job records read only for
 * changes other than completions, which need the claim alone), the changes applied in
 * memory in call order (several changes to one job: each sees the previous), then the writes — the
 * followers of the jobs that left released, the jobs that left deleted, their dead letters inserted,
 * the changed jobs updated, the attempt pages written (applyKvOps). Each call resolves after the commit;
 * a failed transaction rejects every call of the group and changes nothing (the pool has retried the
 * transient failures first: a store error is thrown to the callers, never made a dead letter).
 *
 * Order of one (subscription, log), as on LevelDB: a job whose `follows` names a job in outbox_jobs
 * (or one inserted before it in the same batch) is inserted held (`held_by`), never due, until that job
 * is completed or dead-lettered: the transaction deleting it sets `held_by = NULL` on its followers, so
 * they are due at once (at their own, earlier time). A job dead-lettered with a follower held is
 * `supersededBy` it (the first by id); a job enqueued after what it follows died supersedes that dead
 * letter. Replaying a superseded letter is refused (ETHHOOK_ERR_DEAD_LETTER_SUPERSEDED). Across
 * instances: an enqueue of followers reads the followed jobs `FOR KEY SHARE`, which a deletion waits for,
 * and a group commit locks its jobs before it releases their followers; so an enqueue either sees the
 * followed job and holds its follower, which the deletion then releases, or runs after the deletion and
 * finds the job gone (and its dead letter, if any). Enqueues and replays of this instance run one after
 * another, so a batch sees the jobs of the batches before it.
 *
 * Idempotent enqueue: a job whose id is in outbox_jobs or outbox_dead (or repeated in the batch) is
 * skipped (`INSERT ... ON CONFLICT DO NOTHING`); `extraOps` are written in the same transaction, always.
 *
 * Counts: `depth()` (the rows of outbox_jobs, held ones included) and `deadLetterCount()` cost no I/O.
 * They are counted at open, kept by this instance's writes as they commit, and recounted every
 * `recountEveryMs` in the background (the other instances' writes; the timer is unref'd, `close()`
 * stops it). A recount that overlapped a write of this instance is not taken (it may or may not include
 * that write), but every fourth one is, so a busy instance still sees the others' writes. Between
 * recounts, an instance that removes jobs other instances enqueued counts below the truth (the
 * ingesting one, which enqueues, above it); the counts read are never below zero.
 *
 * Statistics: the claim's plan (the due index walked in order, stopping at `limit`) is the planner's
 * choice only while outbox_jobs' statistics know how many rows are due; a burst of enqueues into a
 * table analyzed when it was small makes it sort every due row on each claim instead (measured: 40 ms
 * per claim at 20,000 jobs, against 2 ms), and autovacuum analyzes a minute later at best. So once this
 * instance has inserted ANALYZE_AFTER rows and at least half as many as the table held, it runs
 * `ANALYZE outbox_jobs` in the background (one at a time; a failure, such as a role that does not own
 * the table, is ignored: autovacuum still analyzes).
 *
 * `onEnqueue` listeners hear of the jobs this instance made due (enqueued, replayed, released).
 *
 * Import (`ethhook store copy`, src/store/copy.ts): `importJobs` and `importDeadLetters` insert what
 * another store exported as it was (attempt, due time, held_by, supersededBy, the JSON text as stored),
 * unclaimed, in one transaction per call; a row whose id is already here is left as it is.
 */
import type pg from 'pg';
import { deferred, type Deferred } from '../../runtime/deferred.ts';
import { EthhookError } from '../../runtime/errors.ts';
import { Serial } from '../../runtime/serial.ts';
import { AttemptLog, type AttemptRecord } from '../attempts.ts';
import type { Kv, KvOp } from '../kv.ts';
import type { DeadLetterQuery, OutboxStore } from '../outbox/contract.ts';
import {
  byDue,
  finiteTime,
  newJobRecord,
  payloadBytes,
  type DeadLetter,
  type DueOptions,
  type EnqueueResult,
  type Job,
  type NewJob,
} from '../outbox/job.ts';
import { applyKvOps } from './kv.ts';
import type { PgPool } from './pool.ts';

export interface PgOutboxOptions {
  /** This instance's id, written in its claims (see the module header). */
  owner: string;
  /** How long a claim lasts, ms (default 45,000). */
  claimMs?: number;
  /** Attempt records kept per endpoint (AttemptLog's default). */
  attemptsPerEndpoint?: number;
  /** Clock, for tests. */
  now?: () => number;
  /** How often the counts are read again, ms (default 5,000). */
  recountEveryMs?: number;
}

export const DEFAULT_CLAIM_MS = 45_000;
export const DEFAULT_RECOUNT_EVERY_MS = 5_000;
const REPLAY_CHUNK = 500;
/** Rows inserted by this instance before outbox_jobs is analyzed again (and half the rows it held). */
const ANALYZE_AFTER = 1_000;
/** A recount overlapping writes is dropped at most this many times in a row (see the module header). */
const RECOUNT_DROPS = 3;

const ANALYZE = 'ANALYZE outbox_jobs';
const RELEASE_OWN_CLAIMS = 'UPDATE outbox_jobs SET claimed_by = NULL, claim_until = 0 WHERE claimed_by = $1';
const COUNT = 'SELECT (SELECT count(*) FROM outbox_jobs)::int AS jobs, (SELECT count(*) FROM outbox_dead)::int AS dead';

/** $1 ids, $2 endpoint ids, $3 due times, $4 held_by (null when due), $5 the jobs' JSON. */
const INSERT_JOBS = `
INSERT INTO outbox_jobs (id, endpoint_id, due_at, held_by, job)
SELECT n.id, n.endpoint_id, n.due_at, n.held_by, n.job
  FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::json[]) AS n(id, endpoint_id, due_at, held_by, job)
 WHERE NOT EXISTS (SELECT 1 FROM outbox_dead d WHERE d.id = n.id)
ON CONFLICT (id) DO NOTHING
RETURNING id`;
const LOCK_PRESENT = 'SELECT id FROM outbox_jobs WHERE id = ANY($1::text[]) ORDER BY id FOR KEY SHARE';
const LOCK_DEAD = 'SELECT id, letter FROM outbox_dead WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE';
const SUPERSEDE = `
UPDATE outbox_dead AS d SET superseded_by = s.by, letter = s.letter
  FROM unnest($1::text[], $2::text[], $3::json[]) AS s(id, by, letter)
 WHERE d.id = s.id`;

/** $1 owner, $2 now, $3 claim_until, $4 skipped endpoints, $5 excluded ids, $6 limit. */
const CLAIM_DUE = `
UPDATE outbox_jobs SET claimed_by = $1, claim_until = $3
 WHERE id IN (
   SELECT id FROM outbox_jobs
    WHERE held_by IS NULL AND due_at <= $2 AND (claim_until <= $2 OR claimed_by = $1)
      AND NOT (endpoint_id = ANY($4::text[])) AND NOT (id = ANY($5::text[]))
    ORDER BY due_at, id
    LIMIT $6
    FOR UPDATE SKIP LOCKED)
RETURNING job::text AS job`;
const NEXT_DUE = `
SELECT min(CASE WHEN claimed_by = $1 THEN due_at ELSE greatest(due_at, claim_until) END) AS at
  FROM outbox_jobs WHERE held_by IS NULL`;

/** $1 the group's ids, $2 those whose job is read (a completion needs only the row's claim). */
const LOCK_CHANGED = `
SELECT id, CASE WHEN id = ANY($2::text[]) THEN job END AS job, claimed_by, claim_until
  FROM outbox_jobs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`;
const RELEASE_FOLLOWERS = `
WITH f AS (SELECT id, held_by FROM outbox_jobs WHERE held_by = ANY($1::text[]) ORDER BY id FOR UPDATE)
UPDATE outbox_jobs AS o SET held_by = NULL FROM f WHERE o.id = f.id
RETURNING o.id, f.held_by AS followed`;
const DELETE_JOBS = 'DELETE FROM outbox_jobs WHERE id = ANY($1::text[])';

/**
 * A group of completions only, as ONE simple-protocol query of two statements (one round trip, one
 * implicit transaction, one commit): the first locks the group's jobs this instance may change and, only
 * when that is every one of them, deletes them and writes the attempt pages; the second, with a
 * snapshot of its own (so it sees a follower an enqueue committed while the first waited for its
 * lock), releases the followers of group jobs that are gone. Values are inlined as escaped literals
 * (the simple protocol takes no parameters). Returns `done` (bool) of the first.
 */
function completeAllSql(
  client: pg.PoolClient,
  owner: string,
  now: number,
  ids: readonly string[],
  pages: ReadonlyArray<{ space: string; key: string; value: unknown }>,
): string {
  const lit = (s: string): string => client.escapeLiteral(s);
  const idArray = `ARRAY[${ids.map(lit).join(',')}]::text[]`;
  const writePages =
    pages.length === 0
      ? ''
      : `,
pages AS (
  INSERT INTO kv (space, key, value)
  SELECT s, k, v::json FROM (VALUES ${pages.map((p) => `(${lit(p.space)},${lit(p.key)},${lit(JSON.stringify(p.value))})`).join(',')}) AS t(s, k, v)
   WHERE (SELECT all_mine FROM ok)
  ON CONFLICT (space, key) DO UPDATE SET value = EXCLUDED.value)`;
  return `
WITH mine AS (
  SELECT id FROM outbox_jobs
   WHERE id = ANY(${idArray}) AND (claimed_by IS NULL OR claimed_by = ${lit(owner)} OR claim_until <= ${now})
   ORDER BY id FOR UPDATE),
ok AS (SELECT count(*) = ${ids.length} AS all_mine FROM mine),
del AS (DELETE FROM outbox_jobs WHERE id IN (SELECT id FROM mine) AND (SELECT all_mine FROM ok))${writePages}
SELECT (SELECT all_mine FROM ok) AS done;
UPDATE outbox_jobs AS f SET held_by = NULL
 WHERE f.held_by = ANY(${idArray}) AND NOT EXISTS (SELECT 1 FROM outbox_jobs AS j WHERE j.id = f.held_by)
RETURNING f.id`;
}
/** $1 ids, $2 endpoint ids, $3 dead times, $4 superseded_by, $5 the letters' JSON. */
const INSERT_DEAD = `
INSERT INTO outbox_dead (id, endpoint_id, dead_at, superseded_by, letter)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::json[])
ON CONFLICT (id) DO UPDATE SET endpoint_id = EXCLUDED.endpoint_id, dead_at = EXCLUDED.dead_at,
  superseded_by = EXCLUDED.superseded_by, letter = EXCLUDED.letter`;
/** $1 ids, $2 due times, $3 the jobs' JSON: the claim is released (see the module header). */
const UPDATE_JOBS = `
UPDATE outbox_jobs AS o SET due_at = u.due_at, job = u.job, claimed_by = NULL, claim_until = 0
  FROM unnest($1::text[], $2::bigint[], $3::json[]) AS u(id, due_at, job)
 WHERE o.id = u.id`;

/** $1 ids, $2 endpoint ids, $3 due times, $4 held_by, $5 the jobs' JSON text as exported. */
const IMPORT_JOBS = `
INSERT INTO outbox_jobs (id, endpoint_id, due_at, held_by, job)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::json[])
ON CONFLICT (id) DO NOTHING
RETURNING id`;
/** $1 ids, $2 endpoint ids, $3 dead times, $4 superseded_by, $5 the letters' JSON text as exported. */
const IMPORT_DEAD = `
INSERT INTO outbox_dead (id, endpoint_id, dead_at, superseded_by, letter)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::json[])
ON CONFLICT (id) DO NOTHING
RETURNING id`;

const GET_JOB = 'SELECT job FROM outbox_jobs WHERE id = $1';
const GET_DEAD = 'SELECT letter FROM outbox_dead WHERE id = $1';
const LIST_DEAD = `
SELECT letter FROM outbox_dead WHERE dead_at >= $1 ORDER BY dead_at, id COLLATE "C" LIMIT $2`;
const LIST_DEAD_OF_ENDPOINT = `
SELECT letter FROM outbox_dead WHERE endpoint_id = $3 AND dead_at >= $1 ORDER BY dead_at, id COLLATE "C" LIMIT $2`;
const LOCK_LETTER = 'SELECT letter FROM outbox_dead WHERE id = $1 FOR UPDATE';
const REPLAYABLE_OF_ENDPOINT = `
SELECT letter FROM outbox_dead
 WHERE endpoint_id = $1 AND dead_at >= $2 AND superseded_by IS NULL
 ORDER BY dead_at, id COLLATE "C" LIMIT $3
 FOR UPDATE SKIP LOCKED`;
const DELETE_DEAD = 'DELETE FROM outbox_dead WHERE id = ANY($1::text[])';

/** A change to one job, waiting for the next group commit; attempt records are checked at the call. */
type JobChange =
  | { kind: 'complete'; attempt?: AttemptRecord }
  | { kind: 'reschedule'; nextAttemptAt: number; attempt?: AttemptRecord }
  | { kind: 'postpone'; nextAttemptAt: number }
  | { kind: 'dead-letter'; reason: string; attempt?: AttemptRecord };

interface QueuedChange {
  id: string;
  change: JobChange;
  /** Called after the commit with what the caller is told: complete/dead-letter whether the job was there, reschedule/postpone the job after it. */
  resolve: (value: boolean | Job | undefined) => void;
  reject: (err: unknown) => void;
}

/** A job exported by another store (see the module header): the job, its JSON text, what it is held behind. */
export interface ImportedJob {
  job: Job;
  text: string;
  heldBy: string | undefined;
}

/** A dead letter exported by another store, with its JSON text. */
export interface ImportedDeadLetter {
  letter: DeadLetter;
  text: string;
}

/** What a committed group changed, for the counts and the listeners. */
interface GroupOutcome {
  results: Array<boolean | Job | undefined>;
  left: number;
  parked: number;
  released: number;
}

/** What a committed enqueue changed. */
interface EnqueueOutcome {
  inserted: number;
  due: number;
}

/** Where a job object keeps its body bytes (a stored version of a job: a change makes a new object). */
const BODY = Symbol('ethhook.pg-outbox.body');

export class PgOutbox implements OutboxStore {
  readonly attempts: AttemptLog;
  private readonly owner: string;
  readonly claimMs: number;
  private readonly now: () => number;
  private readonly recountEveryMs: number;
  private readonly bulk = new Serial();
  private readonly listeners = new Set<(count: number) => void>();
  private jobs = 0;
  private parked = 0;
  /** Writes of this instance committed since the running recount began, and recounts dropped in a row. */
  private writesDuringRecount = 0;
  private recountsDropped = 0;
  private recountTimer: NodeJS.Timeout | undefined;
  private recounting: Promise<void> | null = null;
  /** Rows this instance inserted since its last ANALYZE began, and that ANALYZE while it runs. */
  private insertedSinceAnalyze = 0;
  private analyzing: Promise<void> | null = null;
  private closed = false;
  private queued: QueuedChange[] = [];
  /** The promise of the group being queued, for `completeWithGroup` callers (made at the first). */
  private queuedGroup: Deferred<void> | null = null;
  /** The group-commit writer while it runs (it runs until nothing is queued). */
  private writer: Promise<void> | null = null;

  private constructor(
    private readonly pool: PgPool,
    kv: Kv,
    options: PgOutboxOptions,
  ) {
    if (options.owner === '') throw new RangeError('outbox owner must not be empty');
    this.owner = options.owner;
    this.claimMs = positive(options.claimMs ?? DEFAULT_CLAIM_MS, 'claimMs');
    this.recountEveryMs = positive(options.recountEveryMs ?? DEFAULT_RECOUNT_EVERY_MS, 'recountEveryMs');
    this.now = options.now ?? Date.now;
    // Attempt pages keyed by this instance too: the others number theirs from their own memory.
    this.attempts = new AttemptLog(kv, options.attemptsPerEndpoint, options.owner);
  }

  static async open(pool: PgPool, kv: Kv, options: PgOutboxOptions): Promise<PgOutbox> {
    const outbox = new PgOutbox(pool, kv, options);
    await pool.run('outbox.open', (client) => client.query(RELEASE_OWN_CLAIMS, [outbox.owner]));
    await outbox.recount();
    outbox.scheduleRecount();
    return outbox;
  }

  depth(): number {
    return Math.max(0, this.jobs);
  }

  deadLetterCount(): number {
    return Math.max(0, this.parked);
  }

  onEnqueue(listener: (count: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * The new jobs and `extraOps` in one transaction (see the module header). Jobs without `follows`
   * cost one INSERT; a batch with followers first reads (and locks) the jobs and dead letters they name.
   */
  enqueueBatch(jobs: readonly NewJob[], extraOps: readonly KvOp[] = []): Promise<EnqueueResult> {
    const now = this.now();
    const fresh: Job[] = [];
    const seen = new Set<string>();
    let following = false;
    try {
      for (const j of jobs) {
        if (seen.has(j.id)) continue;
        seen.add(j.id);
        const job = newJobRecord(j, now);
        if (job.follows !== undefined) following = true;
        fresh.push(job);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return this.bulk.run(async () => {
      const outcome = await this.pool.tx('outbox.enqueue', (client) => this.writeNew(client, fresh, following, extraOps));
      this.noteWrite(outcome.inserted, 0);
      this.analyzeAfter(outcome.inserted);
      if (outcome.due > 0) this.notify(outcome.due);
      return { enqueued: outcome.inserted, duplicates: jobs.length - outcome.inserted };
    });
  }

  /** `enqueueBatch`'s transaction: which jobs are held, which dead letters superseded; the inserts. */
  private async writeNew(
    client: pg.PoolClient,
    fresh: readonly Job[],
    following: boolean,
    extraOps: readonly KvOp[],
  ): Promise<EnqueueOutcome> {
    const heldBy = new Map<string, string>();
    const superseded = new Map<string, DeadLetter>();
    if (following) {
      const ids = [...new Set([...fresh.map((j) => j.id), ...fresh.flatMap((j) => (j.follows === undefined ? [] : [j.follows]))])];
      const present = new Set((await client.query<{ id: string }>(LOCK_PRESENT, [ids])).rows.map((r) => r.id));
      const dead = new Map((await client.query<{ id: string; letter: DeadLetter }>(LOCK_DEAD, [ids])).rows.map((r) => [r.id, r.letter]));
      const written = new Set<string>();
      for (const job of fresh) {
        if (present.has(job.id) || dead.has(job.id)) continue;
        const followed = job.follows;
        if (followed !== undefined && (present.has(followed) || written.has(followed))) heldBy.set(job.id, followed);
        else if (followed !== undefined) {
          const letter = superseded.get(followed) ?? dead.get(followed);
          if (letter !== undefined && letter.supersededBy === undefined) superseded.set(followed, { ...letter, supersededBy: job.id });
        }
        written.add(job.id);
      }
    }
    let inserted: string[] = [];
    if (fresh.length > 0) {
      const result = await client.query<{ id: string }>(INSERT_JOBS, [
        fresh.map((j) => j.id),
        fresh.map((j) => j.endpointId),
        fresh.map((j) => j.nextAttemptAt),
        fresh.map((j) => heldBy.get(j.id) ?? null),
        fresh.map(jobText),
      ]);
      inserted = result.rows.map((r) => r.id);
    }
    if (superseded.size > 0) {
      const letters = [...superseded.values()];
      await client.query(SUPERSEDE, [letters.map((l) => l.id), letters.map((l) => l.supersededBy), letters.map((l) => JSON.stringify(l))]);
    }
    if (extraOps.length > 0) await applyKvOps(client, extraOps);
    return { inserted: inserted.length, due: inserted.filter((id) => !heldBy.has(id)).length };
  }

  /**
   * Claims and returns up to `limit` due jobs, earliest first (see the module header): one statement.
   * `exclude` and `skipEndpoints` are passed over.
   */
  async due(now: number, limit: number, options: DueOptions = {}): Promise<Job[]> {
    if (limit <= 0) return [];
    const skip = options.skipEndpoints === undefined ? [] : [...options.skipEndpoints];
    const exclude = options.exclude === undefined ? [] : [...options.exclude];
    const { rows } = await this.pool.run('outbox.due', (client) =>
      client.query<{ job: string }>(CLAIM_DUE, [this.owner, now, now + this.claimMs, skip, exclude, limit]),
    );
    return rows.map((r) => withBody(r.job)).sort(byDue);
  }

  /** When the earliest job not held is due, or another instance's claim on it ends (ms); undefined when none is waiting. */
  async nextDueAt(): Promise<number | undefined> {
    const { rows } = await this.pool.run('outbox.next-due', (client) => client.query<{ at: string | null }>(NEXT_DUE, [this.owner]));
    const at = rows[0]?.at;
    return at === null || at === undefined ? undefined : Number(at);
  }

  /** The payload's JSON, made once per job object (kept on it under a private symbol, not enumerable). */
  bodyOf(job: Job): Buffer {
    const carried = (job as Job & { [BODY]?: Buffer })[BODY];
    if (carried !== undefined) return carried;
    const body = payloadBytes(job);
    if (Object.isExtensible(job)) Object.defineProperty(job, BODY, { value: body, enumerable: false });
    return body;
  }

  async idle(): Promise<void> {
    await this.bulk.settled();
    while (this.writer !== null) await this.writer;
    await this.attempts.idle();
  }

  /**
   * Stops the background recount, waits for what is queued, then releases this instance's claims (a
   * drained instance's jobs are due for the others at once, not after their claims); the pool stays
   * open (its owner closes it). A release that fails leaves the claims to expire.
   */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.recountTimer);
    await this.recounting;
    await this.analyzing;
    await this.idle();
    await this.pool
      .run('outbox.release-claims', (client) => client.query(RELEASE_OWN_CLAIMS, [this.owner]), { retryForMs: 2_000 })
      .catch(() => undefined);
  }

  async get(jobId: string): Promise<Job | undefined> {
    const { rows } = await this.pool.run('outbox.get', (client) => client.query<{ job: Job }>(GET_JOB, [jobId]));
    return rows[0]?.job;
  }

  async reschedule(job: string | Pick<Job, 'id'>, nextAttemptAt: number, attempt?: AttemptRecord): Promise<Job | undefined> {
    const at = finiteTime(nextAttemptAt, 'reschedule');
    return (await this.change(job, { kind: 'reschedule', nextAttemptAt: at, ...this.attemptParts(attempt) })) as Job | undefined;
  }

  async postpone(job: string | Pick<Job, 'id'>, at: number): Promise<Job | undefined> {
    return (await this.change(job, { kind: 'postpone', nextAttemptAt: finiteTime(at, 'postpone') })) as Job | undefined;
  }

  async complete(job: string | Pick<Job, 'id'>, attempt?: AttemptRecord): Promise<boolean> {
    return (await this.change(job, { kind: 'complete', ...this.attemptParts(attempt) })) as boolean;
  }

  completeWithGroup(job: string | Pick<Job, 'id'>, attempt?: AttemptRecord): Promise<void> {
    let change: JobChange;
    try {
      change = { kind: 'complete', ...this.attemptParts(attempt) };
    } catch (err) {
      return Promise.reject(err);
    }
    this.queue(job, change, ignore, ignore);
    return (this.queuedGroup ??= deferred<void>()).promise;
  }

  async deadLetter(job: string | Pick<Job, 'id'>, reason: string, attempt?: AttemptRecord): Promise<boolean> {
    return (await this.change(job, { kind: 'dead-letter', reason, ...this.attemptParts(attempt) })) as boolean;
  }

  async getDeadLetter(id: string): Promise<DeadLetter | undefined> {
    const { rows } = await this.pool.run('outbox.get-dead-letter', (client) => client.query<{ letter: DeadLetter }>(GET_DEAD, [id]));
    return rows[0]?.letter;
  }

  /** Oldest first (by dead time, then id, bytewise as on LevelDB). */
  async listDeadLetters(options: DeadLetterQuery = {}): Promise<DeadLetter[]> {
    const since = options.since ?? 0;
    const limit = options.limit ?? 100;
    const { rows } = await this.pool.run('outbox.list-dead-letters', (client) =>
      options.endpointId === undefined
        ? client.query<{ letter: DeadLetter }>(LIST_DEAD, [since, limit])
        : client.query<{ letter: DeadLetter }>(LIST_DEAD_OF_ENDPOINT, [since, limit, options.endpointId]),
    );
    return rows.map((r) => r.letter);
  }

  replayDeadLetter(id: string): Promise<Job> {
    return this.bulk.run(async () => {
      const { revived, job } = await this.pool.tx('outbox.replay', async (client) => {
        const letter = (await client.query<{ letter: DeadLetter }>(LOCK_LETTER, [id])).rows[0]?.letter;
        if (letter === undefined) throw new EthhookError('ETHHOOK_ERR_DEAD_LETTER_NOT_FOUND', `no dead letter ${id}`, { jobId: id });
        if (letter.supersededBy !== undefined) {
          const by = letter.supersededBy;
          const message = `dead letter ${id} was followed by ${by} for its log and subscription`;
          throw new EthhookError('ETHHOOK_ERR_DEAD_LETTER_SUPERSEDED', message, { jobId: id, supersededBy: by });
        }
        const [fresh] = await this.revive(client, [letter]);
        // A job of this id already pending (enqueued again meanwhile by another instance) is the one kept.
        return { revived: fresh === undefined ? 0 : 1, job: fresh ?? (await client.query<{ job: Job }>(GET_JOB, [id])).rows[0]!.job };
      });
      this.noteRevived(revived, 1);
      return job;
    });
  }

  /** In transactions of 500 letters; the superseded ones stay parked. */
  replayAll(options: { endpointId: string; since?: number }): Promise<number> {
    return this.bulk.run(async () => {
      let total = 0;
      for (;;) {
        const { revived, letters } = await this.pool.tx('outbox.replay', async (client) => {
          const { rows } = await client.query<{ letter: DeadLetter }>(REPLAYABLE_OF_ENDPOINT, [
            options.endpointId,
            options.since ?? 0,
            REPLAY_CHUNK,
          ]);
          const jobs =
            rows.length === 0
              ? []
              : await this.revive(
                  client,
                  rows.map((r) => r.letter),
                );
          return { revived: jobs.length, letters: rows.length };
        });
        this.noteRevived(revived, letters);
        total += revived;
        if (letters < REPLAY_CHUNK) return total;
      }
    });
  }

  /** Inserts exported jobs as they were, unclaimed (see the module header); how many were new. */
  importJobs(jobs: readonly ImportedJob[]): Promise<number> {
    return this.bulk.run(async () => {
      if (jobs.length === 0) return 0;
      const { rows } = await this.pool.tx('outbox.import', (client) =>
        client.query<{ id: string }>(IMPORT_JOBS, [
          jobs.map((j) => j.job.id),
          jobs.map((j) => j.job.endpointId),
          jobs.map((j) => j.job.nextAttemptAt),
          jobs.map((j) => j.heldBy ?? null),
          jobs.map((j) => j.text),
        ]),
      );
      this.noteWrite(rows.length, 0);
      return rows.length;
    });
  }

  /** Inserts exported dead letters as they were (see the module header); how many were new. */
  importDeadLetters(letters: readonly ImportedDeadLetter[]): Promise<number> {
    return this.bulk.run(async () => {
      if (letters.length === 0) return 0;
      const { rows } = await this.pool.tx('outbox.import', (client) =>
        client.query<{ id: string }>(IMPORT_DEAD, [
          letters.map((l) => l.letter.id),
          letters.map((l) => l.letter.job.endpointId),
          letters.map((l) => l.letter.deadAt),
          letters.map((l) => l.letter.supersededBy ?? null),
          letters.map((l) => l.text),
        ]),
      );
      this.noteWrite(0, rows.length);
      return rows.length;
    });
  }

  /** Deletes the letters and puts their jobs back, attempt 0, due now; the jobs inserted (one whose id is pending is kept as it is). */
  private async revive(client: pg.PoolClient, letters: readonly DeadLetter[]): Promise<Job[]> {
    const now = this.now();
    const jobs = letters.map((l) => ({ ...l.job, attempt: 0, nextAttemptAt: now }));
    await client.query(DELETE_DEAD, [letters.map((l) => l.id)]);
    const { rows } = await client.query<{ id: string }>(INSERT_JOBS, [
      jobs.map((j) => j.id),
      jobs.map((j) => j.endpointId),
      jobs.map((j) => j.nextAttemptAt),
      jobs.map(() => null),
      jobs.map(jobText),
    ]);
    const inserted = new Set(rows.map((r) => r.id));
    return jobs.filter((j) => inserted.has(j.id));
  }

  private noteRevived(jobs: number, letters: number): void {
    this.noteWrite(jobs, -letters);
    if (jobs > 0) this.notify(jobs);
  }

  /** Queues one change for the next group commit; resolves, once committed, with what its caller is told. */
  private change(job: string | Pick<Job, 'id'>, change: JobChange): Promise<boolean | Job | undefined> {
    return new Promise<boolean | Job | undefined>((resolve, reject) => this.queue(job, change, resolve, reject));
  }

  private queue(job: string | Pick<Job, 'id'>, change: JobChange, resolve: QueuedChange['resolve'], reject: QueuedChange['reject']): void {
    this.queued.push({ id: typeof job === 'string' ? job : job.id, change, resolve, reject });
    // A microtask later, so the changes of one synchronous burst share the first transaction too.
    this.writer ??= Promise.resolve().then(() => this.writeQueued());
  }

  /** The attempt record, checked at the call (a bad one throws to the caller, not to the group). */
  private attemptParts(attempt: AttemptRecord | undefined): { attempt?: AttemptRecord } {
    return attempt ? { attempt: this.attempts.check(attempt) } : {};
  }

  /** The single writer: one group commit after another until nothing is queued. */
  private async writeQueued(): Promise<void> {
    while (this.queued.length > 0) {
      const group = this.queued;
      const shared = this.queuedGroup;
      this.queued = [];
      this.queuedGroup = null;
      try {
        const outcome = await this.commit(group);
        this.noteWrite(-outcome.left, outcome.parked);
        if (outcome.released > 0) this.notify(outcome.released);
        for (let i = 0; i < group.length; i++) group[i]!.resolve(outcome.results[i]);
        shared?.resolve();
      } catch (err) {
        for (const q of group) q.reject(err);
        shared?.reject(err);
      }
    }
    this.writer = null;
  }

  /** One group's transaction (see the module header); may run again when the pool retries it. */
  private async commit(group: readonly QueuedChange[]): Promise<GroupOutcome> {
    const endpoints = new Set<string>();
    for (const { change } of group) if (change.kind !== 'postpone' && change.attempt) endpoints.add(change.attempt.endpointId);
    const loading = this.attempts.ready(endpoints);
    if (loading) await loading;
    const ids = [...new Set(group.map((q) => q.id))];
    if (ids.length === group.length && group.every((q) => q.change.kind === 'complete')) {
      const outcome = await this.completeAll(group);
      if (outcome !== undefined) return outcome;
    }
    const read = [...new Set(group.flatMap((q) => (q.change.kind === 'complete' ? [] : [q.id])))];
    return this.pool
      .tx('outbox.commit', async (client) => {
        const now = this.now();
        const { rows } = await client.query<{ id: string; job: Job | null; claimed_by: string | null; claim_until: string }>(LOCK_CHANGED, [
          ids,
          read,
        ]);
        /** Each job as this group leaves it, from the stored one: undefined when gone or another's. */
        const current = new Map<string, Job | undefined>();
        for (const row of rows) {
          const othersClaim = row.claimed_by !== null && row.claimed_by !== this.owner && Number(row.claim_until) > now;
          // A job only completed is never read: it stands for itself until deleted.
          if (!othersClaim) current.set(row.id, row.job ?? UNREAD);
        }
        const present = new Set(current.keys());
        const results: Array<boolean | Job | undefined> = [];
        const letters = new Map<string, DeadLetter>();
        const attempts = new Map<string, AttemptRecord[]>();
        for (const { id, change } of group) {
          const before = current.get(id);
          let after: Job | undefined;
          if (before !== undefined) {
            if (change.kind === 'dead-letter') {
              const job = change.attempt ? { ...before, attempt: before.attempt + 1 } : before;
              letters.set(id, { id, job, reason: change.reason, deadAt: now });
            } else if (change.kind !== 'complete') {
              after = { ...before, nextAttemptAt: change.nextAttemptAt, attempt: before.attempt + (change.kind === 'reschedule' ? 1 : 0) };
            }
            if (change.kind !== 'postpone' && change.attempt) {
              const records = attempts.get(change.attempt.endpointId);
              if (records === undefined) attempts.set(change.attempt.endpointId, [change.attempt]);
              else records.push(change.attempt);
            }
          }
          current.set(id, after);
          results.push(change.kind === 'complete' || change.kind === 'dead-letter' ? before !== undefined : after);
        }
        const left = [...present].filter((id) => current.get(id) === undefined);
        const changed = [...present].flatMap((id) => {
          const job = current.get(id);
          return job === undefined ? [] : [job];
        });
        let released = 0;
        if (left.length > 0) {
          const followers = await client.query<{ id: string; followed: string }>(RELEASE_FOLLOWERS, [left]);
          released = followers.rows.length;
          // The first follower by id supersedes a dead letter (one, in practice: ids are per generation).
          for (const { id, followed } of [...followers.rows].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
            const letter = letters.get(followed);
            if (letter !== undefined && letter.supersededBy === undefined) letter.supersededBy = id;
          }
          await client.query(DELETE_JOBS, [left]);
        }
        const dead = [...letters.values()];
        if (dead.length > 0) {
          await client.query(INSERT_DEAD, [
            dead.map((l) => l.id),
            dead.map((l) => l.job.endpointId),
            dead.map((l) => l.deadAt),
            dead.map((l) => l.supersededBy ?? null),
            dead.map((l) => JSON.stringify(l)),
          ]);
        }
        if (changed.length > 0) {
          await client.query(UPDATE_JOBS, [changed.map((j) => j.id), changed.map((j) => j.nextAttemptAt), changed.map(jobText)]);
        }
        const pageOps: KvOp[] = [];
        for (const [endpointId, records] of attempts) pageOps.push(...this.attempts.pageOps(endpointId, records));
        if (pageOps.length > 0) await applyKvOps(client, pageOps);
        return { results, left: left.length, parked: dead.length, released };
      })
      .then((outcome) => {
        this.attempts.written();
        return outcome;
      });
  }

  /**
   * A group of completions of distinct jobs in one round trip (`completeAllSql`): its outcome, or
   * undefined when some job was gone or under another instance's live claim, and nothing was written
   * (the transaction path then decides job by job).
   */
  private async completeAll(group: readonly QueuedChange[]): Promise<GroupOutcome | undefined> {
    const attempts = new Map<string, AttemptRecord[]>();
    for (const { change } of group) {
      if (change.kind !== 'complete' || !change.attempt) continue;
      const records = attempts.get(change.attempt.endpointId);
      if (records === undefined) attempts.set(change.attempt.endpointId, [change.attempt]);
      else records.push(change.attempt);
    }
    const mark = this.attempts.mark(attempts.keys());
    const pages: Array<{ space: string; key: string; value: unknown }> = [];
    for (const [endpointId, records] of attempts) {
      for (const op of this.attempts.pageOps(endpointId, records)) {
        if (op.type !== 'put') throw new Error(`attempt log: a page op is a ${op.type}, not a put`);
        pages.push(op);
      }
    }
    const ids = group.map((q) => q.id);
    let runs = 0;
    const [first, second] = await this.pool.run('outbox.commit', async (client) => {
      runs++;
      const results = (await client.query(completeAllSql(client, this.owner, this.now(), ids, pages))) as unknown as pg.QueryResult[];
      return results as [pg.QueryResult<{ done: boolean }>, pg.QueryResult<{ id: string }>];
    });
    const released = second.rows.length;
    if (first.rows[0]?.done !== true) {
      // Run again by the pool, the statement may find its own earlier run's work (a commit that landed
      // and answered with an error): those pages may be written, so their numbers are not taken back
      // (a later page would overwrite them); a gap in the numbers costs nothing.
      if (runs === 1) this.attempts.rewind(mark);
      if (released > 0) this.notify(released);
      return undefined;
    }
    this.attempts.written();
    return { results: group.map(() => true), left: group.length, parked: 0, released };
  }

  /** A write of this instance committed: the counts move by its deltas. */
  private noteWrite(jobs: number, parked: number): void {
    this.jobs += jobs;
    this.parked += parked;
    if (this.recounting !== null) this.writesDuringRecount++;
  }

  /** Counts rows this instance inserted; past the bound (see the module header), analyzes outbox_jobs in the background. */
  private analyzeAfter(inserted: number): void {
    this.insertedSinceAnalyze += inserted;
    if (this.analyzing !== null || this.closed) return;
    if (this.insertedSinceAnalyze < ANALYZE_AFTER || this.insertedSinceAnalyze * 2 < this.jobs) return;
    this.insertedSinceAnalyze = 0;
    this.analyzing = this.pool
      .run('outbox.analyze', (client) => client.query(ANALYZE))
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        this.analyzing = null;
      });
  }

  /** Listeners run on a later microtask: a throwing listener is loud but cannot fail a committed write. */
  private notify(count: number): void {
    for (const l of this.listeners) queueMicrotask(() => l(count));
  }

  /** Reads both counts; taken unless a write of this instance overlapped it (see the module header). */
  private recount(): Promise<void> {
    this.writesDuringRecount = 0;
    this.recounting = (async () => {
      const { rows } = await this.pool.run('outbox.count', (client) => client.query<{ jobs: number; dead: number }>(COUNT));
      if (this.writesDuringRecount > 0 && this.recountsDropped < RECOUNT_DROPS) {
        this.recountsDropped++;
        return;
      }
      this.recountsDropped = 0;
      this.jobs = rows[0]!.jobs;
      this.parked = rows[0]!.dead;
    })().finally(() => {
      this.recounting = null;
    });
    return this.recounting;
  }

  private scheduleRecount(): void {
    if (this.closed) return;
    this.recountTimer = setTimeout(() => {
      // A failed recount keeps the counts as they are: the pool has counted and logged the error.
      void this.recount()
        .catch(() => undefined)
        .finally(() => this.scheduleRecount());
    }, this.recountEveryMs);
    this.recountTimer.unref();
  }
}

const PAYLOAD_FIELD = '"payload":';

/** A job's JSON with its payload as the last field (see the module header). */
function jobText(job: Job): string {
  const rest = JSON.stringify({ ...job, payload: undefined });
  return `${rest.slice(0, -1)},${PAYLOAD_FIELD}${JSON.stringify(job.payload)}}`;
}

/**
 * A job parsed from its stored text, carrying its body: the text after the first `"payload":` (the
 * field itself: the fields before it are scalars, and a JSON string cannot hold that text unescaped)
 * up to the closing brace, when the payload is the last field; otherwise `bodyOf` serializes it.
 */
function withBody(text: string): Job {
  const job = JSON.parse(text) as Job;
  const fields = Object.keys(job);
  if (fields[fields.length - 1] === 'payload') {
    const body = Buffer.from(text.slice(text.indexOf(PAYLOAD_FIELD) + PAYLOAD_FIELD.length, -1));
    Object.defineProperty(job, BODY, { value: body, enumerable: false });
  }
  return job;
}

/** A job present in a group's rows whose record was not read (its changes are completions only). */
const UNREAD = {} as Job;

/** What a shared-group call is told of its own change: nothing. */
function ignore(): void {}

function positive(ms: number, what: string): number {
  if (!Number.isFinite(ms) || ms <= 0) throw new RangeError(`outbox ${what} must be a positive number of ms, got ${ms}`);
  return ms;
}
