// A Deliverer placed in a child process, in a cluster on ONE PostgreSQL schema: its rate limits and
// breakers are the cluster's (reached through the deliverer-store actor's limits messages) and its
// claimed jobs are sent only with the margin left, as the in-process Deliverer's. Each instance here is
// an actor system of its own (its pool, PgOutbox owner, endpoint store and shared limits in this
// process, the Deliverer forked), delivering to one real receiver on 127.0.0.1.
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeliveryLoopStatus } from '../../src/actors/deliverer/delivery-loop.ts';
import { placedDelivererSpec, type PlacedDelivererArgs } from '../../src/actors/deliverer/placed.ts';
import { RemoteDeliveryLimits, StoreClient } from '../../src/actors/deliverer/remote-ports.ts';
import { createDelivererStore } from '../../src/actors/deliverer/store-port.ts';
import { createLogger } from '../../src/runtime/log.ts';
import type { ActorSystem } from '../../src/runtime/system.ts';
import type { ActorRef } from '../../src/runtime/types.ts';
import { deliveryLimitsFor, type DeliveryLimits } from '../../src/store/delivery-limits.ts';
import { EndpointStore } from '../../src/store/endpoints.ts';
import { PgKv } from '../../src/store/postgres/kv.ts';
import { PgOutbox, type PgOutboxOptions } from '../../src/store/postgres/outbox.ts';
import { openPgPool } from '../../src/store/postgres/pool.ts';
import { startSystem } from '../../src/supervision/index.ts';
import { ACTOR_PATHS } from '../../src/tree.ts';
import { jobsFor } from '../support/jobs.ts';
import { findActor, root, start as startKernel, waitFor } from '../support/kernel.ts';
import { freshPgPool, pgAdminUrl } from '../support/postgres.ts';
import { startReceiver, type Receiver } from '../support/receiver.ts';

const logger = createLogger({ level: 'silent' });
const FAST_RETRY = { scheduleMs: [0, 20, 40, 80, 160, 320, 640, 1_280], jitter: 0.2, maxRetryAfterMs: 1_000 };
const masterKey = randomBytes(32);
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Instance {
  id: string;
  system: ActorSystem;
  deliverer: ActorRef;
  outbox: PgOutbox;
  endpoints: EndpointStore;
  limits: DeliveryLimits;
}

type Loop = NonNullable<PlacedDelivererArgs['loop']>;

