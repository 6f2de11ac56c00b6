// The delivery loop end to end: a real LevelDB outbox and endpoint store, the real HTTP client, real
// receivers on 127.0.0.1. Retry schedules are shortened to milliseconds; everything else is as in production.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeliveryLoop, type DeliveryLoopOptions } from '../../src/actors/deliverer/delivery-loop.ts';
import { WebhookHttpClient } from '../../src/actors/deliverer/http-client.ts';
import { delivererMetrics } from '../../src/actors/deliverer/metrics.ts';
import type { TargetPolicy } from '../../src/target-policy/ssrf.ts';
import { EthhookError } from '../../src/runtime/errors.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { openDb, type Db } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { EndpointStore } from '../../src/store/endpoints.ts';
import { type NewJob } from '../../src/store/outbox/job.ts';
import { LevelOutbox } from '../../src/store/level/outbox/outbox.ts';
import { failRatio, ok, sequence, startReceiver, status, type Receiver, type Reply } from '../support/receiver.ts';

const FAST_RETRY = { scheduleMs: [0, 20, 40, 80, 160, 320, 640, 1_280], jitter: 0.2, maxRetryAfterMs: 1_000 };
const logger = createLogger({ level: 'silent' });

let dir: string;
let db: Db;
let outbox: LevelOutbox;
let endpoints: EndpointStore;
let registry: Registry;
const cleanups: Array<() => Promise<void>> = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ethhook-deliverer-'));
  db = await openDb(dir);
  outbox = await LevelOutbox.open(new LevelKv(db));
  endpoints = new EndpointStore(new LevelKv(db), randomBytes(32));
  registry = new Registry();
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await db.close();
  await rm(dir, { recursive: true, force: true });
});

async function receiver(behaviour = ok): Promise<Receiver> {
  const r = await startReceiver({ behaviour });
  cleanups.push(() => r.close());
  return r;
}

function startLoop(
  options: DeliveryLoopOptions = {},
  policy: TargetPolicy = { allowPrivate: true },
  http: { headersTimeoutMs?: number } = {},
  onFatal?: (err: unknown) => void,
) {
  const client = new WebhookHttpClient({ policy, concurrency: 16, headersTimeoutMs: http.headersTimeoutMs ?? 2_000 });
  const loop = new DeliveryLoop(
    { outbox, endpoints, client, logger, metrics: delivererMetrics(registry), onFatal },
    { concurrency: 16, retry: FAST_RETRY, idlePollMs: 20, ...options },
  );
  loop.start();
  cleanups.push(async () => {
    await loop.stop();
    await client.close();
  });
  return loop;
}

async function endpointFor(r: Receiver, path: string, extra: { rateLimitPerSec?: number } = {}) {
  return endpoints.create({ url: `${r.url}${path}`, ...extra });
}

function jobs(endpointId: string, count: number, tag: string): NewJob[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `msg_${tag}_${i}`,
    endpointId,
    subscriptionId: 'sub_1',
    type: 'log.created' as const,
    eventSeenAt: Date.now(),
    payload: {
      type: 'log.created' as const,
      timestamp: new Date().toISOString(),
      data: {
        chainId: 31337,
        blockNumber: i,
        blockHash: `0x${'ab'.repeat(32)}`,
        transactionHash: `0x${'cd'.repeat(32)}`,
        logIndex: i,
        address: `0x${'11'.repeat(20)}`,
        topics: [`0x${'22'.repeat(32)}`],
        data: '0x',
        subscriptionId: 'sub_1',
      },
    },
  }));
}

