// The outbox's in-memory due window (src/store/level/outbox/due-window.ts) against a model of the LevelDB due index:
// over any sequence of key writes, deletes and refills (with writes landing while a refill reads, its
// snapshot taken before, between or after them), the window holds exactly the index's keys up to its
// `max` (all of them when complete), and `take` returns what a scan of the index would (skipping the
// excluded ids and the jobs of skipped endpoints), once refilled as the outbox does.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DueWindow } from '../../src/store/level/outbox/due-window.ts';

const key = fc.integer({ min: 0, max: 60 }).map((n) => `${String(n).padStart(3, '0')}!j${n % 7}`);
const write = fc.oneof(fc.record({ op: fc.constant('add' as const), key }), fc.record({ op: fc.constant('delete' as const), key }));
const step = fc.oneof(
  write,
  fc.record({
    op: fc.constant('refill' as const),
    during: fc.array(write, { maxLength: 6 }),
    snapshotAt: fc.nat({ max: 6 }),
    fail: fc.boolean(),
  }),
  fc.record({
    op: fc.constant('take' as const),
    end: key,
    limit: fc.integer({ min: 1, max: 20 }),
    exclude: fc.uniqueArray(key, { maxLength: 5 }),
    skip: fc.subarray(['ep0', 'ep1', 'ep2']),
  }),
);

/** The endpoint of a key's job (the index's value), as the outbox writes it. */
const endpointOf = (k: string): string => `ep${Number(k.at(-1)) % 3}`;

function applyWrite(index: Set<string>, window: DueWindow, w: { op: 'add' | 'delete'; key: string }): void {
  if (w.op === 'add') {
    index.add(w.key);
    window.add(w.key, undefined, endpointOf(w.key));
  } else {
    index.delete(w.key);
    window.delete(w.key);
  }
}

/** What the outbox's refill reads: the index's keys after `after`, `want` at most, from a snapshot. */
function read(snapshot: readonly string[], after: string, want: number): { keys: string[]; reachedEnd: boolean } {
  const keys = snapshot.filter((k) => k > after).slice(0, want);
  return { keys, reachedEnd: keys.length < want };
}

function windowKeys(window: DueWindow): string[] {
  return window.take('\uffff', Number.MAX_SAFE_INTEGER).entries.map((e) => e.key);
}

function checkInvariant(index: Set<string>, window: DueWindow): void {
  const all = [...index].sort();
  const after = window.refillAfter;
  const expected = after === undefined ? all : all.filter((k) => k <= after);
  expect(windowKeys(window)).toEqual(expected);
  expect(window.size).toBe(expected.length);
  // The per-endpoint counts `take` stops by agree with the entries held.
  for (const skip of [['ep0'], ['ep1', 'ep2'], []]) {
    expect(window.notSkipped(new Set(skip))).toBe(expected.filter((k) => !skip.includes(endpointOf(k))).length);
  }
  expect(window.size).toBeLessThanOrEqual(window.capacity);
}

