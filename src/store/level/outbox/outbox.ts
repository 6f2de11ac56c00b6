/**
 * The outbox on LevelDB (`LevelOutbox implements OutboxStore`): what every outbox guarantees, and the
 * lifecycle of a job, are src/store/outbox/contract.ts; how a job is stored, record.ts; the dead
 * letters, dead-letters.ts; the jobs remembered as stored, known.ts; the due index in memory,
 * due-window.ts. Every state change is one atomic `db.batch`.
 *
 * Order of one (subscription, log): a job that `follows` one still in the outbox (pending or retrying)
 * is written held: its record, no due key, and its id, due time and endpoint under the followed id in
 * `outbox-held`. The group commit that deletes the followed job (`complete` or `deadLetter`) writes the
 * held jobs' due keys in the same batch (due at their own, earlier time: at once). So a follower is
 * never due while what it follows is still in the outbox, across crashes too: the state is the store's.
 * A dead letter does not hold its followers (a receiver that kept failing must still hear the
 * retraction: the creation may have reached it unanswered); it is marked `supersededBy` the follower
 * (dead-lettered with followers held, or followed by a job enqueued later). What it costs: jobs without
 * `follows` read nothing more at enqueue, and a commit reads `outbox-held` (for the jobs it deletes)
 * only while some job is held. An enqueue of followers and a group commit exclude each other, so a
 * followed job cannot leave between the read that finds it pending and the write that holds its
 * follower. A replayed dead letter is due at once: what it follows cannot be back in the outbox (it
 * left before the letter was tried, and comes back only by a replay, refused once superseded).
 *
 * Group commit: `complete`, `reschedule`, `postpone` and `deadLetter` queue their change; one writer
 * applies every change queued while the previous write was in flight with ONE read of their jobs
 * (beside it, while any job is held, one of what is held behind them) and ONE `db.batch` (changes to
 * the same job apply in call order within it). Each call resolves only after the batch holding its
 * change is written, so a job is never reported gone before it is; a failed batch rejects every call
 * in it and changes nothing. These calls take the job or just its id: a job remembered as stored
 * (known.ts) is changed without reading it.
 *
 * Batches are written at the root with full keys and values already JSON text (job records as bytes:
 * record.ts), and the KvOps a caller adds to an enqueue (match records, deferred jobs) and the attempt
 * pages go in the same way (levelBatchOps, src/store/level/kv.ts): abstract-level's per-operation
 * sublevel work (copying each operation, looking its encodings up, prefixing) was a tenth of what
 * persisting a delivery cost.
 *
 * `due` does not scan LevelDB: the earliest keys of the due index are kept in memory (due-window.ts,
 * up to `dueWindow` keys), told of every write once it lands, and refilled from LevelDB when a backlog
 * larger than the window is worked through. A LevelDB scan would step over the tombstones delivered
 * jobs leave behind and over the keys of jobs in flight, on every call. `skipEndpoints` passes over
 * the jobs of endpoints that cannot take more now (the Deliverer's per-endpoint limit), so the jobs of
 * other endpoints behind them are found; the outbox counts its pending jobs per endpoint (and the window
 * its entries), so a scan that skips every endpoint with work returns at once, and one that skips some
 * reads LevelDB beyond the window only when jobs of the others are there.
 *
 * Memory: what is kept per queued job is its due-window entry (id, due time, endpoint id: ~150 bytes,
 * at most `dueWindow` of them); payloads stay in LevelDB, but for the at most `rememberAtMost` jobs
 * remembered as stored (~1.5 kB each with their body bytes). A backlog of any size costs the same.
 *
 * Idempotent enqueue: a job whose id is already in the outbox (pending or dead) is skipped. Jobs that
 * were already delivered are not remembered here: the Matcher keeps, for the reorg window, which
 * (log, subscription) pairs it has enqueued (matches.ts) and never enqueues a pair twice, which covers
 * a block re-sent by a listener that crashed before advancing its cursor. Outside that window a
 * redelivery carries the same `webhook-id`, which receivers deduplicate on.
 *
 * Export (`ethhook store copy`, src/store/copy.ts): `exportJobs` and `exportDeadLetters` read every
 * stored job and dead letter, a page at a time, as their JSON text as stored (a job's body bytes
 * unchanged), a held job with the id it waits for; for a stopped node's store.
 *
 * `depth()` (due and held jobs) and `deadLetterCount()` are kept in memory (counted once at open, then
 * maintained by every write), so gauges cost nothing; this instance must be the only writer of the
 * database, which LevelDB's lock already guarantees across processes. Writes use LevelDB's default (no
 * fsync): a `kill -9` of the process loses nothing the OS has accepted; a power loss may lose the last
 * writes.
 */
