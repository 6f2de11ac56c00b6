// Retry timing of the ChainListener: bounded exponential delays with jitter, abortable waits.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelay, orStop, sleep } from '../../src/actors/chain-listener/backoff.ts';

const cfg = { minMs: 100, maxMs: 5_000, factor: 2, jitter: 0.2 };

describe('backoffDelay', () => {
  it('grows by factor from minMs, stays within [minMs, maxMs] whatever the jitter draw', () => {
    expect([1, 2, 3, 4].map((a) => backoffDelay(a, { ...cfg, jitter: 0 }))).toEqual([100, 200, 400, 800]);
    expect(backoffDelay(50, { ...cfg, jitter: 0 })).toBe(5_000);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, r) => {
        const d = backoffDelay(attempt, cfg, () => r);
        expect(d).toBeGreaterThanOrEqual(cfg.minMs);
        expect(d).toBeLessThanOrEqual(cfg.maxMs);
      }),
    );
  });
});

describe('abortable waits', () => {
  it('sleep returns early and orStop rejects with ETHHOOK_ERR_LISTENER_STOPPED when the signal aborts', async () => {
    const abort = new AbortController();
    const started = Date.now();
    const slept = sleep(60_000, abort.signal);
    const never = orStop(new Promise(() => {}), abort.signal);
    abort.abort();
    await slept;
    await expect(never).rejects.toMatchObject({ code: 'ETHHOOK_ERR_LISTENER_STOPPED' });
    expect(Date.now() - started).toBeLessThan(5_000);
    await expect(orStop(Promise.resolve(1), new AbortController().signal)).resolves.toBe(1);
  });
});
