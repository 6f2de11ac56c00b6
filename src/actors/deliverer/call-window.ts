/**
 * The sliding window of calls the circuit breaker judges a failure rate over (as resilience4j's
 * `slidingWindowType` and `slidingWindowSize`): an immutable value and a pure `recordCall`, the clock
 * an argument.
 *
 * - `count`: the last `slidingWindowSize` calls (1..10,000). A fixed-size ring of one byte per call
 *   (1 failed, 0 succeeded) with its running totals: `calls` grows to the size, then each call
 *   replaces the oldest.
 * - `time`: the calls of the last `slidingWindowSize` seconds (1..600). A fixed-size ring of one slot
 *   per second, `[second, calls, failures]`; a slot holding an older second than the one recorded is
 *   reused, and the totals sum the slots of the window's seconds. A clock that steps back records
 *   into the latest second seen.
 * - Bounds: the ring is allocated at the first call and never grows: `slidingWindowSize` bytes
 *   (count) or 24 × `slidingWindowSize` bytes (time) per endpoint. Each call copies it (the value is
 *   immutable), which is O(size).
 */

export type SlidingWindowType = 'count' | 'time';

export interface WindowConfig {
  slidingWindowType: SlidingWindowType;
  /** Calls (`count`) or seconds (`time`). */
  slidingWindowSize: number;
}

/** Largest `slidingWindowSize` of each type: what bounds the memory of one endpoint's window. */
export const MAX_WINDOW_SIZE: Readonly<Record<SlidingWindowType, number>> = Object.freeze({ count: 10_000, time: 600 });

export interface CallWindow {
  /** Calls in the window, and how many of them failed. */
  readonly calls: number;
  readonly failures: number;
  /** null until the first call. count: one byte per call; time: `[second, calls, failures]` per slot. */
  readonly ring: Uint8Array | Float64Array | null;
  /** count: the slot the next call takes; time: the latest second recorded. */
  readonly head: number;
}

export const EMPTY_WINDOW: CallWindow = Object.freeze({ calls: 0, failures: 0, ring: null, head: 0 });

export function recordCall(w: CallWindow, failed: boolean, now: number, cfg: WindowConfig): CallWindow {
  return cfg.slidingWindowType === 'count'
    ? recordCounted(w, failed, cfg.slidingWindowSize)
    : recordTimed(w, failed, now, cfg.slidingWindowSize);
}

function recordCounted(w: CallWindow, failed: boolean, size: number): CallWindow {
  const ring = w.ring instanceof Uint8Array && w.ring.length === size ? w.ring.slice() : new Uint8Array(size);
  const full = w.ring !== null && w.calls === size;
  const dropped = full ? ring[w.head]! : 0;
  ring[w.head] = failed ? 1 : 0;
  return {
    calls: full ? size : w.calls + 1,
    failures: w.failures - dropped + (failed ? 1 : 0),
    ring,
    head: (w.head + 1) % size,
  };
}

function recordTimed(w: CallWindow, failed: boolean, now: number, size: number): CallWindow {
  let ring: Float64Array;
  if (w.ring instanceof Float64Array && w.ring.length === 3 * size) ring = w.ring.slice();
  else ring = new Float64Array(3 * size).fill(-Infinity);
  const second = Math.max(Math.floor(now / 1000), w.ring === null ? -Infinity : w.head);
  const at = 3 * (((second % size) + size) % size);
  if (ring[at] !== second) {
    ring[at] = second;
    ring[at + 1] = 0;
    ring[at + 2] = 0;
  }
  ring[at + 1] = ring[at + 1]! + 1;
  if (failed) ring[at + 2] = ring[at + 2]! + 1;
  let calls = 0;
  let failures = 0;
  for (let i = 0; i < ring.length; i += 3) {
    if (ring[i]! > second - size) {
      calls += ring[i + 1]!;
      failures += ring[i + 2]!;
    }
  }
  return { calls, failures, ring, head: second };
}