import { deferred, type Deferred } from '../../../runtime/deferred.ts';
import { EthhookError } from '../../../runtime/errors.ts';
import { Serial } from '../../../runtime/serial.ts';
import { AttemptLog, type AttemptRecord } from '../../attempts.ts';
import { padNumber } from '../../keys.ts';
import type { KvOp } from '../../kv.ts';
import type { DeadLetterQuery, OutboxStore } from '../../outbox/contract.ts';
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
} from '../../outbox/job.ts';
import { Tally } from '../../tally.ts';
import { readMany, sublevel, type BatchOp, type Db } from '../db.ts';
import { levelBatchOps, type LevelKv } from '../kv.ts';
import { DeadLetters } from './dead-letters.ts';
import { DueWindow } from './due-window.ts';
import { isKnown, KnownJobs } from './known.ts';
import {
  bodyIn,
  decoded,
  DUE_ID_AT,
  DUE_SUBLEVEL,
  dueKey,
  encodeWithBody,
  HELD_SUBLEVEL,
  JOBS_SUBLEVEL,
  payloadIsLast,
  type Held,
} from './record.ts';

export interface LevelOutboxOptions {
  /** Attempt records kept per endpoint (default 1000). */
  attemptsPerEndpoint?: number;
  /** Due-index keys kept in memory at most (default 20,000, about 3 MB); see due-window.ts. */
  dueWindow?: number;
  /** Jobs remembered as stored at most (default MAX_KNOWN, 4,096; see known.ts). */
  rememberAtMost?: number;
  /** Clock, for tests. */
  now?: () => number;
}

/** Records per page of an export. */
export const EXPORT_PAGE = 1_000;

/** A stored job as exported: the job, its record's JSON text, and the job it is held behind (when held). */
export interface ExportedJob {
  job: Job;
  text: string;
  heldBy: string | undefined;
}

/** A stored dead letter as exported, with its JSON text. */
export interface ExportedDeadLetter {
  letter: DeadLetter;
  text: string;
}

/** A change to one pending job, waiting for the next group commit; attempt records are validated at the call. */
type JobChange =
  | { kind: 'complete'; attempt?: AttemptRecord }
  | { kind: 'reschedule'; nextAttemptAt: number; attempt?: AttemptRecord }
  | { kind: 'postpone'; nextAttemptAt: number }
  | { kind: 'dead-letter'; reason: string; attempt?: AttemptRecord };

interface QueuedChange {
  id: string;
  /** The job object the caller handed over (not just an id): when still `known`, no lookup. */
  job: Job | undefined;
  change: JobChange;
  /**
   * Called once the batch holding the change is written, with what the caller is told: for `complete`
   * and `dead-letter` whether the job was there, for `reschedule` and `postpone` the job after it.
   */
  resolve: (value: boolean | Job | undefined) => void;
  reject: (err: unknown) => void;
}

export class LevelOutbox implements OutboxStore {
  readonly attempts: AttemptLog;
  private readonly db: Db;
  private readonly jobs;
  private readonly dueIndex;
  private readonly held;
  private readonly dead: DeadLetters;
  /** The key prefixes of the jobs, the due index and the held jobs: their writes go into batches at the root (see the header). */
  private readonly jobsPrefix: string;
  private readonly duePrefix: string;
  private readonly heldPrefix: string;
  private readonly now: () => number;
  private readonly bulk = new Serial();
  private readonly listeners = new Set<(count: number) => void>();
  /** Jobs in the due index (`depth()` adds the held ones). */
  private pending = 0;
  /** Jobs held behind the job they follow. */
  private heldCount = 0;
  /** Pending jobs per endpoint id, kept like `pending`. */
  private readonly pendingByEndpoint = new Tally();
  private queued: QueuedChange[] = [];
  /** The promise of the group being queued, for `completeWithGroup` callers (made at the first). */
  private queuedGroup: Deferred<void> | null = null;
  /** The group-commit writer while it runs (it runs until nothing is queued). */
  private writer: Promise<void> | null = null;
  /** The group commit being written, and an enqueue of followers running: each waits for the other. */
  private committing: Promise<unknown> | null = null;
  private holding: Promise<void> | null = null;
  private readonly window: DueWindow;
  private refilling: Promise<void> | null = null;
  /** Jobs as stored, until their next write (known.ts). */
  private readonly known: KnownJobs;

