/**
 * The delivery attempt log: one record per HTTP attempt (`{ jobId, endpointId, at, attempt?, status?,
 * durationMs, error? }`), listable per endpoint newest first, for the admin API.
 *
 * Records are stored in pages: the records of one endpoint that one batch writes (an outbox group
 * commit carries every attempt decided since the previous one) go into ONE value (`{ n, r }`,
 * each record in `r` an array of its fields by position: `[jobId, at, attempt, status, durationMs,
 * error]`, null for an absent one; the endpoint is the key's), key
 * `<endpointId>!<n, 15 digits>` in the `attempts` space (src/store/kv.ts), where `n` is the endpoint's sequence number
 * of the page's first record (a record's own number is the page's plus its index). A group commit of
 * 30 deliveries to 10 endpoints writes 10 puts, not 30: per-operation costs (LevelDB's native batch
 * call reads every operation's properties, then logs and indexes each) made the attempt record the
 * largest part of what persisting a delivery cost (bench:deliver). A page holds PAGE_MAX records at
 * most; larger groups split. `pageOps` returns the pages as KvOps: each outbox writes them in the
 * batch (or transaction) of the job changes that made the attempts.
 *
 * Retention: `list` shows exactly the endpoint's newest `keepPerEndpoint` records (numbers >= next -
 * keep). Older pages are removed in the background by a range `clear` (one operation of the engine;
 * nothing is tracked in memory) each time keep / 2 more records were written (once the
 * batch that wrote them has landed: `written()`), so an
 * endpoint stores fewer than 1.5 x keep + PAGE_MAX records. `idle()` waits for those removals.
 *
 * The next number of an endpoint is kept in memory, read once per process from its newest page (one
 * key, read backwards) by `ready(endpointIds)` before the first write.
 *
 * Several writers (instances sharing a PostgreSQL store, each with its `writer` id): numbers kept in
 * memory would collide, so a writer's page keys end in its id (`<endpointId>!<n>!<writer>`; without a
 * writer, the key is as above) and no writer ever overwrites another's page. Each writer numbers from
 * the newest page of any writer: read when it starts, again by `ready` once RESYNC_MS (1 s) have passed
 * since (one key and one page read per endpoint written, at most once a second), and before each
 * removal of old pages; so the writers' numbers stay within a second of each other's writes. A removal
 * takes every writer's pages below its bound: an endpoint keeps its newest keepPerEndpoint records (by
 * number) however many write it, and fewer than 1.5 x keep + PAGE_MAX per writer. A writer whose batch was
 * certainly not written (a conditional write that found its condition false) takes them back with
 * `mark` before `pageOps` and `rewind` after.
 */
import { z } from 'zod';
import { EthhookError } from '../runtime/errors.ts';
import { padNumber, PREFIX_END } from './keys.ts';
import type { Kv, KvOp, KvSpace } from './kv.ts';

export const DEFAULT_ATTEMPTS_PER_ENDPOINT = 1000;
const MAX_ERROR_LENGTH = 2000;
/** Digits of the sequence number in a page key. */
const SEQ_DIGITS = 15;
/** A writer among several reads the newest page again after this long (see the module header). */
const RESYNC_MS = 1_000;
/** Records per page at most. */
export const PAGE_MAX = 256;

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

/** A record as a page stores it: its fields by position, absent ones null; the endpoint is the key's. */
type StoredRecord = [jobId: string, at: number, attempt: number | null, status: number | null, durationMs: number, error: string | null];

/** A stored page: the number of its first record, and its records in write order. */
interface Page {
  n: number;
  r: StoredRecord[];
}

/** The space the pages are stored in. */
export const ATTEMPTS_SPACE = 'attempts';

export class AttemptLog {
  private readonly records: KvSpace<Page>;
  /** Per endpoint whose newest page was read: the next record's number. */
  private readonly next = new Map<string, number>();
  /** Per endpoint: its next number when its old pages were last removed. */
  private readonly trimmedAt = new Map<string, number>();
  /** Endpoints whose old pages are to be removed once the batch being built is written. */
  private readonly trimDue = new Set<string>();
  private readonly loading = new Map<string, Promise<void>>();
  /** A writer among several: when each endpoint's newest page was last read (bounded as `next`). */
  private readonly syncedAt = new Map<string, number>();
  private readonly clearing = new Set<Promise<unknown>>();

  /** What ends this writer's page keys ('' without a writer id). */
  private readonly suffix: string;

