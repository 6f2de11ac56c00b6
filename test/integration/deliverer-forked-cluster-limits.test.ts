// A Deliverer placed in a child process, in a cluster on ONE PostgreSQL schema: its rate limits and
// breakers are the cluster's (reached through the deliverer-store actor's limits messages) and its
// claimed jobs are sent only with the margin left, as the in-process Deliverer's. The deliverer-store's
// limits messages on their own, then the cluster-limits scenarios (suites/deliverer-cluster-limits.ts)
// with each instance an actor system of its own: its pool, PgOutbox owner, endpoint store and shared
// limits in this process, the Deliverer forked.
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { BreakerView } from '../../src/actors/deliverer/circuit-breaker.ts';
import type { DeliveryLoopStatus } from '../../src/actors/deliverer/delivery-loop.ts';
import { placedDelivererSpec } from '../../src/actors/deliverer/placed.ts';
import { RemoteDeliveryLimits, StoreClient } from '../../src/actors/deliverer/remote-ports.ts';
import { createDelivererStore } from '../../src/actors/deliverer/store-port.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { startSystem } from '../../src/supervision/index.ts';
import { deliveryLimitsFor } from '../../src/store/delivery-limits.ts';
import { EndpointStore } from '../../src/store/endpoints.ts';
import { PgKv } from '../../src/store/postgres/kv.ts';
import { PgOutbox } from '../../src/store/postgres/outbox.ts';
import { ACTOR_PATHS } from '../../src/tree.ts';
import { findActor, root, start as startKernel } from '../support/kernel.ts';
import { freshPgPool } from '../support/postgres.ts';
import { clusterLimitsSuite } from './suites/deliverer-cluster-limits.ts';

