/**
 * The outbox's in-memory view of its due index: the earliest due keys (`<nextAttemptAt 15d>!<jobId>`),
 * in order, so that finding due jobs is a walk over memory rather than a LevelDB scan.
 *
 * Why: a LevelDB scan of the due index steps over the tombstones that delivered jobs leave behind, and
 * over the keys of jobs already in flight. One slow job in flight at the front of the index (a 30 s
 * timeout) while thousands of others are delivered around it made every scan walk thousands of
 * tombstones: at 10k webhooks/s the scans alone took a third of the Deliverer's time.
 *
 * The window holds at most `capacity` keys (20,000 by default, about 3 MB). While everything fits it
 * is `complete`: it holds every key in the index. Past the capacity it keeps the earliest keys only and
 * remembers the largest one it holds (`max`): every key of the index up to `max` is in the window, the
 * rest only in LevelDB, and the outbox refills the window from there (`beginRefill`, `refilled`) when
 * it has handed out all it holds; a window full of jobs already taken (more in flight or held than its
 * capacity) cannot take more in, and the outbox then scans LevelDB beyond it. The outbox is the only writer of its index, so it tells the window about
 * every key it writes and deletes (`add`, `delete`) once the write has landed; a key above `max` is not
 * taken in (the refill will read it).
 *
 * A refill reads LevelDB asynchronously: writes that land meanwhile may or may not be in what it read,
 * so they are journaled from `beginRefill` and applied again in order once the read is merged. A
 * window trimmed during the read drops what was read (it would start above a gap) and refills again.
 *
 * Storage: sorted chunks of at most CHUNK entries (binary search to the chunk, then within it), so an
 * insert or delete moves at most a chunk, never the whole window. Each entry keeps its key with the id
 * in it (the key from `idAt` on), as the string the outbox gave (`add(key, id)`: the job's own id,
 * whose hash the outbox's maps have already computed), so `take` hands out ids and checks `exclude`
 * without cutting a new string out of every key it walks; and the job's endpoint id (the index's value),
 * so `take` can pass over the jobs of endpoints that cannot take more now (`skipEndpoints`).
 *
 * `take` stops as soon as no entry it has not walked can be handed out: it keeps a count of entries per
 * endpoint, so a walk that skips endpoints knows how many others are left, and a scan while every
 * endpoint with work is skipped costs nothing instead of a walk over the whole window.
 *
 * Memory: an entry is its key, its id (a slice of the key) and the endpoint id, about 150 bytes; never
 * the job or its payload. 20,000 entries (the default capacity) are about 3 MB whatever the backlog; a
 * refill reads half of that at a time, so a backlog drained at 10,000 webhooks/s costs one LevelDB read of
 * 10,000 keys a second.
 */
import { Tally } from '../../tally.ts';

const CHUNK = 512;
export const DEFAULT_DUE_WINDOW = 20_000;

/** One key of the index, the id in it and the job's endpoint. Handed out by `take`: read, never changed. */
export interface DueEntry {
  readonly key: string;
  readonly id: string;
  readonly endpoint: string;
}

type JournalOp = [op: 'add', entry: DueEntry] | [op: 'delete', key: string];

export class DueWindow {
  private chunks: DueEntry[][] = [];
  private count = 0;
  /** Entries per endpoint id. */
  private readonly perEndpoint = new Tally();
  /** Every key of the index is here. When false, every key <= `max` is. */
  private whole = true;
  private max = '';
  private journal: JournalOp[] | null = null;
  /** The window was trimmed while a refill read: what it read starts above a gap, so it is dropped. */
  private trimmedDuringRefill = false;

