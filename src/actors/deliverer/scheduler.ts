/**
 * The Scheduler: which ready job is sent next, so that endpoints share the delivery slots fairly and
 * slow or hanging endpoints cannot take them all.
 *
 * Two lanes of HTTP requests:
 * - the fast lane: at most `concurrency` requests (default 64), each for at most `slowAfterMs` (1 s).
 *   A request still unanswered then ages out of it: it moves aside (up to `concurrency` aged requests,
 *   room for the whole fast lane to age at once; past that it stays until one ends) and its slot goes
 *   to the next job.
 * - the slow lane: requests of endpoints known to be slow, started while fewer than `slowConcurrency`
 *   (default 64) are out there; endpoints we have no answer from (silent, or new ones past their fast
 *   share) hold at most half of it.
 * So requests in flight are at most `concurrency` + `slowConcurrency` + `concurrency` (`requestSlots`:
 * the HTTP client's limit), and however many endpoints hang, each holds a fast slot for `slowAfterMs`
 * at most, and together they hold half the slow lane plus what aged.
 *
 * Each endpoint has a standing, set by how its requests end:
 * - `new`: nothing ended yet since the loop met it. One request at a time. New endpoints together hold
 *   at most `concurrency` − min(`perEndpointConcurrency`, `concurrency` / 2) fast slots, so an endpoint
 *   known to be fast always finds one; past that share a new endpoint's request takes the slow lane's
 *   room for silent ones. When the node starts with many endpoints that hang, that many are tried at
 *   once, and the rest as the fast lane's requests age, `slowAfterMs` apart.
 * - `fast`: its last request ended within `slowAfterMs` (an answer, or a quick failure: it held its slot
 *   briefly). Up to `perEndpointConcurrency` (default 8) requests at once, in the fast lane.
 * - `slow`: its last answer came, but later than that. Up to `perEndpointConcurrency` at once, in the
 *   slow lane, ahead of silent endpoints.
 * - `silent`: its last request got no answer and took longer than that (a timeout), or one of its
 *   requests is aging unanswered; also an endpoint stored with a failure streak (`markFailing`, when
 *   the loop loads it). Up to `perEndpointConcurrency` at once, in the slow lane's silent half.
 * One request ending within `slowAfterMs` makes any endpoint fast again; an answer that came late
 * makes it slow, not silent, so an endpoint mistaken for a hanging one (a stall of our own event loop)
 * finds its way back through the slow lane's other half.
 * Endpoints with ready jobs take turns, one job per turn (round robin), whatever their backlog: in the
 * fast lane new and fast endpoints alternate, and within each standing an endpoint with a thousand
 * jobs ready and one with a single job alternate.
 *
 * Memory: the backlog stays in the outbox. An endpoint that is not known to be fast keeps one ready job
 * (`offer` refuses the rest, which stay in the outbox); a fast one keeps what a scan brings (its jobs go
 * soon), and is passed over by scans while it holds `perEndpointConcurrency` or more; all endpoints
 * together keep at most `maxReady` from scans (each scan asks for no more than the room left). Jobs
 * released from a hold come back past these caps (they were in memory already, bounded by the holds'
 * own capacity). `skipping()` names the endpoints a scan should pass over (their ready jobs are enough,
 * or their part of the slow lane is full), so the jobs of
 * other endpoints behind theirs are found. An endpoint passed over while a scan came back short, or whose
 * job `offer` refused, is `leftBehind`: when it can take jobs again (at once, if its ready jobs went
 * while the scan ran) the Scheduler asks for a scan (`hooks.rescan`). When the ready jobs reach `maxReady`, `evictBlocked` hands back those of endpoints
 * whose part of the slow lane is full (they stay in the outbox).
 *
 * The standing of every endpoint met is kept (one small record each, like the guards'), so a hanging
 * endpoint stays silent between its retries; `forget` drops it when the endpoint is deleted. Aging
 * costs one timer for all requests (they age in the order they went out) and no timer per request.
 */
import { performance } from 'node:perf_hooks';
import type { Job } from '../../store/outbox/job.ts';

export type Standing = 'new' | 'fast' | 'slow' | 'silent';

