/**
 * Per-endpoint delivery limits shared by the instances of a cluster, kept in the store: each endpoint's
 * rate limit is ONE token bucket, and a circuit breaker opened by one instance is seen by all.
 *
 * - `take(endpointId, bucket, want)`: up to `want` tokens from the endpoint's bucket (`ratePerSec`,
 *   `burst`; a new bucket starts full, refills continuously from the store's clock, a clock stepping
 *   back refills nothing) in one atomic step: `granted` (0..want, whole tokens) and, when it is 0, `waitMs`
 *   until one is there. A changed rate or burst applies from this take on. Every token leaves the bucket
 *   once, whoever takes it, so the cluster sends at most `ratePerSec·t + burst` over any interval t,
 *   plus what the instances hold in hand (deliverer: rate-slices.ts).
 * - `openBreaker(endpointId, cooldownMs)`: the endpoint's breaker is open until the store's now +
 *   `cooldownMs` (an open one stays open until the later of the two); `closeBreaker` clears it (a probe
 *   that succeeded, an operator's close); `openBreakers()` lists them all, each with the time left of
 *   its cool-down (0 once it is over: then it is probing, until an instance closes or re-opens it), its
 *   cool-down and the instance that opened it. One read, made by every instance about once a second.
 * - `forget(endpointId)`: the endpoint was deleted; its bucket and breaker go.
 *
 * Engines: PostgreSQL (postgres/delivery-limits.ts, migration 003) for instances sharing a schema. A
 * LevelDB store has one process, which is the whole cluster: `deliveryLimitsFor` returns undefined and
 * the Deliverer keeps its guards in memory (endpoint-guard.ts), with no store call. Bounds: one bucket
 * and at most one breaker per endpoint.
 */
import type { Kv } from './kv.ts';
import { PgDeliveryLimits } from './postgres/delivery-limits.ts';
import type { PgKv } from './postgres/kv.ts';

export interface BucketSettings {
  ratePerSec: number;
  burst: number;
}

export interface TokenGrant {
  /** Tokens handed out, 0..want. */
  granted: number;
  /** When none was: ms until one is there (0 otherwise). */
  waitMs: number;
}

export interface SharedBreaker {
  endpointId: string;
  /** Ms of its cool-down still to run (0: over; the breaker is probing). */
  remainingMs: number;
  cooldownMs: number;
  openedBy: string;
}

export interface DeliveryLimits {
  take(endpointId: string, bucket: BucketSettings, want: number): Promise<TokenGrant>;
  openBreaker(endpointId: string, cooldownMs: number): Promise<void>;
  closeBreaker(endpointId: string): Promise<void>;
  openBreakers(): Promise<SharedBreaker[]>;
  forget(endpointId: string): Promise<void>;
}

/** The limits to share for the store `kv` is part of, with `owner` (the node's id) named in what it writes; undefined on LevelDB. */
export function deliveryLimitsFor(kv: Kv, owner: string): DeliveryLimits | undefined {
  return kv.kind === 'postgres' ? new PgDeliveryLimits((kv as PgKv).pg, owner) : undefined;
}

/** Refill arithmetic in floating point can land a hair under a whole token after exactly the wait named. */
export const TOKEN_EPSILON = 1e-9;

/** Checks a take's arguments (every engine): a positive finite rate, a burst of at least 1, want 1 or more. */
export function checkTake(bucket: BucketSettings, want: number): void {
  if (!(Number.isFinite(bucket.ratePerSec) && bucket.ratePerSec > 0))
    throw new RangeError(`rate must be a positive number, got ${bucket.ratePerSec}`);
  if (!(Number.isFinite(bucket.burst) && bucket.burst >= 1)) throw new RangeError(`burst must be at least 1, got ${bucket.burst}`);
  if (!(Number.isSafeInteger(want) && want >= 1)) throw new RangeError(`tokens wanted must be a positive integer, got ${want}`);
}

/** Ms until a bucket holding `tokens` has a whole one at `ratePerSec`. */
export function waitForToken(tokens: number, ratePerSec: number): number {
  return tokens >= 1 - TOKEN_EPSILON ? 0 : Math.max(1, Math.ceil(((1 - tokens) * 1000) / ratePerSec));
}