describe('DueWindow', () => {
  it('mirrors the index up to its max, and take() equals a scan once refilled', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.array(step, { maxLength: 80 }), (capacity, steps) => {
        const index = new Set<string>();
        // Keys are `<nnn>!<id>`: the id starts at 4.
        const window = new DueWindow(capacity, 4);
        const want = Math.max(1, Math.floor(capacity / 2));
        for (const s of steps) {
          if (s.op === 'add' || s.op === 'delete') applyWrite(index, window, s);
          else if (s.op === 'refill') {
            const after = window.refillAfter;
            if (after === undefined) continue;
            window.beginRefill();
            let snapshot = [...index].sort();
            s.during.forEach((w, i) => {
              if (i === s.snapshotAt) snapshot = [...index].sort();
              applyWrite(index, window, w);
            });
            if (s.snapshotAt >= s.during.length) snapshot = [...index].sort();
            if (s.fail) window.refillFailed();
            else {
              const { keys, reachedEnd } = read(snapshot, after, want);
              window.refilled(keys, reachedEnd, keys.map(endpointOf));
            }
          } else {
            // As Outbox.due: take, and refill (synchronously here) while the walk ran off the window.
            const exclude = new Set(s.exclude.map((k) => k.slice(4)));
            const skip = new Set(s.skip);
            let got = window.take(s.end, s.limit, exclude, skip);
            for (let i = 0; got.entries.length < s.limit && got.exhausted && i < 100; i++) {
              const { keys, reachedEnd } = read([...index].sort(), window.refillAfter!, want);
              window.beginRefill();
              window.refilled(keys, reachedEnd, keys.map(endpointOf));
              got = window.take(s.end, s.limit, exclude, skip);
            }
            // Each entry carries the id in its key and its job's endpoint, whether it came by add or by a refill.
            for (const e of got.entries) {
              expect(e.id).toBe(e.key.slice(4));
              expect(e.endpoint).toBe(endpointOf(e.key));
            }
            const keys = got.entries.map((e) => e.key);
            const scan = [...index].sort().filter((k) => k < s.end && !exclude.has(k.slice(4)) && !skip.has(endpointOf(k)));
            // With every key excluded up to the capacity, a window can fill with excluded keys only;
            // then the walk may stop short (the outbox tries again on its next call).
            if (!got.exhausted) expect(keys).toEqual(scan.slice(0, s.limit));
            else expect(scan.slice(0, keys.length)).toEqual(keys);
          }
          checkInvariant(index, window);
        }
        // The first key is the index's first once a refill was done when the window ran empty.
        if (window.first() === undefined && !window.complete) {
          const { keys, reachedEnd } = read([...index].sort(), window.refillAfter!, want);
          window.beginRefill();
          window.refilled(keys, reachedEnd, keys.map(endpointOf));
        }
        expect(window.first()).toBe([...index].sort()[0]);
      }),
      { numRuns: 500 },
    );
  });

  // The two races a refill has, spelled out (the property reaches them only rarely).
  it('a key written above the window while a refill reads is taken in once the read is merged', () => {
    const index = new Set(['c', 'd']);
    const window = new DueWindow(3);
    for (const k of ['a', 'b', 'c', 'd']) window.add(k);
    window.delete('a');
    window.delete('b');
    expect(window.refillAfter).toBe('c');
    window.beginRefill();
    const snapshot = [...index].sort();
    applyWrite(index, window, { op: 'add', key: 'cc' });
    window.refilled(read(snapshot, 'c', 1).keys, false);
    checkInvariant(index, window);
    expect(windowKeys(window)).toEqual(['c', 'cc', 'd']);
  });

  it('a window trimmed while a refill reads drops the read instead of merging it above a gap', () => {
    const index = new Set(['a', 'b', 'c', 'd', 'e']);
    const window = new DueWindow(3);
    for (const k of index) window.add(k);
    expect(window.refillAfter).toBe('c');
    window.beginRefill();
    const snapshot = [...index].sort();
    applyWrite(index, window, { op: 'add', key: 'aa' });
    applyWrite(index, window, { op: 'delete', key: 'a' });
    window.refilled(read(snapshot, 'c', 1).keys, false);
    checkInvariant(index, window);
    expect(windowKeys(window)).toEqual(['aa', 'b']);
  });

  it('keeps chunks consistent through thousands of interleaved inserts and deletes', () => {
    const window = new DueWindow(5_000);
    const index = new Set<string>();
    let seed = 7;
    const rand = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 20_000; i++) {
      const k = String(Math.floor(rand() * 8_000)).padStart(6, '0');
      if (rand() < 0.6) {
        index.add(k);
        window.add(k, undefined, endpointOf(k));
      } else {
        index.delete(k);
        window.delete(k);
      }
    }
    checkInvariant(index, window);
  });
});
