// Circuit breaker (consecutive failures, failure rate over a sliding window, the operator's close and
// probe), token bucket and sustained-failure disabling: pure state machines driven by random schedules
// of events with an explicit clock.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EMPTY_WINDOW, recordCall, type CallWindow, type WindowConfig } from '../../src/actors/deliverer/call-window.ts';
import {
  CLOSED,
  DEFAULT_BREAKER_CONFIG as CFG,
  admit,
  closeNow,
  probeNow,
  record,
  type BreakerConfig,
  type BreakerState,
} from '../../src/actors/deliverer/circuit-breaker.ts';
import { DEFAULT_DISABLE_CONFIG, recordForDisable, type FailureStreak } from '../../src/actors/deliverer/disable.ts';
import { fullBucket, take, type Bucket } from '../../src/actors/deliverer/rate-limit.ts';

type Op = { kind: 'admit' } | { kind: 'record'; success: boolean };
const ops = fc.array(
  fc.tuple(
    fc.integer({ min: 0, max: 90_000 }),
    fc.oneof(
      fc.constant<Op>({ kind: 'admit' }),
      fc.boolean().map<Op>((success) => ({ kind: 'record', success })),
    ),
  ),
  { maxLength: 300 },
);

/** Only the consecutive rule: a count window too short to ever hold minimumNumberOfCalls. */
const CONSECUTIVE_ONLY: BreakerConfig = { ...CFG, failureThreshold: 5, slidingWindowSize: 10, minimumNumberOfCalls: 11 };
/** Only the rate rule. */
const rateOnly = (w: WindowConfig, minimumNumberOfCalls: number, failureRateThreshold: number): BreakerConfig => ({
  ...CFG,
  ...w,
  failureThreshold: Number.MAX_SAFE_INTEGER,
  minimumNumberOfCalls,
  failureRateThreshold,
});

const windowConfig = fc.oneof(
  fc.record({ slidingWindowType: fc.constant<'count'>('count'), slidingWindowSize: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ slidingWindowType: fc.constant<'time'>('time'), slidingWindowSize: fc.integer({ min: 1, max: 20 }) }),
);

/** The reference: the calls a window should hold, from the whole history kept as a plain list. */
function expected(history: { at: number; failed: boolean }[], w: WindowConfig): { calls: number; failures: number } {
  let kept: { at: number; failed: boolean }[];
  if (w.slidingWindowType === 'count') kept = history.slice(-w.slidingWindowSize);
  else {
    // A clock stepping back records into the latest second seen.
    let latest = -Infinity;
    const seconds = history.map((h) => (latest = Math.max(latest, Math.floor(h.at / 1000))));
    kept = history.filter((_, i) => seconds[i]! > latest - w.slidingWindowSize);
  }
  return { calls: kept.length, failures: kept.filter((h) => h.failed).length };
}

function closedWindow(s: BreakerState): CallWindow {
  if (s.state !== 'closed') throw new Error(`expected a closed breaker, got ${s.state}`);
  return s.window;
}