const until = async (cond: () => boolean | Promise<boolean>, timeoutMs = 20_000) => {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('an unreachable store', () => {
  /** A loop whose `onFatal` reports are kept in the array returned. */
  function startLoopReportingFatal(): unknown[] {
    const fatal: unknown[] = [];
    startLoop({ concurrency: 4, errorHoldMs: 30 }, undefined, undefined, (err) => fatal.push(err));
    return fatal;
  }

  it('an outbox read failing with ETHHOOK_ERR_STORE_UNAVAILABLE is scanned again later: the loop lives on and delivers once the store answers', async () => {
    const r = await receiver();
    const { endpoint: ep } = await endpointFor(r, '/store-down');
    await outbox.enqueueBatch(jobs(ep.id, 5, 'down'));
    let failing = 3;
    let failed = 0;
    const realDue = outbox.due.bind(outbox);
    outbox.due = (...args) => {
      if (failing > 0) {
        failing--;
        failed++;
        return Promise.reject(new EthhookError('ETHHOOK_ERR_STORE_UNAVAILABLE', 'the store operation outbox.due kept failing', {}));
      }
      return realDue(...args);
    };
    const fatal = startLoopReportingFatal();
    await until(() => r.requests.length >= 5);
    expect(failed).toBe(3);
    expect(fatal).toEqual([]);
    expect(new Set(r.requests.map((q) => q.headers['webhook-id']))).toEqual(new Set(jobs(ep.id, 5, 'down').map((j) => j.id)));
    await until(() => outbox.depth() === 0);
  });

  it('any other failing outbox read still stops the loop and reports it (the supervisor restarts the actor)', async () => {
    outbox.due = () => Promise.reject(new Error('corrupt record'));
    const fatal = startLoopReportingFatal();
    await until(() => fatal.length === 1);
    expect((fatal[0] as Error).message).toBe('corrupt record');
  });
});

describe('pipeline stages', () => {
  it("a backfill's webhooks count in webhook_event_to_delivery_seconds but in no pipeline stage: no head was seen for them", async () => {
    const r = await receiver();
    const ep = await endpointFor(r, '/stages');
    r.setSecrets(() => [ep.secret]);
    startLoop({}, { allowPrivate: true });
    const live = jobs(ep.endpoint.id, 7, 'live');
    const backfilled = jobs(ep.endpoint.id, 12, 'history').map((j) => ({ ...j, backfill: true as const }));
    await outbox.enqueueBatch([...live, ...backfilled]);
    await until(() => outbox.depth() === 0);
    expect(r.deliveredIds()).toEqual(new Set([...live, ...backfilled].map((j) => j.id)));
    const text = await registry.metrics();
    expect(text).toMatch(/webhook_event_to_delivery_seconds_count 19/);
    expect(text).toMatch(/pipeline_stage_seconds_count\{stage="sent"\} 7/);
    expect(text).toMatch(/pipeline_stage_seconds_count\{stage="answered"\} 7/);
  });
});

describe('at least once, through failures', () => {
  it('a receiver failing 30% of requests (500s and timeouts) still gets every job, retries keep the webhook-id', async () => {
    const failures: Reply[] = [{ status: 500 }, { status: 503 }, { hang: true }];
    const r = await receiver(failRatio(0.3, 42, failures));
    const a = await endpointFor(r, '/a');
    const b = await endpointFor(r, '/b');
    r.setSecrets((path) => (path === '/a' ? [a.secret] : [b.secret]));
    startLoop({ guards: { circuitBreaker: { cooldownMs: 50, maxCooldownMs: 200 } } }, { allowPrivate: true }, { headersTimeoutMs: 300 });
    const all = [...jobs(a.endpoint.id, 150, 'a'), ...jobs(b.endpoint.id, 150, 'b')];
    await outbox.enqueueBatch(all);

    await until(() => outbox.depth() === 0, 45_000);
    expect(r.deliveredIds()).toEqual(new Set(all.map((j) => j.id)));
    expect(outbox.deadLetterCount()).toBe(0);
    expect(r.requests.every((q) => q.verified === true)).toBe(true);
    const failed = r.requests.filter((q) => !('status' in q.reply) || q.reply.status >= 300);
    expect(failed.length).toBeGreaterThan(50);
    // Every failed request's id came back and succeeded later, under the same webhook-id.
    for (const f of failed) {
      expect(r.requests.some((q) => q.webhookId === f.webhookId && q.seq > f.seq && 'status' in q.reply && q.reply.status === 200)).toBe(
        true,
      );
    }
    const attempts = await outbox.attempts.list(a.endpoint.id, { limit: 1_000 });
    expect(attempts.filter((x) => x.status === 200)).toHaveLength(150);
    expect(attempts.some((x) => x.error?.startsWith('UND_ERR_HEADERS_TIMEOUT'))).toBe(true);
    const text = await registry.metrics();
    expect(text).toMatch(/webhook_deliveries_total\{status="success"\} 300/);
    expect(text).toMatch(/webhook_event_to_delivery_seconds_count 300/);
  });

  it('the payload is the job payload, signed with every active secret during a rotation', async () => {
    const r = await receiver();
    const { endpoint, secret: oldSecret } = await endpointFor(r, '/rot');
    const { secret: newSecret } = await endpoints.rotateSecret(endpoint.id, 60_000);
    const [job] = jobs(endpoint.id, 1, 'rot');
    startLoop();
    await outbox.enqueueBatch([job!]);
    await until(() => r.requests.length === 1);
    const got = r.requests[0]!;
    expect(got.json).toEqual(job!.payload);
    expect(got.headers['webhook-signature']!.toString().split(' ')).toHaveLength(2);
    const headers = Object.fromEntries(Object.entries(got.headers).filter((e): e is [string, string] => typeof e[1] === 'string'));
    for (const secret of [oldSecret, newSecret]) expect(() => new Webhook(secret).verify(got.body, headers)).not.toThrow();
  });
});

describe('failing fast and disabling', () => {
  it('a 4xx dead-letters at once with the attempt recorded', async () => {
    const r = await receiver(status(422));
    const { endpoint } = await endpointFor(r, '/bad');
    startLoop();
    await outbox.enqueueBatch(jobs(endpoint.id, 1, 'bad'));
    await until(() => outbox.deadLetterCount() === 1);
    const [letter] = await outbox.listDeadLetters();
    expect(letter).toMatchObject({ reason: 'HTTP 422', job: { attempt: 1 } });
    expect(r.requests).toHaveLength(1);
    expect(await outbox.attempts.list(endpoint.id)).toMatchObject([{ status: 422, attempt: 1, error: 'HTTP 422' }]);
  });

  it('410 disables the endpoint; its other jobs are dead-lettered without being sent', async () => {
    const r = await receiver(status(410));
    const { endpoint } = await endpointFor(r, '/gone');
    startLoop({ concurrency: 1 });
    await outbox.enqueueBatch(jobs(endpoint.id, 5, 'gone'));
    await until(() => outbox.deadLetterCount() === 5);
    expect(r.requests).toHaveLength(1);
    expect((await endpoints.get(endpoint.id))!.disabled).toMatchObject({ reason: 'HTTP 410 Gone' });
    const reasons = (await outbox.listDeadLetters()).map((d) => d.reason).sort();
    expect(reasons).toEqual(['HTTP 410 Gone', ...Array(4).fill('endpoint disabled: HTTP 410 Gone')]);
  });

  // The streak is stored with the endpoint (when it starts and at minFailures): a restarted loop, its
  // guards empty, resumes it and disables the endpoint counting from the first loop's first failure.
  it('a failure streak survives a restart of the loop', async () => {
    const r = await receiver(status(503));
    const { endpoint } = await endpointFor(r, '/streak');
    const options = {
      retry: { ...FAST_RETRY, scheduleMs: Array(100).fill(20) },
      guards: { circuitBreaker: { failureThreshold: 1_000, minimumNumberOfCalls: 1_000 }, disable: { afterMs: 800, minFailures: 3 } },
    };
    const first = startLoop(options);
    await outbox.enqueueBatch(jobs(endpoint.id, 1, 'streak'));
    await until(async () => (await endpoints.get(endpoint.id))!.failing?.failures === 3);
    const { since } = (await endpoints.get(endpoint.id))!.failing!;
    await first.stop();
    expect((await endpoints.get(endpoint.id))!.disabled).toBeNull();
    startLoop(options);
    await until(async () => (await endpoints.get(endpoint.id))!.disabled !== null);
    expect((await endpoints.get(endpoint.id))!.disabled!.reason).toContain(`failing since ${new Date(since).toISOString()}`);
    // Enabled again by an operator: the streak starts over.
    expect((await endpoints.enable(endpoint.id)).failing).toBeNull();
  });

  it('retries exhausted: dead letter after the last attempt of the schedule', async () => {
    const r = await receiver(status(503));
    const { endpoint } = await endpointFor(r, '/down');
    startLoop({
      retry: { ...FAST_RETRY, scheduleMs: [0, 10, 10, 10] },
      guards: { circuitBreaker: { failureThreshold: 100, minimumNumberOfCalls: 100 } },
    });
    await outbox.enqueueBatch(jobs(endpoint.id, 1, 'down'));
    await until(() => outbox.deadLetterCount() === 1);
    expect(r.requests.map((q) => q.webhookId)).toEqual(Array(4).fill('msg_down_0'));
    const [letter] = await outbox.listDeadLetters();
    expect(letter!.reason).toBe('exhausted after 4 attempts; last: HTTP 503');
  });

  it('Retry-After is honoured', async () => {
    const r = await receiver(sequence([{ status: 429, headers: { 'retry-after': '1' } }]));
    const { endpoint } = await endpointFor(r, '/slow');
    startLoop();
    await outbox.enqueueBatch(jobs(endpoint.id, 1, 'slow'));
    await until(() => outbox.depth() === 0);
    const [first, second] = r.requests;
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(950);
  });

  it('an SSRF-refused target is dead-lettered and never contacted', async () => {
    const r = await receiver();
    const { endpoint } = await endpointFor(r, '/private');
    startLoop({}, { allowPrivate: false });
    await outbox.enqueueBatch(jobs(endpoint.id, 1, 'private'));
    await until(() => outbox.deadLetterCount() === 1);
    expect(r.requests).toHaveLength(0);
    expect((await outbox.listDeadLetters())[0]!.reason).toBe('target refused: 127.0.0.1 is loopback (127.0.0.0/8)');
  });
});

describe('guards', () => {
  it('the circuit opens after consecutive failures, probes, and closes when the endpoint recovers', async () => {
    const r = await receiver(sequence(Array(5).fill({ status: 503 })));
    const { endpoint } = await endpointFor(r, '/flaky');
    const loop = startLoop({ concurrency: 1, guards: { circuitBreaker: { failureThreshold: 5, cooldownMs: 300 } } });
    await outbox.enqueueBatch(jobs(endpoint.id, 10, 'flaky'));
    await until(() => loop.status().openBreakers.includes(endpoint.id));
    expect(await registry.metrics()).toContain(`circuit_breaker_state{endpoint="${endpoint.id}"} 2`);
    await until(() => outbox.depth() === 0);
    expect(loop.status().openBreakers).toEqual([]);
    const text = await registry.metrics();
    expect(text).toContain('circuit_breaker_opens_total 1');
    expect(text).toContain(`circuit_breaker_state{endpoint="${endpoint.id}"} 0`);
    // While open nothing was sent: the sixth request came after the cool-down.
    expect(r.requests[5]!.at - r.requests[4]!.at).toBeGreaterThanOrEqual(250);
    expect(r.deliveredIds().size).toBe(10);
  });

  it('jobs held behind a failed probe wait for the new cool-down, not for the probe timeout', async () => {
    const failUntil = Date.now() + 400;
    const r = await receiver(() => ({ status: Date.now() < failUntil ? 503 : 200 }));
    const { endpoint } = await endpointFor(r, '/probe');
    startLoop({
      concurrency: 4,
      guards: { circuitBreaker: { failureThreshold: 1, cooldownMs: 50, maxCooldownMs: 100, probeTimeoutMs: 60_000 } },
    });
    await outbox.enqueueBatch(jobs(endpoint.id, 12, 'probe'));
    await until(() => outbox.depth() === 0, 10_000);
    expect(r.deliveredIds().size).toBe(12);
  });

  it('the rate limit holds: never more than rate·t + burst requests', async () => {
    const r = await receiver();
    const rate = 20;
    const { endpoint } = await endpointFor(r, '/limited', { rateLimitPerSec: rate });
    startLoop();
    await outbox.enqueueBatch(jobs(endpoint.id, 60, 'limited'));
    const started = Date.now();
    await until(() => outbox.depth() === 0);
    const times = r.requests.map((q) => q.at);
    expect(times).toHaveLength(60);
    for (let i = 0; i < times.length; i++) {
      for (let j = i; j < times.length; j++) {
        // Arrival times carry the delivery's jitter on top of the bucket's own timing (a request held up
        // 100 ms on a loaded machine lets the next ones crowd in behind it): allow rate x 100 ms more.
        // A limiter that let the 60 through in a burst would still be far past this.
        expect(j - i + 1).toBeLessThanOrEqual(Math.floor((rate * (times[j]! - times[i]!)) / 1000 + rate) + Math.ceil(rate * 0.1));
      }
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
    expect(r.requests.every((q) => 'status' in q.reply && q.reply.status === 200)).toBe(true);
  });

  it('a paused endpoint gets nothing until resumed', async () => {
    const r = await receiver();
    const { endpoint } = await endpointFor(r, '/paused');
    await endpoints.setPaused(endpoint.id, true);
    const loop = startLoop({ pausedRecheckMs: 50 });
    await outbox.enqueueBatch(jobs(endpoint.id, 3, 'paused'));
    await new Promise((res) => setTimeout(res, 300));
    expect(r.requests).toHaveLength(0);
    expect(loop.status().held).toBe(3);
    await endpoints.setPaused(endpoint.id, false);
    loop.invalidateEndpoint(endpoint.id);
    await until(() => outbox.depth() === 0);
    expect(r.deliveredIds().size).toBe(3);
  });
});

describe('more jobs than can be held', () => {
  it('are postponed in the outbox without counting an attempt, and all go once the endpoint can take them', async () => {
    const r = await receiver();
    const { endpoint } = await endpointFor(r, '/full');
    await endpoints.setPaused(endpoint.id, true);
    const loop = startLoop({ maxHeld: 2, pausedRecheckMs: 50, postponeMs: 100 });
    const all = jobs(endpoint.id, 6, 'full');
    await outbox.enqueueBatch(all);
    // Several rounds of holding and postponing (an attempt counted per round would near the end of the schedule).
    await new Promise((res) => setTimeout(res, 600));
    expect(r.requests).toHaveLength(0);
    expect(loop.status().held).toBeLessThanOrEqual(2);
    const stored = await Promise.all(all.map((j) => outbox.get(j.id)));
    expect(stored.map((j) => j?.attempt)).toEqual(all.map(() => 0));
    expect(stored.filter((j) => j!.nextAttemptAt > j!.createdAt)).not.toHaveLength(0);
    expect(await outbox.attempts.list(endpoint.id)).toEqual([]);
    await endpoints.setPaused(endpoint.id, false);
    loop.invalidateEndpoint(endpoint.id);
    await until(() => outbox.depth() === 0);
    expect(r.deliveredIds()).toEqual(new Set(all.map((j) => j.id)));
    expect(outbox.deadLetterCount()).toBe(0);
  });
});

describe('restart', () => {
  it('jobs in flight when the loop stops are delivered after a restart, under the same ids', async () => {
    const r = await receiver(() => ({ status: 200, delayMs: 100 }));
    const { endpoint } = await endpointFor(r, '/restart');
    const all = jobs(endpoint.id, 40, 'restart');
    const first = startLoop({ concurrency: 4 });
    await outbox.enqueueBatch(all);
    await until(() => r.count >= 4);
    await first.stop();
    startLoop({ concurrency: 8 });
    await until(() => outbox.depth() === 0);
    expect(r.deliveredIds()).toEqual(new Set(all.map((j) => j.id)));
  });
});
