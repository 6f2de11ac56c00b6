// The Deliverer as an actor under the real kernel: it drains the outbox from preStart, answers its
// messages, rejects bad ones, survives a restart, fails to its supervisor when the outbox cannot be read.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDeliverer, type DelivererDeps } from '../../src/actors/deliverer/deliverer.ts';
import type { DeliveryLoopStatus } from '../../src/actors/deliverer/delivery-loop.ts';
import { openDb, type Db } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { EndpointStore } from '../../src/store/endpoints.ts';
import { LevelOutbox } from '../../src/store/level/outbox/outbox.ts';
import { start, waitFor } from '../support/kernel.ts';
import { startReceiver, type Receiver } from '../support/receiver.ts';
import { jobsFor } from '../support/jobs.ts';

let dir: string;
let db: Db;
let outbox: LevelOutbox;
let endpoints: EndpointStore;
let receiver: Receiver;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ethhook-deliverer-actor-'));
  db = await openDb(dir);
  outbox = await LevelOutbox.open(new LevelKv(db));
  endpoints = new EndpointStore(new LevelKv(db), randomBytes(32));
  receiver = await startReceiver();
});

afterEach(async () => {
  await receiver.close();
  await db.close();
  await rm(dir, { recursive: true, force: true });
});

async function startDeliverer(deps: Partial<DelivererDeps> = {}) {
  const registry = new Registry();
  const full: DelivererDeps = {
    outbox,
    endpoints,
    registry,
    http: { policy: { allowPrivate: true } },
    loop: { concurrency: 8, idlePollMs: 20 },
    ...deps,
  };
  const { system, lines } = await start([{ kind: 'worker', name: 'deliverer', behaviour: () => createDeliverer(full) }], {}, { registry });
  return { system, registry, lines, ref: system.lookup('deliverer')! };
}

describe('the Deliverer actor', () => {
  it('delivers from preStart, reports status and queue gauges, rejects bad messages', async () => {
    const { endpoint } = await endpoints.create({ url: `${receiver.url}/a` });
    await outbox.enqueueBatch(jobsFor(endpoint.id, 20, 'a'));
    const { system, registry, ref, lines } = await startDeliverer();
    try {
      await waitFor(() => outbox.depth() === 0);
      expect(receiver.deliveredIds().size).toBe(20);
      // The outbox counts a job gone when its write lands; the loop lets go of it once the write resolves.
      await waitFor(async () => (await ref.ask<DeliveryLoopStatus>({ type: 'deliverer.status' })).inFlight === 0);
      expect(await ref.ask<DeliveryLoopStatus>({ type: 'deliverer.status' })).toEqual({
        running: true,
        inFlight: 0,
        ready: 0,
        held: 0,
        slowLane: 0,
        openBreakers: [],
      });
      expect(await ref.ask({ type: 'deliverer.wake' })).toEqual({ ok: true });
      const text = await registry.metrics();
      expect(text).toContain('webhook_queue_depth 0');
      expect(text).toContain('webhook_deliveries_total{status="success"} 20');
      // A bad message gets an error reply and a log line; it does not restart the delivery loop.
      expect(await ref.ask({ type: 'deliverer.nope' })).toMatchObject({ ok: false, error: { code: 'ETHHOOK_ERR_DELIVERER_BAD_MESSAGE' } });
      expect(await ref.ask({ type: 'deliverer.endpoint-changed' })).toMatchObject({
        ok: false,
        error: { code: 'ETHHOOK_ERR_DELIVERER_BAD_MESSAGE', message: expect.stringContaining('endpointId') },
      });
      expect(system.snapshot().children?.[0]).toMatchObject({ incarnation: 1, panics: 0 });
      expect(lines.some((l) => l.code === 'ETHHOOK_ERR_DELIVERER_BAD_MESSAGE')).toBe(true);
    } finally {
      await system.shutdown('test');
    }
  });

  it('endpoint-changed applies a re-enabled endpoint at once', async () => {
    const { endpoint } = await endpoints.create({ url: `${receiver.url}/b` });
    await endpoints.disable(endpoint.id, 'operator test');
    const { system, ref } = await startDeliverer();
    try {
      await outbox.enqueueBatch(jobsFor(endpoint.id, 2, 'b1'));
      await waitFor(() => outbox.deadLetterCount() === 2);
      await endpoints.enable(endpoint.id);
      expect(await ref.ask({ type: 'deliverer.endpoint-changed', endpointId: endpoint.id })).toEqual({ ok: true });
      expect(await outbox.replayAll({ endpointId: endpoint.id })).toBe(2);
      await waitFor(() => receiver.deliveredIds().size === 2);
    } finally {
      await system.shutdown('test');
    }
  });

  it('keeps delivering across a manual restart', async () => {
    const { endpoint } = await endpoints.create({ url: `${receiver.url}/c` });
    const { system } = await startDeliverer();
    try {
      await outbox.enqueueBatch(jobsFor(endpoint.id, 10, 'c1'));
      await waitFor(() => outbox.depth() === 0);
      const snap = await system.restartActor('deliverer');
      expect(snap.incarnation).toBe(2);
      await outbox.enqueueBatch(jobsFor(endpoint.id, 10, 'c2'));
      await waitFor(() => outbox.depth() === 0);
      expect(receiver.deliveredIds().size).toBe(20);
    } finally {
      await system.shutdown('test');
    }
  });

  it('stopping aborts attempts that hang past the grace period; their jobs stay due, unrecorded', async () => {
    receiver.setBehaviour(() => ({ hang: true }));
    const { endpoint } = await endpoints.create({ url: `${receiver.url}/hang` });
    await outbox.enqueueBatch(jobsFor(endpoint.id, 3, 'hang'));
    const { system } = await startDeliverer({ stopGraceMs: 200 });
    await waitFor(() => receiver.count === 3);
    const started = Date.now();
    await system.shutdown('test');
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(outbox.depth()).toBe(3);
    expect((await outbox.get('msg_hang_0'))!.attempt).toBe(0);
    expect(await outbox.attempts.list(endpoint.id)).toEqual([]);
  });

  it('an outbox that cannot be read fails the actor to its supervisor, which restarts it', async () => {
    let failures = 1;
    const flaky: DelivererDeps['outbox'] = {
      due: (...args) => (failures-- > 0 ? Promise.reject(new Error('LevelDB read failed')) : outbox.due(...args)),
      nextDueAt: () => outbox.nextDueAt(),
      bodyOf: (job) => outbox.bodyOf(job),
      complete: (...args) => outbox.complete(...args),
      completeWithGroup: (...args) => outbox.completeWithGroup(...args),
      reschedule: (...args) => outbox.reschedule(...args),
      postpone: (...args) => outbox.postpone(...args),
      deadLetter: (...args) => outbox.deadLetter(...args),
      onEnqueue: (listener) => outbox.onEnqueue(listener),
      depth: () => outbox.depth(),
      deadLetterCount: () => outbox.deadLetterCount(),
    };
    const { endpoint } = await endpoints.create({ url: `${receiver.url}/d` });
    await outbox.enqueueBatch(jobsFor(endpoint.id, 3, 'd'));
    const { system, ref } = await startDeliverer({ outbox: flaky });
    try {
      await waitFor(() => system.snapshot().children?.[0]?.incarnation === 2);
      await waitFor(() => outbox.depth() === 0);
      expect(await ref.ask<DeliveryLoopStatus>({ type: 'deliverer.status' })).toMatchObject({ running: true });
    } finally {
      await system.shutdown('test');
    }
  });
});
