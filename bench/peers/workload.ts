/**
 * The tell workload every contestant of bench:runtime runs (ethhook and its peers), so the figures compare
 * like with like: a fresh actor, `messages` tells of the same small object (`{ i }`), the actor counts
 * them, and the time runs from the first tell until the last one is handled. Each contestant's runner
 * (`(messages) => Promise<tells per second>`) starts its runtime, makes the actor, runs this, and stops
 * the runtime outside the timed span; the bench gives every runner the same warm-up pass and the same
 * rounds of the same message count.
 */
export interface TellTarget {
  /** Sends one message without waiting for it to be handled. */
  tell(msg: { i: number }): void;
  /** Resolves when the actor has counted `expected` messages. */
  handled(expected: number): Promise<void>;
}

/** One timed pass of a contestant: runtime up, a fresh actor, `messages` tells, runtime down; tells/s. */
export type TellRunner = (messages: number) => Promise<number>;

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
