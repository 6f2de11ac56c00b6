/**
 * Outcome: what an answered attempt does to its endpoint and its job.
 *
 * `judge(job, endpointId, result, at)` is synchronous and runs once per webhook: it counts the attempt
 * (metrics), feeds the endpoint's guards (breaker, failure streak; a breaker transition is reported
 * through `hooks.breaker`) and decides (retry.ts): complete, retry later, dead letter. When the
 * endpoint's stored state must change first — a failure streak to store (at its start and when it
 * reaches `minFailures`), or a disable (a 410, or a streak lasting `guards.disable.afterMs`) — it returns
 * `store-first` instead, and the caller runs `storeFirst`, which stores that and then settles.
 *
 * `settle(job, result, decision, at)` is the one outbox write for the attempt, carrying its record:
 * `complete` (group-committed), `reschedule` (the outbox is scanned again by the job's new time) or
 * `deadLetter`. It returns the write's promise without an async frame of its own.
 *
 * A failed write of the streak is logged, not the job's failure (the streak goes on in memory). A
 * disabled endpoint is reported through `hooks.disabled` (the loop drops its cache entry and releases
 * its held jobs, to be dead-lettered).
 */
import type { Logger } from '../../runtime/log.ts';
import type { AttemptRecord } from '../../store/attempts.ts';
import type { Job } from '../../store/outbox/job.ts';
import type { Transition } from './circuit-breaker.ts';
import type { FailureStreak } from './disable.ts';
import type { EndpointGuards, GuardRecord } from './endpoint-guard.ts';
import type { HttpAttempt } from './http-client.ts';
import { deliveryStatus, type DelivererMetrics } from './metrics.ts';
import type { EndpointPort, OutboxPort } from './ports.ts';
import { classifyOutcome, decide, type AttemptOutcome, type Decision, type RetryPolicy } from './retry.ts';

/** An answer whose endpoint state is stored before its outbox write. */
export interface StoreFirst {
  readonly action: 'store-first';
  readonly guard: GuardRecord;
  readonly decision: Decision;
}

export type Verdict = Decision | StoreFirst;

export interface OutcomeDeps {
  outbox: OutboxPort;
  endpoints: EndpointPort;
  guards: EndpointGuards;
  logger: Logger;
  metrics: DelivererMetrics | undefined;
  retry: RetryPolicy;
  random: () => number;
}

export interface OutcomeHooks {
  breaker(endpointId: string, transition: Transition): void;
  disabled(endpointId: string): void;
  /** A job rescheduled to `at`: the outbox must be scanned again by then. */
  rescanBy(at: number): void;
}

const MAX_ERROR_TEXT = 500;

export class Outcome {
  constructor(
    private readonly deps: OutcomeDeps,
    private readonly hooks: OutcomeHooks,
  ) {}

  judge(job: Job, endpointId: string, result: HttpAttempt, at: number): Verdict {
    const classified = classifyOutcome(result);
    const reason = classified.reason;
    const metrics = this.deps.metrics;
    if (metrics !== undefined) {
      metrics.deliveries.inc({ status: deliveryStatus(result) });
      metrics.deliveryDuration.observe(result.durationMs / 1000);
      if (job.attempt === 0) metrics.stages.delivered(job, at - result.durationMs, at);
    }

    const guard = this.deps.guards.record(endpointId, classified.class, reason, at);
    if (guard.transition === 'opened') this.deps.logger.warn({ endpointId, reason }, 'circuit breaker opened');
    else if (guard.transition === 'closed') this.deps.logger.info({ endpointId }, 'circuit breaker closed');
    if (guard.transition) this.hooks.breaker(endpointId, guard.transition);
    const decision = decide(result, job.attempt + 1, this.deps.retry, at, this.deps.random, classified);
    if ('persist' in guard || guard.disableReason || decision.action === 'disable-endpoint')
      return { action: 'store-first', guard, decision };
    return decision;
  }

  /** The endpoint's stored state first (its failure streak, or a disable), then the outbox write. */
  async storeFirst(job: Job, endpointId: string, result: HttpAttempt, { guard, decision }: StoreFirst, at: number): Promise<void> {
    if ('persist' in guard) await this.storeStreak(endpointId, guard.persist ?? null);
    if (decision.action === 'disable-endpoint') await this.disable(endpointId, decision.reason, at);
    else if (guard.disableReason) await this.disable(endpointId, guard.disableReason, at);
    const final: Decision = decision.action === 'disable-endpoint' ? { action: 'dead-letter', reason: decision.reason } : decision;
    await this.settle(job, result, final, at);
  }

  settle(job: Job, outcome: HttpAttempt, decision: Decision, at: number): Promise<unknown> {
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
        return this.deps.outbox.reschedule(job, nextAttemptAt, record).then(() => this.hooks.rescanBy(nextAttemptAt));
      }
      case 'dead-letter':
      case 'disable-endpoint':
        return this.deps.outbox.deadLetter(job, decision.reason, record);
    }
  }

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
    this.hooks.disabled(endpointId);
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
