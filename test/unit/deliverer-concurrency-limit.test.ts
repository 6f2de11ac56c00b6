// The global concurrency limit: bound, FIFO order, slots handed over on release, misuse refused.
import { describe, expect, it } from 'vitest';
import { ConcurrencyLimit } from '../../src/actors/deliverer/concurrency-limit.ts';

const tick = () => new Promise((r) => setTimeout(r, 1));

/** Runs `fn` under the limit and releases when it settles, as the HTTP client does around an attempt. */
function limited(limit: ConcurrencyLimit, fn: () => Promise<void>): Promise<void> {
  return new Promise((resolve) =>
    limit.acquire(
      () =>
        void fn().finally(() => {
          limit.release();
          resolve();
        }),
    ),
  );
}

describe('ConcurrencyLimit', () => {
  it('runs at most `limit` at once, and starts waiters in arrival order', async () => {
    const limit = new ConcurrencyLimit(3);
    let active = 0;
    let max = 0;
    const started: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        limited(limit, async () => {
          started.push(i);
          max = Math.max(max, ++active);
          await tick();
          active--;
        }),
      ),
    );
    expect(max).toBe(3);
    expect(started).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect([limit.active, limit.waiting]).toEqual([0, 0]);
  });

  it('starts at once while a slot is free, queues otherwise', () => {
    const limit = new ConcurrencyLimit(1);
    const started: string[] = [];
    limit.acquire(() => started.push('a'));
    limit.acquire(() => started.push('b'));
    expect(started).toEqual(['a']);
    expect([limit.active, limit.waiting]).toEqual([1, 1]);
  });

  it('release hands the slot to the next waiter (from a microtask), or frees it', async () => {
    const limit = new ConcurrencyLimit(1);
    const started: string[] = [];
    limit.acquire(() => started.push('a'));
    limit.acquire(() => started.push('b'));
    limit.release();
    expect([limit.active, limit.waiting]).toEqual([1, 0]);
    await Promise.resolve();
    expect(started).toEqual(['a', 'b']);
    limit.release();
    expect(limit.active).toBe(0);
  });

  it('stays FIFO with thousands waiting, also when each ends synchronously (no deep recursion)', async () => {
    const limit = new ConcurrencyLimit(2);
    const order: number[] = [];
    limit.acquire(() => undefined);
    limit.acquire(() => undefined);
    const all = Promise.all(
      Array.from(
        { length: 20_000 },
        (_, i) =>
          new Promise<void>((resolve) =>
            limit.acquire(() => {
              order.push(i);
              limit.release();
              resolve();
            }),
          ),
      ),
    );
    expect(limit.waiting).toBe(20_000);
    limit.release();
    limit.release();
    await all;
    expect(order).toEqual(Array.from({ length: 20_000 }, (_, i) => i));
    expect([limit.active, limit.waiting]).toEqual([0, 0]);
  });

  it('refuses a release without an acquire, and a limit that is not a positive integer', () => {
    expect(() => new ConcurrencyLimit(2).release()).toThrow(RangeError);
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => new ConcurrencyLimit(bad)).toThrow(RangeError);
  });
});
