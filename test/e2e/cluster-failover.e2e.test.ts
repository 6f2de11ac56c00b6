// A cluster of three instances on one PostgreSQL schema (test/support/cluster.ts), traffic flowing: the
// instance ingesting the chain is killed with SIGKILL. Another instance holds the chain's lease, at a
// higher epoch, within the lease time and one heartbeat round, and ingests from the shared cursor: a
// reorg made while no instance held the chain is retracted by the successor, and every log is
// delivered, signed, to every endpoint. The dead instance's claimed jobs are delivered by the others.
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.ts';
import { waitUntil } from './e2e-chain.ts';

const cluster = useCluster({ instances: 3 });
const CHAIN = 31337;

describe('cluster: the ingesting instance killed', () => {
  it('another instance takes the chain within the lease time, and nothing is lost', async () => {
    const { leaseMs, heartbeatMs } = cluster.options;
    const traffic = cluster.startTraffic({ blocksPerSecond: 8, logsPerBlock: [1, 20] });
    const first = await cluster.waitForHolder(CHAIN, () => true, 15_000);
    expect(await cluster.metric(first.holder, 'chain_lease_held', { chain: 'chain-31337' })).toBe(1);
    await waitUntil(
      () => traffic.logs >= 800 && cluster.delivered() >= 1_000,
      60_000,
      '800 logs mined and 1,000 delivered before the kill',
    );
    // Logs delivered before the kill are orphaned while no instance holds the chain: the successor,
    // reading the reorg window from the store, must retract them.
    let killedAt = 0;
    await cluster.reorg(2, {
      deliveredWithinMs: 30_000,
      before: async () => {
        killedAt = Date.now();
        await cluster.kill(first.holder);
      },
    });
    const next = await cluster.waitForHolder(CHAIN, (l) => l.holder !== first.holder, leaseMs + heartbeatMs + 5_000);
    const failoverMs = Date.now() - killedAt;
    expect(next.epoch).toBeGreaterThan(first.epoch);
    expect(failoverMs).toBeLessThan(leaseMs + heartbeatMs + 2_000);
    expect(await cluster.metric(next.holder, 'chain_lease_held', { chain: 'chain-31337' })).toBe(1);
    // Jobs the dead instance had claimed: due again for the others once their claims run out.
    const stranded = (await cluster.view()).instances.find((i) => i.id === first.holder)?.claims ?? 0;

    const before = cluster.delivered();
    await waitUntil(
      () => traffic.logs >= 2_000 && cluster.delivered() >= before + 1_000,
      60_000,
      '2,000 logs mined, 1,000 more deliveries',
    );
    await cluster.reorg(1, { deliveredWithinMs: 30_000 });
    const sent = await traffic.stop();
    const delivered = await cluster.expectNothingLost(90_000);
    expect(delivered.orphanedDelivered).toBeGreaterThan(0);
    expect(cluster.unexpectedExits).toEqual([]);
    console.info(
      `cluster failover e2e: ${sent.blocks} blocks, ${sent.logs} logs, ${delivered.expected} webhooks, ${delivered.duplicates} duplicates, ` +
        `${delivered.removed} retractions, failover ${failoverMs} ms (lease ${leaseMs} ms), settled ${delivered.settledMs} ms after the traffic; ` +
        `${stranded} jobs claimed by the dead instance`,
    );
  }, 150_000);
});
