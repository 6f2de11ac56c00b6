/**
 * The delivery attempt log: one record per HTTP attempt (`{ jobId, endpointId, at, attempt?, status?,
 * durationMs, error? }`), listable per endpoint newest first, for the admin API.
 *
 * Keys: `<endpointId>!<at, 15 digits>!<sequence, 6 digits>` in the `attempts` sublevel. Records are
 * written by the Outbox in the same batch as the job's state change (`putOp`). The log is bounded:
 * after every `keepPerEndpoint / 4` writes for an endpoint, everything older than its newest
 * `keepPerEndpoint` records is deleted, so an endpoint never holds more than 1.25x that many.
 *
 * Pruning reads forward from where the last prune of the endpoint stopped (its `floor`, the last key
 * it deleted) and deletes the oldest records by key in one batch: it never steps over the tombstones
 * of earlier prunes, nor reads the records it keeps. Each endpoint's record count is read once (at its
 * first prune in this process), then kept up to date; records keep being written in key order (time,
 * then a sequence), so the oldest are first.
 */
import { z } from 'zod';
import { EthhookError } from '../runtime/errors.ts';
import { sublevel, type Db } from './db.ts';
import { padNumber, PREFIX_END, type BatchOp } from './keys.ts';
import { Serial } from './serial.ts';

export const DEFAULT_ATTEMPTS_PER_ENDPOINT = 1000;
const MAX_ERROR_LENGTH = 2000;

export const attemptRecordSchema = z.object({
  jobId: z.string().min(1),
  endpointId: z.string().min(1),
  at: z.number().int(),
  /** 1-based number of this attempt for its job. */
  attempt: z.number().int().positive().optional(),
  /** HTTP status; absent when no response came (network error, timeout). */
  status: z.number().int().optional(),
  durationMs: z.number().min(0),
  error: z.string().max(MAX_ERROR_LENGTH).optional(),
});
export type AttemptRecord = z.infer<typeof attemptRecordSchema>;

export class AttemptLog {
  private readonly records;
  private readonly pruneEvery: number;
  private readonly sinceLastPrune = new Map<string, number>();
  /** Per endpoint: its records (once counted) and the last key pruning deleted. */
  private readonly stored = new Map<string, { count: number; floor: string }>();
  private sequence = 0;
  /** Prunes run one at a time: two of one endpoint at once would both delete from the same floor. */
  private readonly pruning = new Serial();

  /**
   * `onPruneError`: where a failed prune is reported (it is tried again `keepPerEndpoint / 4` writes
   * later); without it, `written` rejects with the error.
   */
  constructor(
    private readonly db: Db,
    readonly keepPerEndpoint = DEFAULT_ATTEMPTS_PER_ENDPOINT,
    private readonly onPruneError?: (err: unknown, endpointId: string) => void,
  ) {
    this.records = sublevel<AttemptRecord>(db, 'attempts');
    this.pruneEvery = Math.max(1, Math.floor(keepPerEndpoint / 4));
  }

  /**
   * The batch operation that stores `record`; call `written(record.endpointId)` after the batch commits.
   * Records are the Deliverer's own, built on every attempt: they get `checkRecord`, not a zod parse.
   */
  putOp(record: AttemptRecord): BatchOp {
    const value = checkRecord(record);
    this.sequence = (this.sequence + 1) % 1_000_000;
    const key = `${value.endpointId}!${padNumber(value.at)}!${padNumber(this.sequence, 6)}`;
    return { type: 'put', sublevel: this.records, key, value };
  }

  /** Counts a committed write and prunes the endpoint's oldest records when it is time. */
  async written(endpointId: string): Promise<void> {
    const n = (this.sinceLastPrune.get(endpointId) ?? 0) + 1;
    if (n < this.pruneEvery) {
      this.sinceLastPrune.set(endpointId, n);
      return;
    }
    this.sinceLastPrune.set(endpointId, 0);
    try {
      await this.pruning.run(() => this.prune(endpointId));
    } catch (err) {
      if (!this.onPruneError) throw err;
      this.onPruneError(err, endpointId);
    }
  }

  /** Stores one record on its own (attempts that change no job, e.g. a probe). */
  async record(record: AttemptRecord): Promise<void> {
    await this.db.batch([this.putOp(record)]);
    await this.written(record.endpointId);
  }

  /** Newest first; `before` (ms) pages back in time. */
  async list(endpointId: string, options: { limit?: number; before?: number } = {}): Promise<AttemptRecord[]> {
    const prefix = `${endpointId}!`;
    const lt = options.before === undefined ? `${prefix}${PREFIX_END}` : `${prefix}${padNumber(options.before)}`;
    return this.records.values({ gt: prefix, lt, reverse: true, limit: options.limit ?? 100 }).all();
  }

  /** Deletes everything older than the endpoint's newest `keepPerEndpoint` records: one forward key read, one batch. */
  private async prune(endpointId: string): Promise<void> {
    const prefix = `${endpointId}!`;
    const end = `${prefix}${PREFIX_END}`;
    let state = this.stored.get(endpointId);
    if (state === undefined) {
      let count = 0;
      for await (const _ of this.records.keys({ gt: prefix, lt: end })) count++;
      state = { count, floor: prefix };
      this.stored.set(endpointId, state);
    } else {
      state.count += this.pruneEvery;
    }
    const excess = state.count - this.keepPerEndpoint;
    if (excess <= 0) return;
    const oldest = await this.records.keys({ gt: state.floor, lt: end, limit: excess }).all();
    if (oldest.length === 0) return;
    await this.records.batch(oldest.map((key) => ({ type: 'del' as const, key })));
    state.count -= oldest.length;
    state.floor = oldest[oldest.length - 1]!;
  }
}

/**
 * What `attemptRecordSchema` accepts, checked by hand (this runs once per delivery), copied field by
 * field so nothing else is stored; throws ETHHOOK_ERR_INVALID_INPUT naming the first bad field.
 */
function checkRecord(r: AttemptRecord): AttemptRecord {
  const bad =
    !isId(r.jobId) ? 'jobId'
    : !isId(r.endpointId) ? 'endpointId'
    : !Number.isSafeInteger(r.at) ? 'at'
    : r.attempt !== undefined && !(Number.isSafeInteger(r.attempt) && r.attempt > 0) ? 'attempt'
    : r.status !== undefined && !Number.isSafeInteger(r.status) ? 'status'
    : !(typeof r.durationMs === 'number' && r.durationMs >= 0 && Number.isFinite(r.durationMs)) ? 'durationMs'
    : r.error !== undefined && !(typeof r.error === 'string' && r.error.length <= MAX_ERROR_LENGTH) ? 'error'
    : undefined;
  if (bad !== undefined) {
    throw new EthhookError('ETHHOOK_ERR_INVALID_INPUT', `invalid attempt record: ${bad}`, {
      issues: [{ path: bad, message: `got ${String((r as unknown as Record<string, unknown>)[bad])}` }],
    });
  }
  const { jobId, endpointId, at, attempt, status, durationMs, error } = r;
  return { jobId, endpointId, at, attempt, status, durationMs, error };
}

function isId(v: unknown): boolean {
  return typeof v === 'string' && v.length > 0;
}
