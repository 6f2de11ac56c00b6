// The deliverer-store actor (what a forked Deliverer reaches the store through) on a real LevelDB dir,
// under the real kernel, driven by the remote ports the child uses: every message, wake-ups on
// enqueue, grouped writes, errors as replies (never a panic), metrics, and no secret in the logs.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RemoteEndpoints, RemoteOutbox, StoreClient } from '../../src/actors/deliverer/remote-ports.ts';
import { createDelivererStore } from '../../src/actors/deliverer/store-port.ts';
import { ACTOR_PATHS } from '../../src/tree.ts';
import type { ActorSystem } from '../../src/runtime/system.ts';
import type { ActorRef, ChildSpec } from '../../src/runtime/types.ts';
import type { AttemptRecord } from '../../src/store/attempts.ts';
import { openDb, type Db } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { EndpointStore } from '../../src/store/endpoints.ts';
import { LevelOutbox } from '../../src/store/level/outbox/outbox.ts';
import { start, waitFor } from '../support/kernel.ts';
import { jobsFor } from '../support/jobs.ts';

let dir: string;
let db: Db;
let outbox: LevelOutbox;
let endpoints: EndpointStore;
let registry: Registry;
let system: ActorSystem;
let lines: Record<string, unknown>[];
let store: ActorRef;
/** Every message the remote ports sent to the store actor. */
let sent: Array<{ type: string; ops?: unknown[] }>;
let wakes: number;

const record = (jobId: string, endpointId: string, status?: number): AttemptRecord => ({
  jobId,
  endpointId,
  at: Date.now(),
  attempt: 1,
  durationMs: 12,
  ...(status !== undefined ? { status } : { error: 'connect ECONNREFUSED' }),
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ethhook-deliverer-store-'));
  db = await openDb(dir);
  outbox = await LevelOutbox.open(new LevelKv(db));
  endpoints = new EndpointStore(new LevelKv(db), randomBytes(32));
  registry = new Registry();
  sent = [];
  wakes = 0;
  const pipeline: ChildSpec = {
    kind: 'supervisor',
    name: 'pipeline',
    strategy: 'rest-for-one',
    children: [
      { kind: 'worker', name: 'deliverer-store', behaviour: () => createDelivererStore({ outbox, endpoints, registry }) },
      // Stands in for the Deliverer: counts the wake-ups the store actor sends it.
      {
        kind: 'worker',
        name: 'deliverer',
        behaviour: () => ({
          receive: (m: { type: string }) => {
            if (m.type === 'deliverer.wake') wakes++;
            return { ok: true };
          },
        }),
      },
    ],
  };
  ({ system, lines } = await start([pipeline], {}, { registry }));
  const ref = system.lookup(ACTOR_PATHS.delivererStore)!;
  store = {
    ...ref,
    ask: (msg, options) => {
      sent.push(msg as { type: string });
      return ref.ask(msg, options);
    },
  };
});

afterEach(async () => {
  await system.shutdown('test');
  await db.close();
  await rm(dir, { recursive: true, force: true });
});

const storeSnapshot = () => system.snapshot().children?.[0]?.children?.[0];

