// A history backfill in a cluster of three instances on one PostgreSQL schema (test/support/cluster.ts):
// thousands of logs are mined before a subscription exists; the subscription is created with `fromBlock`
// through an instance that does NOT hold the chain's lease, while live traffic flows. The request runs on
// the lease holder; the holder is killed with SIGKILL in the middle of it; the instance that takes the
// lease next takes the backfill up from its stored progress and finishes it. Every log of the contract,
// history and live, reaches both subscriptions, duplicates only under one webhook-id with one body, every
// signature valid (the harness's invariant).
import { describe, expect, it } from 'vitest';
import type { SubscriptionAnswer } from '../support/admin-answers.ts';
import { useCluster } from '../support/cluster.ts';
import { waitUntil } from './e2e-chain.ts';

// Paced so that the backfill has a middle to kill it in (about 6 s for the history alone).
const cluster = useCluster({ instances: 3, endpoints: 1, backfill: { blocksPerSec: 30, pollMs: 200 } });
const CHAIN = 31337;
const HISTORY_BLOCKS = 150;
const HISTORY_LOGS_PER_BLOCK = 20;

describe('cluster: a backfill whose instance is killed', () => {
  it('runs on the lease holder, is taken up by the next holder from its progress, and delivers every log', async () => {
    const { leaseMs, heartbeatMs } = cluster.options;
    const t0 = Date.now();
    const first = await cluster.waitForHolder(CHAIN, () => true, 15_000);
    for (let i = 0; i < HISTORY_BLOCKS; i++) await cluster.mine(HISTORY_LOGS_PER_BLOCK);
    // History for the cluster: the live path has passed these blocks before the subscription exists.
    const head = await cluster.chains[0]!.head();
    await waitUntil(
      async () => ((await cluster.metric(first.holder, 'chain_processed_height', { chain: 'chain-31337' })) ?? -1) >= head,
      30_000,
      'the live path past the history',
    );
    const tHistory = Date.now();
    const traffic = cluster.startTraffic({ blocksPerSecond: 4, logsPerBlock: [1, 5] });

    const creator = cluster.running().find((i) => i.id !== first.holder)!;
    const created = await cluster.subscribe(creator.id, { endpoint: 'ep_0', fromBlock: 0 });
    const sub = created.subscription.id;
    expect(created.backfill).toMatchObject({ from: 0, state: 'running' });
    const backfill = async () => {
      const read = await creator.node.api<SubscriptionAnswer>('GET', `/v1/subscriptions/${sub}`);
      return read.body.backfill!;
    };
    const started = (node: { logs: readonly Record<string, unknown>[] }) =>
      node.logs.filter((l) => l.msg === 'backfill running' && l.subscriptionId === sub);

    // Under way on the holder, and well before its end.
    await waitUntil(async () => (await backfill()).at >= 30, 30_000, 'the backfill under way');
    const before = await backfill();
    expect(before.state).toBe('running');
    expect(before.to).toBeGreaterThanOrEqual(HISTORY_BLOCKS);
    expect(before.at).toBeLessThan(before.to! - 30);
    expect(started(cluster.instances.get(first.holder)!.node).length).toBeGreaterThan(0);
    for (const other of cluster.running()) if (other.id !== first.holder) expect(started(other.node), other.id).toEqual([]);

    const tKill = Date.now();
    await cluster.kill(first.holder);
    const next = await cluster.waitForHolder(CHAIN, (l) => l.holder !== first.holder, leaseMs + heartbeatMs + 5_000);
    const successor = cluster.instances.get(next.holder)!;
    await waitUntil(async () => (await backfill()).state === 'done', 30_000, 'the backfill done on the next holder');
    const tDone = Date.now();
    const done = await backfill();
    expect(done).toMatchObject({ from: 0, to: before.to, at: before.to, state: 'done' });
    // Taken up where the killed holder's last page left it, not from the start.
    const resumed = started(successor.node);
    expect(resumed.length).toBeGreaterThan(0);
    expect(resumed[0]!.at).toBeGreaterThanOrEqual(before.at);
    expect(resumed[0]!.at).toBeLessThan(before.to!);

    const sent = await traffic.stop();
    const delivered = await cluster.expectNothingLost(60_000);
    // Both subscriptions: the one from governance (live) and the backfilled one, each every log.
    const logs = (await cluster.chains[0]!.logs()).length;
    expect(delivered.expected).toBe(2 * logs);
    expect(logs).toBeGreaterThanOrEqual(HISTORY_BLOCKS * HISTORY_LOGS_PER_BLOCK);
    expect(cluster.unexpectedExits).toEqual([]);
    console.info(
      `cluster backfill e2e: ${HISTORY_BLOCKS * HISTORY_LOGS_PER_BLOCK} history logs, ${sent.logs} live logs, backfill to block ${done.to}, ` +
        `killed at ${before.at}, resumed at ${String(resumed[0]!.at)}; ${delivered.expected} webhooks, ${delivered.duplicates} duplicates, ` +
        `settled ${delivered.settledMs} ms after the traffic; history ${tHistory - t0} ms, kill after ${tKill - tHistory} ms, done ${tDone - tKill} ms after`,
    );
  }, 120_000);
});