/** A fresh schema, and a function starting an instance on it whose Deliverer runs forked. */
async function cluster(): Promise<{
  schema: string;
  start: (id: string, loop?: Loop, outbox?: Partial<PgOutboxOptions>) => Promise<Instance>;
}> {
  const first = await freshPgPool('forked_limits');
  cleanups.push(() => first.drop());
  return {
    schema: first.schema,
    async start(id, loop = {}, outboxOptions = {}) {
      const pool = await openPgPool({ url: pgAdminUrl(), schema: first.schema, logger, registry: new Registry() });
      const kv = new PgKv(pool);
      const outbox = await PgOutbox.open(pool, kv, { owner: id, ...outboxOptions });
      const endpoints = new EndpointStore(kv, masterKey);
      const limits = deliveryLimitsFor(kv, id)!;
      // As main.ts builds it for a PostgreSQL store.
      const spec = placedDelivererSpec({
        http: { policy: { allowPrivate: true }, headersTimeoutMs: 2_000 },
        loop: { concurrency: 8, retry: FAST_RETRY, idlePollMs: 20, breakerPollMs: 100, ...loop },
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
      cleanups.push(async () => {
        await system.shutdown('test over', 10_000);
        await outbox.close();
        await pool.close();
      });
      expect(findActor(system.snapshot(), ACTOR_PATHS.deliverer)?.pid).not.toBe(process.pid);
      return { id, system, deliverer: system.lookup(ACTOR_PATHS.deliverer)!, outbox, endpoints, limits };
    },
  };
}

async function receiver(): Promise<Receiver> {
  const r = await startReceiver({
    behaviour: (req) => (req.path.startsWith('/down') ? { status: 503 } : { status: 200, body: 'ok' }),
  });
  cleanups.push(() => r.close());
  return r;
}

const openBreakers = async (i: Instance) => (await i.deliverer.ask<DeliveryLoopStatus>({ type: 'deliverer.status' })).openBreakers;

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

describe('forked Deliverers of three instances on one schema', () => {
  it('hold an endpoint rate limit together: the receiver sees at most 1.10 × the rate (+ burst), every job once', async () => {
    const { start } = await cluster();
    const r = await receiver();
    const instances = await Promise.all(['node-a', 'node-b', 'node-c'].map((id) => start(id)));
    const rate = 20;
    const backlog = 120;
    const { endpoint } = await instances[0]!.endpoints.create({ url: `${r.url}/limited`, rateLimitPerSec: rate });
    await instances[0]!.outbox.enqueueBatch(jobsFor(endpoint.id, backlog, 'rate'));
    await waitFor(() => r.deliveredIds().size === backlog, 60_000, 'the backlog delivered');

    const arrivals = r.requests.filter((q) => q.path === '/limited').map((q) => q.at);
    const seconds = (arrivals[arrivals.length - 1]! - arrivals[0]!) / 1000;
    const burst = rate;
    console.log(
      `forked cluster rate: ${arrivals.length} requests in ${seconds.toFixed(2)} s: ${((arrivals.length - burst) / (rate * seconds)).toFixed(3)} × the rate`,
    );
    // Per instance buckets would let three times the rate through.
    expect(arrivals.length).toBeLessThanOrEqual(1.1 * rate * seconds + burst);
    expect(arrivals.length).toBe(backlog);
  });

  it("honour a breaker one of them opens, and close it everywhere on an operator's close", async () => {
    const { start } = await cluster();
    const r = await receiver();
    const guards = { circuitBreaker: { failureThreshold: 3, cooldownMs: 120_000 } };
    const [a, b, c] = await Promise.all(['node-a', 'node-b', 'node-c'].map((id) => start(id, { guards })));
    const { endpoint: down } = await a!.endpoints.create({ url: `${r.url}/down` });
    const { endpoint: up } = await a!.endpoints.create({ url: `${r.url}/up` });
    await a!.outbox.enqueueBatch(jobsFor(down.id, 3, 'first'));
    await waitFor(async () => (await a!.limits.openBreakers()).some((x) => x.endpointId === down.id), 20_000, 'a breaker in the store');
    const [opened] = await a!.limits.openBreakers();
    await waitFor(
      async () => (await Promise.all([a!, b!, c!].map(openBreakers))).every((o) => o.includes(down.id)),
      20_000,
      'open on all three',
    );

    const sentDown = () => r.requests.filter((q) => q.path === '/down').length;
    const before = sentDown();
    // The cool-down is two minutes: no instance sends to the broken endpoint, the healthy one is served.
    await a!.outbox.enqueueBatch([...jobsFor(down.id, 10, 'more'), ...jobsFor(up.id, 30, 'up')]);
    await waitFor(() => r.requests.filter((q) => q.path === '/up').length >= 30, 30_000, 'the healthy endpoint delivered');
    expect(sentDown()).toBe(before);
    expect(before).toBeLessThanOrEqual(3 * 3);

    r.setBehaviour(() => ({ status: 200, body: 'ok' }));
    const closer = [a!, b!, c!].find((i) => i.id !== opened!.openedBy)!;
    await closer.deliverer.ask({ type: 'deliverer.breaker', endpointId: down.id, action: 'close' });
    await waitFor(
      async () => (await Promise.all([a!, b!, c!].map(openBreakers))).every((o) => !o.includes(down.id)),
      20_000,
      'closed everywhere',
    );
    await waitFor(() => r.deliveredIds().size === 43, 30_000, 'every job delivered');
  });

  it('send a claimed job only on a live claim: the child lets it go before its claim ends', async () => {
    const { start, schema } = await cluster();
    const r = await receiver();
    // Claims of 1.5 s, sent only while 1 s is left; one token every 2 s, so the second job waits 2 s.
    const a = await start('node-a', { sendMarginMs: 1_000 }, { claimMs: 1_500 });
    const { endpoint } = await a.endpoints.create({ url: `${r.url}/slow`, rateLimitPerSec: 0.5 });
    // Another instance's outbox, claiming whatever it may (and keeping it: it sends nothing).
    const pool = await openPgPool({ url: pgAdminUrl(), schema, logger, registry: new Registry() });
    cleanups.push(() => pool.close());
    const other = await PgOutbox.open(pool, new PgKv(pool), { owner: 'node-b', claimMs: 60_000 });
    cleanups.push(() => other.close());
    const jobs = jobsFor(endpoint.id, 2, 'claim');
    await a.outbox.enqueueBatch(jobs);
    await waitFor(() => r.deliveredIds().size === 1, 20_000, 'the first job delivered');
    const taken = new Set<string>();
    await waitFor(
      async () => {
        for (const job of await other.due(Date.now(), 10)) taken.add(job.id);
        return r.deliveredIds().size === 2 || taken.size > 0;
      },
      20_000,
      'both delivered, or a job claimed by the other instance',
    );
    // Had the child kept the waiting job past its claim, node-b would have claimed it, and node-a sent it anyway.
    expect([...taken]).toEqual([]);
    expect(r.requests.map((q) => q.webhookId).sort()).toEqual(jobs.map((j) => j.id).sort());
  });
});