  /** `idAt`: where the id starts in a key. */
  constructor(
    readonly capacity = DEFAULT_DUE_WINDOW,
    private readonly idAt = 0,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`due window capacity must be a positive integer, got ${capacity}`);
  }

  get size(): number {
    return this.count;
  }

  /** True when the window holds every key of the index. */
  get complete(): boolean {
    return this.whole;
  }

  /** Where a refill continues reading (exclusive); undefined when the window is complete. */
  get refillAfter(): string | undefined {
    return this.whole ? undefined : this.max;
  }

  /** A key was written to the index; `id` is the id in it (default: cut from the key), `endpoint` its job's endpoint. */
  add(key: string, id = key.slice(this.idAt), endpoint = ''): void {
    const entry: DueEntry = { key, id, endpoint };
    this.journal?.push(['add', entry]);
    this.insert(entry);
  }

  /** A key was deleted from the index. */
  delete(key: string): void {
    this.journal?.push(['delete', key]);
    this.remove(key);
  }

  /** The first key, or undefined when the window is empty (check `complete` before concluding the index is). */
  first(): string | undefined {
    return this.chunks[0]?.[0]?.key;
  }

  /**
   * Up to `limit` entries with keys below `end` (exclusive), in order, whose id is not in `exclude` and
   * whose endpoint is not in `skipEndpoints`. `exhausted` is true when the walk ran off the end of an
   * incomplete window below `end`: more may wait in LevelDB.
   */
  take(
    end: string,
    limit: number,
    exclude?: ReadonlySet<string>,
    skipEndpoints?: ReadonlySet<string>,
  ): { entries: DueEntry[]; exhausted: boolean } {
    const entries: DueEntry[] = [];
    const skip = skipEndpoints !== undefined && skipEndpoints.size > 0 ? skipEndpoints : undefined;
    // Entries not skipped and not walked yet: at 0 the rest of the window has nothing to hand out.
    let left = this.notSkipped(skip);
    walk: for (const chunk of this.chunks) {
      for (const entry of chunk) {
        if (left === 0) break walk;
        if (entry.key >= end) return { entries, exhausted: false };
        if (skip !== undefined && skip.has(entry.endpoint)) continue;
        left--;
        if (exclude !== undefined && exclude.has(entry.id)) continue;
        entries.push(entry);
        if (entries.length >= limit) return { entries, exhausted: false };
      }
    }
    return { entries, exhausted: !this.whole && this.max < end };
  }

  /** Entries in the window whose endpoint is not in `skip`. */
  notSkipped(skip?: ReadonlySet<string>): number {
    return this.perEndpoint.outside(this.count, skip);
  }

  /** Starts journaling the writes that land while a refill reads LevelDB. */
  beginRefill(): void {
    this.journal = [];
    this.trimmedDuringRefill = false;
  }

  /**
   * Merges what a refill read: `keys`, in order, after `refillAfter`, and their jobs' `endpoints` (the
   * index's values, same order); `reachedEnd` when the read found no more. Then replays the writes
   * journaled since `beginRefill`.
   */
  refilled(keys: readonly string[], reachedEnd: boolean, endpoints?: readonly string[]): void {
    const journal = this.journal ?? [];
    this.journal = null;
    if (!this.whole && !this.trimmedDuringRefill) {
      // Open the range first: the keys read are now known up to the last of them (or entirely).
      if (reachedEnd) this.whole = true;
      else if (keys.length > 0) this.max = keys[keys.length - 1]!;
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        this.insert({ key, id: key.slice(this.idAt), endpoint: endpoints?.[i] ?? '' });
      }
    }
    for (const op of journal) {
      if (op[0] === 'add') this.insert(op[1]);
      else this.remove(op[1]);
    }
  }

  /** Abandons a refill that failed: nothing read is merged (the writes were applied already). */
  refillFailed(): void {
    this.journal = null;
  }

  private insert(entry: DueEntry): void {
    const key = entry.key;
    if (!this.whole && key > this.max) return;
    const chunks = this.chunks;
    if (chunks.length === 0) {
      chunks.push([entry]);
      this.count = 1;
      this.perEndpoint.add(entry.endpoint, 1);
      this.trim();
      return;
    }
    const c = this.chunkFor(key);
    const chunk = chunks[c]!;
    const i = lowerBound(chunk, key);
    if (chunk[i]?.key === key) return;
    if (i === chunk.length) chunk.push(entry);
    else chunk.splice(i, 0, entry);
    this.count++;
    this.perEndpoint.add(entry.endpoint, 1);
    if (chunk.length > 2 * CHUNK) chunks.splice(c + 1, 0, chunk.splice(CHUNK));
    this.trim();
  }

  private remove(key: string): void {
    if (this.chunks.length === 0) return;
    const c = this.chunkFor(key);
    const chunk = this.chunks[c]!;
    const i = lowerBound(chunk, key);
    const entry = chunk[i];
    if (entry?.key !== key) return;
    if (i === 0) chunk.shift();
    else chunk.splice(i, 1);
    this.count--;
    this.perEndpoint.add(entry.endpoint, -1);
    if (chunk.length === 0) this.chunks.splice(c, 1);
  }

  /** The chunk a key belongs in: the first whose last key is >= it, else the last chunk. */
  private chunkFor(key: string): number {
    const chunks = this.chunks;
    let lo = 0;
    let hi = chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const chunk = chunks[mid]!;
      if (chunk[chunk.length - 1]!.key < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Past the capacity, drops the latest keys (LevelDB still has them) and narrows the range. */
  private trim(): void {
    if (this.count <= this.capacity) return;
    const chunks = this.chunks;
    while (this.count > this.capacity) {
      const last = chunks[chunks.length - 1]!;
      const excess = this.count - this.capacity;
      const dropped = last.length <= excess ? (chunks.pop() as DueEntry[]) : last.splice(last.length - excess);
      this.count -= dropped.length;
      for (const entry of dropped) this.perEndpoint.add(entry.endpoint, -1);
    }
    this.whole = false;
    if (this.journal !== null) this.trimmedDuringRefill = true;
    const last = chunks[chunks.length - 1]!;
    this.max = last[last.length - 1]!.key;
  }
}

function lowerBound(chunk: readonly DueEntry[], key: string): number {
  let lo = 0;
  let hi = chunk.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (chunk[mid]!.key < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
