/**
 * Peer: ask round-trips through a forked placement — the placed behaviour proxy driven directly, as the
 * kernel's actor cell drives it (one message at a time, each awaited), to a child that answers the
 * message back. After a warm-up, returns each round-trip in microseconds.
 */
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../src/runtime/log.ts';
import { createPlacedBehaviour } from '../../src/runtime/placement/index.ts';
import type { ActorContext } from '../../src/runtime/types.ts';

const WARM_UP_ASKS = 5_000;

export async function forkedAskLatencies(n: number): Promise<number[]> {
  const logger = createLogger({ level: 'silent' });
  const behaviour = createPlacedBehaviour(
    { mode: 'forked', module: fileURLToPath(new URL('./echo-behaviour.ts', import.meta.url)), exportName: 'echo' },
    { logger },
  );
  const ctx = benchContext(logger);
  await behaviour.preStart!(ctx);
  try {
    for (let i = 0; i < WARM_UP_ASKS; i++) await behaviour.receive({ i }, ctx);
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await behaviour.receive({ i }, ctx);
      out[i] = (performance.now() - t0) * 1000;
    }
    return out;
  } finally {
    await behaviour.postStop!(ctx);
  }
}

function benchContext(logger: ReturnType<typeof createLogger>): ActorContext {
  const self = { path: '/bench/forked', name: 'forked', tell: () => true, send: async () => {}, ask: async () => undefined as never };
  return {
    self,
    path: self.path,
    name: self.name,
    log: logger,
    incarnation: 1,
    lookup: () => undefined,
    // A crash also rejects the in-flight receive, which ends the run with that error.
    fail: () => {},
    stopSelf: () => {},
  };
}