  private constructor(
    private readonly kv: LevelKv,
    options: LevelOutboxOptions,
  ) {
    const db = (this.db = kv.db);
    this.jobs = sublevel<Job>(db, JOBS_SUBLEVEL);
    this.dueIndex = sublevel<string>(db, DUE_SUBLEVEL);
    this.held = sublevel<Held[]>(db, HELD_SUBLEVEL);
    this.dead = new DeadLetters(db);
    this.jobsPrefix = this.jobs.prefix;
    this.duePrefix = this.dueIndex.prefix;
    this.heldPrefix = this.held.prefix;
    this.attempts = new AttemptLog(kv, options.attemptsPerEndpoint);
    this.now = options.now ?? Date.now;
    this.known = new KnownJobs(this.jobsPrefix, this.duePrefix, options.rememberAtMost);
    this.window = new DueWindow(options.dueWindow, DUE_ID_AT);
  }

  /** Opens the outbox of the database under `kv`, counting what it holds. */
  static async open(kv: LevelKv, options: LevelOutboxOptions = {}): Promise<LevelOutbox> {
    const outbox = new LevelOutbox(kv, options);
    // Every pending job has one key in the due index, its value the job's endpoint.
    let read = 0;
    for await (const [key, endpoint] of outbox.dueIndex.iterator()) {
      outbox.pending++;
      outbox.pendingByEndpoint.add(endpoint, 1);
      // One key past the capacity makes the window incomplete; the rest is read by refills.
      if (read++ <= outbox.window.capacity) outbox.window.add(key, undefined, endpoint);
    }
    await outbox.dead.countStored();
    for await (const held of outbox.held.values()) outbox.heldCount += held.length;
    return outbox;
  }

  /** Jobs waiting for delivery (pending, retrying and held), for `webhook_queue_depth`. */
  depth(): number {
    return this.pending + this.heldCount;
  }

