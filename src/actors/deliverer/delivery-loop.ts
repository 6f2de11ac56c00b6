/**
 * The delivery loop: drains due jobs from the outbox and turns each into one signed HTTP attempt.
 *
 * Loop: fetch up to `batchSize` due jobs (skipping those in flight or held), start them while fewer than
 * `concurrency` are being sent (a job whose attempt is answered and decided frees its slot while its
 * outbox write waits for the next group commit; at most 4 × `concurrency` jobs in flight in all), and
 * sleep when nothing is due until the earliest of: a new job
 * (`outbox.onEnqueue` → `wake`), a hold expiring, the next scheduled job, `idlePollMs`.
 *
 * One job:
 * 1. Its endpoint (cached `endpointCacheMs`, so secret rotations and edits apply within that time;
 *    `invalidateEndpoint` applies them at once). Deleted → dead letter; disabled → dead letter with the
 *    reason (replayable once enabled again); paused → held and looked at again after `pausedRecheckMs`.
 * 2. The endpoint's guards (endpoint-guard.ts): rate limit, then circuit breaker. A refused job is held
 *    in memory (holds.ts) until a token is there or the breaker lets a probe through; when `maxHeld`
 *    jobs are held already it is postponed in the outbox instead, by its endpoint's wait and at least
 *    `postponeMs`, without counting an attempt (it was not sent), so a huge backlog behind a blocked
 *    endpoint can neither starve the others nor exhaust its own retries.
 * 3. Sign (Standard Webhooks, fresh timestamp, every active secret), POST through the HTTP client.
 * 4. `decide` (retry.ts), then exactly one outbox write that also records the attempt: `complete`,
 *    `reschedule`, or `deadLetter`. A 410 disables the endpoint first; so does a failure streak lasting
 *    `guards.disable.afterMs`. A breaker that closes or re-opens releases its endpoint's held jobs
 *    (to go, or to wait for the new cool-down rather than for the probe's timeout).
 *
 * Durability: a job leaves the outbox only through `complete` (after a 2xx) or `deadLetter`; a crash
 * between the HTTP answer and that write redelivers the job later with the same `webhook-id`.
 * Order is not preserved (webhooks never promise it). A failing outbox read stops the loop and reports
 * through `onFatal` (the actor then fails and its supervisor restarts it); a failure while processing
 * one job is logged and the job held for `errorHoldMs`.
 */
import { deferred, type Deferred } from '../../runtime/deferred.ts';
import type { Logger } from '../../runtime/log.ts';
import type { AttemptRecord } from '../../store/attempts.ts';
import type { Endpoint } from '../../store/endpoints.ts';
import type { Job, Outbox } from '../../store/outbox.ts';
import { EndpointGuards, type GuardConfig, type GuardRecord } from './endpoint-guard.ts';
import type { HttpAttempt } from './http-client.ts';
import type { FailureStreak } from './disable.ts';
import { Holds, type HoldKind } from './holds.ts';
import { deliveryStatus, type DelivererMetrics } from './metrics.ts';
import { classifyOutcome, decide, DEFAULT_RETRY_POLICY, type AttemptOutcome, type Decision, type RetryPolicy } from './retry.ts';
import { signingKey, signWithKeys, type SigningKey } from './signing.ts';

export type OutboxPort = Pick<Outbox, 'due' | 'nextDueAt' | 'complete' | 'completeWithGroup' | 'reschedule' | 'postpone' | 'deadLetter' | 'onEnqueue' | 'bodyOf'>;

export interface EndpointPort {
  get(id: string): Promise<Endpoint | undefined>;
  activeSecrets(endpoint: Endpoint, now?: number): string[];
  disable(id: string, reason: string, now?: number): Promise<Endpoint>;
  /** Stores the endpoint's failure streak, so that a restart resumes it (disable.ts). */
  setFailing(id: string, failing: FailureStreak): Promise<unknown>;
}

export interface WebhookPoster {
  post(url: URL, headers: Record<string, string>, body: string | Buffer): Promise<HttpAttempt>;
}

export interface DeliveryLoopDeps {
  outbox: OutboxPort;
  endpoints: EndpointPort;
  client: WebhookPoster;
  logger: Logger;
  metrics?: DelivererMetrics;
  now?: () => number;
  random?: () => number;
  onFatal?: (err: unknown) => void;
}