export interface SchedulerOptions {
  /** Requests in the fast lane at most. */
  concurrency?: number;
  /** Requests of one endpoint in flight at most. */
  perEndpointConcurrency?: number;
  /** Requests started in the slow lane at most. */
  slowConcurrency?: number;
  /** A request unanswered this long leaves the fast lane; an endpoint answering later is slow. */
  slowAfterMs?: number;
  /** Ready jobs read from the outbox and kept in memory at most. Default 8 × concurrency. */
  maxReady?: number;
}

/** The defaults of the options the configuration sets (`deliverer.*`, whose schema reads them here). */
export const DEFAULT_SCHEDULER_OPTIONS = Object.freeze({
  concurrency: 64,
  perEndpointConcurrency: 8,
  slowConcurrency: 64,
  slowAfterMs: 1_000,
});

export interface SchedulerHooks {
  /** A fast slot came free without an answer (a request aged out of the fast lane): start what can go. */
  room(): void;
  /** Jobs left in the outbox for an endpoint that can take them now: scan again. */
  rescan(): void;
}

/** The defaults, filled in one place. */
export function schedulerConfig(o: SchedulerOptions = {}): Required<SchedulerOptions> {
  const d = DEFAULT_SCHEDULER_OPTIONS;
  const concurrency = o.concurrency ?? d.concurrency;
  return {
    concurrency,
    perEndpointConcurrency: o.perEndpointConcurrency ?? d.perEndpointConcurrency,
    slowConcurrency: o.slowConcurrency ?? d.slowConcurrency,
    slowAfterMs: o.slowAfterMs ?? d.slowAfterMs,
    maxReady: o.maxReady ?? concurrency * 8,
  };
}

/** HTTP requests the Scheduler may have in flight at once: the HTTP client's limit. */
export function requestSlots(o: SchedulerOptions = {}): number {
  const c = schedulerConfig(o);
  return c.concurrency * 2 + c.slowConcurrency;
}

/** One endpoint as the Scheduler sees it. */
interface Line {
  readonly id: string;
  standing: Standing;
  /** Requests started and not yet over. */
  inFlight: number;
  /** Ready jobs, oldest first. */
  jobs: Job[];
  /** In its standing's ring now (it may have left the conditions since: checked when its turn comes). */
  ringed: boolean;
  /** Jobs of it were left in the outbox: scan again when it can take some. */
  leftBehind: boolean;
}

/**
 * Where a request is counted: `fast` (the fast lane; `trial` when a new endpoint's), `aged` (aged out of
 * it), `slow` (started in the slow lane) or `quiet` (started in the slow lane's half for silent and new
 * endpoints).
 */
type Slot = 'fast' | 'aged' | 'slow' | 'quiet';

/** One request. */
export class Flight {
  /** When the HTTP request went out (performance.now()); 0 while the job is still being admitted. */
  sentAt = 0;

  constructor(
    readonly job: Job,
    /** @internal */ readonly line: Line,
    /** @internal */ public slot: Slot,
    /** @internal */ public trial: boolean,
  ) {}
}

/** Lines taking turns, first in first out: an array and a head index (Array#shift is O(n)). Bounded by the lines with ready jobs. */
class Ring {
  private items: Line[] = [];
  private head = 0;

  push(line: Line): void {
    this.items.push(line);
  }

