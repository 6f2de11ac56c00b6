// Delivery limits across a cluster, whatever runs the Deliverer: three instances, each with its own
// pool, PgOutbox owner, endpoint store and shared limits on ONE PostgreSQL schema, delivering to one
// real receiver on 127.0.0.1. An endpoint's rate limit holds for the three together (measured at the
// receiver), a breaker one instance opens is honoured by the others and closed everywhere by an
// operator's close on another, and a job kept in memory past its claim is not sent on it. A file per
// way of running the Deliverer (in this process, forked) calls `clusterLimitsSuite` with its own
// `DelivererMode`, so vitest runs the two side by side.
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { BreakerView } from '../../../src/actors/deliverer/circuit-breaker.ts';
import { createLogger } from '../../../src/runtime/log.ts';
import { deliveryLimitsFor, type DeliveryLimits } from '../../../src/store/delivery-limits.ts';
import { EndpointStore } from '../../../src/store/endpoints.ts';
import { PgKv } from '../../../src/store/postgres/kv.ts';
import { PgOutbox, type PgOutboxOptions } from '../../../src/store/postgres/outbox.ts';
import { openPgPool } from '../../../src/store/postgres/pool.ts';
import { jobsFor } from '../../support/jobs.ts';
import { waitFor } from '../../support/kernel.ts';
import { freshPgPool, pgAdminUrl } from '../../support/postgres.ts';
import { startReceiver, type Receiver } from '../../support/receiver.ts';

const logger = createLogger({ level: process.env.ETHHOOK_TEST_LOG ?? 'silent' });
const FAST_RETRY = { scheduleMs: [0, 20, 40, 80, 160, 320, 640, 1_280], jitter: 0.2, maxRetryAfterMs: 1_000 };
const masterKey = randomBytes(32);

/** What an instance's Deliverer works on: its outbox, endpoint store and the cluster's limits, in this process. */
export interface InstanceStore {
  id: string;
  outbox: PgOutbox;
  endpoints: EndpointStore;
  limits: DeliveryLimits;
}

/** The loop options of every Deliverer here: fast retries and polls, and the scenario's guards or margin. */
export interface ClusterLoopOptions {
  concurrency: number;
  retry: typeof FAST_RETRY;
  idlePollMs: number;
  breakerPollMs: number;
  guards?: { circuitBreaker: { failureThreshold: number; cooldownMs: number } };
  sendMarginMs?: number;
}

/** A running Deliverer, as the scenarios reach it. */
export interface RunningDeliverer {
  /** Look at the outbox now. */
  wake(): Promise<void>;
  openBreakers(): Promise<string[]>;
  /** An endpoint's breaker, after the operator's `close` when given. */
  breaker(endpointId: string, action?: 'close'): Promise<BreakerView | null>;
  stop(): Promise<void>;
}

/** How an instance runs its Deliverer. */
export interface DelivererMode {
  /** Said in the test names and the rate log line: `in process`, `forked`. */
  name: string;
  start(store: InstanceStore, loop: ClusterLoopOptions): Promise<RunningDeliverer>;
}

type Instance = InstanceStore & RunningDeliverer;

