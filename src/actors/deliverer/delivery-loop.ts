/**
 * The delivery loop: drains due jobs from the outbox and turns each into one signed HTTP attempt.
 *
 * Loop: scan the outbox for up to `batchSize` due jobs (passing over the jobs in flight, ready or held,
 * and the endpoints that cannot take more: `Scheduler.skipping`), hand them to the Scheduler
 * (scheduler.ts), start what it lets go, and sleep until the earliest of: a new job (`outbox.onEnqueue`
 * → `wake`), a slot or an endpoint freed with jobs left in the outbox, a hold expiring, the next
 * scheduled job, `idlePollMs`. A scan is read ahead while the jobs in hand are sent, so the pipe never
 * runs dry.
 *
 * Fairness (scheduler.ts has the whole of it): endpoints take turns for the `concurrency` fast slots,
 * each with at most `perEndpointConcurrency` requests in flight; a request unanswered after
 * `slowAfterMs` moves to a bounded slow lane (`slowConcurrency`) and its endpoint is slow, starting its
 * next requests there, until it answers in time again. So endpoints that hang, however many, hold a fast
 * slot each for `slowAfterMs` at most, and every other endpoint keeps the fast lane. Ready jobs are
 * bounded (`maxReady`, and a few per endpoint); the backlog stays in the outbox.
 *
 * One job (`attempt`, one async frame per webhook):
 * 1. Its endpoint (endpoint-cache.ts; the fast path is a fresh cached entry, no await).
 * 2. Admission (admission.ts): deleted or disabled → dead letter; paused, rate-limited, breaker open →
 *    held in memory (holds.ts) or, with no room, postponed in the outbox without counting an attempt.
 * 3. Sign (Standard Webhooks, fresh timestamp, every active secret), POST through the HTTP client.
 * 4. Outcome (outcome.ts): guards and the decision (retry.ts), then exactly one outbox write that also
 *    records the attempt: `complete`, `reschedule`, or `deadLetter`. A 410 disables the endpoint first;
 *    so does a failure streak lasting `guards.disable.afterMs`. A breaker that closes or re-opens
 *    releases its endpoint's held jobs (to go, or to wait for the new cool-down rather than for the
 *    probe's timeout). The job's slot is freed once the answer is decided, while its outbox write waits
 *    for the next group commit; at most 3 × `concurrency` writes wait at once.
 *
 * Across a cluster (`deps.limits`: the store shares delivery limits between instances): an endpoint's
 * rate limit is one bucket in the store, spent by every instance a slice at a time (rate-slices.ts), and
 * a breaker opened by any instance is open on all within `breakerPollMs` (shared-breakers.ts). Without
 * it (LevelDB: one process) the guards are this loop's own, in memory.
 *
 * Claims: an outbox shared by several instances (`outbox.claimMs` set) gives each job `due` returned to
 * this instance until `claimMs` after the scan; past that any instance may claim it. So a job is sent
 * only while its claim has `sendMarginMs` left (default the request's timeout plus 5 s: the answer
 * comes while the job is still ours); one kept in memory longer (a backlog behind a rate limit, a
 * concurrency slot, a hold: a hold ends by then, admission.ts) is let go instead, to be scanned again
 * (the scan renews this instance's own claims) or taken by another instance once its claim has ended.
 *
 * Durability: a job leaves the outbox only through `complete` (after a 2xx) or `deadLetter`; a crash
 * between the HTTP answer and that write redelivers the job later with the same `webhook-id`.
 * Order: webhooks are not kept in order, but for one (subscription, log), whose later webhooks (a
 * `log.removed`, the next generation's `log.created`) the outbox makes due only once the one before has
 * left it (src/store/outbox/contract.ts): the loop sends what is due. An outbox read failing because
 * the store is unreachable (ETHHOOK_ERR_STORE_UNAVAILABLE, once the store's own retries are spent) is
 * logged and the scan tried again after `errorHoldMs`; any other failing read stops the loop and reports
 * through `onFatal` (the actor then fails and its supervisor restarts it); a failure while processing
 * one job is logged and the job held for `errorHoldMs`.
 */
