// Leases and fencing on a real PostgreSQL (src/cluster/coordinator.ts over src/store/postgres/cluster.ts):
// coordinators of several "instances" on one schema spread the chains, take over a silent one's chains
// once its leases expire by the database clock, hand a chain over on request, and a write fenced by a
// lease that moved on changes nothing.
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ClusterCoordinator, GOVERNANCE_LEASE, chainLease } from '../../src/cluster/coordinator.ts';
import { createLogger } from '../../src/runtime/log.ts';
import type { KvFence } from '../../src/store/kv.ts';
import { PgClusterStore } from '../../src/store/postgres/cluster.ts';
import { PgKv, checkFence } from '../../src/store/postgres/kv.ts';
import { fencedKv } from '../../src/store/fenced-kv.ts';
import { freshPgPool, type TestPgPool } from '../support/postgres.ts';
import { waitFor as waitUntil } from '../support/kernel.ts';

const waitFor = (cond: () => boolean | Promise<boolean>, what: string) => waitUntil(cond, 20_000, what);

const LEASE_MS = 1_200;
const HEARTBEAT_MS = 300;
const CHAINS = [1, 2, 3, 4].map((chainId) => ({ chainId, name: `c${chainId}` }));

let pool: TestPgPool;
const running: ClusterCoordinator[] = [];

beforeAll(async () => {
  pool = await freshPgPool('leases');
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.stop()));
  await pool.run('reset', (c) => c.query('TRUNCATE cluster_leases, cluster_instances'));
});
afterAll(() => pool.drop());

interface Instance {
  id: string;
  coordinator: ClusterCoordinator;
  registry: Registry;
  /** The lease names held, as the gates say. */
  held(): string[];
}

async function instance(id: string, options: { governance?: boolean } = {}): Promise<Instance> {
  const registry = new Registry();
  const coordinator = new ClusterCoordinator({
    store: new PgClusterStore(pool, { id, version: 'test' }, HEARTBEAT_MS),
    self: id,
    chains: CHAINS,
    governance: options.governance ?? false,
    leaseMs: LEASE_MS,
    heartbeatMs: HEARTBEAT_MS,
    registry,
    logger: createLogger({ level: 'silent' }),
    heights: async () => ({ 1: 10 }),
  });
  await coordinator.start();
  running.push(coordinator);
  const names = [...CHAINS.map((c) => chainLease(c.chainId)), GOVERNANCE_LEASE];
  return { id, coordinator, registry, held: () => names.filter((n) => coordinator.gate(n).current() !== undefined) };
}

/** Stops an instance's rounds without leaving the store: as a process killed with SIGKILL. */
function freeze(i: Instance): void {
  running.splice(running.indexOf(i.coordinator), 1);
  // The timer is the coordinator's only activity; stopping it without `leave` keeps its rows as they were.
  (i.coordinator as unknown as { stopped: boolean; timer: NodeJS.Timeout }).stopped = true;
  clearTimeout((i.coordinator as unknown as { timer: NodeJS.Timeout }).timer);
}

describe('spreading the chains', () => {
  it('gives each of two instances two of four chains, and one instance all four once the other leaves', async () => {
    const a = await instance('a');
    const b = await instance('b');
    await waitFor(() => {
      const [ha, hb] = [a.held().length, b.held().length];
      return ha === 2 && hb === 2;
    }, 'two chains each');
    expect(new Set([...a.held(), ...b.held()]).size).toBe(4);
    const status = await a.coordinator.status();
    expect(status.instances.map((i) => [i.id, i.live])).toEqual([
      ['a', true],
      ['b', true],
    ]);
    expect(status.leases.filter((l) => l.holder !== null)).toHaveLength(4);
    // What an offline command reads (chain reset-cursor refuses while any is live): a read only.
    expect(await new PgClusterStore(pool, { id: 'cli', version: '' }, 1_000).liveIds(LEASE_MS)).toEqual(['a', 'b']);

    await b.coordinator.stop();
    running.splice(running.indexOf(b.coordinator), 1);
    await waitFor(() => a.held().length === 4, 'a takes every chain');
    expect((await a.coordinator.status()).instances.map((i) => i.id)).toEqual(['a']);
  });

  it("takes over a silent instance's chains once their leases expire, at a higher epoch", async () => {
    const a = await instance('a');
    const b = await instance('b');
    await waitFor(() => a.held().length === 2 && b.held().length === 2, 'spread');
    const before = new Map(b.held().map((n) => [n, b.coordinator.gate(n).current()!.epoch]));
    freeze(b);
    const frozenAt = Date.now();
    await waitFor(() => a.held().length === 4, 'a takes over');
    expect(Date.now() - frozenAt).toBeGreaterThanOrEqual(LEASE_MS - HEARTBEAT_MS);
    for (const [name, epoch] of before) expect(a.coordinator.gate(name).current()!.epoch).toBe(epoch + 1);
    expect(await metric(a.registry, 'instance_up', { peer: 'b' })).toBe(0);
    expect(await metric(a.registry, 'instance_up', { peer: 'a' })).toBe(1);
  });

  it('hands a chain over on request: its holder stops and another instance takes it', async () => {
    const a = await instance('a');
    const b = await instance('b');
    await waitFor(() => a.held().length === 2 && b.held().length === 2, 'spread');
    const name = a.held().find((n) => n.startsWith('chain:'))!;
    const chainId = Number(name.slice('chain:'.length));
    // Asked of the instance that does not hold it.
    const released = await b.coordinator.release(chainId);
    expect(released).toMatchObject({ chain: chainId, holder: 'a', holdMs: 2 * LEASE_MS });
    await waitFor(() => b.coordinator.gate(name).current() !== undefined, 'b takes the released chain');
    await waitFor(() => a.coordinator.gate(name).current() === undefined, 'a finds it lost');
    await expect(a.coordinator.release(999)).rejects.toMatchObject({ code: 'ETHHOOK_ERR_CLUSTER_CHAIN_UNKNOWN' });
  });

  it('gives the governance lease to exactly one of the instances that apply governance', async () => {
    const a = await instance('a', { governance: true });
    const b = await instance('b', { governance: true });
    await waitFor(() => a.held().includes(GOVERNANCE_LEASE) !== b.held().includes(GOVERNANCE_LEASE), 'one holder');
    const holder = a.held().includes(GOVERNANCE_LEASE) ? a : b;
    const other = holder === a ? b : a;
    await holder.coordinator.stop();
    running.splice(running.indexOf(holder.coordinator), 1);
    await waitFor(() => other.held().includes(GOVERNANCE_LEASE), 'the other takes governance');
  });
});