/** The cluster-limits scenarios with each instance's Deliverer run as `mode` runs it. */
export function clusterLimitsSuite(mode: DelivererMode): void {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** A fresh schema, and a function starting an instance on it. */
  async function cluster(): Promise<{
    schema: string;
    start: (id: string, loop?: Partial<ClusterLoopOptions>, outbox?: Partial<PgOutboxOptions>) => Promise<Instance>;
  }> {
    const first = await freshPgPool('cluster_limits');
    cleanups.push(() => first.drop());
    return {
      schema: first.schema,
      async start(id, loopOptions = {}, outboxOptions = {}) {
        const pool = await openPgPool({ url: pgAdminUrl(), schema: first.schema, logger, registry: new Registry() });
        const kv = new PgKv(pool);
        const outbox = await PgOutbox.open(pool, kv, { owner: id, ...outboxOptions });
        const store = { id, outbox, endpoints: new EndpointStore(kv, masterKey), limits: deliveryLimitsFor(kv, id)! };
        cleanups.push(async () => {
          await outbox.close();
          await pool.close();
        });
        const deliverer = await mode.start(store, {
          concurrency: 8,
          retry: FAST_RETRY,
          idlePollMs: 20,
          breakerPollMs: 100,
          ...loopOptions,
        });
        cleanups.push(() => deliverer.stop());
        return { ...store, ...deliverer };
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

  const wakeAll = (instances: Instance[]) => Promise.all(instances.map((i) => i.wake()));
  const openOnAll = async (instances: Instance[]) => Promise.all(instances.map((i) => i.openBreakers()));

  describe(`three instances on one schema, their Deliverers ${mode.name}`, () => {
    it('hold an endpoint rate limit together: the receiver sees at most 1.10 × the rate (+ burst), every job once', async () => {
      const { start } = await cluster();
      const r = await receiver();
      const instances = await Promise.all(['node-a', 'node-b', 'node-c'].map((id) => start(id)));
      const rate = 25;
      const backlog = 200;
      const { endpoint } = await instances[0]!.endpoints.create({ url: `${r.url}/limited`, rateLimitPerSec: rate });
      await instances[0]!.outbox.enqueueBatch(jobsFor(endpoint.id, backlog, 'rate'));
      await wakeAll(instances);
      await waitFor(() => r.deliveredIds().size === backlog, 60_000, 'the backlog delivered');

      const arrivals = r.requests.filter((q) => q.path === '/limited').map((q) => q.at);
      const seconds = (arrivals[arrivals.length - 1]! - arrivals[0]!) / 1000;
      const burst = rate;
      // The bucket lets rate·t + burst through over any interval t: the allowance is 10% on the rate.
      // Per instance buckets would let three times the rate through.
      const ratio = (arrivals.length - burst) / (rate * seconds);
      console.log(
        `cluster rate, Deliverers ${mode.name}: ${arrivals.length} requests in ${seconds.toFixed(2)} s at ${rate}/s (burst ${burst}): ${ratio.toFixed(3)} × the rate`,
      );
      expect(arrivals.length).toBeLessThanOrEqual(1.1 * rate * seconds + burst);
      // Every job once: the claims keep the instances apart.
      expect(arrivals.length).toBe(backlog);
    });

    it("honour a breaker one of them opens, and close it everywhere on an operator's close on another", async () => {
      const { start } = await cluster();
      const r = await receiver();
      const guards = { circuitBreaker: { failureThreshold: 3, cooldownMs: 120_000 } };
      const a = await start('node-a', { guards });
      const { endpoint: down } = await a.endpoints.create({ url: `${r.url}/down` });
      const { endpoint: up } = await a.endpoints.create({ url: `${r.url}/up` });
      await a.outbox.enqueueBatch(jobsFor(down.id, 3, 'first'));
      await a.wake();
      await waitFor(async () => (await a.openBreakers()).includes(down.id), 20_000, "node-a's breaker open");
      await waitFor(async () => (await a.limits.openBreakers()).some((x) => x.endpointId === down.id), 20_000, 'a breaker in the store');
      expect(await a.limits.openBreakers()).toMatchObject([{ endpointId: down.id, openedBy: 'node-a' }]);

      const others = [await start('node-b', { guards }), await start('node-c', { guards })];
      const all = [a, ...others];
      await waitFor(async () => (await openOnAll(all)).every((o) => o.includes(down.id)), 20_000, 'open on all three');
      const sentDown = () => r.requests.filter((q) => q.path === '/down').length;
      const before = sentDown();
      // The cool-down is two minutes: no instance sends to the broken endpoint, the healthy one is
      // served, the others delivering it meanwhile.
      await a.outbox.enqueueBatch([...jobsFor(down.id, 10, 'more'), ...jobsFor(up.id, 30, 'up')]);
      await wakeAll(all);
      await waitFor(() => r.requests.filter((q) => q.path === '/up').length >= 30, 30_000, 'the healthy endpoint delivered');
      for (const o of others) expect((await o.breaker(down.id))?.state).toBe('open');
      expect(sentDown()).toBe(before);
      expect(before).toBeLessThanOrEqual(3 * 3);

      // The receiver is fixed and an operator closes the breaker on node-b, which did not open it:
      // node-a and node-c close theirs within a read of the store.
      r.setBehaviour(() => ({ status: 200, body: 'ok' }));
      await others[0]!.breaker(down.id, 'close');
      await waitFor(async () => (await openOnAll(all)).every((o) => !o.includes(down.id)), 20_000, 'closed everywhere').catch(
        async (err: Error) => {
          // What each instance and the store hold, for a failure seen once on a loaded machine.
          const views = await Promise.all(all.map(async (i) => `${i.id}: ${JSON.stringify(await i.breaker(down.id))}`));
          throw new Error(`${err.message}; ${views.join('; ')}; store: ${JSON.stringify(await a.limits.openBreakers())}`);
        },
      );
      await waitFor(() => r.deliveredIds().size === 43, 30_000, 'every job delivered');
    });

    it('send a claimed job only on a live claim: it is let go (and claimed again) before its claim ends', async () => {
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
      await a.wake();
      // The first goes at once (the burst); node-a has claimed the second, which waits for a token.
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
      // Had node-a kept the waiting job past its claim, node-b would have claimed it, and node-a sent it anyway.
      expect([...taken]).toEqual([]);
      expect(r.requests.map((q) => q.webhookId).sort()).toEqual(jobs.map((j) => j.id).sort());
    });
  });
}
