/**
 * Peer: the tell workload (workload.ts) on nact. The actor is a stateful `spawn` (one message at a time,
 * in order, like ours); nact's stateless actors would not be the same contract.
 */
import { dispatch, spawn, start, stop } from 'nact';
import { WARM_UP_MESSAGES, countdown, tellsPerSecond, type TellTarget } from './workload.ts';

export async function nactTellPerSecond(messages: number): Promise<number> {
  const system = start();
  try {
    const target = (name: string): TellTarget => {
      const counter = countdown();
      const actor = spawn(system, (state: number = 0) => (counter.count(), state + 1), name);
      return { tell: (msg) => dispatch(actor, msg), handled: counter.handled };
    };
    await tellsPerSecond(target('warm-up'), Math.min(messages, WARM_UP_MESSAGES));
    return await tellsPerSecond(target('counter'), messages);
  } finally {
    stop(system);
  }
}
