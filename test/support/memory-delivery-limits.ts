/**
 * The shared delivery limits (src/store/delivery-limits.ts) in memory, with the clock as an option: the
 * contract's model (test/contract/delivery-limits.contract.ts runs on it and on PostgreSQL) and the
 * store of in-process clusters of Deliverers in unit tests. Same arithmetic as the PostgreSQL statement.
 */
import {
  checkTake,
  TOKEN_EPSILON,
  waitForToken,
  type BucketSettings,
  type DeliveryLimits,
  type SharedBreaker,
  type TokenGrant,
} from '../../src/store/delivery-limits.ts';

export class MemoryDeliveryLimits implements DeliveryLimits {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly breakers = new Map<string, { until: number; cooldownMs: number; openedBy: string }>();
  /** Calls made, by method (tests count store round trips). */
  readonly calls = { take: 0, openBreaker: 0, closeBreaker: 0, openBreakers: 0, forget: 0 };

  constructor(
    private readonly owner = 'memory',
    private readonly now: () => number = Date.now,
  ) {}

  /** The same store seen by another instance (its own `owner` in what it writes). */
  as(owner: string): DeliveryLimits {
    return Object.assign(Object.create(this) as MemoryDeliveryLimits, { owner });
  }

  async take(endpointId: string, bucket: BucketSettings, want: number): Promise<TokenGrant> {
    this.calls.take++;
    checkTake(bucket, want);
    const now = this.now();
    const b = this.buckets.get(endpointId);
    const refilled =
      b === undefined ? bucket.burst : Math.min(bucket.burst, b.tokens + (Math.max(0, now - b.at) * bucket.ratePerSec) / 1000);
    const granted = Math.min(want, Math.floor(refilled + TOKEN_EPSILON));
    const tokens = Math.max(0, refilled - granted);
    this.buckets.set(endpointId, { tokens, at: Math.max(now, b?.at ?? now) });
    return { granted, waitMs: granted > 0 ? 0 : waitForToken(tokens, bucket.ratePerSec) };
  }

  async openBreaker(endpointId: string, cooldownMs: number): Promise<void> {
    this.calls.openBreaker++;
    const until = this.now() + cooldownMs;
    const b = this.breakers.get(endpointId);
    if (b === undefined || until > b.until)
      this.breakers.set(endpointId, { until, cooldownMs: Math.max(cooldownMs, b?.cooldownMs ?? 0), openedBy: this.owner });
    else b.cooldownMs = Math.max(b.cooldownMs, cooldownMs);
  }

  async closeBreaker(endpointId: string): Promise<void> {
    this.calls.closeBreaker++;
    this.breakers.delete(endpointId);
  }

  async openBreakers(): Promise<SharedBreaker[]> {
    this.calls.openBreakers++;
    const now = this.now();
    return [...this.breakers].map(([endpointId, b]) => ({
      endpointId,
      remainingMs: Math.max(0, b.until - now),
      cooldownMs: b.cooldownMs,
      openedBy: b.openedBy,
    }));
  }

  async forget(endpointId: string): Promise<void> {
    this.calls.forget++;
    this.buckets.delete(endpointId);
    this.breakers.delete(endpointId);
  }
}
