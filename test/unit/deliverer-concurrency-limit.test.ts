// The global concurrency limit: bound, FIFO order, slots freed by failures.
import { describe, expect, it } from 'vitest';
import { ConcurrencyLimit } from '../../src/actors/deliverer/concurrency-limit.ts';

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('ConcurrencyLimit', () => {
  it('runs at most `limit` at once, and starts waiters in arrival order', async () => {
    const limit = new ConcurrencyLimit(3);
    let active = 0;
    let max = 0;
    const started: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        limit.run(async () => {
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

  it('stays FIFO with thousands waiting', async () => {
    const limit = new ConcurrencyLimit(2);
    const order: number[] = [];
    await Promise.all(Array.from({ length: 5_000 }, (_, i) => limit.run(async () => { order.push(i); })));
    expect(order).toEqual(Array.from({ length: 5_000 }, (_, i) => i));
    expect(limit.waiting).toBe(0);
  });

  it('a run that throws frees its slot and passes the error on', async () => {
    const limit = new ConcurrencyLimit(1);
    await expect(limit.run(async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(await limit.run(async () => 42)).toBe(42);
    expect(limit.active).toBe(0);
  });

  it('refuses a limit that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => new ConcurrencyLimit(bad)).toThrow(RangeError);
  });
});
