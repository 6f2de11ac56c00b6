// Fencing, on a cluster of three instances on one PostgreSQL schema (test/support/cluster.ts), traffic
// flowing: the instance ingesting the chain is frozen (SIGSTOP) in the middle of a block's fenced
// transaction (its lease checked, its writes not committed); it stays frozen past its lease, another instance
// takes the chain at a higher epoch, and the frozen one is let go on (SIGCONT) while it still believes
// it holds the chain. It writes nothing for the chain afterwards: it logs that it lost the lease, its
// Matcher enqueues no job after it wakes, and the jobs of the whole cluster are those of ONE ingestion
// (one log.created per canonical log and endpoint: neither instance wrote a block the other wrote). It
// rejoins as a follower: its chain_height keeps up with the chain, and it does not take the chain back.
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.ts';
import type { LogLine } from '../support/node-process.ts';
import { waitUntil } from './e2e-chain.ts';

const cluster = useCluster({ instances: 3 });
const CHAIN = 31337;
const CHAIN_LABEL = { chain: 'chain-31337' };
const CREATED = { type: 'log.created' };

/** The coordinator's line when it finds that another instance took a lease it held (src/cluster/coordinator.ts). */
const leaseLost = (line: LogLine) => line.msg?.startsWith('lease lost') === true && line.lease === `chain:${CHAIN}`;

describe('cluster: the ingesting instance paused past its lease', () => {
  it('writes nothing for the chain once it wakes, and follows the chain again', async () => {
    const { leaseMs, heartbeatMs } = cluster.options;
    const traffic = cluster.startTraffic({ blocksPerSecond: 8, logsPerBlock: [1, 20] });
    const first = await cluster.waitForHolder(CHAIN, () => true, 15_000);
    await waitUntil(() => traffic.logs >= 600 && cluster.delivered() >= 1_000, 60_000, '600 logs mined, 1,000 delivered before the pause');
    const frozen = cluster.instances.get(first.holder)!;

    // Frozen inside a fenced transaction: the test holds the kv table, so the holder's next block waits
    // on it after its fence check (the lease row share-locked); frozen there, then the table let go,
    // its transaction stays open, as one of a process stopped by a long GC pause or SIGSTOP would.
    const release = await cluster.lockTable('kv');
    try {
      await cluster.mine(20);
      await waitUntil(() => cluster.fencedWriteWaiting(), 10_000, `${frozen.id}'s fenced write waiting on the kv table`);
      cluster.pause(frozen.id);
    } finally {
      await release();
    }
    const next = await cluster.waitForHolder(CHAIN, (l) => l.holder !== frozen.id, leaseMs + heartbeatMs + 5_000);
    expect(next.epoch).toBeGreaterThan(first.epoch);
    // The successor ingests blocks the frozen instance never saw before it wakes.
    const headAtTakeover = await cluster.chains[0]!.head();
    const before = cluster.delivered();
    await waitUntil(
      () => traffic.logs >= 1_200 && cluster.delivered() >= before + 1_000,
      60_000,
      '1,200 logs mined, 1,000 delivered by the successor',
    );
    const logLines = frozen.node.logs.length;
    cluster.resume(frozen.id);

    await waitUntil(
      async () => (await cluster.metric(frozen.id, 'chain_lease_held', CHAIN_LABEL)) === 0,
      leaseMs + heartbeatMs + 5_000,
      `${frozen.id} reporting it no longer holds the chain`,
    );
    await expect.poll(() => frozen.node.logs.slice(logLines).some(leaseLost), { timeout: 10_000 }).toBe(true);
    const enqueuedAwake = await cluster.metric(frozen.id, 'matcher_jobs_enqueued_total', CREATED);
    expect(enqueuedAwake).toBeDefined();

    // A follower again: its chain height passes blocks mined after it woke.
    const head = await cluster.chains[0]!.head();
    expect(head).toBeGreaterThan(headAtTakeover);
    await waitUntil(
      async () => traffic.logs >= 2_000 && (await cluster.chains[0]!.head()) >= head + 20,
      60_000,
      '2,000 logs, 20 blocks after the wake',
    );
    const target = await cluster.chains[0]!.head();
    await waitUntil(
      async () => ((await cluster.metric(frozen.id, 'chain_height', CHAIN_LABEL)) ?? 0) >= target,
      15_000,
      `${frozen.id} chain_height at ${target}`,
    );

    const sent = await traffic.stop();
    const refused = frozen.node.logs.filter((l) => l.msg === 'block not written: the chain lease was lost').length;
    const delivered = await cluster.expectNothingLost(90_000);
    expect(await cluster.metric(frozen.id, 'matcher_jobs_enqueued_total', CREATED)).toBe(enqueuedAwake);
    // One ingestion: the cluster's log.created jobs are exactly one per canonical log and endpoint.
    let created = 0;
    for (const i of cluster.running()) created += (await cluster.metric(i.id, 'matcher_jobs_enqueued_total', CREATED)) ?? NaN;
    expect(created).toBe(delivered.expected);
    expect((await cluster.lease(CHAIN))?.holder).not.toBe(frozen.id);
    expect(await cluster.metric(frozen.id, 'chain_lease_held', CHAIN_LABEL)).toBe(0);
    expect(cluster.unexpectedExits).toEqual([]);
    console.info(
      `cluster fencing e2e: ${frozen.id} frozen, ${next.holder} took the chain at epoch ${next.epoch}; ${sent.blocks} blocks, ` +
        `${sent.logs} logs, ${delivered.expected} webhooks, ${created} log.created jobs, ${delivered.duplicates} duplicates; ` +
        `${refused} blocks of the frozen instance refused by the fence`,
    );
  }, 150_000);
});