  /** Jobs parked as dead letters, for `webhook_dead_letters`. */
  deadLetterCount(): number {
    return this.dead.count;
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
  async enqueueBatch(jobs: readonly NewJob[], extraOps: readonly KvOp[] = []): Promise<EnqueueResult> {
    const now = this.now();
    const fresh: Job[] = [];
    const seen = new Set<string>();
    let following = false;
    for (const j of jobs) {
      if (seen.has(j.id)) continue;
      seen.add(j.id);
      const job = newJobRecord(j, now);
      if (job.follows !== undefined) following = true;
      fresh.push(job);
    }
    return this.bulk.run(async () => {
      if (!following) return this.writeNew(fresh, jobs.length, extraOps);
      const done = deferred<void>();
      this.holding = done.promise;
      try {
        if (this.committing !== null) await this.committing;
        return await this.writeNew(fresh, jobs.length, extraOps);
      } finally {
        this.holding = null;
        done.resolve();
      }
    });
  }

  /**
   * `enqueueBatch`'s read and write: the new jobs not yet pending or dead, each due now, or held when
   * the job it follows is pending (a dead one is marked superseded instead).
   */
  private async writeNew(fresh: readonly Job[], asked: number, extraOps: readonly KvOp[]): Promise<EnqueueResult> {
    // One read for both, ids pending (jobs) and parked (dead letters), raw (no value is decoded). Point
    // reads, not `hasMany`: classic-level answers that with an iterator seek per key, which walks the
    // tombstones delivered jobs leave behind (it doubled the node's CPU per webhook under a backlog).
    // A job that follows one also reads that one's record, dead letter and held jobs.
    const n = fresh.length;
    const keys = new Array<string>(2 * n);
    for (let i = 0; i < n; i++) {
      const id = fresh[i]!.id;
      keys[i] = this.jobsPrefix + id;
      keys[n + i] = this.dead.prefix + id;
    }
    const followedAt = new Map<string, number>();
    for (const job of fresh) {
      const followed = job.follows;
      if (followed === undefined || followedAt.has(followed)) continue;
      followedAt.set(followed, keys.length);
      keys.push(this.jobsPrefix + followed, this.dead.prefix + followed, this.heldPrefix + followed);
    }
    const present: Array<Buffer | undefined> = n > 0 ? await readMany<Buffer>(this.db, keys, 'buffer') : [];
    const ops = levelBatchOps(this.kv, extraOps);
    const due: Job[] = [];
    const held: Job[] = [];
    const holds = new Map<string, Held[]>();
    const superseded = new Map<string, DeadLetter>();
    const written = followedAt.size > 0 ? new Set<string>() : undefined;
    for (let i = 0; i < n; i++) {
      const job = fresh[i]!;
      if (present[i] !== undefined || present[n + i] !== undefined) continue;
      const at = job.follows === undefined ? undefined : followedAt.get(job.follows);
      if (at !== undefined && (present[at] !== undefined || written!.has(job.follows!))) {
        let waiting = holds.get(job.follows!);
        if (waiting === undefined) holds.set(job.follows!, (waiting = decoded<Held[]>(present[at + 2]) ?? []));
        waiting.push({ id: job.id, at: job.nextAttemptAt, endpointId: job.endpointId });
        ops.push(this.putRecordOp(job));
        held.push(job);
      } else {
        const letter = at === undefined ? undefined : (superseded.get(job.follows!) ?? decoded<DeadLetter>(present[at + 1]));
        if (letter !== undefined && letter.supersededBy === undefined) superseded.set(letter.id, { ...letter, supersededBy: job.id });
        ops.push(...this.putJobOps(job));
        due.push(job);
      }
      written?.add(job.id);
    }
    for (const [followed, waiting] of holds) {
      ops.push({ type: 'put', key: this.heldPrefix + followed, value: JSON.stringify(waiting), valueEncoding: 'utf8' });
    }
    for (const letter of superseded.values()) ops.push(this.dead.updateOp(letter));
    if (ops.length > 0) await this.db.batch(ops);
    for (const job of due) {
      this.noteDueKey(job);
      this.known.noteJobWrite(job.id);
      this.known.remember(job);
      this.pendingByEndpoint.add(job.endpointId, 1);
    }
    for (const job of held) {
      this.known.noteJobWrite(job.id);
      this.known.remember(job);
    }
    this.pending += due.length;
    this.heldCount += held.length;
    if (due.length > 0) this.notify(due.length);
    const enqueued = due.length + held.length;
    return { enqueued, duplicates: asked - enqueued };
  }

  /**
   * Up to `limit` jobs with nextAttemptAt <= now, earliest first. `exclude` skips ids the caller already
   * has in flight, so they do not hide the jobs behind them; `skipEndpoints` skips the jobs of those
   * endpoints.
   */
  async due(now: number, limit: number, options: DueOptions = {}): Promise<Job[]> {
    if (limit <= 0) return [];
    const end = padNumber(now + 1);
    const { exclude, skipEndpoints } = options;
    // Every endpoint with pending jobs skipped: nothing to find, and no walk or read to find it.
    const wanted = this.pendingByEndpoint.outside(this.pending, skipEndpoints);
    if (wanted === 0) return [];
    let { entries, exhausted } = this.window.take(end, limit, exclude, skipEndpoints);
    // A backlog beyond the window, with jobs of endpoints not skipped in it: read on from LevelDB (a few
    // times at most; the next call goes on).
    const beyond = () => exhausted && wanted > this.window.notSkipped(skipEndpoints);
    for (let refills = 0; entries.length < limit && beyond() && refills < 3; refills++) {
      await this.refill();
      ({ entries, exhausted } = this.window.take(end, limit, exclude, skipEndpoints));
    }
    // A window full of skipped jobs (more in flight, held or blocked than it holds) cannot take more
    // in: scan LevelDB beyond it for the rest.
    const after = this.window.refillAfter;
    const scanned =
      entries.length < limit && beyond() && after !== undefined ? await this.scanDue(after, end, limit - entries.length, options) : [];
    const jobs: Job[] = [];
    const toRead: string[] = [];
    for (const entry of entries) {
      const job = this.known.lookup(entry.id);
      if (job === undefined) toRead.push(entry.id);
      else jobs.push(job);
    }
    for (const id of scanned) {
      const job = this.known.lookup(id);
      if (job === undefined) toRead.push(id);
      else jobs.push(job);
    }
    if (toRead.length === 0) return jobs;
    this.known.readStarted();
    let read: Array<Job | undefined>;
    try {
      read = await this.readJobs(toRead);
    } finally {
      this.known.readEnded();
    }
    for (const job of read) {
      if (job === undefined) continue;
      jobs.push(job);
      this.known.rememberRead(job);
    }
    // Remembered and read jobs came in two runs: back to due order.
    if (jobs.length !== toRead.length) jobs.sort(byDue);
    return jobs;
  }

  /** When the earliest job is due (ms), or undefined when the outbox is empty: how long a Deliverer may sleep. */
  async nextDueAt(): Promise<number | undefined> {
    let first = this.window.first();
    if (first === undefined && !this.window.complete) {
      await this.refill();
      first = this.window.first();
    }
    return first === undefined ? undefined : Number(first.slice(0, 15));
  }

  /** Up to `limit` ids of the due index after `after` and before `end`, skipping as `due` does, read from LevelDB. */
  private async scanDue(after: string, end: string, limit: number, { exclude, skipEndpoints }: DueOptions): Promise<string[]> {
    const ids: string[] = [];
    const keys = this.dueIndex.iterator({ gt: after, lt: end });
    try {
      while (ids.length < limit) {
        const chunk = await keys.nextv(limit);
        if (chunk.length === 0) break;
        for (const [key, endpoint] of chunk) {
          const id = key.slice(DUE_ID_AT);
          if (exclude?.has(id) || skipEndpoints?.has(endpoint)) continue;
          ids.push(id);
          if (ids.length >= limit) break;
        }
      }
    } finally {
      await keys.close();
    }
    return ids;
  }

  /** Reads the next keys of the due index beyond the window into it (one read at a time, shared). */
  private refill(): Promise<void> {
    this.refilling ??= (async () => {
      const after = this.window.refillAfter;
      if (after === undefined) return;
      const want = Math.max(1, Math.floor(this.window.capacity / 2));
      this.window.beginRefill();
      try {
        const read = await this.dueIndex.iterator({ gt: after, limit: want }).all();
        this.window.refilled(
          read.map(([key]) => key),
          read.length < want,
          read.map(([, endpoint]) => endpoint),
        );
      } catch (err) {
        this.window.refillFailed();
        throw err;
      }
    })().finally(() => {
      this.refilling = null;
    });
    return this.refilling;
  }

  /**
   * The webhook body of a job as bytes: the JSON of its payload, encoded once per job (when this
   * instance wrote it, or at the first call), so retries and the signature reuse them. Not to be changed.
   */
  bodyOf(job: Job): Buffer {
    const form = this.known.formOf(job);
    return (form.body ??= payloadBytes(job));
  }

  /** Resolves once every queued change is written: call it before closing the database. */
  async idle(): Promise<void> {
    while (this.writer !== null) await this.writer;
    await this.attempts.idle();
  }

  async get(jobId: string): Promise<Job | undefined> {
    return (await readMany<Job>(this.jobs, [jobId]))[0];
  }

  /**
   * After a retryable failure: the stored job gets attempt + 1 and the new nextAttemptAt, and `attempt`
   * is recorded, in one batch. Resolves with the updated job, or undefined when the job is gone.
   */
  async reschedule(job: string | Pick<Job, 'id'>, nextAttemptAt: number, attempt?: AttemptRecord): Promise<Job | undefined> {
    const at = finiteTime(nextAttemptAt, 'reschedule');
    return (await this.change(job, { kind: 'reschedule', nextAttemptAt: at, ...this.attemptParts(attempt) })) as Job | undefined;
  }

  /**
   * Moves the job's nextAttemptAt to `at` without counting an attempt or recording one: for a job that
   * was not sent (its endpoint could not take it now). Resolves with the updated job, or undefined
   * when the job is gone.
   */
  async postpone(job: string | Pick<Job, 'id'>, at: number): Promise<Job | undefined> {
    return (await this.change(job, { kind: 'postpone', nextAttemptAt: finiteTime(at, 'postpone') })) as Job | undefined;
  }

  /** After a 2xx: deletes the job (and records the attempt). Resolves false when the job was already gone. */
  complete(job: string | Pick<Job, 'id'>, attempt?: AttemptRecord): Promise<boolean> {
    // No async frame of its own: a bad record rejects the call, a good one queues the change.
    let change: JobChange;
    try {
      change = this.completion(attempt);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.change(job, change) as Promise<boolean>;
  }

  /**
   * `complete` for a caller that needs no answer of its own (the delivery loop, once per webhook):
   * resolves once the group commit holding the change is written, or rejects with it; the promise is
   * the group's, shared by every such call in it, so a call allocates none.
   */
  completeWithGroup(job: string | Pick<Job, 'id'>, attempt?: AttemptRecord): Promise<void> {
    let change: JobChange;
    try {
      change = this.completion(attempt);
    } catch (err) {
      return Promise.reject(err);
    }
    this.queue(job, change, ignore, ignore);
    return (this.queuedGroup ??= deferred<void>()).promise;
  }

  /** A complete's change, its attempt record checked (throws ETHHOOK_ERR_INVALID_INPUT); built field by field, not spread: once per webhook. */
  private completion(attempt: AttemptRecord | undefined): JobChange {
    const change: JobChange = { kind: 'complete' };
    if (attempt) change.attempt = this.attempts.check(attempt);
    return change;
  }

  /**
   * Moves the job to the dead letters atomically, with the reason (and the last attempt, which counts
   * as one more attempt). Resolves false when the job was already gone.
   */
  async deadLetter(job: string | Pick<Job, 'id'>, reason: string, attempt?: AttemptRecord): Promise<boolean> {
    return (await this.change(job, { kind: 'dead-letter', reason, ...this.attemptParts(attempt) })) as boolean;
  }

  async getDeadLetter(id: string): Promise<DeadLetter | undefined> {
    return this.dead.get(id);
  }

  /** Dead letters parked at or after `since` (ms, default 0), oldest first, optionally of one endpoint. */
  listDeadLetters(options: DeadLetterQuery = {}): Promise<DeadLetter[]> {
    return this.dead.list(options);
  }

  /** Every stored job in id order, `pageSize` at a time (see the module header): one iterator, a snapshot. */
  async *exportJobs(pageSize = EXPORT_PAGE): AsyncGenerator<ExportedJob[]> {
    let page: Buffer[] = [];
    for await (const record of this.jobs.values<string, Buffer>({ valueEncoding: 'buffer' })) {
      page.push(record);
      if (page.length < pageSize) continue;
      yield await this.exported(page);
      page = [];
    }
    if (page.length > 0) yield await this.exported(page);
  }

  /** A page of job records as exported: a job is held when the held list of the job it follows names it. */
  private async exported(records: readonly Buffer[]): Promise<ExportedJob[]> {
    const jobs = records.map((record) => ({ job: JSON.parse(record.toString('utf8')) as Job, text: record.toString('utf8') }));
    const followed = [...new Set(jobs.flatMap(({ job }) => (job.follows === undefined ? [] : [job.follows])))];
    const lists = await readMany<Held[]>(this.held, followed);
    const holding = new Map(followed.map((id, i) => [id, new Set((lists[i] ?? []).map((h) => h.id))]));
    return jobs.map(({ job, text }) => ({
      job,
      text,
      heldBy: job.follows !== undefined && holding.get(job.follows)!.has(job.id) ? job.follows : undefined,
    }));
  }

  /** Every dead letter in id order, `pageSize` at a time, with its JSON text as stored. */
  async *exportDeadLetters(pageSize = EXPORT_PAGE): AsyncGenerator<ExportedDeadLetter[]> {
    let page: ExportedDeadLetter[] = [];
    for await (const record of this.dead.stored()) {
      const text = record.toString('utf8');
      page.push({ letter: JSON.parse(text) as DeadLetter, text });
      if (page.length < pageSize) continue;
      yield page;
      page = [];
    }
    if (page.length > 0) yield page;
  }

  /**
   * Puts one dead letter back as a fresh job, due now. Throws ETHHOOK_ERR_DEAD_LETTER_NOT_FOUND, and
   * ETHHOOK_ERR_DEAD_LETTER_SUPERSEDED for a letter superseded by its follower (see the module header).
   */
  replayDeadLetter(id: string): Promise<Job> {
    return this.bulk.run(async () => {
      const letter = await this.dead.get(id);
      if (!letter) throw new EthhookError('ETHHOOK_ERR_DEAD_LETTER_NOT_FOUND', `no dead letter ${id}`, { jobId: id });
      if (letter.supersededBy !== undefined) {
        const by = letter.supersededBy;
        const message = `dead letter ${id} was followed by ${by} for its log and subscription`;
        throw new EthhookError('ETHHOOK_ERR_DEAD_LETTER_SUPERSEDED', message, { jobId: id, supersededBy: by });
      }
      const [job] = await this.revive([letter]);
      return job!;
    });
  }

  /**
   * Replays every dead letter of `endpointId` parked at or after `since` (ms), in batches of 500, but
   * the superseded ones (they stay parked); resolves with how many were replayed.
   */
  replayAll(options: { endpointId: string; since?: number }): Promise<number> {
    return this.bulk.run(async () => {
      let total = 0;
      for await (const letters of this.dead.replayable(options.endpointId, options.since)) total += (await this.revive(letters)).length;
      return total;
    });
  }

  private async revive(letters: DeadLetter[]): Promise<Job[]> {
    const now = this.now();
    const jobs = letters.map((l) => ({ ...l.job, attempt: 0, nextAttemptAt: now }));
    const ops: BatchOp[] = letters.flatMap((l) => this.dead.delOps(l));
    for (const job of jobs) ops.push(...this.putJobOps(job));
    await this.db.batch(ops);
    for (const job of jobs) {
      this.noteDueKey(job);
      this.known.noteJobWrite(job.id);
      this.known.remember(job);
      this.pendingByEndpoint.add(job.endpointId, 1);
    }
    this.dead.count -= letters.length;
    this.pending += jobs.length;
    this.notify(jobs.length);
    return jobs;
  }

  /** Queues one change for the next group commit; resolves, once written, with what its caller is told (QueuedChange). */
  private change(job: string | Pick<Job, 'id'>, change: JobChange): Promise<boolean | Job | undefined> {
    return new Promise<boolean | Job | undefined>((resolve, reject) => this.queue(job, change, resolve, reject));
  }

  private queue(job: string | Pick<Job, 'id'>, change: JobChange, resolve: QueuedChange['resolve'], reject: QueuedChange['reject']): void {
    if (typeof job === 'string') this.queued.push({ id: job, job: undefined, change, resolve, reject });
    else this.queued.push({ id: job.id, job: job as Job, change, resolve, reject });
    // A microtask later, so the changes of one synchronous burst share the first batch too.
    this.writer ??= Promise.resolve().then(() => this.writeQueued());
  }

  /** The attempt record, checked at the call (a bad one throws to the caller, not to the group). */
  private attemptParts(attempt: AttemptRecord | undefined): { attempt?: AttemptRecord } {
    return attempt ? { attempt: this.attempts.check(attempt) } : {};
  }

  /** The single writer: one group commit after another until nothing is queued. */
  private async writeQueued(): Promise<void> {
    while (this.queued.length > 0) {
      while (this.holding !== null) await this.holding;
      const group = this.queued;
      const shared = this.queuedGroup;
      this.queued = [];
      this.queuedGroup = null;
      const committing = this.commit(group);
      this.committing = committing;
      const failed = await committing;
      this.committing = null;
      if (shared !== null) {
        if (failed === undefined) shared.resolve();
        else shared.reject(failed.err);
      }
    }
    this.writer = null;
  }

  /** One read of the group's jobs (and of held followers), one batch; every caller settles after it (or fails with it: returned too). */
  private async commit(group: QueuedChange[]): Promise<{ err: unknown } | undefined> {
    try {
      // The group's jobs and, only while any job is held (see the module header), what waits behind them.
      const [current, followers] = await Promise.all([this.currentJobs(group), this.heldCount > 0 ? this.heldBehind(group) : undefined]);
      // The objects stored before this group (`current` moves on to each change's result).
      const stored = new Map(current);
      // The attempt log's next slot per endpoint: read once per endpoint and process.
      const loading = this.attempts.ready(attemptEndpointsOf(group));
      if (loading) await loading;
      const ops: BatchOp[] = [];
      const results: Array<boolean | Job | undefined> = [];
      // Due-index writes in call order (a job changed twice in one group): a key deleted, or a job whose
      // key was added (no tuple per webhook).
      const dueWrites: Array<string | Job> = [];
      const attempts = new Map<string, AttemptRecord[]>();
      /** The endpoints of the jobs the group deletes (completed, dead-lettered), one per job. */
      const gone: string[] = [];
      /** Held jobs made due, their followed jobs deleted by the group. */
      const released: Held[] = [];
      let parked = 0;
      const now = this.now();
      for (const { id, change } of group) {
        const before = current.get(id);
        let after: Job | undefined;
        if (before !== undefined) {
          const form = this.known.formOf(before);
          dueWrites.push(form.dueKey);
          const waiting = change.kind === 'complete' || change.kind === 'dead-letter' ? followers?.get(id) : undefined;
          if (waiting !== undefined) {
            ops.push({ type: 'del', key: this.heldPrefix + id });
            for (const h of waiting) {
              const key = this.duePrefix + dueKey({ id: h.id, nextAttemptAt: h.at });
              ops.push({ type: 'put', key, value: JSON.stringify(h.endpointId), valueEncoding: 'utf8' });
              released.push(h);
            }
          }
          switch (change.kind) {
            case 'complete':
              ops.push({ type: 'del', key: form.jobKey }, { type: 'del', key: form.dueIndexKey });
              gone.push(before.endpointId);
              break;
            case 'dead-letter': {
              const letter: DeadLetter = {
                id,
                job: change.attempt ? { ...before, attempt: before.attempt + 1 } : before,
                reason: change.reason,
                deadAt: now,
              };
              if (waiting !== undefined) letter.supersededBy = waiting[0]!.id;
              ops.push(...this.delJobOps(before), ...this.dead.putOps(letter));
              gone.push(before.endpointId);
              parked++;
              break;
            }
            case 'reschedule':
            case 'postpone':
              after = { ...before, nextAttemptAt: change.nextAttemptAt, attempt: before.attempt + (change.kind === 'reschedule' ? 1 : 0) };
              ops.push({ type: 'del', key: form.dueIndexKey }, ...this.putJobOps(after, form.body));
              dueWrites.push(after);
              break;
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
      // Each endpoint's attempts of the group: one page, one put (attempts.ts).
      for (const [endpointId, records] of attempts) levelBatchOps(this.kv, this.attempts.pageOps(endpointId, records), ops);
      if (ops.length > 0) await this.db.batch(ops);
      if (attempts.size > 0) this.attempts.written();
      for (const write of dueWrites) {
        if (typeof write === 'string') this.window.delete(write);
        else this.noteDueKey(write);
      }
      for (const { id } of group) this.known.noteJobWrite(id, stored.get(id));
      for (const job of current.values()) if (job !== undefined) this.known.remember(job);
      this.pending -= gone.length;
      for (const endpoint of gone) this.pendingByEndpoint.add(endpoint, -1);
      for (const h of released) {
        this.window.add(dueKey({ id: h.id, nextAttemptAt: h.at }), h.id, h.endpointId);
        this.pendingByEndpoint.add(h.endpointId, 1);
      }
      this.pending += released.length;
      this.heldCount -= released.length;
      if (released.length > 0) this.notify(released.length);
      this.dead.count += parked;
      for (let i = 0; i < group.length; i++) group[i]!.resolve(results[i]);
      return undefined;
    } catch (err) {
      for (const q of group) q.reject(err);
      return { err };
    }
  }

  /** The jobs held behind those the group may delete (completed or dead-lettered), by followed id: one read. */
  private async heldBehind(group: readonly QueuedChange[]): Promise<Map<string, Held[]>> {
    const ids = [...new Set(group.filter((q) => q.change.kind === 'complete' || q.change.kind === 'dead-letter').map((q) => q.id))];
    const found = new Map<string, Held[]>();
    if (ids.length === 0) return found;
    const values = await readMany<Held[]>(this.held, ids);
    ids.forEach((id, i) => {
      const held = values[i];
      if (held !== undefined) found.set(id, held);
    });
    return found;
  }

  /**
   * The stored state of the group's jobs: remembered ones as such (the caller's own object when it is
   * the remembered one: no lookup), the others read in one `getMany`.
   */
  private async currentJobs(group: readonly QueuedChange[]): Promise<Map<string, Job | undefined>> {
    const current = new Map<string, Job | undefined>();
    const toRead: string[] = [];
    for (const { id, job } of group) {
      if (current.has(id)) continue;
      const known = job !== undefined && isKnown(job) ? job : this.known.lookup(id);
      current.set(id, known);
      if (known === undefined) toRead.push(id);
    }
    if (toRead.length > 0) {
      const read = await this.readJobs(toRead);
      toRead.forEach((id, i) => current.set(id, read[i]));
    }
    return current;
  }

  /** The job's due key was written (and has landed): the window gets it with the job's own id string. */
  private noteDueKey(job: Job): void {
    this.window.add(this.known.formOf(job).dueKey, job.id, job.endpointId);
  }

  /** Listeners run on a later microtask: a throwing listener is loud but cannot fail a committed write. */
  private notify(count: number): void {
    for (const l of this.listeners) queueMicrotask(() => l(count));
  }

  /**
   * Jobs by id as stored, undefined where gone, read as bytes: each record's body is the tail of its
   * bytes (record.ts), so `bodyOf` serves a job read back without serializing its payload again.
   */
  private async readJobs(ids: readonly string[]): Promise<Array<Job | undefined>> {
    const keys = ids.map((id) => this.jobsPrefix + id);
    const values = await readMany<Buffer>(this.db, keys, 'buffer');
    return values.map((value) => {
      if (value === undefined) return undefined;
      const job = JSON.parse(value.toString('utf8')) as Job;
      this.known.formOf(job).body = payloadIsLast(job) ? bodyIn(value) : payloadBytes(job);
      return job;
    });
  }

  /** The job's record (its body spliced in: record.ts) and its due key. */
  private putJobOps(job: Job, body = this.bodyOf(job)): BatchOp[] {
    return [
      this.putRecordOp(job, body),
      { type: 'put', key: this.known.formOf(job).dueIndexKey, value: JSON.stringify(job.endpointId), valueEncoding: 'utf8' },
    ];
  }

  /** The job's record alone (see `putJobOps`): a held job has no due key. */
  private putRecordOp(job: Job, body = this.bodyOf(job)): BatchOp {
    const form = this.known.formOf(job);
    form.body = body;
    return { type: 'put', key: form.jobKey, value: encodeWithBody(job, body), valueEncoding: 'buffer' };
  }

  private delJobOps(job: Job): BatchOp[] {
    const form = this.known.formOf(job);
    return [
      { type: 'del', key: form.jobKey },
      { type: 'del', key: form.dueIndexKey },
    ];
  }
}

/** What a shared-group call is told of its own change: nothing. */
function ignore(): void {}

function attemptEndpointsOf(group: readonly QueuedChange[]): Set<string> {
  const ids = new Set<string>();
  for (const { change } of group) if (change.kind !== 'postpone' && change.attempt) ids.add(change.attempt.endpointId);
  return ids;
}
