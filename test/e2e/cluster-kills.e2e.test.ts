// A cluster of three instances on one PostgreSQL schema (test/support/cluster.ts), traffic flowing:
// ten times, an instance is killed with SIGKILL and started again on the same id (every third time the
// one ingesting the chain, else one drawn by a seeded generator), deliveries moving on between kills,
// with a reorg halfway. Every log is delivered, signed, to every endpoint; orphaned logs are retracted;
// duplicates carry one webhook-id and one body; no instance exits unless killed.
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.ts';
import { mulberry32 } from '../support/receiver.ts';
import { waitUntil } from './e2e-chain.ts';

const cluster = useCluster({ instances: 3 });
const CHAIN = 31337;
const KILLS = 10;

describe('cluster: instances killed and restarted', () => {
  it(`${KILLS} kills of random instances, each restarted: nothing is lost`, async () => {
    const random = mulberry32(2);
    const traffic = cluster.startTraffic({ blocksPerSecond: 5, logsPerBlock: [1, 20], seed: 2 });
    await waitUntil(() => cluster.delivered() >= 200, 30_000, 'deliveries before the first kill');
    const t0 = Date.now();
    const killed: string[] = [];
    let holdersKilled = 0;
    for (let round = 0; round < KILLS; round++) {
      const holder =
        round % 3 === 0 ? (await cluster.waitForHolder(CHAIN, () => true, 15_000)).holder : (await cluster.lease(CHAIN))?.holder;
      const ids = cluster.running().map((i) => i.id);
      const victim = round % 3 === 0 ? holder! : ids[Math.floor(random() * ids.length)]!;
      if (victim === holder) holdersKilled++;
      killed.push(`${victim}@${((Date.now() - t0) / 1_000).toFixed(1)}s`);
      const before = cluster.delivered();
      // Halfway, logs already delivered are orphaned while the victim is down.
      if (round === KILLS / 2) await cluster.reorg(2, { deliveredWithinMs: 30_000, before: () => cluster.kill(victim) });
      else await cluster.kill(victim);
      await cluster.restart(victim);
      await waitUntil(
        () => cluster.delivered() >= before + 100,
        60_000,
        () => `deliveries after kill ${round + 1} (${victim})`,
      );
    }
    expect(holdersKilled).toBeGreaterThanOrEqual(4);
    await cluster.waitForHolder(CHAIN, () => true, 15_000);
    await waitUntil(() => traffic.logs >= 1_500, 60_000, '1,500 logs mined');
    const sent = await traffic.stop();
    const delivered = await cluster.expectNothingLost(90_000);
    expect(delivered.orphanedDelivered).toBeGreaterThan(0);
    expect(cluster.unexpectedExits).toEqual([]);
    console.info(
      `cluster kills e2e: killed ${killed.join(' ')} (${holdersKilled} holding the chain); ${sent.blocks} blocks, ${sent.logs} logs, ` +
        `${delivered.expected} webhooks, ${delivered.duplicates} duplicates, ${delivered.retries} retries, settled ${delivered.settledMs} ms after the traffic (${delivered.owedAtStart} owed then)`,
    );
  }, 240_000);
});
