// PostgreSQL restarted under a cluster of three instances (test/support/cluster.ts, on a server of the
// file's own), traffic flowing: every instance sees the store go (store_up 0) and stays up; once the
// server is back every instance reconnects (store_up 1, /ready 200, a live row in GET /v1/cluster),
// the chain is held again, and every log mined before, during and after the restart is delivered,
// signed, to every endpoint.
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.ts';
import { waitUntil } from './e2e-chain.ts';

const cluster = useCluster({ instances: 3, ownPostgres: true });
const CHAIN = 31337;

describe('cluster: PostgreSQL restarted during traffic', () => {
  it('every instance reconnects, and nothing is lost', async () => {
    const pg = cluster.pg!;
    const ids = cluster.running().map((i) => i.id);
    const traffic = cluster.startTraffic({ blocksPerSecond: 6, logsPerBlock: [1, 20] });
    const first = await cluster.waitForHolder(CHAIN, () => true, 15_000);
    await waitUntil(() => cluster.delivered() >= 500, 30_000, 'deliveries before the restart');

    await pg.stop();
    const logsAtStop = traffic.logs;
    for (const id of ids) await waitUntil(async () => (await cluster.metric(id, 'store_up')) === 0, 20_000, `${id}: store_up 0`);
    // Traffic the cluster must take in with no database.
    await waitUntil(() => traffic.logs >= logsAtStop + 100, 20_000, 'logs mined while PostgreSQL is down');
    const logsAtStart = traffic.logs;
    await pg.start();

    for (const id of ids) {
      await waitUntil(async () => (await cluster.metric(id, 'store_up')) === 1, 30_000, `${id}: store_up 1`);
      await waitUntil(
        async () =>
          (
            await cluster.instances
              .get(id)!
              .node.api('GET', '/ready')
              .catch(() => ({ status: 0 }))
          ).status === 200,
        30_000,
        `${id}: /ready 200`,
      );
    }
    await waitUntil(
      async () => {
        const view = await cluster.view().catch(() => undefined);
        return ids.every((id) => view?.instances.find((i) => i.id === id)?.live === true);
      },
      15_000,
      'every instance live in GET /v1/cluster',
    );
    const next = await cluster.waitForHolder(CHAIN, () => true, 15_000);
    const before = cluster.delivered();
    await waitUntil(
      () => traffic.logs >= 1_500 && cluster.delivered() >= before + 500,
      60_000,
      '1,500 logs mined, 500 delivered after the restart',
    );

    const sent = await traffic.stop();
    const delivered = await cluster.expectNothingLost(90_000);
    expect(cluster.unexpectedExits).toEqual([]);
    console.info(
      `cluster PostgreSQL restart e2e: chain held by ${first.holder} (epoch ${first.epoch}) before, ${next.holder} (epoch ${next.epoch}) after; ` +
        `${sent.blocks} blocks, ${sent.logs} logs (${logsAtStop}..${logsAtStart} while it was down), ${delivered.expected} webhooks, ` +
        `${delivered.duplicates} duplicates, ${delivered.retries} retries, settled ${delivered.settledMs} ms after the traffic`,
    );
  }, 180_000);
});
