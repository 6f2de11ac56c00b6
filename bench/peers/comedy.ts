/**
 * Peer: the tell workload (workload.ts) on comedy's in-memory actors (`actor.send(topic, msg)`), with
 * comedy's logging off and the system destroyed at the end.
 */
import { createSystem } from 'comedy';
import { WARM_UP_MESSAGES, countdown, tellsPerSecond, type TellTarget } from './workload.ts';

interface ComedyActor {
  send(topic: string, msg: unknown): PromiseLike<void>;
}

export async function comedyTellPerSecond(messages: number): Promise<number> {
  const system = createSystem({ test: true, config: {}, loggerConfig: { categories: { Default: 'Silent' } } });
  try {
    const root = await system.rootActor();
    const target = async (name: string): Promise<TellTarget> => {
      const counter = countdown();
      const actor = (await root.createChild({ tick: () => counter.count() }, { mode: 'in-memory', name })) as unknown as ComedyActor;
      return { tell: (msg) => void actor.send('tick', msg), handled: counter.handled };
    };
    await tellsPerSecond(await target('warm-up'), Math.min(messages, WARM_UP_MESSAGES));
    return await tellsPerSecond(await target('counter'), messages);
  } finally {
    await system.destroy();
  }
}
