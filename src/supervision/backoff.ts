/**
 * RestartBackoff: the delay before a restart grows by `factor` from `minMs` up to `maxMs` with each
 * failure, drawn with ±`jitter`, and starts over at `minMs` after `resetAfterMs` without a failure.
 * The random source is injectable so property tests can drive it.
 */
import type { BackoffSpec } from '../runtime/types.ts';

export interface DelaySpec {
  minMs: number;
  maxMs: number;
  factor: number;
  jitter: number;
}

/**
 * The delay before retry number `attempt` (from 1): `minMs * factor^(attempt-1)` capped at `maxMs`,
 * drawn uniformly within ±`jitter` of that and clamped back into [minMs, maxMs]. Shared by restarts,
 * reconnects and re-requests, so every retry loop of the node backs off the same way.
 */
export function backoffDelay(attempt: number, spec: DelaySpec, random: () => number = Math.random): number {
  const { minMs, maxMs, factor, jitter } = spec;
  const base = Math.min(maxMs, minMs * factor ** Math.min(64, Math.max(0, attempt - 1)));
  const spread = base * jitter * (2 * random() - 1);
  return Math.round(Math.min(maxMs, Math.max(minMs, base + spread)));
}

export const DEFAULT_BACKOFF: BackoffSpec = { minMs: 100, maxMs: 30_000, factor: 2, jitter: 0.2, resetAfterMs: 60_000 };

export class RestartBackoff {
  readonly spec: BackoffSpec;
  private attempt = 0;
  private lastFailureAt = Number.NEGATIVE_INFINITY;

  constructor(
    spec: Partial<BackoffSpec> = {},
    private readonly random: () => number = Math.random,
  ) {
    this.spec = { ...DEFAULT_BACKOFF, ...spec };
  }

  /** The delay for a failure at `now`. */
  next(now: number): number {
    if (now - this.lastFailureAt >= this.spec.resetAfterMs) this.attempt = 0;
    this.lastFailureAt = now;
    this.attempt++;
    return backoffDelay(this.attempt, this.spec, this.random);
  }

  reset(): void {
    this.attempt = 0;
    this.lastFailureAt = Number.NEGATIVE_INFINITY;
  }
}