describe('fencing', () => {
  it('a batch fenced by a lease that moved on writes nothing, and one at the current epoch lands', async () => {
    const a = await instance('a');
    await waitFor(() => a.held().length === 4, 'a holds all');
    const name = chainLease(1);
    const stale: KvFence = a.coordinator.gate(name).current()!;
    const kv = new PgKv(pool);
    const space = kv.space<number>('fence-test');
    await kv.batch([stale, space.putOp('k', 1)]);
    expect(await space.get('k')).toBe(1);

    freeze(a);
    const b = await instance('b');
    await waitFor(() => b.held().length === 4, 'b takes over');
    await expect(kv.batch([stale, space.putOp('k', 2), space.putOp('other', 2)])).rejects.toMatchObject({ code: 'ETHHOOK_ERR_LEASE_LOST' });
    expect(await space.get('k')).toBe(1);
    expect(await space.get('other')).toBeUndefined();

    let suspected = 0;
    const staleKv = fencedKv(kv, { name, current: () => stale, suspect: () => suspected++ });
    await expect(staleKv.space<number>('fence-test').put('k', 3)).rejects.toMatchObject({ code: 'ETHHOOK_ERR_LEASE_LOST' });
    expect(suspected).toBe(1);
    const fresh = fencedKv(kv, b.coordinator.gate(name));
    await fresh.space<number>('fence-test').put('k', 4);
    expect(await space.get('k')).toBe(4);
    const unheld = fencedKv(kv, { name, current: () => undefined, suspect: () => undefined });
    await expect(unheld.space<number>('fence-test').del('k')).rejects.toMatchObject({ code: 'ETHHOOK_ERR_LEASE_LOST' });
  });

  it('a holder paused inside a fenced transaction stops nobody: the others keep their rounds, and take over once the server ends its session', async () => {
    const paused = await freshPgPool('paused_holder', { idleInTransactionMs: 4 * LEASE_MS });
    try {
      const a = await instance('a');
      await waitFor(() => a.held().length === 4, 'a holds all');
      const fence = a.coordinator.gate(chainLease(3)).current()!;
      // a's write, on the lease row: fence checked (FOR SHARE), then a is paused before its commit.
      const client = await paused.pool.connect();
      client.on('error', () => undefined);
      await client.query('BEGIN');
      await client.query(`SET search_path = ${pool.schema}`);
      await checkFence(client, fence);
      freeze(a);
      const b = await instance('b');
      // While the paused session holds chain 3's row, b takes the three others and keeps heartbeating.
      await waitFor(() => b.held().length === 3, 'b takes the chains not locked');
      expect(b.coordinator.gate(chainLease(3)).current()).toBeUndefined();
      const heartbeat = async () => Date.parse((await b.coordinator.status()).instances.find((i) => i.id === 'b')!.heartbeatAt);
      const first = await heartbeat();
      await waitFor(async () => (await heartbeat()) > first, 'b heartbeats on');
      // Once the server ends the paused session, b takes chain 3 too.
      await waitFor(() => b.held().length === 4, 'b takes over');
      expect((await b.coordinator.status()).instances.find((i) => i.id === 'b')?.live).toBe(true);
      expect(b.coordinator.gate(chainLease(3)).current()!.epoch).toBe(fence.epoch + 1);
      // The paused transaction was ended by the server: it commits nothing.
      await expect(client.query('COMMIT')).rejects.toThrow();
      client.release(true);
    } finally {
      await paused.drop();
    }
    // Five waits of up to 20 s each: a loaded machine may need more than the default 60 s for them all.
  }, 150_000);

  it('an expired lease fences its holder out even before another instance takes it', async () => {
    const a = await instance('a');
    await waitFor(() => a.held().length === 4, 'a holds all');
    const fence = a.coordinator.gate(chainLease(2)).current()!;
    freeze(a);
    const kv = new PgKv(pool);
    await waitFor(async () => {
      const { rows } = await pool.run('t', (c) =>
        c.query(`SELECT 1 FROM cluster_leases WHERE name = $1 AND expires_at < clock_timestamp()`, [fence.lease]),
      );
      return rows.length === 1;
    }, 'the lease expired');
    await expect(kv.batch([fence, kv.space<number>('fence-test').putOp('late', 1)])).rejects.toMatchObject({
      code: 'ETHHOOK_ERR_LEASE_LOST',
    });
  });
});

async function metric(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
}
