/**
 * Token bucket per endpoint, as an immutable value and a pure `take`; the clock is an argument.
 *
 * The bucket holds up to `burst` tokens and refills continuously at `ratePerSec`; a request takes one
 * token. Over any interval of length t it therefore lets through at most `ratePerSec·t + burst`
 * requests. A new bucket starts full. `take` answers 0 (go) or how many ms until a token is there;
 * a refused take consumes nothing. A clock that steps back refills nothing.
 */

export interface BucketConfig {
  ratePerSec: number;
  burst: number;
}

export interface Bucket {
  readonly tokens: number;
  readonly at: number;
}

export function fullBucket(cfg: BucketConfig, now: number): Bucket {
  return { tokens: cfg.burst, at: now };
}

/** Refill arithmetic in floating point can land a hair under a whole token after exactly the wait named. */
const EPSILON = 1e-9;

export function take(b: Bucket, now: number, cfg: BucketConfig): { waitMs: number; bucket: Bucket } {
  const elapsedMs = Math.max(0, now - b.at);
  const tokens = Math.min(cfg.burst, b.tokens + (elapsedMs * cfg.ratePerSec) / 1000);
  const at = Math.max(now, b.at);
  if (tokens >= 1 - EPSILON) return { waitMs: 0, bucket: { tokens: Math.max(0, tokens - 1), at } };
  return { waitMs: Math.ceil(((1 - tokens) * 1000) / cfg.ratePerSec), bucket: { tokens, at } };
}
