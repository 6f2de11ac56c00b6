/**
 * Circuit breaker per endpoint, as an immutable state and pure transitions (`admit`, `record`, and the
 * operator's `closeNow` and `probeNow`); the clock is an argument.
 *
 * - closed: everything passes. Two rules open it, whichever comes first:
 *   - the failure rate: once the sliding window (call-window.ts: the last `slidingWindowSize` calls,
 *     default 100, or the calls of the last `slidingWindowSize` seconds with `slidingWindowType:
 *     'time'`) holds at least `minimumNumberOfCalls` (50), a share of failures at or above
 *     `failureRateThreshold` percent (50) opens it. A receiver failing 30% of requests at random stays
 *     closed (P[≥ 50 of 100] ≈ 10⁻⁵) and its retries keep their schedule. A `minimumNumberOfCalls`
 *     above a count window's size turns this rule off.
 *   - consecutive failures: `failureThreshold` (10) in a row, for a total outage of an endpoint with too
 *     little traffic to fill the window. Ten in a row happen by chance at a 30% failure rate about once
 *     in 170,000 calls (0.3¹⁰); five in a row, about once in 400.
 * - open: nothing passes until `until` (a cool-down, first `cooldownMs`, default 60 s); admit answers
 *   how long to wait, so the Deliverer reschedules instead of spinning.
 * - half-open: after the cool-down exactly one request, the probe, passes. Success closes the breaker
 *   with an empty window; failure opens it again for `cooldownFactor` (2) times the previous cool-down,
 *   up to `maxCooldownMs` (10 min). A probe without a result after `probeTimeoutMs` (60 s) frees the
 *   slot for another probe, so a lost result cannot wedge the endpoint.
 * - Results arriving while open belong to requests admitted before it opened: they change nothing.
 * - An operator's `closeNow` closes it at once, with an empty window and no failures counted (the
 *   receiver was fixed); `probeNow` ends the cool-down (open) or frees the probe slot (half-open), so
 *   the next request is the probe. Closed, `probeNow` changes nothing.
 *
 * Bounds: the state of one endpoint is its window's ring (call-window.ts), at most `slidingWindowSize`
 * bytes for a count window and 24 × `slidingWindowSize` bytes for a time window, plus a few numbers.
 *
 * What counts as failure is the caller's choice; the Deliverer counts retryable outcomes (network,
 * timeout, 408, 429, 5xx) and treats any other response as proof that the endpoint is up.
 */
import { EMPTY_WINDOW, recordCall, type CallWindow, type SlidingWindowType } from './call-window.ts';

export interface BreakerConfig {
  /** Consecutive failures that open it (total outage). */
  failureThreshold: number;
  /** Percent (above 0, at most 100) of failed calls in the window that opens it. */
  failureRateThreshold: number;
  slidingWindowType: SlidingWindowType;
  /** Calls (`count`) or seconds (`time`) in the window. */
  slidingWindowSize: number;
  /** Calls the window must hold before its failure rate counts. */
  minimumNumberOfCalls: number;
  cooldownMs: number;
  cooldownFactor: number;
  maxCooldownMs: number;
  probeTimeoutMs: number;
}

/** The defaults (the schema of `deliverer.circuitBreaker` reads them here). */
export const DEFAULT_BREAKER_CONFIG: BreakerConfig = Object.freeze({
  failureThreshold: 10,
  failureRateThreshold: 50,
  slidingWindowType: 'count',
  slidingWindowSize: 100,
  minimumNumberOfCalls: 50,
  cooldownMs: 60_000,
  cooldownFactor: 2,
  maxCooldownMs: 600_000,
  probeTimeoutMs: 60_000,
});

export type BreakerState =
  | { readonly state: 'closed'; readonly consecutiveFailures: number; readonly window: CallWindow }
  | { readonly state: 'open'; readonly until: number; readonly cooldownMs: number }
  | { readonly state: 'half-open'; readonly cooldownMs: number; readonly probeSince: number };

export type Transition = 'opened' | 'half-opened' | 'closed';

export const CLOSED: BreakerState = Object.freeze({ state: 'closed', consecutiveFailures: 0, window: EMPTY_WINDOW });

/** `circuit_breaker_state` gauge values. */
export const BREAKER_GAUGE = { closed: 0, 'half-open': 1, open: 2 } as const;

