// Delivery limits across a cluster: three Deliverers, each an instance of its own (its own pool,
// PgOutbox owner, endpoint store and shared limits) on ONE PostgreSQL schema, delivering to one real
// receiver on 127.0.0.1. An endpoint's rate limit holds for the three together (measured at the
// receiver), a breaker one instance opens is honoured by the others and closed everywhere by an
// operator's close on one, and a job kept in memory past its claim is not sent on it.
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryLoop, type DeliveryLoopOptions } from '../../src/actors/deliverer/delivery-loop.ts';
import { WebhookHttpClient } from '../../src/actors/deliverer/http-client.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { deliveryLimitsFor } from '../../src/store/delivery-limits.ts';
import { EndpointStore } from '../../src/store/endpoints.ts';
import { PgKv } from '../../src/store/postgres/kv.ts';
import { PgOutbox, type PgOutboxOptions } from '../../src/store/postgres/outbox.ts';
import { openPgPool } from '../../src/store/postgres/pool.ts';
import { jobsFor } from '../support/jobs.ts';
import { waitFor } from '../support/kernel.ts';
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
  loop: DeliveryLoop;
  outbox: PgOutbox;
  endpoints: EndpointStore;
}

/** A fresh schema, and a function starting an instance on it (its own pool, outbox owner and limits). */
async function cluster(): Promise<{
  schema: string;
  start: (id: string, loop?: DeliveryLoopOptions, outbox?: Partial<PgOutboxOptions>) => Promise<Instance>;
}> {
  const first = await freshPgPool('cluster_limits');
  cleanups.push(() => first.drop());
  return {
    schema: first.schema,
    async start(id, loopOptions = {}, outboxOptions = {}) {
      const pool = await openPgPool({ url: pgAdminUrl(), schema: first.schema, logger, registry: new Registry() });
      const kv = new PgKv(pool);
      const outbox = await PgOutbox.open(pool, kv, { owner: id, ...outboxOptions });
      const endpoints = new EndpointStore(kv, masterKey);
      const client = new WebhookHttpClient({ policy: { allowPrivate: true }, concurrency: 16, headersTimeoutMs: 2_000 });
      const loop = new DeliveryLoop(
        { outbox, endpoints, limits: deliveryLimitsFor(kv, id), client, logger },
        { concurrency: 8, retry: FAST_RETRY, idlePollMs: 20, breakerPollMs: 100, ...loopOptions },
      );
      loop.start();
      cleanups.push(async () => {
        await loop.stop();
        await client.close();
        await outbox.close();
        await pool.close();
      });
      return { id, loop, outbox, endpoints };
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

describe('three instances on one schema', () => {
  it('an endpoint rate limit holds for the cluster: the receiver sees at most 1.10 × the rate (+ burst), every job once', async () => {
    const { start } = await cluster();
    const r = await receiver();
    const instances = await Promise.all(['node-a', 'node-b', 'node-c'].map((id) => start(id)));
    const rate = 25;
    const backlog = 200;
    const { endpoint } = await instances[0]!.endpoints.create({ url: `${r.url}/limited`, rateLimitPerSec: rate });
    await instances[0]!.outbox.enqueueBatch(jobsFor(endpoint.id, backlog, 'rate'));
    for (const i of instances) i.loop.poke();
    await waitFor(() => r.deliveredIds().size === backlog, 60_000, 'the backlog delivered');

    const arrivals = r.requests.filter((q) => q.path === '/limited').map((q) => q.at);
    const seconds = (arrivals[arrivals.length - 1]! - arrivals[0]!) / 1000;
    const burst = rate;
    // The bucket lets rate·t + burst through over any interval t: the allowance is 10% on the rate.
    const ratio = (arrivals.length - burst) / (rate * seconds);
    console.log(
      `cluster rate: ${arrivals.length} requests in ${seconds.toFixed(2)} s at ${rate}/s (burst ${burst}): ${ratio.toFixed(3)} × the rate`,
    );
    expect(arrivals.length).toBeLessThanOrEqual(1.1 * rate * seconds + burst);
    // Every job once: the claims keep the instances apart.
    expect(arrivals.length).toBe(backlog);
  });

  it("a breaker one instance opens is honoured by the others; an operator's close on one closes it everywhere", async () => {
    const { start } = await cluster();
    const r = await receiver();
    const guards = { circuitBreaker: { failureThreshold: 3, cooldownMs: 120_000 } };
    const a = await start('node-a', { guards });
    const { endpoint: down } = await a.endpoints.create({ url: `${r.url}/down` });
    const { endpoint: up } = await a.endpoints.create({ url: `${r.url}/up` });
    await a.outbox.enqueueBatch(jobsFor(down.id, 3, 'first'));
    a.loop.poke();
    await waitFor(() => a.loop.status().openBreakers.includes(down.id), 20_000, "node-a's breaker open");

    const others = [await start('node-b', { guards }), await start('node-c', { guards })];
    await waitFor(() => others.every((o) => o.loop.status().openBreakers.includes(down.id)), 20_000, 'the others see it open');
    const sentDown = () => r.requests.filter((q) => q.path === '/down').length;
    const before = sentDown();
    // More jobs for the broken endpoint, and traffic for a healthy one, which the others deliver meanwhile.
    await a.outbox.enqueueBatch([...jobsFor(down.id, 10, 'more'), ...jobsFor(up.id, 30, 'up')]);
    for (const i of [a, ...others]) i.loop.poke();
    await waitFor(() => r.requests.filter((q) => q.path === '/up').length >= 30, 30_000, 'the healthy endpoint delivered');
    for (const o of others) expect(o.loop.breaker(down.id).state).toBe('open');
    expect(sentDown()).toBe(before);

    // The receiver is fixed and an operator closes the breaker on node-a: node-b and node-c close theirs
    // within a read of the store.
    r.setBehaviour(() => ({ status: 200, body: 'ok' }));
    a.loop.breaker(down.id, 'close');
    await waitFor(() => others.every((o) => !o.loop.status().openBreakers.includes(down.id)), 20_000, 'closed everywhere');
    await waitFor(() => r.deliveredIds().size === 43, 30_000, 'every job delivered');
  });

  it('a job kept in memory is sent only on a live claim: it is let go (and claimed again) before its claim ends', async () => {
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
    a.loop.poke();
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
