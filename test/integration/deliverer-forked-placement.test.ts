// The Deliverer in a real child process (forked placement) under the real kernel, with the store in
// this process behind the deliverer-store actor: it drains the outbox to a real receiver with verified
// signatures, is woken by enqueues, answers its messages through the proxy, its metrics reach this
// process's registry, and a kill -9 of its child is a crash the supervisor restarts from. Threaded too.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeliveryLoopStatus } from '../../src/actors/deliverer/delivery-loop.ts';
import { placedDelivererSpec } from '../../src/actors/deliverer/placed.ts';
import { createDelivererStore } from '../../src/actors/deliverer/store-port.ts';
import { createLogger } from '../../src/runtime/log.ts';
import type { ActorSystem } from '../../src/runtime/system.ts';
import type { SupervisionEvent } from '../../src/runtime/types.ts';
import { openDb, type Db } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { EndpointStore } from '../../src/store/endpoints.ts';
import { LevelOutbox } from '../../src/store/level/outbox/outbox.ts';
import { startSystem } from '../../src/supervision/index.ts';
import { findActor, root, waitFor } from '../support/kernel.ts';
import { startReceiver, type Receiver } from '../support/receiver.ts';
import { jobsFor } from '../support/jobs.ts';

let dir: string;
let db: Db;
let outbox: LevelOutbox;
let endpoints: EndpointStore;
let receiver: Receiver;
let registry: Registry;
let system: ActorSystem | null = null;
let secret = '';

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ethhook-deliverer-forked-'));
  db = await openDb(dir);
  outbox = await LevelOutbox.open(new LevelKv(db));
  endpoints = new EndpointStore(new LevelKv(db), randomBytes(32));
  receiver = await startReceiver({ secrets: () => [secret] });
  registry = new Registry();
});

afterEach(async () => {
  await system?.shutdown('test over', 10_000);
  system = null;
  await receiver.close();
  await db.close();
  await rm(dir, { recursive: true, force: true });
});

async function startPipeline(mode: 'forked' | 'threaded' = 'forked'): Promise<ActorSystem> {
  const spec = placedDelivererSpec({
    http: { policy: { allowPrivate: true } },
    loop: { concurrency: 8, idlePollMs: 60_000 },
    metricsIntervalMs: 100,
  });
  const pipeline = {
    kind: 'supervisor' as const,
    name: 'pipeline',
    strategy: 'rest-for-one' as const,
    children: [
      { kind: 'worker' as const, name: 'deliverer-store', behaviour: () => createDelivererStore({ outbox, endpoints, registry }) },
      { kind: 'worker' as const, name: 'deliverer', placement: { mode, ...spec } },
    ],
  };
  system = await startSystem(root([pipeline]), { logger: createLogger({ level: 'silent' }), registry });
  return system;
}

const metric = async (name: string, labels = '') => {
  const line = (await registry.metrics()).split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
};

describe('the Deliverer placed forked', () => {
  // Jobs already due at start and jobs enqueued later (the wake) are delivered, signed, from a child.
  it('delivers from a child process, woken by enqueues, with its metrics in this registry', async () => {
    const created = await endpoints.create({ url: `${receiver.url}/forked` });
    secret = created.secret;
    await outbox.enqueueBatch(jobsFor(created.endpoint.id, 30, 'early'));
    const sys = await startPipeline();
    const deliverer = findActor(sys.snapshot(), '/pipeline/deliverer')!;
    expect(deliverer).toMatchObject({ placement: 'forked', state: 'running' });
    expect(deliverer.pid).not.toBe(process.pid);
    expect(findActor(sys.snapshot(), '/pipeline/deliverer-store')).toMatchObject({ placement: 'local', pid: process.pid });

    await waitFor(() => receiver.deliveredIds().size === 30, 20_000, '30 early deliveries');
    // The loop polls once a minute here: enqueues must reach it through deliverer.wake well before that.
    await outbox.enqueueBatch(jobsFor(created.endpoint.id, 20, 'late'));
    await waitFor(() => receiver.deliveredIds().size === 50, 30_000, '20 late deliveries, woken');
    expect(receiver.requests.every((r) => r.verified === true)).toBe(true);
    await waitFor(() => outbox.depth() === 0, 5_000, 'an empty outbox');

    const ref = sys.lookup('/pipeline/deliverer')!;
    // The parent's outbox is empty once the last write lands; the child hears of it one IPC reply later.
    await waitFor(async () => (await ref.ask<DeliveryLoopStatus>({ type: 'deliverer.status' })).inFlight === 0, 5_000, 'nothing in flight');
    expect(await ref.ask<DeliveryLoopStatus>({ type: 'deliverer.status' })).toMatchObject({ running: true, inFlight: 0 });
    await waitFor(
      async () => (await metric('webhook_deliveries_total', '{status="success"}')) === 50,
      5_000,
      'deliveries counted in the parent',
    );
    expect(await metric('webhook_delivery_duration_seconds_count')).toBe(50);
    expect(await metric('webhook_event_to_delivery_seconds_count')).toBe(50);
    expect(await metric('webhook_queue_depth')).toBe(0);
  });

  // kill -9 of the child: a crash, the deliverer restarts in a new process and delivers what is left.
  it('restarts after kill -9 of its child and delivers every job', async () => {
    const created = await endpoints.create({ url: `${receiver.url}/crash` });
    secret = created.secret;
    receiver.setBehaviour(() => ({ status: 200, delayMs: 50 }));
    const sys = await startPipeline();
    const events: SupervisionEvent[] = [];
    sys.onEvent((e) => events.push(e));
    const before = findActor(sys.snapshot(), '/pipeline/deliverer')!.pid!;
    await outbox.enqueueBatch(jobsFor(created.endpoint.id, 100, 'k'));
    await waitFor(() => receiver.count >= 10, 10_000, 'deliveries under way');
    process.kill(before, 'SIGKILL');
    await waitFor(
      () => events.some((e) => e.type === 'restarting' && e.path === '/pipeline/deliverer' && e.reason === 'crash'),
      10_000,
      'a crash restart',
    );
    await waitFor(
      () => {
        const d = findActor(sys.snapshot(), '/pipeline/deliverer');
        return d?.state === 'running' && d.pid !== null && d.pid !== before;
      },
      20_000,
      'a new child',
    );
    await waitFor(() => receiver.deliveredIds().size === 100 && outbox.depth() === 0, 20_000, 'every job delivered');
    expect(receiver.requests.every((r) => r.verified === true)).toBe(true);
    expect(findActor(sys.snapshot(), '/pipeline/deliverer-store')).toMatchObject({ incarnation: 1, panics: 0 });
  });

  // The same ports serve a worker thread: LevelDB's lock holds within one process too.
  it('delivers from a worker thread as well', async () => {
    const created = await endpoints.create({ url: `${receiver.url}/threaded` });
    secret = created.secret;
    const sys = await startPipeline('threaded');
    expect(findActor(sys.snapshot(), '/pipeline/deliverer')).toMatchObject({ placement: 'threaded', state: 'running', pid: process.pid });
    await outbox.enqueueBatch(jobsFor(created.endpoint.id, 20, 't'));
    await waitFor(() => receiver.deliveredIds().size === 20 && outbox.depth() === 0, 20_000, '20 deliveries from a thread');
    expect(receiver.requests.every((r) => r.verified === true)).toBe(true);
    await waitFor(async () => (await metric('webhook_deliveries_total', '{status="success"}')) === 20, 5_000, 'deliveries counted');
  });
});
