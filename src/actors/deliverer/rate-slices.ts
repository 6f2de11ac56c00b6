/**
 * An endpoint's rate limit held cluster-wide: the tokens come from the endpoint's ONE bucket in the
 * store (src/store/delivery-limits.ts), a small slice at a time, instead of a bucket of this instance's.
 *
 * `take(endpointId, ratePerSec, now)` is synchronous, like the local bucket's (rate-limit.ts): 0 (go: one
 * token of the slice in hand spent) or how many ms to wait (SLICE_MS at least: tokens that come sooner
 * end the wait through the hook). With no token in hand it starts a refill —
 * one `DeliveryLimits.take` of what the rate allows in SLICE_MS (100 ms), at least 1, never two at once
 * for an endpoint — and answers a wait; when the tokens come, `hooks.tokens(endpointId)` lets the jobs
 * held for them go. A refill that got none waits as long as the store says a token takes; one that
 * failed (the store unreachable, after the pool's own retries) is logged and tried again after
 * `errorWaitMs`, meanwhile nothing of the endpoint is sent.
 *
 * Tokens of a slice not spent within SLICE_LIFETIME_MS of their coming are dropped, never given back:
 * so over any interval t the cluster sends at most `ratePerSec·(t + SLICE_LIFETIME_MS) + burst`, however
 * many instances share the bucket. The burst is the local bucket's: max(1, ⌊ratePerSec⌋).
 *
 * Bounds: one slice (a few numbers) per rate-limited endpoint met; `forget` drops it.
 */
import type { Logger } from '../../runtime/log.ts';
import type { DeliveryLimits } from '../../store/delivery-limits.ts';

/** How much rate a slice asks for: what the rate allows in this long. */
export const SLICE_MS = 100;
/** Tokens of a slice older than this are dropped. */
export const SLICE_LIFETIME_MS = 2 * SLICE_MS;

interface Slice {
  ratePerSec: number;
  tokens: number;
  /** Tokens in hand are spendable until then. */
  expiresAt: number;
  /** No refill before then (the store said when a token is there, or it failed). */
  retryAt: number;
  refilling: boolean;
}

export interface RateSliceHooks {
  /** Tokens came for the endpoint: what is held for them may go. */
  tokens(endpointId: string): void;
}

export class RateSlices {
  private readonly slices = new Map<string, Slice>();

  constructor(
    private readonly limits: DeliveryLimits,
    private readonly hooks: RateSliceHooks,
    private readonly logger: Logger,
    private readonly now: () => number,
    private readonly errorWaitMs: number,
  ) {}

  take(endpointId: string, ratePerSec: number, now: number): number {
    let s = this.slices.get(endpointId);
    if (s === undefined) {
      s = { ratePerSec, tokens: 0, expiresAt: 0, retryAt: 0, refilling: false };
      this.slices.set(endpointId, s);
    } else if (s.ratePerSec !== ratePerSec) {
      s.ratePerSec = ratePerSec;
      s.tokens = 0;
      s.retryAt = 0;
    }
    if (s.tokens >= 1 && now < s.expiresAt) {
      s.tokens--;
      return 0;
    }
    if (!s.refilling && now >= s.retryAt) this.refill(endpointId, s);
    // A refill under way ends the wait through `hooks.tokens`; this is the wait if it brings none.
    return Math.max(SLICE_MS, s.retryAt - now);
  }

  forget(endpointId: string): void {
    this.slices.delete(endpointId);
  }

  private refill(endpointId: string, s: Slice): void {
    s.refilling = true;
    const rate = s.ratePerSec;
    const want = Math.max(1, Math.round((rate * SLICE_MS) / 1000));
    this.limits.take(endpointId, { ratePerSec: rate, burst: Math.max(1, Math.floor(rate)) }, want).then(
      (grant) => {
        s.refilling = false;
        // The rate changed meanwhile: this slice was taken for the old one, and is dropped.
        if (s.ratePerSec !== rate) return;
        const now = this.now();
        if (grant.granted > 0) {
          s.tokens = grant.granted;
          s.expiresAt = now + SLICE_LIFETIME_MS;
          this.hooks.tokens(endpointId);
        } else s.retryAt = now + grant.waitMs;
      },
      (err: unknown) => {
        s.refilling = false;
        s.retryAt = this.now() + this.errorWaitMs;
        this.logger.warn(
          { err, endpointId, retryInMs: this.errorWaitMs },
          'rate limit tokens could not be taken from the store; the endpoint waits',
        );
      },
    );
  }
}