  shift(): Line | undefined {
    if (this.head >= this.items.length) return undefined;
    const line = this.items[this.head++];
    if (this.head === this.items.length || (this.head > 1024 && this.head * 2 > this.items.length)) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return line;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

export class Scheduler {
  readonly cfg: Required<SchedulerOptions>;
  /** Fast slots new endpoints may hold together. */
  private readonly trialShare: number;
  /** Slow-lane starts silent and new endpoints may hold together. */
  private readonly quietShare: number;
  /** Every endpoint met: bounded by the endpoints that have had jobs. */
  private readonly lines = new Map<string, Line>();
  /** Lines with ready jobs that can start one, by standing: the turns. */
  private readonly rings: Record<Standing, Ring> = { new: new Ring(), fast: new Ring(), slow: new Ring(), silent: new Ring() };
  /** Whose turn it is in the fast lane: new or fast endpoints (they alternate). */
  private newTurn = false;
  /** Fast-lane requests, in the order they went out: the next to age is first. At most `concurrency`. */
  private readonly young = new Set<Flight>();
  private counts: Record<Slot, number> = { fast: 0, aged: 0, slow: 0, quiet: 0 };
  private trials = 0;
  /** Ready jobs in all lines, and those of new and fast endpoints. */
  private ready = 0;
  private readyFast = 0;
  /** Lines of slow and silent endpoints. */
  private slowLines = 0;
  /** Endpoints were passed over by a scan because their part of the slow lane was full. */
  private slowLeftBehind = false;
  /** An aged request stays in the fast lane for want of room: sweep again when an aged one ends. */
  private stuck = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    options: SchedulerOptions,
    private readonly hooks: SchedulerHooks,
  ) {
    this.cfg = schedulerConfig(options);
    this.trialShare = this.cfg.concurrency - Math.min(this.cfg.perEndpointConcurrency, Math.floor(this.cfg.concurrency / 2));
    this.quietShare = Math.max(1, Math.floor(this.cfg.slowConcurrency / 2));
  }

  /** Ready jobs held now. */
  get queued(): number {
    return this.ready;
  }

  /** Requests out of the fast lane now: aged, or started in the slow lane. */
  get slowLane(): number {
    return this.counts.aged + this.counts.slow;
  }

  /** Room for jobs from a scan (`maxReady` less those held). */
  get room(): number {
    return Math.max(0, this.cfg.maxReady - this.ready);
  }

  /**
   * Whether a scan could help: the fast lane has a free slot (after `next` found nothing to start, no
   * ready job can take it), or fewer ready jobs than a lane's worth wait for it (read-ahead), or there
   * are slow endpoints and the slow lane has more room than ready jobs for it. Ready jobs of endpoints
   * at their limit count too, so this may say no while they wait; a slot coming free says yes again.
   */
  wantsJobs(): boolean {
    if (this.counts.fast < this.cfg.concurrency || this.readyFast < this.cfg.concurrency) return true;
    return this.slowLines > 0 && this.ready - this.readyFast < this.cfg.slowConcurrency - this.counts.slow;
  }

  /**
   * A job a scan found: kept (true), or refused (it stays in the outbox) because its endpoint is not
   * known to be fast and has a ready job already. A fast endpoint's jobs are all kept (they go soon; the
   * scan's own limit bounds them), and its line is passed over by later scans while it holds enough.
   */
  offer(job: Job): boolean {
    const line = this.line(job.endpointId);
    if (line.standing !== 'fast' && line.jobs.length >= this.readyCap(line)) {
      line.leftBehind = true;
      return false;
    }
    this.enqueue(line, job);
    return true;
  }

  /** A job back from a hold: kept whatever the caps (it was in memory already). */
  requeue(job: Job): void {
    this.enqueue(this.line(job.endpointId), job);
  }

  /** The endpoints a scan should pass over now: their ready jobs are enough, or their part of the slow lane is full. */
  skipping(): Set<string> {
    const skip = new Set<string>();
    for (const line of this.lines.values()) if (line.jobs.length >= this.readyCap(line) || this.laneFull(line)) skip.add(line.id);
    return skip;
  }

  /**
   * The last scan passed over `skipped` and found fewer jobs than it asked for: their jobs may be
   * waiting. A line that can already take jobs (its ready ones went while the scan ran) asks for a scan
   * at once: nothing else would (its next request ending, if it has one in flight at all).
   */
  shortScan(skipped: ReadonlySet<string>): void {
    for (const id of skipped) {
      const line = this.lines.get(id);
      if (line === undefined) continue;
      line.leftBehind = true;
      if (this.laneFull(line)) this.slowLeftBehind = true;
      this.roomFor(line);
    }
  }

  /**
   * The next job to start, counted in its lane and its endpoint, or null when nothing can start now.
   * The fast lane first (new and fast endpoints alternate; new ones within their share), then the slow
   * lane (slow endpoints first, then new and silent ones within their half).
   */
  next(): Flight | null {
    if (this.counts.fast < this.cfg.concurrency) {
      const trials = this.trials < this.trialShare;
      this.newTurn = !this.newTurn;
      const flight =
        this.newTurn && trials
          ? (this.take('new', 'fast') ?? this.take('fast', 'fast'))
          : (this.take('fast', 'fast') ?? (trials ? this.take('new', 'fast') : null));
      if (flight !== null) return flight;
    }
    if (this.counts.slow >= this.cfg.slowConcurrency) return null;
    const slow = this.take('slow', 'slow');
    if (slow !== null || this.counts.quiet >= this.quietShare) return slow;
    return this.take('new', 'quiet') ?? this.take('silent', 'quiet');
  }

  /** The request goes out now: from here its time in the fast lane counts. */
  sending(flight: Flight): void {
    flight.sentAt = performance.now();
    if (flight.slot !== 'fast') return;
    this.young.add(flight);
    if (this.timer === null) this.arm(this.cfg.slowAfterMs);
  }

  /**
   * The request ended after `durationMs`, `answered` (an HTTP status came) or not: it leaves its lane
   * and sets its endpoint's standing.
   */
  answered(flight: Flight, durationMs: number, answered: boolean): void {
    this.restand(flight.line, durationMs < this.cfg.slowAfterMs ? 'fast' : answered ? 'slow' : 'silent');
    this.leave(flight);
  }

  /** The job did not go out (held, dead-lettered, failed before sending): it leaves its lane, the standing stays. */
  dropped(flight: Flight): void {
    this.leave(flight);
  }

  /** An endpoint stored with a failure streak, just loaded: silent until a request of it ends in time (unless one has). */
  markFailing(endpointId: string): void {
    const line = this.line(endpointId);
    if (line.standing === 'new') this.restand(line, 'silent');
  }

  /** The endpoint was deleted: its record goes once nothing of it is in hand (ready jobs stay, to be dead-lettered). */
  forget(endpointId: string): void {
    const line = this.lines.get(endpointId);
    if (line === undefined || line.inFlight > 0 || line.jobs.length > 0 || line.ringed) return;
    if (isSlow(line.standing)) this.slowLines--;
    this.lines.delete(endpointId);
  }

  /**
   * Ready jobs of endpoints whose part of the slow lane is full, handed back to go back to the outbox
   * (scans pass over those endpoints until it has room): for when the ready jobs fill `maxReady`.
   */
  evictBlocked(): Job[] {
    const out: Job[] = [];
    for (const line of this.lines.values()) {
      if (line.jobs.length === 0 || !this.laneFull(line)) continue;
      out.push(...line.jobs);
      this.count(line, -line.jobs.length);
      line.jobs = [];
      line.leftBehind = true;
      this.slowLeftBehind = true;
    }
    return out;
  }

  /** Stops aging and lets go of every ready job and standing (the loop has stopped; the jobs stay in the outbox). */
  clear(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.lines.clear();
    for (const ring of Object.values(this.rings)) ring.clear();
    this.young.clear();
    this.counts = { fast: 0, aged: 0, slow: 0, quiet: 0 };
    this.trials = this.ready = this.readyFast = this.slowLines = 0;
    this.slowLeftBehind = this.stuck = false;
  }

  private line(id: string): Line {
    let line = this.lines.get(id);
    if (line === undefined) {
      line = { id, standing: 'new', inFlight: 0, jobs: [], ringed: false, leftBehind: false };
      this.lines.set(id, line);
    }
    return line;
  }

  private limit(line: Line): number {
    return line.standing === 'new' ? 1 : this.cfg.perEndpointConcurrency;
  }

  /** Ready jobs a line keeps from scans: what it can start when its turns come (one unless fast). */
  private readyCap(line: Line): number {
    return line.standing === 'fast' ? this.cfg.perEndpointConcurrency : 1;
  }

  /** The line's standing starts in the slow lane, and its part of it is full. */
  private laneFull(line: Line): boolean {
    if (line.standing === 'slow') return this.counts.slow >= this.cfg.slowConcurrency;
    if (line.standing === 'silent') return this.counts.slow >= this.cfg.slowConcurrency || this.counts.quiet >= this.quietShare;
    return false;
  }

  private enqueue(line: Line, job: Job): void {
    line.jobs.push(job);
    this.count(line, 1);
    this.ring(line);
  }

  private count(line: Line, n: number): void {
    this.ready += n;
    if (!isSlow(line.standing)) this.readyFast += n;
  }

  /** Puts a line that can start a job in its standing's ring (once). */
  private ring(line: Line): void {
    if (line.ringed || line.jobs.length === 0 || line.inFlight >= this.limit(line)) return;
    line.ringed = true;
    this.rings[line.standing].push(line);
  }

  /** The next job of the endpoints of `standing` whose turn it is, started in `slot`; null when none has one. */
  private take(standing: Standing, slot: Slot): Flight | null {
    const ring = this.rings[standing];
    for (let line = ring.shift(); line !== undefined; line = ring.shift()) {
      line.ringed = false;
      // A line whose standing changed since it joined this ring moves to its own.
      if (line.standing !== standing) this.ring(line);
      else if (line.jobs.length > 0 && line.inFlight < this.limit(line)) return this.start(line, slot);
    }
    return null;
  }

  private start(line: Line, slot: Slot): Flight {
    const job = line.jobs.shift() as Job;
    this.count(line, -1);
    const flight = new Flight(job, line, slot, slot === 'fast' && line.standing === 'new');
    line.inFlight++;
    this.counts[slot]++;
    if (slot === 'quiet') this.counts.slow++;
    if (flight.trial) this.trials++;
    this.ring(line);
    this.roomFor(line);
    return flight;
  }

  private leave(flight: Flight): void {
    const line = flight.line;
    line.inFlight--;
    if (flight.trial) this.trials--;
    const slowWasFull = this.counts.slow >= this.cfg.slowConcurrency || this.counts.quiet >= this.quietShare;
    this.counts[flight.slot]--;
    if (flight.slot === 'quiet') this.counts.slow--;
    if (flight.slot === 'fast') this.young.delete(flight);
    if (slowWasFull && this.slowLeftBehind && (flight.slot === 'slow' || flight.slot === 'quiet')) {
      this.slowLeftBehind = false;
      this.hooks.rescan();
    }
    this.ring(line);
    this.roomFor(line);
    // An aged request kept in the fast lane for want of room may move now.
    if (flight.slot === 'aged' && this.stuck) this.sweep();
  }

  /** A line with jobs left in the outbox that can take more now asks for a scan. */
  private roomFor(line: Line): void {
    if (line.leftBehind && line.jobs.length < this.readyCap(line) && !this.laneFull(line)) {
      line.leftBehind = false;
      this.hooks.rescan();
    }
  }

  private restand(line: Line, standing: Standing): void {
    if (line.standing === standing) return;
    this.count(line, -line.jobs.length);
    this.slowLines -= isSlow(line.standing) ? 1 : 0;
    line.standing = standing;
    this.slowLines += isSlow(standing) ? 1 : 0;
    this.count(line, line.jobs.length);
    // A line in its old standing's ring moves when its turn comes there (`take`); one in no ring is put in its new one now.
    this.ring(line);
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.sweep(), ms);
    // The requests in flight keep the process alive, not this timer.
    this.timer.unref();
  }

  /** Moves the requests out longer than `slowAfterMs` out of the fast lane (their endpoints are silent until they end). */
  private sweep(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.stuck = false;
    const now = performance.now();
    let moved = 0;
    for (const flight of this.young) {
      const left = flight.sentAt + this.cfg.slowAfterMs - now;
      if (left > 0) {
        this.arm(left);
        break;
      }
      this.restand(flight.line, 'silent');
      if (this.counts.aged >= this.cfg.concurrency) {
        // No room: it stays in the fast lane (its endpoint starts no more there) until an aged request ends.
        this.stuck = true;
        this.arm(this.cfg.slowAfterMs);
        break;
      }
      this.young.delete(flight);
      flight.slot = 'aged';
      this.counts.fast--;
      this.counts.aged++;
      if (flight.trial) {
        flight.trial = false;
        this.trials--;
      }
      moved++;
    }
    if (moved > 0) this.hooks.room();
  }
}

function isSlow(standing: Standing): boolean {
  return standing === 'slow' || standing === 'silent';
}
