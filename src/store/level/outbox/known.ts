/**
 * The LevelDB outbox's jobs as stored (`known`), and what it makes once per job object (`JobForm`).
 *
 * The outbox remembers the jobs it enqueued, rescheduled or postponed itself and the jobs `due` read.
 * It is the only writer of its database (LevelDB's lock), so a remembered job IS the stored one until
 * its next write (which replaces or forgets it), and neither `due` nor the group commit reads it
 * again: a job enqueued and delivered soon after is read from LevelDB by nobody. Other jobs are read
 * (`getMany`). A `due` whose read overlapped a write of a job does not remember it (its copy may
 * predate the write: `readStarted` / `readEnded` / `rememberRead`). At most `rememberAtMost` jobs
 * (default MAX_KNOWN) are remembered; past that, new ones are not, until delivered jobs make room.
 *
 * The hot path looks nothing up: a remembered job object knows it is the one (its form's `known`
 * flag, under a private symbol) and callers hand jobs back; a write clears the flag and leaves the map
 * entry stale, swept out when the map fills.
 *
 * A job's form: its webhook body (the payload's JSON, UTF-8, serialized and encoded with the job when
 * the outbox wrote it, or at the first `bodyOf`) and its LevelDB keys, so that delivering it builds
 * none. Kept on the object itself under a private symbol, not enumerable (JSON, spreads and equality
 * ignore it): a map from ~20,000 job objects cost a cache miss per lookup.
 */
import type { Job } from '../../outbox/job.ts';
import { dueKey } from './record.ts';

/**
 * Jobs remembered as stored at most (about 1.5 kB each with their body: ~6 MB). Enough for the jobs in
 * flight and a few scans ahead, which is what makes a job enqueued and delivered soon after cost no
 * read; a larger backlog is read back from LevelDB as it comes due.
 */
export const MAX_KNOWN = 4_096;

/** Where a job object keeps its JobForm (see `formOf`). */
const FORM = Symbol('ethhook.outbox.form');

/** What the outbox makes once per job object (see the header). */
export interface JobForm {
  body: Buffer | undefined;
  /**
   * True while this object is the one `known` holds for its id (the job as stored): a caller handing
   * it back, or the window entry it rides on, then needs no lookup.
   */
  known: boolean;
  /** The job record's key, and its due key in the index (and in the window) without and with the index's prefix. */
  jobKey: string;
  dueKey: string;
  dueIndexKey: string;
}

/** Whether a job object is the one the outbox remembers as stored (see JobForm). */
export function isKnown(job: Job): boolean {
  return (job as Job & { [FORM]?: JobForm })[FORM]?.known === true;
}

export class KnownJobs {
  /** Jobs as stored, until their next write. */
  private readonly known = new Map<string, Job>();
  /** Entries of `known` left stale by writes since the last sweep (an upper bound: see noteJobWrite). */
  private staleKnown = 0;
  /** `due` reads of jobs in flight, and the jobs written meanwhile (not to be remembered). */
  private jobReads = 0;
  private readonly writtenDuringReads = new Set<string>();

  /** `jobsPrefix` and `duePrefix`: the key prefixes of the job records and of the due index. */
  constructor(
    private readonly jobsPrefix: string,
    private readonly duePrefix: string,
    private readonly rememberAtMost = MAX_KNOWN,
  ) {}

  /** The job's form (see the header), made at the first call for this object. */
  formOf(job: Job): JobForm {
    const held = (job as Job & { [FORM]?: JobForm })[FORM];
    if (held !== undefined) return held;
    const due = dueKey(job);
    const form: JobForm = {
      body: undefined,
      known: false,
      jobKey: this.jobsPrefix + job.id,
      dueKey: due,
      dueIndexKey: this.duePrefix + due,
    };
    // A caller's frozen copy is served as well, only not remembered.
    if (Object.isExtensible(job))
      Object.defineProperty(job, FORM, { value: form, enumerable: false, writable: false, configurable: false });
    return form;
  }

  /** The job remembered as stored under `id`, if any. */
  lookup(id: string): Job | undefined {
    const job = this.known.get(id);
    return job !== undefined && isKnown(job) ? job : undefined;
  }

  /** Remembers a job as stored, while there is room. */
  remember(job: Job): void {
    if (this.known.size >= this.rememberAtMost && this.staleKnown > 0) {
      for (const [id, held] of this.known) if (!isKnown(held)) this.known.delete(id);
      this.staleKnown = 0;
    }
    if (this.known.size >= this.rememberAtMost) return;
    this.known.set(job.id, job);
    this.formOf(job).known = true;
  }

  /**
   * A job was written (created, changed or deleted): what was remembered of it is stale (`was`: the
   * object stored before, when there was one), and so is a `due` read in flight.
   */
  noteJobWrite(id: string, was?: Job): void {
    if (was !== undefined && isKnown(was)) {
      // Its map entry is left behind, marked stale (no map deletion per delivered webhook): the
      // lookups skip it, and `remember` sweeps such entries out when the map is full.
      this.formOf(was).known = false;
      this.staleKnown++;
    } else this.known.delete(id);
    if (this.jobReads > 0) this.writtenDuringReads.add(id);
  }

  /** A `due` read of jobs starts: writes from now on are noted until it ends. */
  readStarted(): void {
    if (this.jobReads === 0) this.writtenDuringReads.clear();
    this.jobReads++;
  }

  readEnded(): void {
    this.jobReads--;
  }

  /** Remembers a job a `due` read returned, unless it was written while the read was in flight. */
  rememberRead(job: Job): void {
    if (!this.writtenDuringReads.has(job.id)) this.remember(job);
  }
}
