// Resizing a cluster on one PostgreSQL schema (test/support/cluster.ts) during traffic on two chains:
// three instances grow to five, then shrink to two by SIGTERM (a Kubernetes scale-down). The chain
// leases are spread (no instance holds both while another is idle: at most ceil(chains / live) each);
// a drained instance hands its leases and claims over and exits 0 (nothing waits for a claim to run
// out); the two survivors, both added during the growth, end up with one chain each and deliver; every
// log of both chains is delivered to every endpoint.
import { describe, expect, it } from 'vitest';
import { DEFAULT_CLAIM_MS } from '../../src/store/postgres/outbox.ts';
import { useCluster, type Cluster } from '../support/cluster.ts';
import { waitUntil } from './e2e-chain.ts';

// Receivers slow enough, and instances sending few enough requests per endpoint at once, that a backlog
// builds: every instance claims jobs, so claims move when instances come and go.
const cluster = useCluster({ instances: 3, chains: 2, replyDelayMs: 20, deliverer: { perEndpointConcurrency: 2 } });
const CHAINS = [31337, 31338];

/** The chain leases' holders once both are held, by two distinct live instances. */
async function spreadHolders(c: Cluster, timeoutMs: number): Promise<string[]> {
  let holders: Array<string | undefined> = [];
  await waitUntil(
    async () => {
      holders = await Promise.all(CHAINS.map(async (id) => (await c.lease(id).catch(() => undefined))?.holder));
      const live = new Set(c.running().map((i) => i.id));
      return holders.every((h) => h !== undefined && live.has(h)) && holders[0] !== holders[1];
    },
    timeoutMs,
    () => `both chains held by two distinct running instances (holders: ${JSON.stringify(holders)})`,
  );
  return holders as string[];
}

const successes = async (c: Cluster, id: string) => (await c.metric(id, 'webhook_deliveries_total', { status: 'success' })) ?? 0;

describe('cluster: grown from 3 to 5 and shrunk to 2 during traffic', () => {
  it('moves leases and claims, and loses nothing', async () => {
    const { leaseMs, heartbeatMs } = cluster.options;
    const t0 = Date.now();
    const phases: string[] = [];
    const mark = (what: string) => phases.push(`${what} ${((Date.now() - t0) / 1_000).toFixed(1)} s`);
    const traffic = cluster.startTraffic({ blocksPerSecond: 3, logsPerBlock: [1, 20] });
    const initial = await spreadHolders(cluster, 15_000);
    await waitUntil(() => cluster.delivered() >= 300, 30_000, 'deliveries before growing');

    mark('growing');
    const added = await Promise.all([cluster.add(), cluster.add()]);
    mark('5 running');
    await waitUntil(
      async () => (await cluster.view()).instances.filter((i) => i.live).length === 5,
      10_000,
      'five live instances in GET /v1/cluster',
    );
    const grown = await cluster.view();
    expect(grown.instances.filter((i) => i.leases.some((l) => l.startsWith('chain:'))).length).toBe(2);
    expect(Math.max(...grown.instances.map((i) => i.leases.filter((l) => l.startsWith('chain:')).length))).toBe(1);
    const claimsAt5 = grown.instances.map((i) => `${i.id}:${i.claims}`).join(' ');

    // Shrink to two: both holders drained first, then one more of the first three: the two added
    // instances are left, and must take the chains.
    const leaving = [
      ...initial,
      ...cluster
        .running()
        .map((i) => i.id)
        .filter((id) => !initial.includes(id)),
    ].slice(0, 3);
    const drained: string[] = [];
    for (const id of leaving) {
      const before = cluster.delivered();
      const epochs = await Promise.all(CHAINS.map(async (c) => (await cluster.lease(c))?.epoch ?? 0));
      drained.push(`${id}:${(await cluster.view()).instances.find((i) => i.id === id)?.claims ?? 0}`);
      const exit = await cluster.terminate(id);
      mark(`${id} exited`);
      expect(exit, `${id} drained`).toEqual({ code: 0, signal: null });
      await spreadHolders(cluster, leaseMs + heartbeatMs + 5_000);
      const after = await Promise.all(CHAINS.map(async (c) => (await cluster.lease(c))!));
      for (const [n, lease] of after.entries()) {
        expect(lease.holder).not.toBe(id);
        expect(lease.epoch).toBeGreaterThanOrEqual(epochs[n]!);
      }
      await waitUntil(() => cluster.delivered() >= before + 100, 30_000, `deliveries after ${id} left`);
    }
    const survivors = cluster.running().map((i) => i.id);
    expect([...survivors].sort()).toEqual(added.map((i) => i.id).sort());
    const [a, b] = await spreadHolders(cluster, 10_000);
    expect(new Set([a, b])).toEqual(new Set(survivors));
    const delivering = await Promise.all(survivors.map((id) => successes(cluster, id)));
    await waitUntil(
      async () => (await Promise.all(survivors.map((id) => successes(cluster, id)))).every((n, i) => n > delivering[i]!),
      30_000,
      'both survivors delivering',
    );

    mark('2 delivering');
    await waitUntil(() => traffic.logs >= 1_500, 60_000, '1,500 logs mined');
    const sent = await traffic.stop();
    const delivered = await cluster.expectNothingLost(90_000);
    // Drained instances released their claims: nothing waited for a claim to run out.
    expect(delivered.settledMs).toBeLessThan(DEFAULT_CLAIM_MS);
    await waitUntil(
      async () =>
        (await cluster.view()).instances
          .filter((i) => i.live)
          .map((i) => i.id)
          .sort()
          .join() === [...survivors].sort().join(),
      leaseMs + heartbeatMs + 5_000,
      'GET /v1/cluster listing the survivors alone as live',
    );
    expect(cluster.unexpectedExits).toEqual([]);
    console.info(
      `cluster resize e2e: ${initial.join(',')} held the chains at 3, ${leaving.join(',')} drained, ${survivors.join(',')} survive; ` +
        `${sent.blocks} blocks, ${sent.logs} logs, ${delivered.expected} webhooks, ${delivered.duplicates} duplicates, ` +
        `settled ${delivered.settledMs} ms after the traffic; claims at 5 ${claimsAt5}, at drain ${drained.join(' ')}; ${phases.join(', ')}`,
    );
  }, 180_000);
});
