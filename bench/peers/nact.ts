/**
 * Peer: the tell workload (workload.ts) on nact. The actor is a stateful `spawn` (one message at a time,
 * in order, like ours); nact's stateless actors would not be the same contract. One system per pass.
 */
import { dispatch, spawn, start, stop } from 'nact';
import { countdown, tellsPerSecond } from './workload.ts';

export async function nactTellPerSecond(messages: number): Promise<number> {
  const system = start();
  try {
    const counter = countdown();
    const actor = spawn(system, (state: number = 0) => (counter.count(), state + 1), 'counter');
    return await tellsPerSecond({ tell: (msg) => dispatch(actor, msg), handled: counter.handled }, messages);
  } finally {
    stop(system);
  }
}
