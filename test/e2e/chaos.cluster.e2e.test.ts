// Chaos end to end on a cluster: the short `everything` run of chaos.e2e.test.ts (test/e2e/chaos-run.ts)
// with three instances on one PostgreSQL schema instead of one node. Among the kills (of any instance),
// cuts, reorgs, failing receiver, actor restarts and stops (on the instance ingesting the chain), floods
// and PostgreSQL outages, the instance ingesting the chain is killed -9 and frozen (SIGSTOP) past its
// lease, and the cluster grows by one and shrinks by one (a SIGTERM drain). It must lose nothing and
// deliver nothing wrong, no instance may exit unless a fault stopped it, every one must exit 0 on the
// final SIGTERM, every kind of fault must really have happened, and after each kill of the ingesting
// instance another one must have taken the chain.
import { afterAll, describe, expect, it } from 'vitest';
import { killAllNodes } from '../support/node-process.ts';
import { shortChaosRun } from './chaos-run.ts';

afterAll(async () => {
  // runChaos stops everything it started; this is the last resort if it threw half-way.
  await killAllNodes();
});

describe('chaos on a cluster of three: every fault at once, the cluster faults among them', () => {
  it('loses nothing, delivers nothing wrong, never crashes, and the chain is taken over after each kill of its holder', async () => {
    const result = await shortChaosRun('postgres', 3);
    expect(result.cluster).toBe(3);
    expect(result.kinds).toEqual(expect.arrayContaining(['kill', 'store-outage', 'kill-holder', 'pause', 'resize']));
    expect(result.takeovers.length).toBe(result.faults['kill-holder']);
    expect(result.takeovers.every((ms) => ms !== null)).toBe(true);
    expect(Object.values(result.finalExits).length).toBeGreaterThanOrEqual(3);
    for (const exit of Object.values(result.finalExits)) expect(exit).toEqual({ code: 0, signal: null });
  }, 170_000);
});
