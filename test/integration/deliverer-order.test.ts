// The order of one (subscription, log) from the Matcher to a real receiver on 127.0.0.1: a reorg's
// `log.removed`, enqueued while its `log.created` is still being retried (the receiver failing it, the
// breaker open, backoff), reaches the receiver only after the creation was accepted; the creation of the
// block come back only after that retraction; a creation that dies still lets its retraction go. Real
// Matcher, LevelDB outbox, delivery loop and HTTP client; the retry schedule in milliseconds. A placed
// Deliverer's ports (the deliverer-store actor) see the same order and are woken on the release.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeliveryLoop } from '../../src/actors/deliverer/delivery-loop.ts';
import { WebhookHttpClient } from '../../src/actors/deliverer/http-client.ts';
import { RemoteOutbox, StoreClient } from '../../src/actors/deliverer/remote-ports.ts';
import { createDelivererStore } from '../../src/actors/deliverer/store-port.ts';
import { delivererMetrics } from '../../src/actors/deliverer/metrics.ts';
import { webhookId } from '../../src/actors/matcher/jobs.ts';
import { createMatcher, type Matcher } from '../../src/actors/matcher/matcher.ts';
import type { ChainBlockMessage } from '../../src/actors/matcher/messages.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { openDb, type Db } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { EndpointStore } from '../../src/store/endpoints.ts';
import { LevelOutbox } from '../../src/store/level/outbox/outbox.ts';
import { SubscriptionStore } from '../../src/store/subscriptions.ts';
import { ACTOR_PATHS } from '../../src/tree.ts';
import type { ChildSpec } from '../../src/runtime/types.ts';
import { start, waitFor } from '../support/kernel.ts';
import { startReceiver, type Incoming, type Receiver, type Reply } from '../support/receiver.ts';

const logger = createLogger({ level: 'silent' });
const ctx = {} as never;
const ADDRESS = '0x' + 'a1'.repeat(20);
const TX = '0x' + 'cd'.repeat(32);
const H = (n: number) => '0x' + n.toString(16).padStart(64, 'e');

let dir: string;
let db: Db;
let outbox: LevelOutbox;
let endpoints: EndpointStore;
let subscriptions: SubscriptionStore;
const cleanups: Array<() => Promise<void>> = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ethhook-deliver-order-'));
  db = await openDb(dir);
  outbox = await LevelOutbox.open(new LevelKv(db));
  endpoints = new EndpointStore(new LevelKv(db), randomBytes(32));
  subscriptions = new SubscriptionStore(new LevelKv(db), endpoints);
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await outbox.idle();
  await db.close();
  await rm(dir, { recursive: true, force: true });
});