describe('circuit breaker: consecutive failures', () => {
  it('a scenario: opens after failureThreshold failures in a row, probes once, closes on success, backs off on failure', () => {
    const cfg = CONSECUTIVE_ONLY;
    let s: BreakerState = CLOSED;
    for (let i = 0; i < 4; i++) s = record(s, false, 1_000, cfg).state;
    expect(s).toMatchObject({ state: 'closed', consecutiveFailures: 4 });
    const opened = record(s, false, 1_000, cfg);
    expect(opened).toEqual({ state: { state: 'open', until: 61_000, cooldownMs: 60_000 }, transition: 'opened' });
    expect(admit(opened.state, 60_999, cfg)).toMatchObject({ allowed: false, waitMs: 1 });

    const probe = admit(opened.state, 61_000, cfg);
    expect(probe).toMatchObject({ allowed: true, transition: 'half-opened', state: { state: 'half-open' } });
    expect(admit(probe.state, 61_001, cfg).allowed).toBe(false);

    const reopened = record(probe.state, false, 62_000, cfg);
    expect(reopened).toEqual({ state: { state: 'open', until: 182_000, cooldownMs: 120_000 }, transition: 'opened' });

    const probe2 = admit(reopened.state, 182_000, cfg);
    expect(record(probe2.state, true, 182_500, cfg)).toEqual({ state: CLOSED, transition: 'closed' });
  });

  it('a success in between resets the count of consecutive failures', () => {
    let s: BreakerState = CLOSED;
    for (const ok of [false, false, false, false, true, false, false, false, false]) s = record(s, ok, 0, CONSECUTIVE_ONLY).state;
    expect(s).toMatchObject({ state: 'closed', consecutiveFailures: 4 });
  });

  it('a probe whose result never comes frees the slot after probeTimeoutMs', () => {
    const open: BreakerState = { state: 'open', until: 0, cooldownMs: 30_000 };
    const probing = admit(open, 0, CFG).state;
    expect(admit(probing, CFG.probeTimeoutMs - 1, CFG)).toMatchObject({ allowed: false, waitMs: 1 });
    expect(admit(probing, CFG.probeTimeoutMs, CFG).allowed).toBe(true);
  });

  it('invariants under any schedule of admissions and results', () => {
    const cfg = CONSECUTIVE_ONLY;
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
            const a = admit(s, now, cfg);
            if (s.state === 'open' && now < s.until) expect(a.allowed).toBe(false);
            if (a.allowed && a.state.state === 'half-open') {
              // Exactly one probe at a time: another only after the previous one timed out.
              expect(now - lastAdmitWhileNotClosed).toBeGreaterThanOrEqual(cfg.probeTimeoutMs);
              lastAdmitWhileNotClosed = now;
            }
            if (!a.allowed) expect(a.waitMs).toBeGreaterThan(0);
            if (s.state === 'closed') expect(a.allowed).toBe(true);
            s = a.state;
          } else {
            const before = s;
            const r = record(s, op.success, now, cfg);
            if (before.state === 'closed') {
              failuresSinceSuccess = op.success ? 0 : failuresSinceSuccess + 1;
              expect(r.transition === 'opened').toBe(failuresSinceSuccess === cfg.failureThreshold);
            }
            if (before.state === 'open') expect(r.state).toBe(before);
            if (r.transition === 'opened' && r.state.state === 'open') {
              expect(r.state.cooldownMs).toBeLessThanOrEqual(cfg.maxCooldownMs);
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

describe('circuit breaker: failure rate over a sliding window', () => {
  it('the window holds exactly the last N calls (count) or the calls of the last T seconds (time), in a ring of fixed size', () => {
    fc.assert(
      fc.property(
        windowConfig,
        fc.array(fc.tuple(fc.integer({ min: -1_500, max: 4_000 }), fc.boolean()), { maxLength: 200 }),
        (w, calls) => {
          let window: CallWindow = EMPTY_WINDOW;
          let now = 10_000;
          const history: { at: number; failed: boolean }[] = [];
          for (const [dt, failed] of calls) {
            now = Math.max(0, now + dt);
            const before = window;
            const ringBefore = before.ring?.slice();
            window = recordCall(window, failed, now, w);
            // Pure: the previous value is untouched.
            if (ringBefore !== undefined) expect(before.ring).toEqual(ringBefore);
            history.push({ at: now, failed });
            expect({ calls: window.calls, failures: window.failures }).toEqual(expected(history, w));
            // Bounded: one byte per call (count) or one [second, calls, failures] slot per second (time).
            expect(window.ring!.byteLength).toBe(w.slidingWindowType === 'count' ? w.slidingWindowSize : 24 * w.slidingWindowSize);
          }
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it('opens exactly when the window holds minimumNumberOfCalls and its failure rate reaches the threshold', () => {
    fc.assert(
      fc.property(
        windowConfig,
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 100 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3_000 }), fc.boolean()), { maxLength: 200 }),
        (w, minimumNumberOfCalls, failureRateThreshold, calls) => {
          const cfg = rateOnly(w, minimumNumberOfCalls, failureRateThreshold);
          let s: BreakerState = CLOSED;
          let now = 0;
          let history: { at: number; failed: boolean }[] = [];
          for (const [dt, failed] of calls) {
            now += dt;
            if (s.state !== 'closed') {
              // Reopened windows start empty: close as an operator would.
              s = closeNow(s).state;
              history = [];
            }
            const r = record(s, !failed, now, cfg);
            history.push({ at: now, failed });
            const { calls: n, failures } = expected(history, w);
            const due = n >= minimumNumberOfCalls && (failures / n) * 100 >= failureRateThreshold;
            expect(r.transition === 'opened', `${failures}/${n}`).toBe(due);
            if (!due) expect(closedWindow(r.state)).toMatchObject({ calls: n, failures });
            s = r.state;
          }
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it('with the defaults, a receiver failing 30% of requests at random does not trip it; one failing 80% does, within the minimum calls', () => {
    // A fixed pseudo-random sequence (mulberry32), so the test is the same at every run.
    const random = (seed: number) => () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
    };
    const run = (failureRate: number, seed: number, calls: number) => {
      const next = random(seed);
      let s: BreakerState = CLOSED;
      let openings = 0;
      let firstAt: number | undefined;
      for (let i = 0; i < calls; i++) {
        const r = record(s, next() >= failureRate, i * 100, CFG);
        if (r.transition === 'opened') {
          openings++;
          firstAt ??= i + 1;
          s = closeNow(r.state).state;
        } else s = r.state;
      }
      return { openings, firstAt };
    };
    for (const seed of [1, 2, 3, 4, 5]) expect(run(0.3, seed, 2_000).openings).toBe(0);
    const outage = run(0.8, 7, 200);
    expect(outage.openings).toBeGreaterThan(0);
    expect(outage.firstAt).toBeLessThanOrEqual(CFG.minimumNumberOfCalls);
  });

  it('both rules together: the consecutive rule opens a breaker whose window has too few calls for the rate rule', () => {
    let s: BreakerState = CLOSED;
    for (let i = 0; i < CFG.failureThreshold - 1; i++) s = record(s, false, i, CFG).state;
    expect(s).toMatchObject({
      state: 'closed',
      consecutiveFailures: CFG.failureThreshold - 1,
      window: { calls: CFG.failureThreshold - 1 },
    });
    expect(record(s, false, 100, CFG).transition).toBe('opened');
    expect(CFG.failureThreshold).toBeLessThan(CFG.minimumNumberOfCalls);
  });
});

describe("circuit breaker: the operator's close and probe", () => {
  const open: BreakerState = { state: 'open', until: 480_000, cooldownMs: 480_000 };

  it('close: at once, from any state, with an empty window', () => {
    expect(closeNow(open)).toEqual({ state: CLOSED, transition: 'closed' });
    expect(closeNow({ state: 'half-open', cooldownMs: 60_000, probeSince: 5 })).toEqual({ state: CLOSED, transition: 'closed' });
    const failing = record(record(CLOSED, false, 0, CFG).state, false, 0, CFG).state;
    expect(closeNow(failing)).toEqual({ state: CLOSED });
  });

  it('probe: the next admission is the probe, open or half-open; closed changes nothing', () => {
    const probed = probeNow(open, 1_000, CFG);
    expect(admit(open, 1_000, CFG).allowed).toBe(false);
    expect(admit(probed, 1_000, CFG)).toMatchObject({ allowed: true, transition: 'half-opened' });
    const probing = admit(probed, 1_000, CFG).state;
    expect(admit(probing, 2_000, CFG).allowed).toBe(false);
    expect(admit(probeNow(probing, 2_000, CFG), 2_000, CFG).allowed).toBe(true);
    expect(probeNow(CLOSED, 2_000, CFG)).toBe(CLOSED);
  });

  it('under any schedule: after a probe the next admission passes; after a close every admission does', () => {
    fc.assert(
      fc.property(ops, fc.integer({ min: 0, max: 299 }), (steps, at) => {
        let s: BreakerState = CLOSED;
        let now = 0;
        for (const [i, [dt, op]] of steps.entries()) {
          now += dt;
          if (i === at) {
            expect(admit(probeNow(s, now, CONSECUTIVE_ONLY), now, CONSECUTIVE_ONLY).allowed).toBe(true);
            expect(admit(closeNow(s).state, now, CONSECUTIVE_ONLY)).toMatchObject({ allowed: true, state: CLOSED });
          }
          s = op.kind === 'admit' ? admit(s, now, CONSECUTIVE_ONLY).state : record(s, op.success, now, CONSECUTIVE_ONLY).state;
        }
      }),
      { numRuns: 500 },
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
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 12 * 3_600_000 }), fc.boolean()), { maxLength: 200 }), (events) => {
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
      }),
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
