/**
 * What to do after a delivery attempt, as pure functions.
 *
 * Outcome classes (`classifyOutcome`):
 * - 2xx                                  → success: the job is complete.
 * - network error, timeout, 408, 429, 5xx, and any other status outside 2xx..4xx
 *                                        → retryable.
 * - 410 Gone                             → gone: the endpoint is disabled, the job dead-lettered
 *                                          (replayable once the endpoint is enabled again).
 * - 3xx                                  → permanent: redirects are never followed (a redirect could
 *                                          lead past the SSRF check) and retrying will not change it.
 * - other 4xx, target refused by the SSRF policy → permanent: dead-lettered at once.
 *
 * Schedule: `scheduleMs[i]` is the delay before attempt i+1, so the default (Svix's) makes 8 attempts:
 * immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. Each delay gets ±`jitter` (default 20%)
 * uniformly, so retries of many jobs failed together do not return together. A retryable outcome
 * after the last attempt dead-letters the job ("exhausted").
 *
 * `Retry-After` (delta-seconds or HTTP-date) on a retryable response is a "not before": the delay is
 * the larger of the scheduled one and Retry-After, the latter capped at `maxRetryAfterMs` (default
 * 10 h) so a receiver cannot park jobs indefinitely. It does not grant extra attempts.
 */
import { z } from 'zod';

export interface RetryPolicy {
  readonly scheduleMs: readonly number[];
  /** 0 ≤ jitter < 1: each delay is drawn from [d·(1−jitter), d·(1+jitter)]. */
  readonly jitter: number;
  readonly maxRetryAfterMs: number;
}

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  scheduleMs: Object.freeze([0, 5 * SECOND, 5 * MINUTE, 30 * MINUTE, 2 * HOUR, 5 * HOUR, 10 * HOUR, 10 * HOUR]),
  jitter: 0.2,
  maxRetryAfterMs: 10 * HOUR,
});

/** The configuration shape: a non-empty, non-decreasing schedule of non-negative delays. */
export const retryPolicySchema = z.object({
  scheduleMs: z
    .array(z.number().int().nonnegative())
    .min(1)
    .refine((s) => s.every((d, i) => i === 0 || d >= (s[i - 1] as number)), 'the schedule must not decrease'),
  jitter: z.number().min(0).lt(1),
  maxRetryAfterMs: z.number().int().nonnegative(),
});

export type FailureKind = 'timeout' | 'network' | 'refused';

/** What the HTTP client reports for one attempt (`status` null when no response arrived). */
export interface AttemptOutcome {
  status: number | null;
  retryAfter?: string | undefined;
  error?: { kind: FailureKind; message: string } | undefined;
}

export type OutcomeClass = 'success' | 'retryable' | 'gone' | 'permanent';

export type Decision =
  | { action: 'complete' }
  | { action: 'retry'; delayMs: number; reason: string }
  | { action: 'dead-letter'; reason: string }
  | { action: 'disable-endpoint'; reason: string };

/** What an answer is (`classifyOutcome`), and why, for the breaker, the streak and the logs. */
export interface Classified {
  class: OutcomeClass;
  reason: string;
}

/** The classification of a 200, nearly every answer (shared: read, never changed). */
const OK_200: Classified = Object.freeze({ class: 'success', reason: 'HTTP 200' });

/** The decision after a 2xx (shared: a decision is read, never changed). */
const COMPLETE: Decision = Object.freeze({ action: 'complete' });

export function classifyOutcome(outcome: AttemptOutcome): Classified {
  const { status, error } = outcome;
  if (error?.kind === 'refused') return { class: 'permanent', reason: `target refused: ${error.message}` };
  if (status === null) return { class: 'retryable', reason: error ? `${error.kind}: ${error.message}` : 'no response' };
  if (status >= 200 && status < 300) return status === 200 ? OK_200 : { class: 'success', reason: `HTTP ${status}` };
  if (status === 410) return { class: 'gone', reason: 'HTTP 410 Gone' };
  if (status >= 300 && status < 400) return { class: 'permanent', reason: `HTTP ${status}: redirects are not followed` };
  if (status === 408 || status === 429) return { class: 'retryable', reason: `HTTP ${status}` };
  if (status >= 400 && status < 500) return { class: 'permanent', reason: `HTTP ${status}` };
  return { class: 'retryable', reason: `HTTP ${status}` };
}

/**
 * @param attemptsMade attempts done so far, this one included (1 after the first attempt).
 * @param random uniform in [0, 1); injected so tests are deterministic.
 */
export function decide(
  outcome: AttemptOutcome,
  attemptsMade: number,
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
  nowMs: number = Date.now(),
  random: () => number = Math.random,
  /** `classifyOutcome(outcome)`, when the caller has it already. */
  classified: Classified = classifyOutcome(outcome),
): Decision {
  const { class: verdict, reason } = classified;
  switch (verdict) {
    case 'success':
      return COMPLETE;
    case 'gone':
      return { action: 'disable-endpoint', reason };
    case 'permanent':
      return { action: 'dead-letter', reason };
    case 'retryable': {
      if (attemptsMade >= policy.scheduleMs.length) {
        return { action: 'dead-letter', reason: `exhausted after ${attemptsMade} attempts; last: ${reason}` };
      }
      const scheduled = jittered(policy.scheduleMs[attemptsMade] as number, policy.jitter, random);
      const notBefore = parseRetryAfter(outcome.retryAfter, nowMs);
      const delayMs = notBefore === undefined ? scheduled : Math.max(scheduled, Math.min(notBefore, policy.maxRetryAfterMs));
      return { action: 'retry', delayMs, reason };
    }
  }
}

export function jittered(delayMs: number, jitter: number, random: () => number = Math.random): number {
  return Math.round(delayMs * (1 - jitter + 2 * jitter * random()));
}

/** `Retry-After` as milliseconds from `nowMs` (never negative), or undefined when absent or malformed. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * SECOND;
  // HTTP-date (IMF-fixdate and the two obsolete forms): it always names a weekday and a GMT zone.
  if (!/^[A-Za-z]{3}/.test(text) || !/GMT$/.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}