describe('deliverer-store: the outbox as messages', () => {
  // due / next-due: the jobs as the outbox has them, `exclude` honoured, JSON-safe replies.
  it('answers due scans and the next due time', async () => {
    const remote = new RemoteOutbox(new StoreClient(store));
    expect(await remote.nextDueAt()).toBeUndefined();
    await outbox.enqueueBatch(jobsFor('ep_a', 5, 'due', Date.now() - 1_000));
    const now = Date.now();
    const all = await remote.due(now, 10);
    expect(all.map((j) => j.id)).toEqual(await outbox.due(now, 10).then((js) => js.map((j) => j.id)));
    expect(all[0]).toEqual(await outbox.get(all[0]!.id));
    const rest = await remote.due(now, 10, { exclude: new Set(['msg_due_0', 'msg_due_1']) });
    expect(rest.map((j) => j.id).sort()).toEqual(['msg_due_2', 'msg_due_3', 'msg_due_4']);
    expect(await remote.nextDueAt()).toBeLessThanOrEqual(now);
    expect(sent.map((m) => m.type)).toEqual(['store.next-due', 'store.due', 'store.due', 'store.next-due']);
  });

  // complete / reschedule / postpone / dead-letter land as the Outbox's own calls would.
  it('applies each write with its attempt record, and says when a job was already gone', async () => {
    const remote = new RemoteOutbox(new StoreClient(store));
    await outbox.enqueueBatch(jobsFor('ep_a', 4, 'w', Date.now() - 1_000));
    const [a, b, c, d] = await remote.due(Date.now(), 10);
    expect(await remote.complete(a!, record(a!.id, 'ep_a', 200))).toBe(true);
    expect(await remote.complete(a!, record(a!.id, 'ep_a', 200))).toBe(false);
    const later = Date.now() + 60_000;
    expect(await remote.reschedule(b!, later, record(b!.id, 'ep_a', 503))).toMatchObject({ id: b!.id, attempt: 1, nextAttemptAt: later });
    expect(await remote.postpone(c!.id, later)).toMatchObject({ id: c!.id, attempt: 0, nextAttemptAt: later });
    expect(await remote.deadLetter(d!, 'HTTP 400', record(d!.id, 'ep_a', 400))).toBe(true);
    expect(await remote.reschedule('msg_none', later)).toBeUndefined();
    expect(outbox.depth()).toBe(2);
    expect(outbox.deadLetterCount()).toBe(1);
    expect((await outbox.getDeadLetter(d!.id))?.reason).toBe('HTTP 400');
    const attempts = await outbox.attempts.list('ep_a');
    expect(attempts.map((r) => r.status).sort()).toEqual([200, 400, 503]);
  });

  // Writes made together travel together: one store.write carries a burst, so they share a group commit.
  it('groups the writes of a burst into few messages', async () => {
    const remote = new RemoteOutbox(new StoreClient(store));
    await outbox.enqueueBatch(jobsFor('ep_a', 200, 'g', Date.now() - 1_000));
    const jobs = await remote.due(Date.now(), 200);
    sent = [];
    const done = await Promise.all(jobs.map((j) => remote.complete(j, record(j.id, 'ep_a', 200))));
    expect(done.every(Boolean)).toBe(true);
    expect(outbox.depth()).toBe(0);
    const writes = sent.filter((m) => m.type === 'store.write');
    expect(writes.length).toBeLessThanOrEqual(2);
    expect(writes.reduce((n, m) => n + (m.ops?.length ?? 0), 0)).toBe(200);
  });

  // Enqueues wake the Deliverer, coalesced: never more than one wake in flight.
  it('wakes the deliverer on enqueue', async () => {
    await outbox.enqueueBatch(jobsFor('ep_a', 1, 'wake1', Date.now() - 1_000));
    await waitFor(() => wakes === 1, 5_000, 'a wake');
    await Promise.all(Array.from({ length: 20 }, (_, i) => outbox.enqueueBatch(jobsFor('ep_a', 1, `burst${i}`, Date.now() - 1_000))));
    await waitFor(() => wakes >= 2, 5_000, 'wakes after the burst');
    await new Promise((r) => setTimeout(r, 50));
    expect(wakes).toBeLessThan(22);
  });
});

describe('deliverer-store: endpoints as messages', () => {
  // The record (sealed secrets) plus the plaintext secrets that sign now; none for a disabled endpoint.
  it('serves the endpoint with its active secrets, and disables', async () => {
    const remote = new RemoteEndpoints(new StoreClient(store));
    const { endpoint, secret } = await endpoints.create({ url: 'http://127.0.0.1:9/x' });
    const got = await remote.get(endpoint.id);
    expect(got).toEqual(endpoint);
    expect(remote.activeSecrets(got!)).toEqual([secret]);
    const rotated = await endpoints.rotateSecret(endpoint.id);
    const again = await remote.get(endpoint.id);
    expect(remote.activeSecrets(again!)).toEqual([rotated.secret, secret]);
    expect(await remote.get('ep_missing')).toBeUndefined();

    // The failure streak is stored through the store actor, and cleared by null.
    expect((await remote.setFailing(endpoint.id, { since: 1000, failures: 3 })).failing).toEqual({ since: 1000, failures: 3 });
    expect((await endpoints.get(endpoint.id))?.failing).toEqual({ since: 1000, failures: 3 });
    expect((await remote.setFailing(endpoint.id, null)).failing).toBeNull();

    const disabled = await remote.disable(endpoint.id, 'HTTP 410 Gone', 1234);
    expect(disabled.disabled).toEqual({ reason: 'HTTP 410 Gone', at: 1234 });
    const off = await remote.get(endpoint.id);
    expect(off?.disabled?.reason).toBe('HTTP 410 Gone');
    expect(remote.activeSecrets(off!)).toEqual([]);
    // Secrets cross to the child; they are never written to a log.
    expect(JSON.stringify(lines)).not.toContain(secret.slice(6));
    expect(JSON.stringify(lines)).not.toContain(rotated.secret.slice(6));
  });
});

