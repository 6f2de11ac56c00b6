// Change notices to an actor that does not answer: the write stands, and the warnings are throttled —
// one per actor and code every NOTICE_WARNING_INTERVAL_MS, however many writes fail meanwhile.
import { afterAll, describe, expect, it } from 'vitest';
import { pipelineNotices } from '../../src/pipeline-notices.ts';
import { ACTOR_PATHS } from '../../src/tree.ts';
import type { ActorSystem } from '../../src/runtime/system.ts';
import { memoryLogger, start } from '../support/kernel.ts';

const systems: ActorSystem[] = [];
afterAll(async () => {
  for (const s of systems) await s.shutdown('test');
});

describe('change notices', () => {
  it('to an actor that never answers: one warning per actor and code, not one per write', async () => {
    // A real actor whose handler never settles stands for a stopped Matcher or Deliverer: every ask times out.
    const { system } = await start([
      { kind: 'worker', name: 'deaf', behaviour: () => ({ receive: () => new Promise(() => {}) }), shutdownTimeoutMs: 50 },
    ]);
    systems.push(system);
    const deaf = system.lookup('deaf')!;
    const notices = pipelineNotices(() => deaf, 20);
    const { logger, lines } = memoryLogger();
    for (let i = 0; i < 25; i++) await notices.subscriptionsChanged({ upserted: [`sub_${i}`] }, logger);
    await notices.endpointChanged('ep_1', logger);
    const warnings = lines.filter((l) => l.msg === 'change notice not acknowledged; the store write stands');
    expect(warnings.map((w) => [w.to, w.code, w.suppressed])).toEqual([
      [ACTOR_PATHS.matcher, 'ETHHOOK_ERR_ASK_TIMEOUT', 0],
      [ACTOR_PATHS.deliverer, 'ETHHOOK_ERR_ASK_TIMEOUT', 0],
    ]);
  });
});
