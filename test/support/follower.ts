/**
 * A ChainFollower that keeps nothing (its persist hooks store nothing) and collects what it emits, for
 * tests that drive it against a simulated node: `memoryFollower(out, options)` pushes every message into
 * `out`; `options` override the defaults below (chain 1, confirmations 0, start at block 0).
 */
import { ChainFollower, type FollowerOptions } from '../../src/actors/chain-listener/follower.ts';
import type { ChainBlockMessage } from '../../src/actors/chain-listener/messages.ts';

export function memoryFollower(
  out: ChainBlockMessage[],
  options: Partial<Omit<FollowerOptions, 'emit' | 'persist' | 'now'>> = {},
): ChainFollower {
  return new ChainFollower(
    {
      chainId: 1,
      confirmations: 0,
      maxReorgDepth: 64,
      backfillRange: 50,
      targetLogsPerRead: 100,
      startBlock: 0,
      ...options,
      emit: async (msg) => void out.push(msg),
      persist: { append: async () => {}, retract: async () => {}, logs: async () => [] },
      now: () => 0,
    },
    null,
  );
}
