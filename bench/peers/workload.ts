/**
 * The tell workload every peer runs, so the figures compare like with like: one actor, `messages` tells
 * of the same small object (`{ i }`, as bench/runtime.bench.ts sends), the actor counts them, and the
 * time runs from the first tell until the last one is handled. A warm-up pass on a throwaway actor comes
 * first, so every runtime is measured with its hot paths compiled.
 */
export interface TellTarget {
  /** Sends one message without waiting for it to be handled. */
  tell(msg: { i: number }): void;
  /** Resolves when the actor has counted `expected` messages. */
  handled(expected: number): Promise<void>;
}

export const WARM_UP_MESSAGES = 20_000;

/** Runs the workload on `target` and returns messages per second. */
export async function tellsPerSecond(target: TellTarget, messages: number): Promise<number> {
  const done = target.handled(messages);
  const t0 = performance.now();
  for (let i = 0; i < messages; i++) target.tell({ i });
  await done;
  return messages / ((performance.now() - t0) / 1000);
}

/** A counter whose `handled(n)` resolves when `count()` has been called n times. */
export function countdown(): { count: () => void; handled: (expected: number) => Promise<void> } {
  let n = 0;
  let expected = Infinity;
  let resolve: (() => void) | null = null;
  return {
    count() {
      n += 1;
      if (n === expected) resolve?.();
    },
    handled(target) {
      n = 0;
      expected = target;
      return new Promise((r) => (resolve = r));
    },
  };
}