const until = async (cond: () => boolean, timeoutMs = 20_000) => {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** A block with one log of ADDRESS at `logIndex`, mined, or retracted (`removed`). */
function block(number: number, logIndex: number, removed = false): ChainBlockMessage {
  const blockHash = H(number);
  return {
    type: 'chain.block',
    chainId: 1,
    blockNumber: number,
    blockHash,
    parentHash: H(number - 1),
    timestamp: 1_700_000_000 + number,
    seenAt: Date.now(),
    removed,
    logs: [
      {
        address: ADDRESS,
        topics: [],
        data: '0x',
        blockNumber: number,
        blockHash,
        transactionHash: TX,
        transactionIndex: 0,
        logIndex,
        removed,
      },
    ],
  };
}

/** Fails the first `failures` requests of each webhook-id in `failing`, answers 200 to everything else. */
function failingFirst(failures: ReadonlyMap<string, number>): (req: Incoming) => Reply {
  const tried = new Map<string, number>();
  return (req) => {
    const id = req.webhookId ?? '';
    const n = (tried.get(id) ?? 0) + 1;
    tried.set(id, n);
    return n <= (failures.get(id) ?? 0) ? { status: 503 } : { status: 200, body: 'ok' };
  };
}

async function setUp(
  behaviour: (req: Incoming) => Reply,
  retryMs = [0, 5, 10, 20, 20, 40, 40, 40, 40, 40, 40],
): Promise<{ r: Receiver; matcher: Matcher; sub: string }> {
  const r = await startReceiver({ behaviour });
  cleanups.push(() => r.close());
  const { endpoint } = await endpoints.create({ url: `${r.url}/hook` });
  const sub = (await subscriptions.create({ endpointId: endpoint.id, chainId: 1, addresses: [ADDRESS] })).id;
  const matcher = createMatcher({ kv: new LevelKv(db), subscriptions, outbox, logger });
  await matcher.preStart!(ctx);
  const client = new WebhookHttpClient({ policy: { allowPrivate: true }, concurrency: 8 });
  const loop = new DeliveryLoop(
    { outbox, endpoints, client, logger, metrics: delivererMetrics(new Registry()) },
    {
      concurrency: 8,
      idlePollMs: 20,
      retry: { scheduleMs: retryMs, jitter: 0, maxRetryAfterMs: 100 },
      guards: { circuitBreaker: { failureThreshold: 3, cooldownMs: 30, maxCooldownMs: 60 } },
    },
  );
  loop.start();
  cleanups.push(async () => {
    await loop.stop();
    await client.close();
  });
  return { r, matcher, sub };
}

/** The webhook-ids the receiver answered 2xx, in the order it answered them. */
const accepted = (r: Receiver) => r.requests.filter((q) => 'status' in q.reply && q.reply.status < 300).map((q) => q.webhookId);
/** Index of the first request (any answer) carrying `id`. */
const firstRequest = (r: Receiver, id: string) => r.requests.findIndex((q) => q.webhookId === id);
/** Index of the last request (any answer) carrying `id`. */
const lastRequest = (r: Receiver, id: string) => r.requests.map((q) => q.webhookId).lastIndexOf(id);

describe('a retraction enqueued while its creation is being retried', () => {
  it('reaches the receiver after the creation was accepted, every time, whatever the number of failures', async () => {
    const rounds = [1, 2, 3, 5, 8];
    const failures = new Map<string, number>();
    const { r, matcher, sub } = await setUp(failingFirst(failures));
    for (const [i, n] of rounds.entries()) {
      const number = 100 + i;
      const created = webhookId(1, H(number), i, sub, 'log.created');
      const removed = webhookId(1, H(number), i, sub, 'log.removed');
      failures.set(created, n);
      await matcher.receive(block(number, i), ctx);
      // The creation has failed at least once: it is retrying when the reorg comes.
      await until(() => r.requests.some((q) => q.webhookId === created));
      expect(await matcher.receive(block(number, i, true), ctx)).toEqual({ ok: true, jobs: 1 });
      await until(() => accepted(r).includes(removed));
      const order = accepted(r);
      expect(order.indexOf(created)).toBeGreaterThanOrEqual(0);
      expect(order.indexOf(created)).toBeLessThan(order.indexOf(removed));
      // Not even tried before: the receiver never saw the retraction while the creation was owed.
      const lastCreationTry = lastRequest(r, created);
      expect(firstRequest(r, removed)).toBeGreaterThan(lastCreationTry);
      expect(r.requests.filter((q) => q.webhookId === created)).toHaveLength(n + 1);
    }
    await until(() => outbox.depth() === 0);
  });

  it('the block come back is created again only after the retraction was accepted', async () => {
    const failures = new Map<string, number>();
    const { r, matcher, sub } = await setUp(failingFirst(failures));
    const c0 = webhookId(1, H(200), 0, sub, 'log.created');
    const r0 = webhookId(1, H(200), 0, sub, 'log.removed');
    const c1 = webhookId(1, H(200), 0, sub, 'log.created', 1);
    failures.set(c0, 3);
    failures.set(r0, 3);
    await matcher.receive(block(200, 0), ctx);
    await until(() => r.requests.some((q) => q.webhookId === c0));
    await matcher.receive(block(200, 0, true), ctx);
    await matcher.receive(block(200, 0), ctx);
    await until(() => accepted(r).includes(c1));
    expect(accepted(r)).toEqual([c0, r0, c1]);
    expect(firstRequest(r, r0)).toBeGreaterThan(lastRequest(r, c0));
    expect(firstRequest(r, c1)).toBeGreaterThan(lastRequest(r, r0));
  });

  it('a creation that dies (retries exhausted) still lets its retraction go, and cannot be replayed after it', async () => {
    const failures = new Map<string, number>();
    const { r, matcher, sub } = await setUp(failingFirst(failures), [0, 5, 10]);
    const created = webhookId(1, H(300), 0, sub, 'log.created');
    const removed = webhookId(1, H(300), 0, sub, 'log.removed');
    failures.set(created, 100);
    await matcher.receive(block(300, 0), ctx);
    await until(() => r.requests.some((q) => q.webhookId === created));
    await matcher.receive(block(300, 0, true), ctx);
    await until(() => accepted(r).includes(removed));
    expect(firstRequest(r, removed)).toBeGreaterThan(lastRequest(r, created));
    expect(await outbox.getDeadLetter(created)).toMatchObject({ supersededBy: removed });
    await expect(outbox.replayDeadLetter(created)).rejects.toMatchObject({ code: 'ETHHOOK_ERR_DEAD_LETTER_SUPERSEDED' });
  });
});

describe('a placed Deliverer (forked or threaded), through the deliverer-store actor', () => {
  it('never gets a retraction due before its creation left, and is woken when it becomes due', async () => {
    let wakes = 0;
    const pipeline: ChildSpec = {
      kind: 'supervisor',
      name: 'pipeline',
      strategy: 'rest-for-one',
      children: [
        { kind: 'worker', name: 'deliverer-store', behaviour: () => createDelivererStore({ outbox, endpoints, registry: new Registry() }) },
        // Stands in for the placed Deliverer: counts the wake-ups the store actor sends it.
        {
          kind: 'worker',
          name: 'deliverer',
          behaviour: () => ({ receive: (m: { type: string }) => ((wakes += m.type === 'deliverer.wake' ? 1 : 0), { ok: true }) }),
        },
      ],
    };
    const { system } = await start([pipeline], {}, { registry: new Registry() });
    cleanups.push(async () => {
      await system.shutdown('test');
    });
    const remote = new RemoteOutbox(new StoreClient(system.lookup(ACTOR_PATHS.delivererStore)!));
    const { endpoint } = await endpoints.create({ url: 'https://receiver.example/hook' });
    const sub = (await subscriptions.create({ endpointId: endpoint.id, chainId: 1, addresses: [ADDRESS] })).id;
    const matcher = createMatcher({ kv: new LevelKv(db), subscriptions, outbox, logger });
    await matcher.preStart!(ctx);
    const created = webhookId(1, H(400), 0, sub, 'log.created');
    const removed = webhookId(1, H(400), 0, sub, 'log.removed');
    await matcher.receive(block(400, 0), ctx);
    await matcher.receive(block(400, 0, true), ctx);
    const [first, ...others] = await remote.due(Date.now() + 1, 10);
    expect([first?.id, others]).toEqual([created, []]);
    await remote.reschedule(first!, Date.now());
    expect((await remote.due(Date.now() + 1, 10)).map((j) => j.id)).toEqual([created]);
    await waitFor(() => wakes > 0, 5_000, 'the wake of the enqueue');
    const before = wakes;
    expect(await remote.complete(created)).toBe(true);
    await waitFor(() => wakes > before, 5_000, 'the wake of the released retraction');
    expect((await remote.due(Date.now() + 1, 10)).map((j) => j.id)).toEqual([removed]);
  });
});
