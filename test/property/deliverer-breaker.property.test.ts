// Circuit breaker, token bucket and sustained-failure disabling: pure state machines driven by random
// schedules of events with an explicit clock.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CLOSED,
  DEFAULT_BREAKER_CONFIG as CFG,
  admit,
  record,
  type BreakerState,
} from '../../src/actors/deliverer/circuit-breaker.ts';
import { DEFAULT_DISABLE_CONFIG, recordForDisable, type FailureStreak } from '../../src/actors/deliverer/disable.ts';
import { fullBucket, take, type Bucket } from '../../src/actors/deliverer/rate-limit.ts';

type Op = { kind: 'admit' } | { kind: 'record'; success: boolean };
const ops = fc.array(
  fc.tuple(
    fc.integer({ min: 0, max: 90_000 }),
    fc.oneof(fc.constant<Op>({ kind: 'admit' }), fc.boolean().map<Op>((success) => ({ kind: 'record', success }))),
  ),
  { maxLength: 300 },
);

describe('circuit breaker', () => {
  it('a scenario: opens after 5 failures, probes once, closes on success, backs off on failure', () => {
    let s: BreakerState = CLOSED;
    for (let i = 0; i < 4; i++) s = record(s, false, 1_000, CFG).state;
    expect(s).toEqual({ state: 'closed', failures: 4 });
    const opened = record(s, false, 1_000, CFG);
    expect(opened).toEqual({ state: { state: 'open', until: 61_000, cooldownMs: 60_000 }, transition: 'opened' });
    expect(admit(opened.state, 60_999, CFG)).toMatchObject({ allowed: false, waitMs: 1 });

    const probe = admit(opened.state, 61_000, CFG);
    expect(probe).toMatchObject({ allowed: true, transition: 'half-opened', state: { state: 'half-open' } });
    expect(admit(probe.state, 61_001, CFG).allowed).toBe(false);

    const reopened = record(probe.state, false, 62_000, CFG);
    expect(reopened).toEqual({ state: { state: 'open', until: 182_000, cooldownMs: 120_000 }, transition: 'opened' });

    const probe2 = admit(reopened.state, 182_000, CFG);
    expect(record(probe2.state, true, 182_500, CFG)).toEqual({ state: CLOSED, transition: 'closed' });
  });

  it('a success in between resets the count of consecutive failures', () => {
    let s: BreakerState = CLOSED;
    for (const ok of [false, false, false, false, true, false, false, false, false]) s = record(s, ok, 0, CFG).state;
    expect(s).toEqual({ state: 'closed', failures: 4 });
  });

  it('a probe whose result never comes frees the slot after probeTimeoutMs', () => {
    const open: BreakerState = { state: 'open', until: 0, cooldownMs: 30_000 };
    const probing = admit(open, 0, CFG).state;
    expect(admit(probing, CFG.probeTimeoutMs - 1, CFG)).toMatchObject({ allowed: false, waitMs: 1 });
    expect(admit(probing, CFG.probeTimeoutMs, CFG).allowed).toBe(true);
  });

  it('invariants under any schedule of admissions and results', () => {
    fc.assert(
      fc.property(ops, (steps) => {
        let s: BreakerState = CLOSED;
        let now = 0;
        let failuresSinceSuccess = 0;
        let lastCooldown = 0;
        let lastAdmitWhileNotClosed = -Infinity;
        for (const [dt, op] of steps) {
          now += dt;
          if (op.kind === 'admit') {
            const a = admit(s, now, CFG);
            if (s.state === 'open' && now < s.until) expect(a.allowed).toBe(false);
            if (a.allowed && a.state.state === 'half-open') {
              // Exactly one probe at a time: another only after the previous one timed out.
              expect(now - lastAdmitWhileNotClosed).toBeGreaterThanOrEqual(CFG.probeTimeoutMs);
              lastAdmitWhileNotClosed = now;
            }
            if (!a.allowed) expect(a.waitMs).toBeGreaterThan(0);
            if (s.state === 'closed') expect(a.allowed).toBe(true);
            s = a.state;
          } else {
            const before = s;
            const r = record(s, op.success, now, CFG);
            if (before.state === 'closed') {
              failuresSinceSuccess = op.success ? 0 : failuresSinceSuccess + 1;
              expect(r.transition === 'opened').toBe(failuresSinceSuccess === CFG.failureThreshold);
            }
            if (before.state === 'open') expect(r.state).toBe(before);
            if (r.transition === 'opened' && r.state.state === 'open') {
              expect(r.state.cooldownMs).toBeLessThanOrEqual(CFG.maxCooldownMs);
              if (before.state === 'half-open') expect(r.state.cooldownMs).toBeGreaterThanOrEqual(lastCooldown);
              lastCooldown = r.state.cooldownMs;
              lastAdmitWhileNotClosed = -Infinity;
            }
            if (r.state.state === 'closed' && before.state !== 'closed') {
              failuresSinceSuccess = 0;
              lastAdmitWhileNotClosed = -Infinity;
            }
            s = r.state;
          }
        }
      }),
      { numRuns: 1_000 },
    );
  });
});

