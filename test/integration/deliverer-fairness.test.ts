// Fairness between endpoints, end to end: a real LevelDB outbox and endpoint store, the real HTTP client
// (sized as the Deliverer sizes it), real receivers on 127.0.0.1, the scheduler's defaults (64 fast
// slots, 8 per endpoint, a 64-request slow lane, slow after 1 s). Endpoints that never answer must not
// slow down the others, and must lose nothing themselves.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeliveryLoop, type DeliveryLoopOptions } from '../../src/actors/deliverer/delivery-loop.ts';
import { WebhookHttpClient } from '../../src/actors/deliverer/http-client.ts';
import { requestSlots } from '../../src/actors/deliverer/scheduler.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { openDb, type Db } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { EndpointStore } from '../../src/store/endpoints.ts';
import { type NewJob } from '../../src/store/outbox/job.ts';
import { LevelOutbox } from '../../src/store/level/outbox/outbox.ts';
import { startReceiver, type Behaviour, type Receiver } from '../support/receiver.ts';

const logger = createLogger({ level: 'silent' });
// No breaker opens during these tests: what keeps the healthy endpoint fast must be the scheduler.
const NO_BREAKER = { circuitBreaker: { failureThreshold: 1_000_000, minimumNumberOfCalls: 1_000_000 } };

let dir: string;
let db: Db;
let outbox: LevelOutbox;
let endpoints: EndpointStore;
const cleanups: Array<() => Promise<void>> = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ethhook-fairness-'));
  db = await openDb(dir);
  outbox = await LevelOutbox.open(new LevelKv(db));
  endpoints = new EndpointStore(new LevelKv(db), randomBytes(32));
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await db.close();
  await rm(dir, { recursive: true, force: true });
});

async function receiver(behaviour?: Behaviour): Promise<Receiver> {
  const r = await startReceiver(behaviour ? { behaviour } : {});
  cleanups.push(() => r.close());
  return r;
}

/** The loop with an HTTP client sized as the Deliverer sizes it; stopping aborts what still hangs. */
function startLoop(options: DeliveryLoopOptions, headersTimeoutMs: number) {
  const client = new WebhookHttpClient({
    policy: { allowPrivate: true },
    concurrency: requestSlots(options),
    headersTimeoutMs,
    requestTimeoutMs: headersTimeoutMs + 1_000,
  });
  const loop = new DeliveryLoop({ outbox, endpoints, client, logger }, { guards: NO_BREAKER, idlePollMs: 100, ...options });
  loop.start();
  cleanups.push(async () => {
    const stopped = loop.stop();
    await client.destroy();
    await stopped;
  });
  return loop;
}

let seq = 0;
function job(endpointId: string): NewJob {
  const n = seq++;
  return {
    id: `msg_fair_${n}`,
    endpointId,
    subscriptionId: 'sub_1',
    type: 'log.created',
    eventSeenAt: Date.now(),
    payload: {
      type: 'log.created',
      timestamp: new Date().toISOString(),
      data: {
        chainId: 31337,
        blockNumber: n,
        blockHash: `0x${'ab'.repeat(32)}`,
        transactionHash: `0x${'cd'.repeat(32)}`,
        logIndex: 0,
        address: `0x${'11'.repeat(20)}`,
        topics: [`0x${'22'.repeat(32)}`],
        data: '0x',
        subscriptionId: 'sub_1',
      },
    },
  };
}

