// Supervision invariants: restart intensity against a reference model, the exact restart sets and order
// of each strategy on a real tree, and backoff bounds and reset.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Strategy, WorkerSpec } from '../../src/runtime/types.ts';
import { RestartBackoff } from '../../src/supervision/backoff.ts';
import { RestartIntensity } from '../../src/supervision/intensity.ts';
import { start, waitFor } from '../support/kernel.ts';

describe('restart intensity', () => {
  it('escalates exactly when more than maxRestarts fall within the window', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.array(fc.integer({ min: 0, max: 400 }), { maxLength: 40 }),
        (maxRestarts, withinMs, gaps) => {
          const intensity = new RestartIntensity({ maxRestarts, withinMs });
          const times: number[] = [];
          let t = 0;
          for (const gap of gaps) {
            t += gap;
            times.push(t);
            const inWindow = times.filter((x) => x > t - withinMs).length;
            expect(intensity.record(t)).toBe(inWindow > maxRestarts);
          }
        },
      ),
    );
  });
});

describe('restart backoff', () => {
  it('stays within [minMs, maxMs], grows without jitter, and resets after a healthy period', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.double({ min: 1, max: 4, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 30 }),
        fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
        (minMs, extra, factor, jitter, gaps, rnd) => {
          const maxMs = minMs + extra;
          const resetAfterMs = 2000;
          const backoff = new RestartBackoff({ minMs, maxMs, factor, jitter, resetAfterMs }, () => rnd);
          const plain = new RestartBackoff({ minMs, maxMs, factor, jitter: 0, resetAfterMs });
          let t = 0;
          let previous = -1;
          for (const gap of gaps) {
            t += gap;
            const d = backoff.next(t);
            expect(d).toBeGreaterThanOrEqual(minMs);
            expect(d).toBeLessThanOrEqual(maxMs);
            const p = plain.next(t);
            if (gap >= resetAfterMs) expect(p).toBe(minMs);
            else if (previous >= 0) expect(p).toBeGreaterThanOrEqual(previous);
            previous = p;
          }
        },
      ),
    );
  });
});

describe('strategies on a real tree', () => {
  it('one-for-one, one-for-all and rest-for-one restart exactly the right set in the right order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Strategy>('one-for-one', 'one-for-all', 'rest-for-one'),
        fc.integer({ min: 1, max: 6 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 }))),
        async (strategy, [n, failing]) => {
          const events: string[] = [];
          const children: WorkerSpec[] = Array.from({ length: n }, (_, i) => ({
            kind: 'worker',
            name: `c${i}`,
            maxConsecutivePanics: 1,
            behaviour: () => ({
              preStart: () => void events.push(`start c${i}`),
              postStop: () => void events.push(`stop c${i}`),
              preRestart: () => void events.push(`stop c${i}`),
              receive: (m: string) => {
                if (m === 'fail') throw new Error('fail');
              },
            }),
          }));
          const { system } = await start(children, { strategy });
          events.length = 0;
          system.lookup<string>(`c${failing}`)!.tell('fail');
          const set =
            strategy === 'one-for-one'
              ? [failing]
              : strategy === 'one-for-all'
                ? [...Array(n).keys()]
                : [...Array(n).keys()].filter((i) => i >= failing);
          const expected = [
            ...set
              .slice()
              .reverse()
              .map((i) => `stop c${i}`),
            ...set.map((i) => `start c${i}`),
          ];
          await waitFor(() => events.length >= expected.length && system.readiness().ready);
          await system.shutdown('test');
          expect(events.slice(0, expected.length)).toEqual(expected);
          for (let i = 0; i < n; i++) {
            const stats = system.findOrThrow(`c${i}`).stats.restarts;
            expect(stats.panic).toBe(i === failing ? 1 : 0);
            expect(stats.dependency).toBe(set.includes(i) && i !== failing ? 1 : 0);
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