export interface DeliveryLoopOptions {
  /** Jobs being sent at once (match the HTTP client's limit). Default 64. */
  concurrency?: number;
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
}

interface EndpointEntry {
  endpoint: Endpoint | undefined;
  url: URL | null;
  /** The endpoint's live secrets, prepared for signing (`signingKey`), newest first. */
  keys: SigningKey[];
  expiresAt: number;
}

/** An entry whose endpoint exists (and can be sent to). */
type SendableEntry = EndpointEntry & { endpoint: Endpoint; url: URL };

/** An answer whose endpoint state is stored before its outbox write (see `storeThenSettle`). */
interface StoreFirst {
  at: number;
  guard: GuardRecord;
  decision: Decision;
}

export interface DeliveryLoopStatus {
  running: boolean;
  inFlight: number;
  ready: number;
  held: number;
  openBreakers: string[];
}

const MAX_ERROR_TEXT = 500;

export class DeliveryLoop {
  private readonly cfg: Required<Omit<DeliveryLoopOptions, 'guards'>>;
  private readonly guards: EndpointGuards;
  private readonly holds: Holds<Job>;
  private readonly now: () => number;
  private readonly random: () => number;
  /** Ids in flight, ready or held: what an outbox scan must skip. */
  private readonly taken = new Set<string>();
  /** Jobs between dispatch and their settled outbox write. */
  private inFlight = 0;
  /** While `stop` waits for the jobs in flight to settle: resolved when the last one has. */
  private drained: Deferred<void> | null = null;
  /** Of those, the ones not past their HTTP attempt yet: what `concurrency` bounds. */
  private sending = 0;
  private readonly cache = new Map<string, EndpointEntry>();
  private readonly loading = new Map<string, Promise<EndpointEntry>>();
  private readonly breakerOpen = new Set<string>();
  private ready: Job[] = [];
  private running = false;
  private loop: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  /** A wake that came while the loop was busy: the next sleep returns at once instead of missing it. */
  private wakePending = false;
  private fetching: Promise<void> | null = null;
  private fetchError: unknown = null;
  /** No outbox scan before this time (ms): the last one found nothing due. */
  private rescanAt = 0;
  private rescanEpoch = 0;
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly deps: DeliveryLoopDeps,
    options: DeliveryLoopOptions = {},
  ) {
    const concurrency = options.concurrency ?? 64;
    this.cfg = {
      concurrency,
      batchSize: options.batchSize ?? concurrency * 2,
      retry: options.retry ?? DEFAULT_RETRY_POLICY,
      maxHeld: options.maxHeld ?? 10_000,
      postponeMs: options.postponeMs ?? 5_000,
      endpointCacheMs: options.endpointCacheMs ?? 1_000,
      pausedRecheckMs: options.pausedRecheckMs ?? 5_000,
      errorHoldMs: options.errorHoldMs ?? 5_000,
      idlePollMs: options.idlePollMs ?? 1_000,
    };
    this.guards = new EndpointGuards(options.guards, deps.metrics);
    this.holds = new Holds(this.cfg.maxHeld);
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
  }

  /** Jobs sent and waiting for their outbox write count too, up to this many in all. */
  private get maxInFlight(): number {
    return this.cfg.concurrency * 4;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.fetchError = null;
    this.rescanAt = 0;
    this.unsubscribe = this.deps.outbox.onEnqueue(() => this.rescanBy(0));
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
    this.ready = [];
    this.holds.clear();
    this.taken.clear();
  }

  /** Look at the outbox now (new jobs were written elsewhere). */
  poke(): void {
    this.rescanBy(0);
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    if (w) w();
    else this.wakePending = true;
  }

  /** Forgets the cached endpoint (edited, rotated, enabled, deleted); a deleted one loses its guards too. */
  invalidateEndpoint(endpointId: string, deleted = false): void {
    this.cache.delete(endpointId);
    if (deleted) {
      this.guards.forget(endpointId);
      this.breakerOpen.delete(endpointId);
    }
    this.release(this.holds.releaseEndpoint(endpointId));
  }

  status(): DeliveryLoopStatus {
    return {
      running: this.running,
      inFlight: this.inFlight,
      ready: this.ready.length,
      held: this.holds.size,
      openBreakers: [...this.breakerOpen].sort(),
    };
  }

  private async run(): Promise<void> {
    while (this.running) {
      if (this.fetchError !== null) throw this.fetchError;
      const now = this.now();
      this.release(this.holds.releaseDue(now));
      this.pump();
      // Read ahead while the batch in hand is still being sent, so a scan never leaves the pipe empty.
      if (this.fetching === null && this.ready.length < this.cfg.concurrency && now >= this.rescanAt) this.fetching = this.fetch();
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
      // A scan's snapshot can predate a reschedule that just finished: skip jobs not due by now.
      const jobs = (await this.deps.outbox.due(now, this.cfg.batchSize, { exclude: this.taken })).filter((j) => j.nextAttemptAt <= now);
      for (const job of jobs) this.taken.add(job.id);
      this.ready.push(...jobs);
      if (jobs.length === 0) {
        const nextDue = await this.deps.outbox.nextDueAt();
        const idleUntil = now + this.cfg.idlePollMs;
        // A hint that came during the scan (enqueue, reschedule) wins: the scan may not have seen it.
        if (epoch === this.rescanEpoch) this.rescanAt = nextDue !== undefined && nextDue > now ? Math.min(nextDue, idleUntil) : idleUntil;
      }
    } catch (err) {
      this.fetchError = err;
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

  private release(jobs: Job[]): void {
    if (jobs.length === 0) return;
    this.ready.push(...jobs);
    this.wake();
  }

  /** Starts ready jobs while there is room. */
  private pump(): void {
    while (this.ready.length > 0 && this.sending < this.cfg.concurrency && this.inFlight < this.maxInFlight) {
      this.dispatch(this.ready.shift() as Job);
    }
  }

  /**
   * A slot came free: the next ready job takes it at once (no trip through the loop, which is woken only
   * when the jobs in hand run low and a scan may be due).
   */
  private slotFreed(): void {
    if (!this.running) return this.wake();
    this.pump();
    if (this.ready.length < this.cfg.concurrency && this.fetching === null) this.wake();
  }

  private dispatch(job: Job): void {
    this.sending++;
    this.inFlight++;
    // attempt() never rejects (it catches everything); its end is counted in `inFlight`.
    void this.attempt(job);
  }

  /**
   * One job from dispatch to its settled outbox write: one async frame per webhook, no closure. The
   * sending slot is freed once the attempt is answered and the endpoint's state settled (a 410 disabled
   * it), while the outbox write waits for its group commit.
   */
  private async attempt(job: Job): Promise<void> {
    let sending = true;
    try {
      const now = this.now();
      const sendable = this.sendable(job, now);
      const target = sendable instanceof Promise ? await sendable : sendable;
      // True: held (the loop's sleep must end by its release time); false: back in the outbox.
      let kept = false;
      if (typeof target === 'boolean') kept = target;
      else {
        // Bytes, encoded once per job by the outbox: the signature hashes them and the client sends
        // them as they are (a string would be encoded for each, at every attempt).
        const body = this.deps.outbox.bodyOf(job);
        const headers = signWithKeys({ id: job.id, timestamp: Math.floor(now / 1000), body, keys: target.keys });
        // The client copies the headers onto its own (content-type, user-agent): no copy here.
        const result = await this.deps.client.post(target.url, headers, body);
        // Stopping aborts the attempts still in flight: that failure is ours, not the endpoint's, so
        // nothing is recorded and the job stays due as it was.
        if (this.running || result.status !== null) {
          const written = this.decided(job, target.endpoint.id, result);
          // Rare: the endpoint's stored state changes first (its slot is held until all is written).
          if (!(written instanceof Promise)) await this.storeThenSettle(job, target.endpoint.id, result, written);
          sending = false;
          this.sending--;
          this.slotFreed();
          if (written instanceof Promise) await written;
        }
      }
      if (kept) this.wake();
      else this.taken.delete(job.id);
    } catch (err) {
      this.deps.logger.error({ err, jobId: job.id, endpointId: job.endpointId }, 'delivery failed unexpectedly; job held back');
      if (!this.holds.add(job.endpointId, job, 'error', this.now() + this.cfg.errorHoldMs)) this.taken.delete(job.id);
      this.wake();
    } finally {
      const wasFull = this.inFlight >= this.maxInFlight;
      if (--this.inFlight === 0 && this.drained !== null) {
        this.drained.resolve();
        this.drained = null;
      }
      if (sending) {
        this.sending--;
        this.slotFreed();
      } else if (wasFull) this.slotFreed();
    }
  }

  /**
   * The endpoint to send the job to now; or, when it cannot go, the job's fate once handled: true
   * (held), false (back in the outbox: dead-lettered, postponed). Synchronous for a cached endpoint
   * that takes the job (nearly every webhook).
   */
  private sendable(job: Job, now: number): SendableEntry | Promise<SendableEntry | boolean> {
    const cached = this.cache.get(job.endpointId);
    if (cached !== undefined && cached.expiresAt > now) return this.admit(job, cached, now);
    return this.endpoint(job.endpointId, now).then<SendableEntry | boolean>((entry) => this.admit(job, entry, now));
  }

  private admit(job: Job, entry: EndpointEntry, now: number): SendableEntry | Promise<boolean> {
    const endpoint = entry.endpoint;
    if (!endpoint || !entry.url) return this.deps.outbox.deadLetter(job, `endpoint ${job.endpointId} no longer exists`).then(() => false);
    if (endpoint.disabled) return this.deps.outbox.deadLetter(job, `endpoint disabled: ${endpoint.disabled.reason}`).then(() => false);
    if (endpoint.paused) return this.holdBack(job, 'paused', now, this.cfg.pausedRecheckMs, 0);
    const admission = this.guards.admit(endpoint.id, endpoint.rateLimitPerSec, now);
    if (!admission.go) {
      const intervalMs = endpoint.rateLimitPerSec ? Math.ceil(1000 / endpoint.rateLimitPerSec) : 0;
      return this.holdBack(job, admission.why, now, admission.waitMs, intervalMs);
    }
    return entry as SendableEntry;
  }

  /**
   * The answer came: the endpoint's guards and the decision, then the outbox write, returned in flight.
   * Not async (this runs once per webhook); an answer that changes the endpoint's stored state first (a
   * failure streak to keep, a disable) is returned as what `storeThenSettle` needs.
   */
  private decided(job: Job, endpointId: string, result: HttpAttempt): Promise<unknown> | StoreFirst {
    const at = this.now();
    const classified = classifyOutcome(result);
    const reason = classified.reason;
    const metrics = this.deps.metrics;
    if (metrics !== undefined) {
      metrics.deliveries.inc({ status: deliveryStatus(result) });
      metrics.deliveryDuration.observe(result.durationMs / 1000);
      if (job.attempt === 0) {
        metrics.stages.reached('sent', job.eventSeenAt, at - result.durationMs);
        metrics.stages.reached('answered', job.eventSeenAt, at);
      }
    }

    const guard = this.guards.record(endpointId, classified.class, reason, at);
    if (guard.transition === 'opened') {
      this.breakerOpen.add(endpointId);
      this.deps.logger.warn({ endpointId, reason }, 'circuit breaker opened');
    } else if (guard.transition === 'closed') {
      this.breakerOpen.delete(endpointId);
      this.deps.logger.info({ endpointId }, 'circuit breaker closed');
    }
    // Jobs held behind a probe wait for its result: closed lets them go, re-opened re-holds them
    // until the new cool-down ends (they were held until the probe's timeout).
    if (guard.transition) this.release(this.holds.releaseEndpoint(endpointId));
    const decision = decide(result, job.attempt + 1, this.cfg.retry, at, this.random, classified);
    if ('persist' in guard || guard.disableReason || decision.action === 'disable-endpoint') return { at, guard, decision };
    return this.settle(job, result, decision, at);
  }

  /** `decided` for an answer that changes the endpoint's stored state first: its failure streak, or a disable (410 or sustained failure); resolves once the outbox write is done too. */
  private async storeThenSettle(job: Job, endpointId: string, result: HttpAttempt, { at, guard, decision }: StoreFirst): Promise<void> {
    if ('persist' in guard) await this.storeStreak(endpointId, guard.persist ?? null);
    if (decision.action === 'disable-endpoint') await this.disable(endpointId, decision.reason, at);
    else if (guard.disableReason) await this.disable(endpointId, guard.disableReason, at);
    const final: Decision = decision.action === 'disable-endpoint' ? { action: 'dead-letter', reason: decision.reason } : decision;
    await this.settle(job, result, final, at);
  }

  /**
   * Holds a job its endpoint cannot take now; with no room left to hold it, postpones it in the outbox
   * (no attempt counted: it was not sent) to no earlier than `waitMs`, nor `postponeMs`, from now.
   */
  private async holdBack(job: Job, why: HoldKind, now: number, waitMs: number, intervalMs: number): Promise<boolean> {
    if (this.holds.add(job.endpointId, job, why, now + waitMs, intervalMs)) return true;
    const at = now + Math.max(waitMs, this.cfg.postponeMs);
    await this.deps.outbox.postpone(job, at);
    this.rescanBy(at);
    return false;
  }

  /**
   * The one outbox write for an attempt, carrying its record. No async frame of its own (this runs once
   * per webhook): it returns the write's promise.
   */
  private settle(job: Job, outcome: HttpAttempt, decision: Decision, at: number): Promise<unknown> {
    // Every field in one literal (absent ones undefined), no conditional spreads: this runs once per webhook.
    const record: AttemptRecord = {
      jobId: job.id,
      endpointId: job.endpointId,
      at,
      attempt: job.attempt + 1,
      status: outcome.status ?? undefined,
      durationMs: Math.max(0, outcome.durationMs),
      error: attemptError(outcome, outcome.bodySnippet),
    };
    switch (decision.action) {
      case 'complete':
        this.deps.metrics?.eventToDelivery.observe(Math.max(0, at - job.eventSeenAt) / 1000);
        return this.deps.outbox.completeWithGroup(job, record);
      case 'retry': {
        const nextAttemptAt = at + decision.delayMs;
        return this.deps.outbox.reschedule(job, nextAttemptAt, record).then(() => this.rescanBy(nextAttemptAt));
      }
      case 'dead-letter':
      case 'disable-endpoint':
        return this.deps.outbox.deadLetter(job, decision.reason, record);
    }
  }

  /** A failed write of the streak is logged, not the job's failure: the streak goes on in memory. */
  private async storeStreak(endpointId: string, streak: FailureStreak): Promise<void> {
    try {
      await this.deps.endpoints.setFailing(endpointId, streak);
    } catch (err) {
      this.deps.logger.warn({ err, endpointId }, 'storing the failure streak failed; it goes on in memory');
    }
  }

  private async disable(endpointId: string, reason: string, now: number): Promise<void> {
    await this.deps.endpoints.disable(endpointId, reason, now);
    this.deps.logger.warn({ endpointId, reason }, 'endpoint disabled');
    this.cache.delete(endpointId);
    this.breakerOpen.delete(endpointId);
    this.release(this.holds.releaseEndpoint(endpointId));
  }

  private endpoint(id: string, now: number): Promise<EndpointEntry> {
    const cached = this.cache.get(id);
    if (cached && cached.expiresAt > now) return Promise.resolve(cached);
    let loading = this.loading.get(id);
    if (!loading) {
      loading = this.load(id, now).finally(() => this.loading.delete(id));
      this.loading.set(id, loading);
    }
    return loading;
  }

  private async load(id: string, now: number): Promise<EndpointEntry> {
    const endpoint = await this.deps.endpoints.get(id);
    if (endpoint?.failing) this.guards.seedStreak(id, endpoint.failing);
    const entry: EndpointEntry = {
      endpoint,
      url: endpoint ? new URL(endpoint.url) : null,
      keys: endpoint && !endpoint.disabled ? this.deps.endpoints.activeSecrets(endpoint, now).map(signingKey) : [],
      expiresAt: now + this.cfg.endpointCacheMs,
    };
    this.cache.set(id, entry);
    return entry;
  }
}

/** What the attempt log says went wrong: the client error, or the status line and start of the body. */
function attemptError(outcome: AttemptOutcome, snippet: string | undefined): string | undefined {
  if (outcome.error && outcome.status === null) return outcome.error.message.slice(0, MAX_ERROR_TEXT);
  if (outcome.status !== null && (outcome.status < 200 || outcome.status >= 300)) {
    return `HTTP ${outcome.status}${snippet ? `: ${snippet}` : ''}`.slice(0, MAX_ERROR_TEXT);
  }
  return undefined;
}