const logger = createLogger({ level: 'silent' });
const masterKey = randomBytes(32);
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('the deliverer-store: shared limits as messages', () => {
  // Each message reaches the store's limits: one bucket, breakers listed with their opener, forgotten.
  it('serves takes, breaker opens, closes, the open list and forgets from the shared limits', async () => {
    const pool = await freshPgPool('store_port_limits');
    cleanups.push(() => pool.drop());
    const kv = new PgKv(pool);
    const outbox = await PgOutbox.open(pool, kv, { owner: 'node-a' });
    cleanups.push(() => outbox.close());
    const limits = deliveryLimitsFor(kv, 'node-a')!;
    const { system } = await startKernel([
      {
        kind: 'worker',
        name: 'deliverer-store',
        behaviour: () => createDelivererStore({ outbox, endpoints: new EndpointStore(kv, masterKey), limits }),
      },
    ]);
    cleanups.push(async () => {
      await system.shutdown('test');
    });
    const remote = new RemoteDeliveryLimits(new StoreClient(system.lookup('deliverer-store')!));

    // The burst (5) comes at once; then the bucket is empty and says how long a token takes at 5/s.
    expect(await remote.take('ep_a', { ratePerSec: 5, burst: 5 }, 3)).toEqual({ granted: 3, waitMs: 0 });
    expect(await remote.take('ep_a', { ratePerSec: 5, burst: 5 }, 3)).toMatchObject({ granted: 2 });
    const empty = await remote.take('ep_a', { ratePerSec: 5, burst: 5 }, 1);
    expect(empty.granted).toBe(0);
    expect(empty.waitMs).toBeGreaterThan(0);
    expect(empty.waitMs).toBeLessThanOrEqual(200);
    // The bucket is the store's: the in-process limits of another instance find it empty too.
    expect((await deliveryLimitsFor(kv, 'node-b')!.take('ep_a', { ratePerSec: 5, burst: 5 }, 1)).granted).toBe(0);

    await remote.openBreaker('ep_down', 60_000);
    const [listed] = await remote.openBreakers();
    expect(listed).toMatchObject({ endpointId: 'ep_down', cooldownMs: 60_000, openedBy: 'node-a' });
    expect(listed!.remainingMs).toBeGreaterThan(50_000);
    expect(await limits.openBreakers()).toHaveLength(1);
    await remote.closeBreaker('ep_down');
    expect(await remote.openBreakers()).toEqual([]);
    await remote.openBreaker('ep_down', 60_000);
    await remote.forget('ep_down');
    await remote.forget('ep_a');
    expect(await remote.openBreakers()).toEqual([]);
    // A forgotten bucket starts full again.
    expect(await remote.take('ep_a', { ratePerSec: 5, burst: 5 }, 5)).toEqual({ granted: 5, waitMs: 0 });
  });

  // Every field is checked; a store with no shared limits (LevelDB) refuses them as errors, not panics.
  it('refuses malformed limits messages, and limits messages to a store without shared limits', async () => {
    const pool = await freshPgPool('store_port_refusals');
    cleanups.push(() => pool.drop());
    const kv = new PgKv(pool);
    const outbox = await PgOutbox.open(pool, kv, { owner: 'node-a' });
    cleanups.push(() => outbox.close());
    const endpoints = new EndpointStore(kv, masterKey);
    const { system, lines } = await startKernel([
      {
        kind: 'worker',
        name: 'with-limits',
        behaviour: () => createDelivererStore({ outbox, endpoints, limits: deliveryLimitsFor(kv, 'node-a')! }),
      },
      { kind: 'worker', name: 'without-limits', behaviour: () => createDelivererStore({ outbox, endpoints }) },
    ]);
    cleanups.push(async () => {
      await system.shutdown('test');
    });
    const ask = (msg: unknown) => system.lookup('with-limits')!.ask(msg);
    const refused = { ok: false, error: { code: 'ETHHOOK_ERR_INVALID_INPUT' } };
    for (const bad of [
      { type: 'store.limits-take', endpointId: 'ep_a', ratePerSec: 0, burst: 1, want: 1 },
      { type: 'store.limits-take', endpointId: 'ep_a', ratePerSec: Number.POSITIVE_INFINITY, burst: 1, want: 1 },
      { type: 'store.limits-take', endpointId: 'ep_a', ratePerSec: 5, burst: 0.5, want: 1 },
      { type: 'store.limits-take', endpointId: 'ep_a', ratePerSec: 5, burst: 5, want: 0 },
      { type: 'store.limits-take', endpointId: 'ep_a', ratePerSec: 5, burst: 5, want: 1.5 },
      { type: 'store.limits-take', endpointId: 'ep_a', ratePerSec: 5, burst: 5, want: 1e9 },
      { type: 'store.limits-take', endpointId: 'not an id', ratePerSec: 5, burst: 5, want: 1 },
      { type: 'store.breaker-open', endpointId: 'ep_a', cooldownMs: -1 },
      { type: 'store.breaker-open', endpointId: 'ep_a', cooldownMs: 1e12 },
      { type: 'store.breaker-open', endpointId: 'ep_a' },
      { type: 'store.breaker-close', endpointId: 42 },
      { type: 'store.breakers', extra: true },
      { type: 'store.limits-forget', endpointId: '' },
    ]) {
      expect(await ask(bad), JSON.stringify(bad)).toMatchObject(refused);
    }
    expect(await system.lookup('without-limits')!.ask({ type: 'store.breakers' })).toMatchObject(refused);
    expect(
      await system.lookup('without-limits')!.ask({ type: 'store.limits-take', endpointId: 'ep_a', ratePerSec: 5, burst: 5, want: 1 }),
    ).toMatchObject(refused);
    expect(lines.filter((l) => l.code === 'ETHHOOK_ERR_INVALID_INPUT').length).toBeGreaterThanOrEqual(13);
    for (const name of ['with-limits', 'without-limits']) {
      expect(findActor(system.snapshot(), `/${name}`)).toMatchObject({ panics: 0, incarnation: 1, state: 'running' });
    }
  });
});

clusterLimitsSuite({
  name: 'forked',
  async start({ outbox, endpoints, limits }, loop) {
    // As main.ts builds it for a PostgreSQL store.
    const spec = placedDelivererSpec({
      http: { policy: { allowPrivate: true }, headersTimeoutMs: 2_000 },
      loop,
      claimMs: outbox.claimMs,
      sharedLimits: true,
    });
    const pipeline = {
      kind: 'supervisor' as const,
      name: 'pipeline',
      strategy: 'rest-for-one' as const,
      children: [
        { kind: 'worker' as const, name: 'deliverer-store', behaviour: () => createDelivererStore({ outbox, endpoints, limits }) },
        { kind: 'worker' as const, name: 'deliverer', placement: { mode: 'forked' as const, ...spec } },
      ],
    };
    const system = await startSystem(root([pipeline]), { logger, registry: new Registry() });
    const deliverer = system.lookup(ACTOR_PATHS.deliverer)!;
    const running = {
      async wake() {
        await deliverer.ask({ type: 'deliverer.wake' });
      },
      async openBreakers() {
        return (await deliverer.ask<DeliveryLoopStatus>({ type: 'deliverer.status' })).openBreakers;
      },
      async breaker(endpointId: string, action?: 'close') {
        return deliverer.ask<BreakerView | null>({ type: 'deliverer.breaker', endpointId, ...(action && { action }) });
      },
      async stop() {
        await system.shutdown('test over', 10_000);
      },
    };
    const pid = findActor(system.snapshot(), ACTOR_PATHS.deliverer)?.pid;
    if (pid === process.pid) await running.stop();
    expect(pid).not.toBe(process.pid);
    return running;
  },
});
