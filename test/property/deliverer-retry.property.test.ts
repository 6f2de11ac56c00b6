// Retry decisions: classification of every status, jitter bounds, Retry-After, exhaustion, config schema.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RETRY_POLICY,
  classifyOutcome,
  decide,
  parseRetryAfter,
  retryPolicySchema,
  type AttemptOutcome,
} from '../../src/actors/deliverer/retry.ts';

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const unit = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
const { scheduleMs, jitter, maxRetryAfterMs } = DEFAULT_RETRY_POLICY;

describe('the default schedule', () => {
  it('is Svix-like: 8 attempts, first immediate, never decreasing', () => {
    expect(scheduleMs).toEqual([0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]);
    expect(retryPolicySchema.safeParse(DEFAULT_RETRY_POLICY).success).toBe(true);
  });

  it('jittered delays stay within ±20% of the schedule', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: scheduleMs.length - 1 }), unit, (attemptsMade, r) => {
        const d = decide({ status: 503 }, attemptsMade, DEFAULT_RETRY_POLICY, NOW, () => r);
        const base = scheduleMs[attemptsMade] as number;
        expect(d.action).toBe('retry');
        if (d.action !== 'retry') return;
        expect(d.delayMs).toBeGreaterThanOrEqual(Math.floor(base * (1 - jitter)));
        expect(d.delayMs).toBeLessThanOrEqual(Math.ceil(base * (1 + jitter)));
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('order', () => {
  it('a later step whose band lies above an earlier one is always the longer delay, whatever the jitter', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: scheduleMs.length - 1 }),
        fc.integer({ min: 1, max: scheduleMs.length - 1 }),
        unit,
        unit,
        (i, j, ri, rj) => {
          const [a, b] = i < j ? [i, j] : [j, i];
          fc.pre(scheduleMs[b]! * (1 - jitter) > scheduleMs[a]! * (1 + jitter));
          const da = decide({ status: 503 }, a, DEFAULT_RETRY_POLICY, NOW, () => ri);
          const db = decide({ status: 503 }, b, DEFAULT_RETRY_POLICY, NOW, () => rj);
          if (da.action !== 'retry' || db.action !== 'retry') throw new Error('503 must retry');
          expect(db.delayMs).toBeGreaterThan(da.delayMs);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});

describe('classification', () => {
  const statusOf = (s: number): AttemptOutcome => ({ status: s });

  it('2xx completes, 410 disables, 3xx and other 4xx dead-letter, 408/429/5xx retry', () => {
    fc.assert(
      fc.property(fc.integer({ min: 100, max: 599 }), fc.integer({ min: 1, max: scheduleMs.length - 1 }), (status, n) => {
        const { action } = decide(statusOf(status), n, DEFAULT_RETRY_POLICY, NOW, () => 0.5);
        if (status >= 200 && status < 300) expect(action).toBe('complete');
        else if (status === 410) expect(action).toBe('disable-endpoint');
        else if (status === 408 || status === 429 || status >= 500 || status < 200) expect(action).toBe('retry');
        else expect(action).toBe('dead-letter');
      }),
      { numRuns: 3_000 },
    );
  });

  it('network errors and timeouts retry; refused targets dead-letter at once', () => {
    expect(decide({ status: null, error: { kind: 'network', message: 'ECONNREFUSED' } }, 1).action).toBe('retry');
    expect(decide({ status: null, error: { kind: 'timeout', message: 'headers' } }, 1).action).toBe('retry');
    expect(decide({ status: null, error: { kind: 'refused', message: '10.0.0.1 is private' } }, 1)).toEqual({
      action: 'dead-letter',
      reason: 'target refused: 10.0.0.1 is private',
    });
    expect(classifyOutcome({ status: 302 }).reason).toBe('HTTP 302: redirects are not followed');
  });

  it('a retryable outcome after the last attempt dead-letters, naming the last failure', () => {
    fc.assert(
      fc.property(fc.integer({ min: scheduleMs.length, max: 1_000 }), fc.integer({ min: 500, max: 599 }), (n, status) => {
        expect(decide(statusOf(status), n)).toEqual({
          action: 'dead-letter',
          reason: `exhausted after ${n} attempts; last: HTTP ${status}`,
        });
      }),
    );
  });
});

describe('Retry-After', () => {
  it('parses delta-seconds and HTTP-dates; rejects garbage', () => {
    expect(parseRetryAfter('120', NOW)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', NOW)).toBe(0);
    expect(parseRetryAfter(new Date(NOW + 90_000).toUTCString(), NOW)).toBe(90_000);
    expect(parseRetryAfter('Wed, 01 Jan 2020 00:00:00 GMT', NOW)).toBe(0);
    expect(parseRetryAfter('Wednesday, 01-Jan-25 12:01:00 GMT', NOW)).toBe(60_000);
    for (const bad of [undefined, '', '-5', '1.5', 'soon', '2025-01-01T12:00:00Z', 'Mon, 99 Foo 2025 GMT']) {
      expect(parseRetryAfter(bad, NOW), String(bad)).toBeUndefined();
    }
  });

  it('delays a retry to at least Retry-After, capped, never below the schedule', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: scheduleMs.length - 1 }),
        fc.integer({ min: 0, max: (10 * maxRetryAfterMs) / 1000 }),
        fc.boolean(),
        unit,
        (n, seconds, asDate, r) => {
          const retryAfter = asDate ? new Date(NOW + seconds * 1000).toUTCString() : String(seconds);
          const d = decide({ status: 429, retryAfter }, n, DEFAULT_RETRY_POLICY, NOW, () => r);
          const scheduled = decide({ status: 429 }, n, DEFAULT_RETRY_POLICY, NOW, () => r);
          if (d.action !== 'retry' || scheduled.action !== 'retry') throw new Error('expected retries');
          expect(d.delayMs).toBe(Math.max(scheduled.delayMs, Math.min(seconds * 1000, maxRetryAfterMs)));
        },
      ),
      { numRuns: 2_000 },
    );
  });
});

describe('the configuration schema', () => {
  it('rejects empty, negative and decreasing schedules and out-of-range jitter', () => {
    const ok = { scheduleMs: [0, 10], jitter: 0, maxRetryAfterMs: 0 };
    expect(retryPolicySchema.safeParse(ok).success).toBe(true);
    for (const bad of [
      { ...ok, scheduleMs: [] },
      { ...ok, scheduleMs: [-1] },
      { ...ok, scheduleMs: [10, 5] },
      { ...ok, jitter: 1 },
      { ...ok, jitter: -0.1 },
      { ...ok, scheduleMs: [1.5] },
    ]) {
      expect(retryPolicySchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
    const decreasing = retryPolicySchema.safeParse({ ...ok, scheduleMs: [10, 5] });
    expect(decreasing.error?.issues[0]?.message).toBe('the schedule must not decrease');
  });
});