import { DEFAULT_HTTP_CLIENT_OPTIONS } from './http-client.ts';
import { deferred, type Deferred } from '../../runtime/deferred.ts';
import { isEthhookError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import type { Job } from '../../store/outbox/job.ts';
import { Admission } from './admission.ts';
import type { BreakerAction, BreakerView } from './circuit-breaker.ts';
import { EndpointCache, type SendableEntry } from './endpoint-cache.ts';
import { EndpointGuards, type GuardConfig } from './endpoint-guard.ts';
import type { HttpAttempt } from './http-client.ts';
import { Holds } from './holds.ts';
import type { DelivererMetrics } from './metrics.ts';
import { Outcome } from './outcome.ts';
import type { EndpointPort, OutboxPort, WebhookPoster } from './ports.ts';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.ts';
import { RateSlices } from './rate-slices.ts';
import { Scheduler, type Flight, type SchedulerOptions } from './scheduler.ts';
import { DEFAULT_BREAKER_POLL_MS, SharedBreakers } from './shared-breakers.ts';
import type { DeliveryLimits } from '../../store/delivery-limits.ts';
import { signWithKeys } from '../../webhook-signing.ts';

export interface DeliveryLoopDeps {
  outbox: OutboxPort;
  endpoints: EndpointPort;
  /** Limits shared with the other instances of a cluster (see the module header); none: this loop's own. */
  limits?: DeliveryLimits;
  client: WebhookPoster;
  logger: Logger;
  metrics?: DelivererMetrics;
  now?: () => number;
  random?: () => number;
  onFatal?: (err: unknown) => void;
}

export interface DeliveryLoopOptions extends SchedulerOptions {
  /** Jobs read per outbox scan. Default 2 × concurrency. */
  batchSize?: number;
  retry?: RetryPolicy;
  guards?: GuardConfig;
  /** Jobs held in memory at most (rate limit, breaker, pause). Default 10,000. */
  maxHeld?: number;
  /** A job that cannot go while `maxHeld` are held waits in the outbox this long at least. Default 5 s. */
  postponeMs?: number;
  endpointCacheMs?: number;
  pausedRecheckMs?: number;
  errorHoldMs?: number;
  idlePollMs?: number;
  /** A claimed job is sent only while its claim has this long left. Default 20 s (the default request timeout and 5 s). */
  sendMarginMs?: number;
  /** How often the cluster's open breakers are read (with `deps.limits`). Default 1 s. */
  breakerPollMs?: number;
}

/** How long a claim must still run when its job is sent, beyond the request's timeout. */
export const CLAIM_SAFETY_MS = 5_000;
export const DEFAULT_SEND_MARGIN_MS = DEFAULT_HTTP_CLIENT_OPTIONS.requestTimeoutMs + CLAIM_SAFETY_MS;

export interface DeliveryLoopStatus {
  running: boolean;
  inFlight: number;
  ready: number;
  held: number;
  /** Requests out of the fast lane now: aged unanswered, or started in the slow lane. */
  slowLane: number;
  openBreakers: string[];
}

export class DeliveryLoop {
  private readonly cfg: { batchSize: number; maxWriting: number; errorHoldMs: number; idlePollMs: number; sendMarginMs: number };
  /** Per job in hand from a claiming outbox: when its claim ends (ms). Weak: it goes with the job. */
  private readonly claimEnds = new WeakMap<Job, number>();
  private readonly sharedBreakers: SharedBreakers | null = null;
  private readonly guards: EndpointGuards;
  private readonly holds: Holds<Job>;
  private readonly scheduler: Scheduler;
  private readonly cache: EndpointCache;
  private readonly admission: Admission;
  private readonly outcome: Outcome;
  private readonly now: () => number;
  /** Ids in flight, ready or held: what an outbox scan must skip. */
  private readonly taken = new Set<string>();
  /** Jobs between dispatch and their settled outbox write. */
  private inFlight = 0;
  /** Of those, the ones not past their HTTP attempt yet (they hold a Scheduler slot). */
  private sending = 0;
  /** While `stop` waits for the jobs in flight to settle: resolved when the last one has. */
  private drained: Deferred<void> | null = null;
  /** Endpoints whose breaker is open (status); at most one per endpoint. */
  private readonly breakerOpen = new Set<string>();
  private running = false;
  private loop: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  /** A wake that came while the loop was busy: the next sleep returns at once instead of missing it. */
  private wakePending = false;
  private fetching: Promise<void> | null = null;
  /** What the last outbox scan threw (boxed: a thrown value may be anything, null included). */
  private fetchFailure: { error: unknown } | null = null;
  /** No outbox scan before this time (ms): the last one found nothing due. */
  private rescanAt = 0;
  private rescanEpoch = 0;
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly deps: DeliveryLoopDeps,
    options: DeliveryLoopOptions = {},
  ) {
    this.scheduler = new Scheduler(options, { room: () => this.slotFreed(), rescan: () => this.rescanBy(0) });
    const concurrency = this.scheduler.cfg.concurrency;
    this.cfg = {
      batchSize: options.batchSize ?? concurrency * 2,
      maxWriting: concurrency * 3,
      errorHoldMs: options.errorHoldMs ?? 5_000,
      idlePollMs: options.idlePollMs ?? 1_000,
      sendMarginMs: options.sendMarginMs ?? DEFAULT_SEND_MARGIN_MS,
    };
    this.now = deps.now ?? Date.now;
    if (deps.limits === undefined) this.guards = new EndpointGuards(options.guards, deps.metrics);
    else {
      const limits = deps.limits;
      const rate = new RateSlices(
        limits,
        { tokens: (id) => this.release(this.holds.releaseEndpoint(id)) },
        deps.logger,
        this.now,
        this.cfg.errorHoldMs,
      );
      const breakers = new SharedBreakers(
        limits,
        { open: (id, remainingMs, cooldownMs) => this.adoptOpen(id, remainingMs, cooldownMs), cleared: (id) => this.clearedElsewhere(id) },
        deps.logger,
        options.breakerPollMs ?? DEFAULT_BREAKER_POLL_MS,
      );
      this.sharedBreakers = breakers;
      this.guards = new EndpointGuards(options.guards, deps.metrics, {
        rate,
        transition: (id, transition, state) => breakers.transitioned(id, transition, state),
      });
    }
    this.holds = new Holds(options.maxHeld ?? 10_000);
    this.cache = new EndpointCache(deps.endpoints, options.endpointCacheMs ?? 1_000, (endpoint) => {
      if (!endpoint.failing) return;
      this.guards.seedStreak(endpoint.id, endpoint.failing);
      this.scheduler.markFailing(endpoint.id);
    });
    this.admission = new Admission(
      { pausedRecheckMs: options.pausedRecheckMs ?? 5_000, postponeMs: options.postponeMs ?? 5_000 },
      this.guards,
      this.holds,
      deps.outbox,
      (at) => this.rescanBy(at),
    );
    this.outcome = new Outcome(
      {
        outbox: deps.outbox,
        endpoints: deps.endpoints,
        guards: this.guards,
        logger: deps.logger,
        metrics: deps.metrics,
        retry: options.retry ?? DEFAULT_RETRY_POLICY,
        random: deps.random ?? Math.random,
      },
      {
        breaker: (endpointId, transition) => {
          if (transition === 'opened') this.breakerOpen.add(endpointId);
          else if (transition === 'closed') this.breakerOpen.delete(endpointId);
          // Jobs held behind a probe wait for its result: closed lets them go, re-opened re-holds them
          // until the new cool-down ends (they were held until the probe's timeout).
          this.release(this.holds.releaseEndpoint(endpointId));
        },
        disabled: (endpointId) => {
          this.cache.delete(endpointId);
          this.breakerOpen.delete(endpointId);
          this.release(this.holds.releaseEndpoint(endpointId));
        },
        rescanBy: (at) => this.rescanBy(at),
      },
    );
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.fetchFailure = null;
    this.rescanAt = 0;
    this.unsubscribe = this.deps.outbox.onEnqueue(() => this.rescanBy(0));
    this.sharedBreakers?.start();
    this.loop = this.run().catch((err: unknown) => {
      this.running = false;
      this.deps.logger.error({ err }, 'delivery loop stopped: outbox read failed');
      this.deps.onFatal?.(err);
    });
  }

  /**
   * Stops taking jobs and waits for the attempts in flight (the owner may abort them through the
   * client; an aborted attempt is not recorded). Held and ready jobs simply stay in the outbox.
   */
  async stop(): Promise<void> {
    this.running = false;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.wake();
    await this.loop;
    if (this.inFlight > 0) await (this.drained ??= deferred<void>()).promise;
    await this.sharedBreakers?.stop();
    this.scheduler.clear();
    this.holds.clear();
    this.taken.clear();
  }

  /** Look at the outbox now (new jobs were written elsewhere). */
  poke(): void {
    this.rescanBy(0);
  }

  /** Forgets the cached endpoint (edited, rotated, enabled, deleted); a deleted one loses its guards and standing too. */
  invalidateEndpoint(endpointId: string, deleted = false): void {
    this.cache.delete(endpointId);
    if (deleted) {
      this.guards.forget(endpointId);
      this.sharedBreakers?.forget(endpointId);
      this.breakerOpen.delete(endpointId);
      this.scheduler.forget(endpointId);
    }
    this.release(this.holds.releaseEndpoint(endpointId));
  }

  /**
   * An endpoint's breaker, after an operator's `close` or `probe` when one is given: the jobs held behind
   * it are released, so they are admitted again at once (after a probe, the first of them is the probe).
   */
  breaker(endpointId: string, action?: BreakerAction): BreakerView {
    if (action !== undefined) {
      if (this.guards.operate(endpointId, action, this.now()) === 'closed') this.breakerOpen.delete(endpointId);
      this.release(this.holds.releaseEndpoint(endpointId));
    }
    return this.guards.view(endpointId);
  }

  status(): DeliveryLoopStatus {
    return {
      running: this.running,
      inFlight: this.inFlight,
      ready: this.scheduler.queued,
      held: this.holds.size,
      slowLane: this.scheduler.slowLane,
      openBreakers: [...this.breakerOpen].sort(),
    };
  }

  /** Another instance holds the endpoint's breaker open: ours is open too, its held jobs looked at again. */
  private adoptOpen(endpointId: string, remainingMs: number, cooldownMs: number): void {
    if (this.guards.adopt(endpointId, remainingMs, cooldownMs, this.now())) {
      this.deps.logger.warn({ endpointId, remainingMs }, 'circuit breaker opened by another instance');
    }
    if (this.guards.state(endpointId) !== 'closed') this.breakerOpen.add(endpointId);
    this.release(this.holds.releaseEndpoint(endpointId));
  }

  /** Another instance closed the endpoint's breaker: ours closes, its held jobs go. */
  private clearedElsewhere(endpointId: string): void {
    if (!this.guards.clearedElsewhere(endpointId)) return;
    this.deps.logger.info({ endpointId }, 'circuit breaker closed by another instance');
    this.breakerOpen.delete(endpointId);
    this.release(this.holds.releaseEndpoint(endpointId));
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    if (w) w();
    else this.wakePending = true;
  }

  private async run(): Promise<void> {
    while (this.running) {
      if (this.fetchFailure !== null) throw this.fetchFailure.error;
      const now = this.now();
      this.release(this.holds.releaseDue(now));
      this.pump();
      if (this.fetching === null && now >= this.rescanAt && this.scheduler.wantsJobs()) {
        // Ready jobs at their bound and none can go: those of blocked endpoints go back to the outbox.
        if (this.scheduler.room === 0) for (const job of this.scheduler.evictBlocked()) this.taken.delete(job.id);
        if (this.scheduler.room > 0) this.fetching = this.fetch();
      }
      let delay = this.cfg.idlePollMs;
      if (this.rescanAt > now) delay = Math.min(delay, this.rescanAt - now);
      const nextRelease = this.holds.nextRelease();
      if (nextRelease !== undefined) delay = Math.min(delay, Math.max(0, nextRelease - now));
      await this.sleep(delay);
    }
    await this.fetching;
  }

  /** One outbox scan; when it finds nothing, the next is due when the earliest job is, or after idlePollMs. */
  private async fetch(): Promise<void> {
    try {
      const now = this.now();
      const epoch = this.rescanEpoch;
      const skipEndpoints = this.scheduler.skipping();
      const limit = Math.min(this.cfg.batchSize, this.scheduler.room);
      const jobs = await this.deps.outbox.due(now, limit, { exclude: this.taken, skipEndpoints });
      const claimMs = this.deps.outbox.claimMs;
      let kept = 0;
      for (const job of jobs) {
        // A scan's snapshot can predate a reschedule that just finished: skip jobs not due by now. A job
        // the Scheduler has no room for stays in the outbox.
        if (job.nextAttemptAt > now || !this.scheduler.offer(job)) continue;
        this.taken.add(job.id);
        if (claimMs !== undefined) this.claimEnds.set(job, now + claimMs);
        kept++;
      }
      if (jobs.length < limit && skipEndpoints.size > 0) this.scheduler.shortScan(skipEndpoints);
      // Nothing kept (the scan reads memory, so scanning again at once would spin without yielding):
      // the next scan waits for a hint (an enqueue, an endpoint taking jobs again) or the next due job.
      if (kept === 0) {
        const nextDue = await this.deps.outbox.nextDueAt();
        const idleUntil = now + this.cfg.idlePollMs;
        // A hint that came during the scan (enqueue, reschedule) wins: the scan may not have seen it.
        if (epoch === this.rescanEpoch) this.rescanAt = nextDue !== undefined && nextDue > now ? Math.min(nextDue, idleUntil) : idleUntil;
      }
    } catch (err) {
      if (isEthhookError(err, 'ETHHOOK_ERR_STORE_UNAVAILABLE')) {
        // The store retried for its whole retry window and still does not answer: the jobs are in it,
        // so the loop waits (errorHoldMs) and scans again, however long the outage lasts.
        this.deps.logger.warn({ err: (err as Error).message, retryInMs: this.cfg.errorHoldMs }, 'outbox unreachable; scanning again later');
        this.rescanAt = this.now() + this.cfg.errorHoldMs;
      } else this.fetchFailure = { error: err };
    } finally {
      this.fetching = null;
      this.wake();
    }
  }

  /** Something may be due at `at` (an enqueue: now; a reschedule: its time): scan no later than then. */
  private rescanBy(at: number): void {
    this.rescanEpoch++;
    this.rescanAt = Math.min(this.rescanAt, at);
    this.wake();
  }

  private sleep(ms: number): Promise<void> {
    if (!this.running || this.wakePending) {
      this.wakePending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.wake(), ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Jobs back from a hold: ready again, past the Scheduler's caps (they were in memory already). */
  private release(jobs: Job[]): void {
    if (jobs.length === 0) return;
    for (const job of jobs) this.scheduler.requeue(job);
    this.wake();
  }

  /** Starts what the Scheduler lets go, while fewer than `maxWriting` writes wait. */
  private pump(): void {
    while (this.inFlight - this.sending < this.cfg.maxWriting) {
      const flight = this.scheduler.next();
      if (flight === null) return;
      this.sending++;
      this.inFlight++;
      // attempt() never rejects (it catches everything); its end is counted in `inFlight`.
      void this.attempt(flight);
    }
  }

  /**
   * A slot came free: the next ready job takes it at once (no trip through the loop, which is woken only
   * when the jobs in hand run low and a scan may be due).
   */
  private slotFreed(): void {
    if (!this.running) return this.wake();
    this.pump();
    if (this.fetching === null && this.scheduler.wantsJobs()) this.wake();
  }

  /** The request is over: its slot goes to the next job. */
  private answered(flight: Flight, result: HttpAttempt): void {
    this.scheduler.answered(flight, result.durationMs, result.status !== null);
    this.sending--;
    this.slotFreed();
  }

  /**
   * One job from dispatch to its settled outbox write: one async frame per webhook, no closure. Awaits
   * only where something is pending: an endpoint to load, a refusal to carry out, the HTTP answer, the
   * outbox write. The slot is freed once the answer is decided and the endpoint's stored state settled
   * (a 410 disabled it), while the outbox write waits for its group commit.
   */
  private async attempt(flight: Flight): Promise<void> {
    const job = flight.job;
    let sending = true;
    try {
      const now = this.now();
      const entry = this.cache.fresh(job.endpointId, now) ?? (await this.cache.load(job.endpointId, now));
      // A claimed job may be sent until then (see the module header).
      const sendBy = (this.claimEnds.get(job) ?? Infinity) - this.cfg.sendMarginMs;
      // True: held (the loop's sleep must end by its release time); false: back in the outbox.
      let kept = false;
      const tooLate = now >= sendBy;
      const refusal = tooLate ? null : this.admission.check(job, entry, now);
      if (tooLate) {
        // Kept in memory too long to be sent on this claim: scanned again (the scan renews our claim).
        this.deps.logger.debug(
          { jobId: job.id, endpointId: job.endpointId },
          'claim too close to its end to send; the job is scanned again',
        );
        this.rescanBy(0);
      } else if (refusal !== null) kept = await this.admission.refuse(job, refusal, now, sendBy);
      else {
        const target = entry as SendableEntry;
        // Bytes, encoded once per job by the outbox: the signature hashes them and the client sends
        // them as they are (a string would be encoded for each, at every attempt).
        const body = this.deps.outbox.bodyOf(job);
        const headers = signWithKeys({ id: job.id, timestamp: Math.floor(now / 1000), body, keys: target.keys });
        this.scheduler.sending(flight);
        // The client copies the headers onto its own (content-type, user-agent): no copy here.
        const result = await this.deps.client.post(target.url, headers, body);
        // Stopping aborts the attempts still in flight: that failure is ours, not the endpoint's, so
        // nothing is recorded and the job stays due as it was.
        if (this.running || result.status !== null) {
          const at = this.now();
          const verdict = this.outcome.judge(job, target.endpoint.id, result, at);
          if (verdict.action === 'store-first') {
            // Rare: the endpoint's stored state changes first (its slot is held until all is written).
            await this.outcome.storeFirst(job, target.endpoint.id, result, verdict, at);
            sending = false;
            this.answered(flight, result);
          } else {
            const written = this.outcome.settle(job, result, verdict, at);
            sending = false;
            this.answered(flight, result);
            await written;
          }
        }
      }
      if (kept) this.wake();
      else this.taken.delete(job.id);
    } catch (err) {
      this.deps.logger.error({ err, jobId: job.id, endpointId: job.endpointId }, 'delivery failed unexpectedly; job held back');
      if (!this.holds.add(job.endpointId, job, 'error', this.now() + this.cfg.errorHoldMs)) this.taken.delete(job.id);
      this.wake();
    } finally {
      const wasFull = this.inFlight - this.sending >= this.cfg.maxWriting;
      if (--this.inFlight === 0 && this.drained !== null) {
        this.drained.resolve();
        this.drained = null;
      }
      if (sending) {
        this.scheduler.dropped(flight);
        this.sending--;
        this.slotFreed();
      } else if (wasFull) this.slotFreed();
    }
  }
}
