// Chaos end to end on PostgreSQL: the short `everything` run of chaos.e2e.test.ts (test/e2e/chaos-run.ts)
// with the node's store on a PostgreSQL server the run starts for itself, so the database is also
// stopped for a few seconds and started again (store-outage) among the kills, cuts, reorgs, failing
// receiver, actor restarts and floods. It must lose nothing, deliver nothing wrong, dead-letter nothing,
// never crash, and every kind of fault of the run, the outage included, must really have happened.
import { afterAll, describe, expect, it } from 'vitest';
import { killAllNodes } from '../support/node-process.ts';
import { shortChaosRun } from './chaos-run.ts';

afterAll(async () => {
  // runChaos stops everything it started; this is the last resort if it threw half-way.
  await killAllNodes();
});

describe('chaos on PostgreSQL: every fault at once on one node, the database stopped among them', () => {
  it('loses nothing, delivers nothing wrong, never crashes, and every kind of fault was injected', async () => {
    const result = await shortChaosRun('postgres');
    expect(result.kinds).toContain('store-outage');
  }, 150_000);
});
