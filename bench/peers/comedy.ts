/**
 * Peer: the tell workload (workload.ts) on comedy's in-memory actors (`actor.send(topic, msg)`), with
 * comedy's logging off. One system per pass, destroyed at its end.
 */
import { createSystem } from 'comedy';
import { countdown, tellsPerSecond } from './workload.ts';

interface ComedyActor {
  send(topic: string, msg: unknown): PromiseLike<void>;
}

export async function comedyTellPerSecond(messages: number): Promise<number> {
  const system = createSystem({ test: true, config: {}, loggerConfig: { categories: { Default: 'Silent' } } });
  try {
    const root = await system.rootActor();
    const counter = countdown();
    const actor = (await root.createChild(
      { tick: () => counter.count() },
      { mode: 'in-memory', name: 'counter' },
    )) as unknown as ComedyActor;
    return await tellsPerSecond({ tell: (msg) => void actor.send('tick', msg), handled: counter.handled }, messages);
  } finally {
    await system.destroy();
  }
}