describe('deliverer-store: bad input and failures', () => {
  // A malformed message, or a failing store call, is an error reply: the actor does not panic.
  it('answers errors instead of panicking', async () => {
    const ask = (msg: unknown) => system.lookup(ACTOR_PATHS.delivererStore)!.ask(msg);
    expect(await ask({ type: 'store.nope' })).toMatchObject({ ok: false, error: { code: 'ETHHOOK_ERR_INVALID_INPUT' } });
    expect(await ask({ type: 'store.due', now: 1, limit: 0, exclude: [] })).toMatchObject({
      ok: false,
      error: { message: expect.stringContaining('limit') },
    });
    expect(await ask({ type: 'store.write', ops: [{ op: 'postpone', job: 'msg_1', at: Number.POSITIVE_INFINITY }] })).toMatchObject({
      ok: false,
    });
    expect(await ask({ type: 'store.write', ops: [{ op: 'complete', job: { id: 'half a job' } }] })).toMatchObject({ ok: false });
    expect(await ask({ type: 'store.endpoint', id: 'not-an-id' })).toMatchObject({ ok: false });
    expect(lines.filter((l) => l.code === 'ETHHOOK_ERR_INVALID_INPUT').length).toBeGreaterThanOrEqual(5);

    const remote = new RemoteEndpoints(new StoreClient(store));
    await expect(remote.disable('ep_missing', 'gone')).rejects.toMatchObject({ code: 'ETHHOOK_ERR_ENDPOINT_NOT_FOUND' });
    expect(storeSnapshot()).toMatchObject({ name: 'deliverer-store', panics: 0, incarnation: 1, state: 'running' });
  });
});

describe('deliverer-store: metrics', () => {
  // Queue gauges from the outbox; durations from the attempt records; the child's counts added.
  it('reports what the forked deliverer did in this registry', async () => {
    const remote = new RemoteOutbox(new StoreClient(store));
    await outbox.enqueueBatch(jobsFor('ep_a', 3, 'm', Date.now() - 1_000));
    expect(await registry.getSingleMetricAsString('webhook_queue_depth')).toMatch(/webhook_queue_depth 3$/m);

    const [a, b] = await remote.due(Date.now(), 2);
    await remote.complete(a!, record(a!.id, 'ep_a', 200));
    await remote.reschedule(b!, Date.now() + 1000, record(b!.id, 'ep_a'));
    let text = await registry.getSingleMetricAsString('webhook_delivery_duration_seconds');
    expect(text).toMatch(/webhook_delivery_duration_seconds_count 2$/m);
    text = await registry.getSingleMetricAsString('webhook_event_to_delivery_seconds');
    expect(text).toMatch(/webhook_event_to_delivery_seconds_count 1$/m);

    const report = (deliveries: Record<string, number>, breakerOpens: number, breakers: Array<{ endpoint: string; state: number }>) =>
      system.lookup(ACTOR_PATHS.delivererStore)!.ask({ type: 'store.metrics', deliveries, breakerOpens, breakers });
    await report({ success: 1, network_error: 1 }, 1, [{ endpoint: 'ep_a', state: 2 }]);
    await report({ success: 2 }, 0, [{ endpoint: 'ep_b', state: 1 }]);
    text = await registry.getSingleMetricAsString('webhook_deliveries_total');
    expect(text).toContain('webhook_deliveries_total{status="success"} 3');
    expect(text).toContain('webhook_deliveries_total{status="network_error"} 1');
    expect(await registry.getSingleMetricAsString('circuit_breaker_opens_total')).toMatch(/circuit_breaker_opens_total 1$/m);
    text = await registry.getSingleMetricAsString('circuit_breaker_state');
    expect(text).toContain('circuit_breaker_state{endpoint="ep_b"} 1');
    expect(text).not.toContain('ep_a');
    expect(await report({ bogus: 1 }, 0, [])).toMatchObject({ ok: false });
  });
});
