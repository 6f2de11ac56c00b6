/**
 * Circuit breaker per endpoint, as an immutable state and two pure transitions (`admit`, `record`);
 * the clock is an argument.
 *
 * - closed: everything passes. `failureThreshold` consecutive failures (default 5) open it. We count
 *   consecutive failures rather than a failure ratio over a window because webhook endpoints are
 *   mostly low-volume: a ratio over a handful of requests is noise, while N failures in a row with no
 *   success in between says the endpoint is down whatever its traffic.
 * - open: nothing passes until `until` (a cool-down, first `cooldownMs`, default 60 s); admit answers
 *   how long to wait, so the Deliverer reschedules instead of spinning.
 * - half-open: after the cool-down exactly one request, the probe, passes. Success closes the breaker;
 *   failure opens it again for `cooldownFactor` (2) times the previous cool-down, up to `maxCooldownMs`
 *   (10 min). A probe without a result after `probeTimeoutMs` (60 s) frees the slot for another probe,
 *   so a lost result cannot wedge the endpoint.
 * - Results arriving while open belong to requests admitted before it opened: they change nothing.
 *
 * What counts as failure is the caller's choice; the Deliverer counts retryable outcomes (network,
 * timeout, 408, 429, 5xx) and treats any other response as proof that the endpoint is up.
 */

export interface BreakerConfig {
  failureThreshold: number;
  cooldownMs: number;
  cooldownFactor: number;
  maxCooldownMs: number;
  probeTimeoutMs: number;
}

/** The defaults (the schema of `deliverer.circuitBreaker` reads `failureThreshold` and `cooldownMs` here). */
export const DEFAULT_BREAKER_CONFIG: BreakerConfig = Object.freeze({
  failureThreshold: 5,
  cooldownMs: 60_000,
  cooldownFactor: 2,
  maxCooldownMs: 600_000,
  probeTimeoutMs: 60_000,
});

export type BreakerState =
  | { readonly state: 'closed'; readonly failures: number }
  | { readonly state: 'open'; readonly until: number; readonly cooldownMs: number }
  | { readonly state: 'half-open'; readonly cooldownMs: number; readonly probeSince: number };

export type Transition = 'opened' | 'half-opened' | 'closed';

export const CLOSED: BreakerState = Object.freeze({ state: 'closed', failures: 0 });

/** `circuit_breaker_state` gauge values. */
export const BREAKER_GAUGE = { closed: 0, 'half-open': 1, open: 2 } as const;

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
      return { allowed: true, waitMs: 0, state: { state: 'half-open', cooldownMs: s.cooldownMs, probeSince: now }, transition: 'half-opened' };
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
      if (success) return { state: s.failures === 0 ? s : CLOSED };
      const failures = s.failures + 1;
      if (failures < cfg.failureThreshold) return { state: { state: 'closed', failures } };
      return { state: { state: 'open', until: now + cfg.cooldownMs, cooldownMs: cfg.cooldownMs }, transition: 'opened' };
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
