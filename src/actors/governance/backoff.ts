/**
 * Delays of the governance stream: reconnects and repeated re-requests. Exponential from `minMs`
 * (doubling), capped at `maxMs`, with ±50% jitter clamped back into [minMs, maxMs] (the node's shared
 * `backoffDelay`), so a cluster of nodes that lost the same server does not come back in step.
 * `attempt` counts from 1.
 */
import { backoffDelay } from '../../supervision/backoff.ts';

export { sleep } from '../../runtime/timers.ts';

export interface ReconnectSpec {
  minMs: number;
  maxMs: number;
}

export function governanceDelay(attempt: number, spec: ReconnectSpec, random: () => number = Math.random): number {
  return backoffDelay(attempt, { ...spec, factor: 2, jitter: 0.5 }, random);
}
