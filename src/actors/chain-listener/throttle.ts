/**
 * Throttle: the pace of one provider's calls, a token bucket whose rate adapts to the provider's
 * rate limits. Pure (the caller passes the clock) so that tests can drive it.
 *
 * - `maxPerSecond` (the provider's `maxRequestsPerSecond`, Infinity when unset) is the ceiling; the
 *   bucket holds one second of calls, so a burst of up to that many goes out at once.
 * - `reserve(calls, now)` takes `calls` tokens (a batch counts each call) and answers how long the
 *   caller must wait before sending: the bucket may go into debt, so concurrent callers queue in order.
 *   `refund(calls)` gives them back (a caller that will not send after all).
 * - `limited(now)` (the provider answered with a rate limit): the rate halves, from the ceiling, or
 *   from the pace of the last second when there is no ceiling; never below MIN_RATE.
 * - Every RECOVERY_MS without a limit (checked at each `reserve` and `succeeded`), the rate grows by a
 *   quarter, back up to the ceiling; without a ceiling, the limit is lifted once the rate is four times
 *   what it was cut to. Growth does not wait for a success: a provider whose calls all wait too long to
 *   be sent still recovers.
 *
 * Memory: a few numbers.
 */

/** Calls per second the rate never drops below. */
export const MIN_RATE = 0.5;
/** Quiet time after a limit (or the last raise) before the rate grows again. */
export const RECOVERY_MS = 5_000;

export class Throttle {
  /** Calls per second now; Infinity = no limit. */
  private rate: number;
  private tokens: number;
  private refilledAt: number;
  private limitedAt = Number.NEGATIVE_INFINITY;
  private raisedAt = Number.NEGATIVE_INFINITY;
  /** The rate the last limit cut to (for lifting a limit when there is no ceiling). */
  private cutTo = Number.POSITIVE_INFINITY;
  /** Calls sent in the current and previous second, to know the pace when there is no ceiling. */
  private paceStart = 0;
  private paceCount = 0;
  private lastPace = 0;

  constructor(
    private readonly maxPerSecond: number,
    now: number,
  ) {
    this.rate = maxPerSecond;
    this.tokens = Number.isFinite(maxPerSecond) ? maxPerSecond : 0;
    this.refilledAt = now;
    this.paceStart = now;
  }

  /** Calls per second allowed now (Infinity: unlimited). */
  get currentRate(): number {
    return this.rate;
  }

  /** Takes `calls` tokens; the milliseconds to wait before sending (0 = now). */
  reserve(calls: number, now: number): number {
    this.countPace(calls, now);
    this.recover(now);
    if (!Number.isFinite(this.rate)) return 0;
    this.refill(now);
    this.tokens -= calls;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.rate) * 1000);
  }

  limited(now: number): void {
    this.refill(now);
    const from = Number.isFinite(this.rate) ? this.rate : Math.max(this.lastPace, this.paceCount);
    this.rate = Math.max(MIN_RATE, from / 2);
    this.cutTo = this.rate;
    this.tokens = Math.min(this.tokens, 0);
    this.limitedAt = now;
  }

  refund(calls: number): void {
    if (Number.isFinite(this.rate)) this.tokens = Math.min(this.rate, this.tokens + calls);
  }

  succeeded(now: number): void {
    this.recover(now);
  }

  private recover(now: number): void {
    if (!Number.isFinite(this.rate) || this.rate >= this.maxPerSecond) return;
    if (now - Math.max(this.limitedAt, this.raisedAt) < RECOVERY_MS) return;
    this.refill(now);
    this.rate = Math.min(this.maxPerSecond, this.rate * 1.25);
    if (!Number.isFinite(this.maxPerSecond) && this.rate >= this.cutTo * 4) this.rate = Number.POSITIVE_INFINITY;
    this.raisedAt = now;
  }

  private refill(now: number): void {
    if (Number.isFinite(this.rate)) this.tokens = Math.min(this.rate, this.tokens + ((now - this.refilledAt) / 1000) * this.rate);
    this.refilledAt = now;
  }

  private countPace(calls: number, now: number): void {
    if (now - this.paceStart >= 1000) {
      this.lastPace = now - this.paceStart < 2000 ? this.paceCount : 0;
      this.paceStart = now;
      this.paceCount = 0;
    }
    this.paceCount += calls;
  }
}
