// Throttle: a provider's pace, a token bucket that halves on rate limits and grows back when quiet.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MIN_RATE, RECOVERY_MS, Throttle } from '../../src/actors/chain-listener/throttle.ts';

describe('Throttle', () => {
  it('lets a second of calls go at once, then spaces them at the configured rate', () => {
    const t = new Throttle(10, 0);
    for (let i = 0; i < 10; i++) expect(t.reserve(1, 0)).toBe(0);
    expect(t.reserve(1, 0)).toBe(100);
    expect(t.reserve(1, 0)).toBe(200);
    expect(t.reserve(8, 1_000)).toBe(0); // the debt of two is paid off by the second that passed
    expect(t.reserve(1, 1_000)).toBe(100);
  });

  it('counts a batch as its calls', () => {
    const t = new Throttle(10, 0);
    expect(t.reserve(10, 0)).toBe(0);
    expect(t.reserve(10, 0)).toBe(1_000);
  });

  it('with no ceiling never waits, until a rate limit sets one from the pace of the last second', () => {
    const t = new Throttle(Number.POSITIVE_INFINITY, 0);
    for (let ms = 0; ms < 2_000; ms += 10) expect(t.reserve(1, ms)).toBe(0);
    t.limited(2_000);
    expect(t.currentRate).toBe(50);
    expect(t.reserve(1, 2_000)).toBeGreaterThan(0);
  });

  it('halves on each limit down to MIN_RATE, and grows back by a quarter per quiet RECOVERY_MS up to the ceiling', () => {
    const t = new Throttle(8, 0);
    t.limited(0);
    expect(t.currentRate).toBe(4);
    for (let i = 0; i < 10; i++) t.limited(i);
    expect(t.currentRate).toBe(MIN_RATE);
    t.succeeded(RECOVERY_MS - 1);
    expect(t.currentRate).toBe(MIN_RATE);
    let now = 10;
    for (let i = 0; i < 40; i++) t.succeeded((now += RECOVERY_MS));
    expect(t.currentRate).toBe(8);
  });

  it('lifts a limit entirely once grown four times past it, when there is no ceiling', () => {
    const t = new Throttle(Number.POSITIVE_INFINITY, 0);
    t.limited(0);
    expect(t.currentRate).toBe(MIN_RATE);
    let now = 0;
    for (let i = 0; i < 7 && Number.isFinite(t.currentRate); i++) t.succeeded((now += RECOVERY_MS));
    expect(t.currentRate).toBe(Number.POSITIVE_INFINITY);
  });

  it('never lets more than rate x seconds + one second of calls go in any run of reservations', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 5 })), { maxLength: 200 }),
        (rate, steps) => {
          const t = new Throttle(rate, 0);
          let now = 0;
          let sentBy = 0;
          const sends: Array<[number, number]> = [];
          for (const [gap, calls] of steps) {
            now += gap;
            const wait = t.reserve(calls, now);
            sentBy = Math.max(sentBy, now + wait);
            sends.push([now + wait, calls]);
          }
          const total = sends.reduce((n, [, c]) => n + c, 0);
          const last = sends.reduce((m, [at]) => Math.max(m, at), 0);
          expect(total).toBeLessThanOrEqual(rate * (last / 1000) + rate + 1e-9);
        },
      ),
    );
  });
});
