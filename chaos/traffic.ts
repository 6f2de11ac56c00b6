/**
 * The traffic of a chaos run: `ticksPerSecond` transactions a second on the Tick contract (so as many
 * blocks: anvil automines), each emitting a random number of logs in `logsPerTick` (inclusive), with
 * ±50% jitter on the pause between them. Ticks go straight to anvil, node up or down, under the
 * context's chain lock. A tick that fails (a transaction lost to a reorg that raced it) is counted and
 * traffic goes on: the invariant is checked against the logs the chain holds, whatever was sent.
 */
import { sleep } from '../test/e2e/e2e-chain.ts';
import type { ChaosContext } from './context.ts';

export interface TrafficPattern {
  ticksPerSecond: number;
  logsPerTick: readonly [number, number];
}

export interface Traffic {
  /** Stops after the tick in progress; resolves with what was sent. */
  stop(): Promise<{ ticks: number; logs: number; errors: number }>;
}

export function startTraffic(ctx: ChaosContext, pattern: TrafficPattern, random: () => number): Traffic {
  let running = true;
  const sent = { ticks: 0, logs: 0, errors: 0 };
  const [min, max] = pattern.logsPerTick;
  const pauseMs = 1_000 / pattern.ticksPerSecond;
  const loop = (async () => {
    while (running && !ctx.aborted) {
      const n = min + Math.floor(random() * (max - min + 1));
      try {
        await ctx.chainLock.run(() => ctx.chain.tick(ctx.contract, n));
        sent.ticks++;
        sent.logs += n;
      } catch {
        sent.errors++;
      }
      await sleep(pauseMs * (0.5 + random()));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return sent;
    },
  };
}