  constructor(
    private readonly kv: Kv,
    readonly keepPerEndpoint = DEFAULT_ATTEMPTS_PER_ENDPOINT,
    writer?: string,
    private readonly now: () => number = Date.now,
  ) {
    if (writer !== undefined && (writer === '' || writer.includes('!')))
      throw new RangeError(`attempt log writer id must be non-empty, without '!', got ${writer}`);
    this.suffix = writer === undefined ? '' : `!${writer}`;
    if (!Number.isInteger(keepPerEndpoint) || keepPerEndpoint < 1 || keepPerEndpoint >= 10 ** 6) {
      throw new RangeError(`attempts per endpoint must be an integer 1..${10 ** 6 - 1}, got ${keepPerEndpoint}`);
    }
    this.records = kv.space<Page>(ATTEMPTS_SPACE);
  }

  /**
   * What a record must be, checked by hand (this runs once per delivery), copied field by field so
   * nothing else is stored; throws ETHHOOK_ERR_INVALID_INPUT naming the first bad field.
   */
  check(record: AttemptRecord): AttemptRecord {
    return checkRecord(record);
  }

  /**
   * Resolves once the next number of each endpoint is known (undefined, at once, when it is already):
   * `pageOps` needs it.
   */
  ready(endpointIds: Iterable<string>): Promise<void> | undefined {
    let pending: Array<Promise<void>> | undefined;
    for (const id of endpointIds) {
      if (this.next.has(id) && (this.suffix === '' || this.now() - (this.syncedAt.get(id) ?? 0) < RESYNC_MS)) continue;
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
   * The operations that store `records` (checked by `check`; all of the endpoint `endpointId`,
   * which must be `ready`) in order, as pages: calls for one endpoint take successive numbers. Starts
   * the background removal of the endpoint's old pages when one is due (see the module header).
   */
  pageOps(endpointId: string, records: readonly AttemptRecord[]): KvOp[] {
    const n = this.next.get(endpointId);
    if (n === undefined) throw new Error(`attempt log: endpoint ${endpointId} is not ready`);
    const ops: KvOp[] = [];
    for (let i = 0; i < records.length; i += PAGE_MAX) {
      const r: StoredRecord[] = [];
      for (let j = i; j < records.length && j < i + PAGE_MAX; j++) {
        const { jobId, at, attempt, status, durationMs, error } = records[j]!;
        r.push([jobId, at, attempt ?? null, status ?? null, durationMs, error ?? null]);
      }
      const page: Page = { n: n + i, r };
      ops.push({ type: 'put', space: ATTEMPTS_SPACE, key: `${endpointId}!${padNumber(n + i, SEQ_DIGITS)}${this.suffix}`, value: page });
    }
    const next = n + records.length;
    this.next.set(endpointId, next);
    if (next - (this.trimmedAt.get(endpointId) ?? 0) >= this.keepPerEndpoint / 2) this.trimDue.add(endpointId);
    return ops;
  }

  /** The next numbers of `endpointIds` (each `ready`) as they are now, for `rewind`. */
  mark(endpointIds: Iterable<string>): Map<string, number> {
    const mark = new Map<string, number>();
    for (const id of endpointIds) {
      const n = this.next.get(id);
      if (n === undefined) throw new Error(`attempt log: endpoint ${id} is not ready`);
      mark.set(id, n);
    }
    return mark;
  }

  /**
   * Takes the numbers back to a `mark`: the batch holding the `pageOps` made since was certainly not
   * written (its records are numbered again by the next calls, no number is left unused).
   */
  rewind(mark: ReadonlyMap<string, number>): void {
    for (const [id, n] of mark) this.next.set(id, n);
  }

  /**
   * The batch holding `pageOps`' operations was written: starts the removals of old pages they made
   * due (not before: a removal must not overtake the pages that make the old ones old).
   */
  written(): void {
    for (const endpointId of this.trimDue) this.trim(endpointId, this.next.get(endpointId) ?? 0);
    this.trimDue.clear();
  }

  /** Stores one record on its own (attempts that change no job, e.g. a probe). */
  async record(record: AttemptRecord): Promise<void> {
    const value = checkRecord(record);
    await this.ready([value.endpointId]);
    await this.kv.batch(this.pageOps(value.endpointId, [value]));
    this.written();
  }

  /** Resolves once the removals of old pages in progress are done: call it before closing the database. */
  async idle(): Promise<void> {
    while (this.clearing.size > 0) await Promise.allSettled([...this.clearing]);
  }

  /** Newest first (by time, then by write order); `before` (ms) keeps those strictly older. */
  async list(endpointId: string, options: { limit?: number; before?: number } = {}): Promise<AttemptRecord[]> {
    const prefix = `${endpointId}!`;
    const pages: Page[] = [];
    for (const [key, page] of await this.records.entries({ gt: prefix, lt: `${prefix}${PREFIX_END}` })) {
      if (isPageKey(key, prefix) && isPage(page)) pages.push(page);
    }
    const newest = pages[pages.length - 1];
    const next = this.next.get(endpointId) ?? (newest ? newest.n + newest.r.length : 0);
    const oldest = next - this.keepPerEndpoint;
    const before = options.before;
    const kept: Array<AttemptRecord & { n: number }> = [];
    for (const page of pages) {
      page.r.forEach(([jobId, at, attempt, status, durationMs, error], i) => {
        if (page.n + i < oldest || (before !== undefined && at >= before)) return;
        const record: AttemptRecord & { n: number } = { jobId, endpointId, at, durationMs, n: page.n + i };
        if (attempt !== null) record.attempt = attempt;
        if (status !== null) record.status = status;
        if (error !== null) record.error = error;
        kept.push(record);
      });
    }
    return kept
      .sort((a, b) => b.at - a.at || b.n - a.n)
      .slice(0, options.limit ?? 100)
      .map(({ n: _n, ...record }) => record);
  }

  /**
   * Removes the endpoint's pages whose records are all older than its newest keepPerEndpoint: those
   * numbered below next - keep - PAGE_MAX + 1 (a page holds PAGE_MAX records at most). A failed removal
   * is tried again at the next write.
   */
  private trim(endpointId: string, next: number): void {
    this.trimmedAt.set(endpointId, next);
    const prefix = `${endpointId}!`;
    const clearing: Promise<unknown> = (this.suffix === '' ? Promise.resolve(next) : this.catchUp(endpointId, next))
      .then((upTo) => {
        const below = upTo - this.keepPerEndpoint - PAGE_MAX + 1;
        if (below > 0) return this.records.clear({ gt: prefix, lt: `${prefix}${padNumber(below, SEQ_DIGITS)}` });
      })
      .catch(() => this.trimmedAt.delete(endpointId))
      .finally(() => this.clearing.delete(clearing));
    this.clearing.add(clearing);
  }

  /** The number after the endpoint's newest page, any writer's (0 when none). */
  private async newest(endpointId: string): Promise<number> {
    const prefix = `${endpointId}!`;
    const [newest] = await this.records.keys({ gt: prefix, lt: `${prefix}${PREFIX_END}`, reverse: true, limit: 1 });
    const page = newest === undefined || !isPageKey(newest, prefix) ? undefined : await this.records.get(newest);
    return isPage(page) ? page.n + page.r.length : 0;
  }

  /** Another writer's numbers ran ahead of ours (`next`): ours continue from theirs. Resolves with the higher. */
  private async catchUp(endpointId: string, next: number): Promise<number> {
    const theirs = await this.newest(endpointId);
    const ours = this.next.get(endpointId);
    if (ours !== undefined && theirs > ours) this.next.set(endpointId, theirs);
    return Math.max(next, theirs);
  }

  /** Reads the endpoint's newest page for its next number (once; a writer among several, again when stale). */
  private async load(endpointId: string): Promise<void> {
    const next = await this.newest(endpointId);
    if (this.suffix !== '') this.syncedAt.set(endpointId, this.now());
    const ours = this.next.get(endpointId);
    if (ours !== undefined && next > ours) this.next.set(endpointId, next);
    if (ours === undefined) {
      this.next.set(endpointId, next);
      // The first write removes what older processes left beyond the retention.
      this.trimmedAt.set(endpointId, 0);
    }
  }
}

/** `<prefix><n>` or `<prefix><n>!<writer>` (see the module header). */
function isPageKey(key: string, prefix: string): boolean {
  return PAGE_KEY_TAIL.test(key.slice(prefix.length));
}

const PAGE_KEY_TAIL = new RegExp(`^\\d{${SEQ_DIGITS}}(?:![^!]+)?$`);

function isPage(v: unknown): v is Page {
  const page = v as Page | undefined;
  return (
    typeof page === 'object' &&
    page !== null &&
    Number.isSafeInteger(page.n) &&
    page.n >= 0 &&
    Array.isArray(page.r) &&
    page.r.every((r) => Array.isArray(r) && r.length === 6)
  );
}

/**
 * What `attemptRecordSchema` accepts, checked by hand (this runs once per delivery), copied field by
 * field so nothing else is stored; throws ETHHOOK_ERR_INVALID_INPUT naming the first bad field.
 */
function checkRecord(r: AttemptRecord): AttemptRecord {
  const bad = !isId(r.jobId)
    ? 'jobId'
    : !isId(r.endpointId)
      ? 'endpointId'
      : !Number.isSafeInteger(r.at)
        ? 'at'
        : r.attempt !== undefined && !(Number.isSafeInteger(r.attempt) && r.attempt > 0)
          ? 'attempt'
          : r.status !== undefined && !Number.isSafeInteger(r.status)
            ? 'status'
            : !(typeof r.durationMs === 'number' && r.durationMs >= 0 && Number.isFinite(r.durationMs))
              ? 'durationMs'
              : r.error !== undefined && !(typeof r.error === 'string' && r.error.length <= MAX_ERROR_LENGTH)
                ? 'error'
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
