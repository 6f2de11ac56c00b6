// Rate slices (an endpoint's rate limit held cluster-wide): the tokens come from the store's one bucket
// a slice at a time, one refill at a time, unspent ones dropped after SLICE_LIFETIME_MS; a refill that
// got none or failed waits; a changed rate drops what was taken for the old one; forget frees the slice.
// The store is a stub whose takes the test answers, the clock an argument.
import { describe, expect, it } from 'vitest';
import { RateSlices, SLICE_LIFETIME_MS, SLICE_MS } from '../../src/actors/deliverer/rate-slices.ts';
import { deferred, type Deferred } from '../../src/runtime/deferred.ts';
import type { BucketSettings, DeliveryLimits, TokenGrant } from '../../src/store/delivery-limits.ts';
import { memoryLogger } from '../support/kernel.ts';

interface Take {
  endpointId: string;
  bucket: BucketSettings;
  want: number;
  answer: Deferred<TokenGrant>;
}

/** Shared limits whose takes wait for the test's answer. */
function stubLimits(): DeliveryLimits & { takes: Take[] } {
  const takes: Take[] = [];
  const none = () => Promise.reject(new Error('not used here'));
  return {
    takes,
    take(endpointId, bucket, want) {
      const answer = deferred<TokenGrant>();
      takes.push({ endpointId, bucket, want, answer });
      return answer.promise;
    },
    openBreaker: none,
    closeBreaker: none,
    openBreakers: none,
    forget: none,
  };
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function slices(errorWaitMs = 5_000) {
  const limits = stubLimits();
  const tokens: string[] = [];
  let now = 0;
  const { logger, lines } = memoryLogger();
  const s = new RateSlices(limits, { tokens: (id) => tokens.push(id) }, logger, () => now, errorWaitMs);
  return {
    s,
    limits,
    tokens,
    lines,
    at(ms: number) {
      now = ms;
      return ms;
    },
    size: () => (s as unknown as { slices: Map<string, unknown> }).slices.size,
  };
}

describe('rate slices: refills', () => {
  // A slice is what the rate allows in SLICE_MS (at least 1) from a bucket of the local burst.
  it('asks the store for a slice of the rate, with the burst of the local bucket', () => {
    const t = slices();
    expect(t.s.take('ep_a', 50, t.at(0))).toBeGreaterThanOrEqual(SLICE_MS);
    t.s.take('ep_b', 0.5, 0);
    t.s.take('ep_c', 2.5, 0);
    expect(t.limits.takes.map(({ endpointId, bucket, want }) => ({ endpointId, bucket, want }))).toEqual([
      { endpointId: 'ep_a', bucket: { ratePerSec: 50, burst: 50 }, want: 5 },
      { endpointId: 'ep_b', bucket: { ratePerSec: 0.5, burst: 1 }, want: 1 },
      { endpointId: 'ep_c', bucket: { ratePerSec: 2.5, burst: 2 }, want: 1 },
    ]);
  });

  // Never two refills at once for an endpoint; the tokens that come are spent one per take, then a wait.
  it('runs one refill at a time, and spends what came one token per take', async () => {
    const t = slices();
    for (let i = 0; i < 5; i++) expect(t.s.take('ep_a', 30, t.at(i))).toBeGreaterThan(0);
    expect(t.limits.takes).toHaveLength(1);
    t.limits.takes[0]!.answer.resolve({ granted: 3, waitMs: 0 });
    await settle();
    expect(t.tokens).toEqual(['ep_a']);
    expect([10, 11, 12].map((ms) => t.s.take('ep_a', 30, t.at(ms)))).toEqual([0, 0, 0]);
    // Spent: the next take waits, and refills.
    expect(t.s.take('ep_a', 30, t.at(13))).toBe(SLICE_MS);
    expect(t.limits.takes).toHaveLength(2);
  });

  // Tokens not spent within SLICE_LIFETIME_MS of their coming are dropped, never given back.
  it('drops the tokens of a slice not spent in time', async () => {
    const t = slices();
    t.s.take('ep_a', 100, t.at(0));
    t.at(40);
    t.limits.takes[0]!.answer.resolve({ granted: 10, waitMs: 0 });
    await settle();
    expect(t.s.take('ep_a', 100, t.at(40 + SLICE_LIFETIME_MS - 1))).toBe(0);
    expect(t.s.take('ep_a', 100, t.at(40 + SLICE_LIFETIME_MS))).toBeGreaterThan(0);
    expect(t.limits.takes).toHaveLength(2);
  });

  // An empty bucket: no refill before the store's wait is over, and the take says how long.
  it('waits as long as the store says a token takes when a refill got none', async () => {
    const t = slices();
    t.s.take('ep_a', 1, t.at(0));
    t.limits.takes[0]!.answer.resolve({ granted: 0, waitMs: 700 });
    await settle();
    expect(t.tokens).toEqual([]);
    expect(t.s.take('ep_a', 1, t.at(100))).toBe(600);
    expect(t.s.take('ep_a', 1, t.at(650))).toBe(SLICE_MS);
    expect(t.limits.takes).toHaveLength(1);
    t.s.take('ep_a', 1, t.at(700));
    expect(t.limits.takes).toHaveLength(2);
  });

  // The store unreachable: logged, nothing sent, tried again after errorWaitMs.
  it('logs a failed refill and tries again after the error wait, sending nothing meanwhile', async () => {
    const t = slices(2_000);
    t.s.take('ep_a', 10, t.at(0));
    t.limits.takes[0]!.answer.reject(new Error('connection refused'));
    await settle();
    expect(t.lines.some((l) => l.endpointId === 'ep_a' && l.retryInMs === 2_000 && String(l.msg).includes('could not be taken'))).toBe(
      true,
    );
    expect(t.s.take('ep_a', 10, t.at(500))).toBe(1_500);
    expect(t.limits.takes).toHaveLength(1);
    t.s.take('ep_a', 10, t.at(2_000));
    expect(t.limits.takes).toHaveLength(2);
  });
});

describe('rate slices: a changed rate and forget', () => {
  // Tokens in hand and a refill in flight were taken for the old rate: both are dropped.
  it('drops what was taken for the old rate', async () => {
    const t = slices();
    t.s.take('ep_a', 10, t.at(0));
    t.limits.takes[0]!.answer.resolve({ granted: 2, waitMs: 0 });
    await settle();
    expect(t.s.take('ep_a', 20, t.at(1))).toBeGreaterThan(0);
    // The refill under the new rate is under way; one for the old rate that lands late gives nothing.
    expect(t.limits.takes[1]!.bucket.ratePerSec).toBe(20);
    t.s.take('ep_b', 10, t.at(2));
    t.s.take('ep_b', 5, t.at(3));
    t.limits.takes[2]!.answer.resolve({ granted: 1, waitMs: 0 });
    await settle();
    expect(t.tokens).toEqual(['ep_a']);
    expect(t.s.take('ep_b', 5, t.at(4))).toBeGreaterThan(0);
    // Its next refill is for the new rate.
    expect(t.limits.takes[3]).toMatchObject({ endpointId: 'ep_b', bucket: { ratePerSec: 5 } });
  });

  // Bound: one slice per rate-limited endpoint met; forget drops it, and a late refill does not bring it back.
  it('keeps one slice per endpoint met, and none after forget', async () => {
    const t = slices();
    for (let i = 0; i < 50; i++) t.s.take(`ep_${i % 10}`, 5, t.at(i));
    expect(t.size()).toBe(10);
    for (let i = 0; i < 10; i++) t.s.forget(`ep_${i}`);
    expect(t.size()).toBe(0);
    for (const take of t.limits.takes) take.answer.resolve({ granted: 1, waitMs: 0 });
    await settle();
    expect(t.size()).toBe(0);
  });
});
