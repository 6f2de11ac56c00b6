/**
 * Admission: whether a job may go to its endpoint now, and what becomes of it when it may not.
 *
 * `check(job, entry, now)` is synchronous and returns null when the job goes (nearly every webhook: no
 * allocation), else the refusal:
 * - the endpoint was deleted → dead letter; disabled → dead letter with the reason (replayable once it
 *   is enabled again); paused → held, looked at again after `pausedRecheckMs`;
 * - the endpoint's guards (endpoint-guard.ts) refuse: the rate limit (held until a token is there, then
 *   released one per token) or the circuit breaker (held until it lets a probe through).
 * `refuse(job, refusal, now)` carries it out and resolves with whether the job is kept in memory (held)
 * rather than back in the outbox. When `maxHeld` jobs are held already, a job that should be held is
 * postponed in the outbox instead, by its endpoint's wait and at least `postponeMs`, without counting an
 * attempt (it was not sent): a huge backlog behind a blocked endpoint can neither exhaust memory nor its
 * own retries. A job claimed from a shared outbox is held no later than `sendBy` (its claim no longer
 * leaves time to send it then, delivery-loop.ts): released then, it goes back to be scanned again.
 */
import type { Job } from '../../store/outbox/job.ts';
import type { EndpointGuards } from './endpoint-guard.ts';
import type { EndpointEntry } from './endpoint-cache.ts';
import type { Holds, HoldKind } from './holds.ts';
import type { OutboxPort } from './ports.ts';

export type Refusal =
  | { readonly kind: 'dead-letter'; readonly reason: string }
  | { readonly kind: 'hold'; readonly why: HoldKind; readonly waitMs: number; readonly intervalMs: number };

export interface AdmissionConfig {
  pausedRecheckMs: number;
  postponeMs: number;
}

export class Admission {
  constructor(
    private readonly cfg: AdmissionConfig,
    private readonly guards: EndpointGuards,
    private readonly holds: Holds<Job>,
    private readonly outbox: OutboxPort,
    /** A job postponed to `at`: the outbox must be scanned again by then. */
    private readonly rescanBy: (at: number) => void,
  ) {}

  check(job: Job, entry: EndpointEntry, now: number): Refusal | null {
    const endpoint = entry.endpoint;
    if (!endpoint || !entry.url) return { kind: 'dead-letter', reason: `endpoint ${job.endpointId} no longer exists` };
    if (endpoint.disabled) return { kind: 'dead-letter', reason: `endpoint disabled: ${endpoint.disabled.reason}` };
    if (endpoint.paused) return { kind: 'hold', why: 'paused', waitMs: this.cfg.pausedRecheckMs, intervalMs: 0 };
    const admitted = this.guards.admit(endpoint.id, endpoint.rateLimitPerSec, now);
    if (admitted.go) return null;
    const intervalMs = endpoint.rateLimitPerSec ? Math.ceil(1000 / endpoint.rateLimitPerSec) : 0;
    return { kind: 'hold', why: admitted.why, waitMs: admitted.waitMs, intervalMs };
  }

  async refuse(job: Job, refusal: Refusal, now: number, sendBy = Infinity): Promise<boolean> {
    if (refusal.kind === 'dead-letter') {
      await this.outbox.deadLetter(job, refusal.reason);
      return false;
    }
    if (this.holds.add(job.endpointId, job, refusal.why, Math.min(now + refusal.waitMs, sendBy), refusal.intervalMs)) return true;
    const at = now + Math.max(refusal.waitMs, this.cfg.postponeMs);
    await this.outbox.postpone(job, at);
    this.rescanBy(at);
    return false;
  }
}