describe('token bucket', () => {
  const config = fc.record({
    ratePerSec: fc.double({ min: 0.1, max: 1_000, noNaN: true }),
    burst: fc.integer({ min: 1, max: 50 }),
  });
  const gaps = fc.array(fc.integer({ min: 0, max: 2_000 }), { minLength: 1, maxLength: 400 });

  it('never lets through more than rate·t + burst over any interval', () => {
    fc.assert(
      fc.property(config, gaps, (cfg, steps) => {
        let now = 0;
        let b: Bucket = fullBucket(cfg, now);
        const passed: number[] = [];
        for (const dt of steps) {
          now += dt;
          const r = take(b, now, cfg);
          b = r.bucket;
          if (r.waitMs === 0) passed.push(now);
        }
        for (let i = 0; i < passed.length; i++) {
          for (let j = i; j < passed.length; j++) {
            const bound = (cfg.ratePerSec * ((passed[j] as number) - (passed[i] as number))) / 1000 + cfg.burst;
            expect(j - i + 1).toBeLessThanOrEqual(Math.floor(bound + 1e-9));
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('after exactly the wait it named, a take passes (seed that found a rounding gap)', () => {
    const cfg = { ratePerSec: 0.1, burst: 4 };
    let now = 0;
    let b: Bucket = fullBucket(cfg, now);
    for (const dt of [0, 1732, 618, 1636, 1426]) {
      now += dt;
      const r = take(b, now, cfg);
      b = r.bucket;
      if (r.waitMs > 0) expect(take(b, now + r.waitMs, cfg).waitMs).toBe(0);
    }
  });

  it('a refused take names a wait after which the next take passes', () => {
    fc.assert(
      fc.property(config, gaps, (cfg, steps) => {
        let now = 0;
        let b: Bucket = fullBucket(cfg, now);
        for (const dt of steps) {
          now += dt;
          const r = take(b, now, cfg);
          b = r.bucket;
          if (r.waitMs > 0) {
            expect(take(b, now + r.waitMs, cfg).waitMs).toBe(0);
            expect(take(b, now, cfg).bucket.tokens).toBeCloseTo(b.tokens);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a clock stepping back refills nothing', () => {
    const cfg = { ratePerSec: 10, burst: 1 };
    const drained = take(fullBucket(cfg, 1_000), 1_000, cfg).bucket;
    expect(take(drained, 0, cfg).waitMs).toBe(100);
  });
});

describe('sustained-failure disabling', () => {
  const { afterMs, minFailures } = DEFAULT_DISABLE_CONFIG;

  it('disables only after afterMs and minFailures of uninterrupted failure', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 12 * 3_600_000 }), fc.boolean()), { maxLength: 200 }),
        (events) => {
          let streak: FailureStreak = null;
          let now = 0;
          let since: number | null = null;
          let count = 0;
          for (const [dt, success] of events) {
            now += dt;
            const r = recordForDisable(streak, success, now, 'HTTP 503');
            if (success) {
              since = null;
              count = 0;
            } else {
              since ??= now;
              count++;
            }
            const due = since !== null && now - since >= afterMs && count >= minFailures;
            expect(r.disableReason !== undefined).toBe(due);
            streak = r.streak;
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('says since when and why', () => {
    let streak: FailureStreak = null;
    const start = Date.UTC(2025, 0, 1);
    let reason: string | undefined;
    for (let i = 0; i <= 10; i++) {
      const r = recordForDisable(streak, false, start + i * 12 * 3_600_000, 'HTTP 502');
      streak = r.streak;
      reason = r.disableReason;
    }
    expect(reason).toBe('failing since 2025-01-01T00:00:00.000Z (11 failed attempts over 5 days, none succeeded); last: HTTP 502');
  });
});