const until = async (cond: () => boolean | Promise<boolean>, timeoutMs = 30_000, what = 'condition') => {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what} not met in time`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] as number;
}

describe('endpoints that never answer', () => {
  it('150 of them leave a healthy endpoint under steady traffic its speed (p99 under 1 s), and lose nothing', async () => {
    const hanging = await receiver(() => ({ hang: true }));
    const healthy = await receiver();
    const hangingIds: string[] = [];
    for (let i = 0; i < 150; i++) hangingIds.push((await endpoints.create({ url: `${hanging.url}/h${i}` })).endpoint.id);
    const { endpoint: good } = await endpoints.create({ url: `${healthy.url}/ok` });
    // The receivers' timeouts are shortened (3 s) so that the hanging jobs fail and are rescheduled
    // within the test; a request moves to the slow lane after 1 s all the same.
    const loop = startLoop({}, 3_000);

    const seenAt = new Map<string, number>();
    const hangingJobs: string[] = [];
    // Every hanging endpoint gets a job at once, then steady traffic for both kinds: every 50 ms one
    // webhook for the healthy endpoint and three for hanging ones, for 12 s.
    const first = hangingIds.map(job);
    const firstGood = job(good.id);
    await outbox.enqueueBatch([firstGood, ...first]);
    seenAt.set(firstGood.id, firstGood.eventSeenAt);
    hangingJobs.push(...first.map((j) => j.id));
    let slowLaneUsed = 0;
    for (let tick = 0; tick < 240; tick++) {
      await new Promise((r) => setTimeout(r, 50));
      const g = job(good.id);
      const h = [0, 1, 2].map((k) => job(hangingIds[(tick * 3 + k) % hangingIds.length] as string));
      await outbox.enqueueBatch([g, ...h]);
      seenAt.set(g.id, g.eventSeenAt);
      hangingJobs.push(...h.map((j) => j.id));
      slowLaneUsed = Math.max(slowLaneUsed, loop.status().slowLane);
      // Memory stays bounded whatever the backlog: a few ready jobs per endpoint, 8 × 64 in all.
      expect(loop.status().ready).toBeLessThanOrEqual(512);
    }
    await until(() => healthy.deliveredIds().size === seenAt.size, 30_000, 'every healthy webhook delivered');

    const latencies = healthy.requests
      .filter((q) => q.webhookId !== undefined)
      .map((q) => q.at - (seenAt.get(q.webhookId as string) as number));
    const slowest = latencies.map((ms, i) => [i, ms] as const).filter(([, ms]) => ms >= 500);
    expect(p99(latencies), `webhooks (index, ms) at 500 ms or more: ${JSON.stringify(slowest)}`).toBeLessThan(1_000);
    // One request at a time per endpoint at most 8 (it never needed more here).
    expect(healthy.maxInFlight).toBeLessThanOrEqual(8);
    // The hanging endpoints held the slow lane, never more requests than the client's limit.
    expect(slowLaneUsed).toBeGreaterThan(0);
    expect(hanging.maxInFlight).toBeLessThanOrEqual(requestSlots({}));
    expect(loop.status().openBreakers).toEqual([]);

    // Nothing lost: every hanging job is still in the outbox, some already failed and rescheduled.
    await until(async () => (await outbox.attempts.list(hangingIds[0] as string)).length > 0, 30_000, 'a hanging attempt recorded');
    // The receiver counts a healthy webhook when it arrives, the outbox lets its job go once the answer
    // is back: the last one's completion may still be on its way.
    await until(() => outbox.depth() <= hangingJobs.length, 30_000, 'the last healthy completion');
    expect(outbox.depth()).toBe(hangingJobs.length);
    expect(outbox.deadLetterCount()).toBe(0);
    const stored = await Promise.all(hangingJobs.map((id) => outbox.get(id)));
    expect(stored.every((j) => j !== undefined)).toBe(true);
    expect(stored.some((j) => j!.attempt >= 1)).toBe(true);
    const attempts = (await Promise.all(hangingIds.slice(0, 10).map((id) => outbox.attempts.list(id)))).flat();
    // Each a timeout: the headers timeout, or the total deadline when a loaded machine let both pass.
    const errors = new Set(attempts.map((a) => `${a.status ?? ''} ${(a.error ?? '').replace(/\d+ ms/, 'N ms').slice(0, 40)}`));
    expect(
      [...errors].every((e) => /^ (UND_ERR_HEADERS_TIMEOUT|no complete response within N ms)/.test(e)),
      [...errors].join('; '),
    ).toBe(true);
  }, 90_000);

  it('a hanging endpoint with a backlog of thousands keeps it in the outbox; a healthy job behind it is found at once', async () => {
    const hanging = await receiver(() => ({ hang: true }));
    const healthy = await receiver();
    const { endpoint: stuck } = await endpoints.create({ url: `${hanging.url}/stuck` });
    const { endpoint: good } = await endpoints.create({ url: `${healthy.url}/ok` });
    const backlog = Array.from({ length: 5_000 }, () => job(stuck.id));
    for (let i = 0; i < backlog.length; i += 1_000) await outbox.enqueueBatch(backlog.slice(i, i + 1_000));
    const loop = startLoop({}, 10_000);
    // The stuck endpoint fills what it may (one request while new, then its per-endpoint share).
    await hanging.waitFor((r) => r.inFlight >= 1);
    expect(loop.status().ready).toBeLessThanOrEqual(8);

    const late = job(good.id);
    await outbox.enqueueBatch([late]);
    await healthy.waitFor((r) => r.deliveredIds().has(late.id), 5_000);
    expect(healthy.requests[0]!.at - late.eventSeenAt).toBeLessThan(1_000);
    expect(hanging.maxInFlight).toBeLessThanOrEqual(8);
    // Its completion is written in the next group commit, just after the answer.
    await until(() => outbox.depth() === backlog.length);
  }, 60_000);
});
