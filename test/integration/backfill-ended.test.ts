// The Backfill actor on a real LevelDB directory: a task started on a request that has already ended
// (as a scan whose listing was read before the request's last write starts one once the request's
// last task is gone) publishes nothing, sends the Matcher nothing and takes the request out of the
// running index; a running one publishes and sends.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createBackfill } from '../../src/actors/backfill/backfill.ts';
import type { BackfillPageAck } from '../../src/actors/matcher/messages.ts';
import type { WorkerSpec } from '../../src/runtime/types.ts';
import { BackfillStore, runningIndexKey } from '../../src/store/backfills.ts';
import { EndpointStore } from '../../src/store/endpoints.ts';
import { openDb, type Db } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { SubscriptionStore } from '../../src/store/subscriptions.ts';
import type { BackfillStreamEvent } from '../../src/streams/events.ts';
import { start, waitFor } from '../support/kernel.ts';

const CHAIN_ID = 31337;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function world() {
  const dir = await mkdtemp(join(tmpdir(), 'ethhook-backfill-'));
  const db: Db = await openDb(dir);
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  cleanups.push(async () => {
    if (db.status === 'open') await db.close();
  });
  const kv = new LevelKv(db);
  const store = new BackfillStore(kv);
  const published: BackfillStreamEvent[] = [];
  const pages: { subscriptionId?: unknown }[] = [];
  const matcher: WorkerSpec = {
    kind: 'worker',
    name: 'matcher',
    behaviour: () => ({
      receive: (msg: unknown): BackfillPageAck => {
        pages.push(msg as { subscriptionId?: unknown });
        return { ok: false, code: 'ETHHOOK_ERR_BACKFILL_STALE' };
      },
    }),
  };
  const backfill: WorkerSpec = {
    kind: 'worker',
    name: 'backfill',
    behaviour: () =>
      createBackfill({
        kv,
        subscriptions: new SubscriptionStore(kv, new EndpointStore(kv, randomBytes(32))),
        outboxDepth: () => 0,
        chains: [{ chainId: CHAIN_ID, name: 'anvil', backfillRange: 100 }],
        registry: new Registry(),
        matcher: 'matcher',
        options: { pollMs: 10 },
        publish: (event) => void published.push(event),
      }),
  };
  return { kv, store, published, pages, run: () => start([matcher, backfill]) };
}

describe('backfill tasks', () => {
  it('start on a request already done: no notice, no page, its entry removed; on a running one: a running notice and a page', async () => {
    const w = await world();
    const ended = await w.store.start({ subscriptionId: 'sub_done', chainId: CHAIN_ID, from: 10, to: 20 });
    await w.kv.batch(w.store.progressOps({ id: ended.id, chainId: CHAIN_ID, subscriptionId: 'sub_done' }, { at: 20, end: 20, done: true }));
    // The running index still lists it, as a listing read before that write does.
    await w.kv
      .space<string>('backfills-running')
      .put(runningIndexKey({ id: ended.id, chainId: CHAIN_ID, subscriptionId: 'sub_done' }), ended.id);
    const running = await w.store.start({ subscriptionId: 'sub_running', chainId: CHAIN_ID, from: 10, to: 20 });
    const { system, lines } = await w.run();
    cleanups.push(async () => void (await system.shutdown('test')));
    const of = (sub: string) => (e: { subscriptionId?: unknown }) => e.subscriptionId === sub;
    await waitFor(
      () =>
        w.pages.some(of('sub_running')) &&
        (lines.some((l) => l.msg === 'backfill already ended: nothing to run' && l.subscriptionId === 'sub_done') ||
          w.published.some(of('sub_done'))),
      10_000,
      'both tasks under way',
    );
    expect(w.published.filter(of('sub_done'))).toEqual([]);
    expect(w.pages.filter(of('sub_done'))).toEqual([]);
    expect(w.published).toEqual([expect.objectContaining({ subscriptionId: 'sub_running', backfillId: running.id, state: 'running' })]);
    // The ended request's entry is gone, so no later scan starts it again.
    await waitFor(async () => (await w.store.running()).every((e) => e.subscriptionId !== 'sub_done'), 10_000, 'the entry removed');
    expect((await w.store.running()).map((e) => e.subscriptionId)).toEqual(['sub_running']);
  });
});