/** What an operator may do to a breaker now. */
export const BREAKER_ACTIONS = ['close', 'probe'] as const;
export type BreakerAction = (typeof BREAKER_ACTIONS)[number];

export interface Admission {
  allowed: boolean;
  /** When refused: ms until a request may be admitted again. */
  waitMs: number;
  state: BreakerState;
  transition?: Transition;
}

export function admit(s: BreakerState, now: number, cfg: BreakerConfig = DEFAULT_BREAKER_CONFIG): Admission {
  switch (s.state) {
    case 'closed':
      return { allowed: true, waitMs: 0, state: s };
    case 'open':
      if (now < s.until) return { allowed: false, waitMs: s.until - now, state: s };
      return {
        allowed: true,
        waitMs: 0,
        state: { state: 'half-open', cooldownMs: s.cooldownMs, probeSince: now },
        transition: 'half-opened',
      };
    case 'half-open': {
      const probeFreeAt = s.probeSince + cfg.probeTimeoutMs;
      if (now < probeFreeAt) return { allowed: false, waitMs: probeFreeAt - now, state: s };
      return { allowed: true, waitMs: 0, state: { ...s, probeSince: now } };
    }
  }
}

export function record(
  s: BreakerState,
  success: boolean,
  now: number,
  cfg: BreakerConfig = DEFAULT_BREAKER_CONFIG,
): { state: BreakerState; transition?: Transition } {
  switch (s.state) {
    case 'closed': {
      const window = recordCall(s.window, !success, now, cfg);
      const consecutiveFailures = success ? 0 : s.consecutiveFailures + 1;
      if (consecutiveFailures >= cfg.failureThreshold || rateExceeded(window, cfg)) {
        return { state: { state: 'open', until: now + cfg.cooldownMs, cooldownMs: cfg.cooldownMs }, transition: 'opened' };
      }
      return { state: { state: 'closed', consecutiveFailures, window } };
    }
    case 'open':
      return { state: s };
    case 'half-open': {
      if (success) return { state: CLOSED, transition: 'closed' };
      const cooldownMs = Math.min(s.cooldownMs * cfg.cooldownFactor, cfg.maxCooldownMs);
      return { state: { state: 'open', until: now + cooldownMs, cooldownMs }, transition: 'opened' };
    }
  }
}

/** The operator's close: at once, with nothing counted against the endpoint. */
export function closeNow(s: BreakerState): { state: BreakerState; transition?: Transition } {
  return s.state === 'closed' ? { state: CLOSED } : { state: CLOSED, transition: 'closed' };
}

/** The operator's probe: the next request may be the probe (closed: nothing to do). */
export function probeNow(s: BreakerState, now: number, cfg: BreakerConfig = DEFAULT_BREAKER_CONFIG): BreakerState {
  switch (s.state) {
    case 'closed':
      return s;
    case 'open':
      return s.until <= now ? s : { ...s, until: now };
    case 'half-open':
      return s.probeSince + cfg.probeTimeoutMs <= now ? s : { ...s, probeSince: now - cfg.probeTimeoutMs };
  }
}

function rateExceeded(w: CallWindow, cfg: Pick<BreakerConfig, 'minimumNumberOfCalls' | 'failureRateThreshold'>): boolean {
  return w.calls >= cfg.minimumNumberOfCalls && w.failures * 100 >= cfg.failureRateThreshold * w.calls;
}

/** A breaker as the admin API shows it. */
export interface BreakerView {
  state: BreakerState['state'];
  /** Open: when the cool-down ends (ms since the epoch). */
  openUntil: number | null;
  /** Open or half-open: the current cool-down. */
  cooldownMs: number | null;
  /** Closed: the consecutive failures and the window's calls and failures. */
  consecutiveFailures: number;
  window: { calls: number; failures: number };
}

export function breakerView(s: BreakerState): BreakerView {
  if (s.state === 'closed') {
    return {
      state: s.state,
      openUntil: null,
      cooldownMs: null,
      consecutiveFailures: s.consecutiveFailures,
      window: { calls: s.window.calls, failures: s.window.failures },
    };
  }
  return {
    state: s.state,
    openUntil: s.state === 'open' ? s.until : null,
    cooldownMs: s.cooldownMs,
    consecutiveFailures: 0,
    window: { calls: 0, failures: 0 },
  };
}
