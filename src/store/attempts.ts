/**
 * The delivery attempt log: one record per HTTP attempt (`{ jobId, endpointId, at, attempt?, status?,
 * durationMs, error? }`), listable per endpoint newest first, for the admin API.
 *
 * Each endpoint keeps its newest `keepPerEndpoint` records in a ring of as many slots, overwritten in
 * place: key `<endpointId>!<slot, 6 digits>` in the `attempts` sublevel, value the record plus `n`, the
 * endpoint's write sequence (slot = n mod keepPerEndpoint). A delivery costs one put and nothing else:
 * no deletes, no reads to find what to prune (a count-bounded log that deletes its oldest records pays
 * a key read and a delete per record, and leaves tombstones behind). Records are written by the Outbox
 * in the same batch as the job's state change (`putOp`).
 *
 * The next `n` of an endpoint is kept in memory, read once per process from its slots (the largest `n`
 * plus one) by `ready(endpointIds)` before the first write; that read also deletes records in an older
 * key layout. `list` reads the endpoint's slots (at most keepPerEndpoint) and orders them by time,
 * newest first (then by `n`).
 */
import { z } from 'zod';
import { EthhookError } from '../runtime/errors.ts';
import { sublevel, type Db } from './db.ts';
import { padNumber, PREFIX_END, type BatchOp } from './keys.ts';

export const DEFAULT_ATTEMPTS_PER_ENDPOINT = 1000;
const MAX_ERROR_LENGTH = 2000;
/** The slot part of a key (6 digits): keepPerEndpoint is at most 10^6. */
const SLOT_DIGITS = 6;

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

type StoredAttempt = AttemptRecord & { n: number };

export class AttemptLog {
  private readonly records;
  /** Per endpoint whose slots were read: the next write sequence. */
  private readonly next = new Map<string, number>();
  private readonly loading = new Map<string, Promise<void>>();

  constructor(
    private readonly db: Db,
    readonly keepPerEndpoint = DEFAULT_ATTEMPTS_PER_ENDPOINT,
  ) {
    if (!Number.isInteger(keepPerEndpoint) || keepPerEndpoint < 1 || keepPerEndpoint >= 10 ** SLOT_DIGITS) {
      throw new RangeError(`attempts per endpoint must be an integer 1..${10 ** SLOT_DIGITS - 1}, got ${keepPerEndpoint}`);
    }
    this.records = sublevel<StoredAttempt>(db, 'attempts');
  }

  /**
   * What a record must be, checked by hand (this runs once per delivery), copied field by field so
   * nothing else is stored; throws ETHHOOK_ERR_INVALID_INPUT naming the first bad field.
   */
  check(record: AttemptRecord): AttemptRecord {
    return checkRecord(record);
  }

  /**
   * Resolves once the next write sequence of each endpoint is known (undefined, at once, when it is
   * already): `putOp` needs it.
   */
  ready(endpointIds: Iterable<string>): Promise<void> | undefined {
    let pending: Array<Promise<void>> | undefined;
    for (const id of endpointIds) {
      if (this.next.has(id)) continue;
      let load = this.loading.get(id);
      if (load === undefined) {
        load = this.load(id).finally(() => this.loading.delete(id));
        this.loading.set(id, load);
      }
      (pending ??= []).push(load);
    }
    return pending && Promise.all(pending).then(() => undefined);
  }

  /**
   * The batch operation that stores `record` (checked) in its endpoint's next slot. The endpoint must
   * be `ready`. Operations of one batch for one endpoint take successive slots.
   */
  putOp(record: AttemptRecord): BatchOp {
    const value = checkRecord(record);
    const n = this.next.get(value.endpointId);
    if (n === undefined) throw new Error(`attempt log: endpoint ${value.endpointId} is not ready`);
    this.next.set(value.endpointId, n + 1);
    const key = `${value.endpointId}!${padNumber(n % this.keepPerEndpoint, SLOT_DIGITS)}`;
    return { type: 'put', sublevel: this.records, key, value: { ...value, n } };
  }

  /** Stores one record on its own (attempts that change no job, e.g. a probe). */
  async record(record: AttemptRecord): Promise<void> {
    const value = checkRecord(record);
    await this.ready([value.endpointId]);
    await this.db.batch([this.putOp(value)]);
  }

  /** Newest first (by time, then by write order); `before` (ms) keeps those strictly older. */
  async list(endpointId: string, options: { limit?: number; before?: number } = {}): Promise<AttemptRecord[]> {
    const prefix = `${endpointId}!`;
    const stored = await this.records.iterator({ gt: prefix, lt: `${prefix}${PREFIX_END}` }).all();
    const before = options.before;
    return stored
      .filter(([key, r]) => isSlotKey(key, prefix) && typeof r.n === 'number' && (before === undefined || r.at < before))
      .map(([, r]) => r)
      .sort((a, b) => b.at - a.at || b.n - a.n)
      .slice(0, options.limit ?? 100)
      .map(({ n: _n, ...record }) => record);
  }

  /** Reads the endpoint's slots once: its next `n`; records in another key layout are deleted. */
  private async load(endpointId: string): Promise<void> {
    const prefix = `${endpointId}!`;
    let top = -1;
    const stale: string[] = [];
    for await (const [key, r] of this.records.iterator({ gt: prefix, lt: `${prefix}${PREFIX_END}` })) {
      if (isSlotKey(key, prefix) && typeof r.n === 'number') top = Math.max(top, r.n);
      else stale.push(key);
    }
    if (stale.length > 0) await this.records.batch(stale.map((key) => ({ type: 'del' as const, key })));
    if (!this.next.has(endpointId)) this.next.set(endpointId, top + 1);
  }
}

function isSlotKey(key: string, prefix: string): boolean {
  return key.length === prefix.length + SLOT_DIGITS && /^\d+$/.test(key.slice(prefix.length));
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
