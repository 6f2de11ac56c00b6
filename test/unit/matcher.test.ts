// The Matcher behaviour on a real LevelDB directory: jobs are in the outbox before the ack, re-sent
// blocks enqueue nothing twice, retractions go only to subscriptions that got the log, index updates
// apply without restart; every log is published to the live streams after its block's jobs are written,
// and a publish that throws does not fail the block.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { encodeAbiParameters, toEventSelector } from 'viem';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { webhookId } from '../../src/actors/matcher/jobs.ts';
import { createMatcher, type Matcher, type MatcherDeps } from '../../src/actors/matcher/matcher.ts';
import type { ChainBlockMessage, ChainLog } from '../../src/actors/matcher/messages.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { streamEventSchema, type StreamEvent } from '../../src/streams/events.ts';
import { openDb, sublevel, type Db } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { BackfillStore } from '../../src/store/backfills.ts';
import { CursorStore } from '../../src/store/cursors.ts';
import { EndpointStore } from '../../src/store/endpoints.ts';
import { type Job } from '../../src/store/outbox/job.ts';
import { LevelOutbox } from '../../src/store/level/outbox/outbox.ts';
import { SubscriptionStore } from '../../src/store/subscriptions.ts';
import { memoryLogger } from '../support/kernel.ts';

const A = '0x' + 'a1'.repeat(20);
const B = '0x' + 'b2'.repeat(20);
const T = (n: number) => '0x' + n.toString(16).padStart(64, '0');
const H = (n: number) => '0x' + n.toString(16).padStart(64, 'e');
const TX = '0x' + 'cd'.repeat(32);
const logger = createLogger({ level: 'silent' });
const ctx = {} as never;

const dirs: string[] = [];
const dbs: Db[] = [];
afterAll(async () => {
  for (const db of dbs) if (db.status === 'open') await db.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

interface World {
  db: Db;
  endpoints: EndpointStore;
  subscriptions: SubscriptionStore;
  outbox: LevelOutbox;
  registry: Registry;
  deps: MatcherDeps;
}
let w: World;

beforeEach(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ethhook-matcher-'));
  dirs.push(dir);
  const db = await openDb(dir);
  dbs.push(db);
  const endpoints = new EndpointStore(new LevelKv(db), randomBytes(32));
  const subscriptions = new SubscriptionStore(new LevelKv(db), endpoints);
  const outbox = await LevelOutbox.open(new LevelKv(db));
  const registry = new Registry();
  w = { db, endpoints, subscriptions, outbox, registry, deps: { kv: new LevelKv(db), subscriptions, outbox, logger, registry } };
});

async function started(deps: Partial<MatcherDeps> = {}): Promise<Matcher> {
  const m = createMatcher({ ...w.deps, ...deps });
  await m.preStart!(ctx);
  return m;
}

async function endpoint(): Promise<string> {
  return (await w.endpoints.create({ url: 'https://receiver.example/hook' })).endpoint.id;
}

function log(logIndex: number, address: string, topics: string[], blockNumber = 100, blockHash = H(blockNumber)): ChainLog {
  return {
    address,
    topics,
    data: '0x' + logIndex.toString(16).padStart(4, '0'),
    blockNumber,
    blockHash,
    transactionHash: TX,
    transactionIndex: 0,
    logIndex,
    removed: false,
  };
}

function block(
  blockNumber: number,
  logs: ChainLog[],
  opts: { removed?: boolean; chainId?: number; blockHash?: string; seenAt?: number } = {},
): ChainBlockMessage {
  const blockHash = opts.blockHash ?? H(blockNumber);
  return {
    type: 'chain.block',
    chainId: opts.chainId ?? 1,
    blockNumber,
    blockHash,
    parentHash: H(blockNumber - 1),
    timestamp: 1_700_000_000 + blockNumber,
    seenAt: opts.seenAt ?? 1_700_000_000_000 + blockNumber * 1000 + 0.5,
    removed: opts.removed ?? false,
    logs: logs.map((l) => ({ ...l, blockNumber, blockHash, removed: opts.removed ?? false })),
  };
}

/** Every job in the outbox, due or held behind the job it follows, in due order. */
async function allJobs(): Promise<Job[]> {
  const jobs = await sublevel<Job>(w.db, 'outbox-jobs').values().all();
  return jobs.sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || (a.id < b.id ? -1 : 1));
}

async function dueIds(): Promise<string[]> {
  return (await w.outbox.due(Number.MAX_SAFE_INTEGER, 10_000)).map((j) => j.id);
}

describe('matching a block', () => {
  it("writes one job per (log, matching subscription) with the issue's payload, then acks", async () => {
    const ep = await endpoint();
    const s1 = await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A], topics: [T(1)] });
    const s2 = await w.subscriptions.create({ endpointId: ep, chainId: 1, topics: [null, T(2)] });
    await w.subscriptions.create({ endpointId: ep, chainId: 2, addresses: [A] });
    const m = await started();

    const msg = block(100, [log(0, A, [T(1)]), log(1, B, [T(9), T(2)]), log(2, A, [T(1), T(2)]), log(3, B, [T(1)])]);
    const reply = await m.receive(msg, ctx);
    expect(reply).toEqual({ ok: true, jobs: 4 });

    const jobs = await allJobs();
    const pairs = jobs.map((j) => `${j.payload.data.logIndex}:${j.subscriptionId}`).sort();
    expect(pairs).toEqual([`0:${s1.id}`, `1:${s2.id}`, `2:${s1.id}`, `2:${s2.id}`].sort());
    const j = jobs.find((x) => x.payload.data.logIndex === 1)!;
    expect(j).toMatchObject({
      id: webhookId(1, H(100), 1, s2.id, 'log.created'),
      endpointId: ep,
      subscriptionId: s2.id,
      type: 'log.created',
      eventSeenAt: msg.seenAt,
      attempt: 0,
      payload: {
        type: 'log.created',
        timestamp: new Date((1_700_000_000 + 100) * 1000).toISOString(),
        data: {
          chainId: 1,
          blockNumber: 100,
          blockHash: H(100),
          transactionHash: TX,
          logIndex: 1,
          address: B,
          topics: [T(9), T(2)],
          data: '0x0001',
          subscriptionId: s2.id,
        },
      },
    });
    expect(j.id).toMatch(/^msg_[0-9a-f]{64}$/);
  });

  it('does not reply before the batch is written, and never replies when the write fails', async () => {
    const ep = await endpoint();
    await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A] });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let failNext = false;
    const gated = Object.create(w.outbox) as LevelOutbox;
    gated.enqueueBatch = async (jobs, extra) => {
      await gate;
      if (failNext) throw new Error('disk full');
      return w.outbox.enqueueBatch(jobs, extra);
    };
    const m = await started({ outbox: gated });

    let replied = false;
    const pending = Promise.resolve(m.receive(block(7, [log(0, A, [])]), ctx)).then((r) => ((replied = true), r));
    await new Promise((r) => setTimeout(r, 30));
    expect(replied).toBe(false);
    expect(await allJobs()).toEqual([]);
    release();
    expect(await pending).toEqual({ ok: true, jobs: 1 });
    expect(await allJobs()).toHaveLength(1);

    failNext = true;
    await expect(Promise.resolve(m.receive(block(8, [log(0, A, [])]), ctx))).rejects.toThrow('disk full');
    expect(await allJobs()).toHaveLength(1);
    // The listener sends block 8 again: now it lands.
    failNext = false;
    expect(await m.receive(block(8, [log(0, A, [])]), ctx)).toEqual({ ok: true, jobs: 1 });
  });

  it('a block sent again (listener crashed before its cursor moved) enqueues nothing twice, even after delivery', async () => {
    const ep = await endpoint();
    await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A] });
    const m = await started();
    const msg = block(5, [log(0, A, []), log(1, A, [])]);
    expect(await m.receive(msg, ctx)).toEqual({ ok: true, jobs: 2 });
    for (const j of await allJobs()) await w.outbox.complete(j.id);
    expect(await m.receive(msg, ctx)).toEqual({ ok: true, jobs: 0 });
    // A restarted Matcher (fresh index, same store) behaves the same.
    expect(await (await started()).receive(msg, ctx)).toEqual({ ok: true, jobs: 0 });
    expect(w.outbox.depth()).toBe(0);
  });

  it('acks blocks without matches without writing', async () => {
    const m = await started();
    expect(await m.receive(block(1, [log(0, A, [T(1)])]), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await m.receive(block(2, []), ctx)).toEqual({ ok: true, jobs: 0 });
  });

  it('refuses an invalid message with ETHHOOK_ERR_MATCHER_BAD_MESSAGE and writes nothing', async () => {
    const ep = await endpoint();
    await w.subscriptions.create({ endpointId: ep, chainId: 1 });
    const m = await started();
    const good = block(1, [log(0, A, [])]);
    const bad = [
      { type: 'chain.block' },
      { ...good, blockHash: 'nope' },
      { type: 'other' },
      null,
      'x',
      // a log's field of the wrong type, a log missing a field, a log of another block
      { ...good, logs: [{ ...good.logs[0], logIndex: '0' }] },
      { ...good, logs: [{ ...good.logs[0], topics: undefined }] },
      { ...good, logs: [{ ...good.logs[0], blockHash: `0x${'ee'.repeat(32)}` }] },
    ];
    for (const msg of bad) {
      await expect(Promise.resolve().then(() => m.receive(msg, ctx))).rejects.toMatchObject({ code: 'ETHHOOK_ERR_MATCHER_BAD_MESSAGE' });
    }
    expect(w.outbox.depth()).toBe(0);
  });
});

describe("the block's cursor ops", () => {
  // The listener's cursor ops for a block ride with it and land in the batch of its jobs, so a block
  // whose jobs committed is always in the cursor's reorg window (a later reorg retracts them).
  it('are written with the jobs, and the answer says so; a block that writes nothing leaves them to the listener', async () => {
    const ep = await endpoint();
    await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A] });
    const m = await started();
    const cursors = new CursorStore<{ number: number; hash: string }>(new LevelKv(w.db));
    const withCursor = (b: ChainBlockMessage): ChainBlockMessage => ({
      ...b,
      cursor: cursors.appendOps(1, { number: b.blockNumber, hash: b.blockHash }, b.logs, 100, 64),
    });
    expect(await m.receive(withCursor(block(100, [log(0, A, [])])), ctx)).toEqual({ ok: true, jobs: 1, persisted: true });
    expect(await cursors.position(1)).toEqual({ next: 101, floor: 100 });
    expect(await cursors.logs(1, 100)).toHaveLength(1);
    // Nothing matched: nothing written, the cursor ops included.
    expect(await m.receive(withCursor(block(101, [log(0, B, [])])), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await cursors.position(1)).toEqual({ next: 101, floor: 100 });
    // A retraction's ops too.
    const retraction = block(100, [log(0, A, [])], { removed: true });
    expect(await m.receive({ ...retraction, cursor: cursors.retractOps(1, 100, 100) }, ctx)).toEqual({
      ok: true,
      jobs: 1,
      persisted: true,
    });
    expect(await cursors.position(1)).toEqual({ next: 100, floor: 100 });
    expect(await cursors.logs(1, 100)).toBeUndefined();
  });

  it('must be writes to the cursors space', async () => {
    const m = await started();
    const bad = { ...block(100, []), cursor: [{ type: 'put', space: 'endpoints', key: 'x', value: 1 }] };
    await expect(Promise.resolve().then(() => m.receive(bad, ctx))).rejects.toMatchObject({ code: 'ETHHOOK_ERR_MATCHER_BAD_MESSAGE' });
  });
});

describe('a backfilled page', () => {
  // A page of many sparse blocks is one read and ONE batch, its progress in it: a live block queued
  // behind it waits for one write, and the progress moves exactly when the page's jobs land.
  it('writes the jobs of all its blocks and its progress in one batch, or nothing when that write fails', async () => {
    const ep = await endpoint();
    const sub = await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A] });
    await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A] });
    let writes = 0;
    let fail = false;
    const counted = Object.create(w.outbox) as LevelOutbox;
    counted.enqueueBatch = async (jobs, extra) => {
      writes++;
      if (fail) throw new Error('disk full');
      return w.outbox.enqueueBatch(jobs, extra);
    };
    const m = await started({ outbox: counted });
    const cursors = new CursorStore<{ number: number; hash: string }>(new LevelKv(w.db));
    await cursors.append(1, { number: 200, hash: H(200) }, [], 200, 64);
    const backfills = new BackfillStore(new LevelKv(w.db));
    const request = await backfills.start({ subscriptionId: sub.id, chainId: 1, from: 100, to: 150 });
    const page = (progress: { at: number; end: number }) => ({
      type: 'backfill.page',
      chainId: 1,
      subscriptionId: sub.id,
      requestId: request.id,
      seenAt: 1_700_000_000_000,
      blocks: Array.from({ length: 10 }, (_, i) => {
        const b = block(100 + i, [log(0, A, []), log(1, B, []), log(2, A, [])]);
        return { number: b.blockNumber, hash: b.blockHash, timestamp: b.timestamp, logs: b.logs };
      }),
      progress,
    });

    fail = true;
    await expect(Promise.resolve(m.receive(page({ at: 109, end: 150 }), ctx))).rejects.toThrow('disk full');
    expect(writes).toBe(1);
    expect(await allJobs()).toEqual([]);
    expect(await backfills.progress(request.id)).toEqual({ at: 99, end: 150 });

    fail = false;
    writes = 0;
    expect(await m.receive(page({ at: 109, end: 150 }), ctx)).toEqual({ ok: true, jobs: 20, liveFrom: 200 });
    expect(writes).toBe(1);
    const jobs = await allJobs();
    // Two logs of each block, for the page's subscription alone.
    expect(jobs).toHaveLength(20);
    expect(new Set(jobs.map((j) => j.subscriptionId))).toEqual(new Set([sub.id]));
    expect(new Set(jobs.map((j) => j.payload.data.blockNumber))).toEqual(new Set(Array.from({ length: 10 }, (_, i) => 100 + i)));
    expect(await backfills.progress(request.id)).toEqual({ at: 109, end: 150 });
    // Marked as a backfill's (they count in no pipeline stage), where a live block's jobs are not.
    expect(jobs.every((j) => j.backfill === true)).toBe(true);
    expect(await m.receive(block(201, [log(0, A, [])]), ctx)).toEqual({ ok: true, jobs: 2 });
    expect((await allJobs()).filter((j) => j.backfill === undefined)).toHaveLength(2);
    // Sent again (its answer lost): nothing twice, the progress written all the same.
    expect(await m.receive(page({ at: 109, end: 150 }), ctx)).toEqual({ ok: true, jobs: 0, liveFrom: 201 });
    expect(await allJobs()).toHaveLength(22);

    // A page of a request cancelled, or replaced by another, while it was on its way writes nothing.
    const next = (progress: { at: number; end: number }, requestId: string) => ({
      ...page(progress),
      requestId,
      blocks: page(progress).blocks.map((b) => ({ ...b, logs: b.logs.map((l) => ({ ...l, logIndex: l.logIndex + 10 })) })),
    });
    await backfills.cancel(sub.id);
    expect(await m.receive(next({ at: 150, end: 150 }, request.id), ctx)).toMatchObject({ ok: false, code: 'ETHHOOK_ERR_BACKFILL_STALE' });
    expect(await backfills.progress(request.id)).toEqual({ at: 109, end: 150 });
    const replacement = await backfills.start({ subscriptionId: sub.id, chainId: 1, from: 100, to: 150 });
    expect(await m.receive(next({ at: 150, end: 150 }, request.id), ctx)).toMatchObject({ ok: false, code: 'ETHHOOK_ERR_BACKFILL_STALE' });
    expect(await allJobs()).toHaveLength(22);
    // The replaced request's progress stays gone, and the new request stays listed.
    expect(await backfills.progress(request.id)).toBeUndefined();
    expect(await backfills.running(1)).toEqual([{ chainId: 1, subscriptionId: sub.id, requestId: replacement.id }]);
  });
});

describe('a backfilled page with a block retracted before', () => {
  // Each block of a page keeps its own generation: a block the live path retracted gets the
  // webhook-ids of its next generation, its neighbours those of their first.
  it("gives each block its own generation's webhook-ids", async () => {
    const ep = await endpoint();
    const sub = await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A] });
    const m = await started();
    const request = await new BackfillStore(new LevelKv(w.db)).start({ subscriptionId: sub.id, chainId: 1, from: 104 });
    await new CursorStore<{ number: number; hash: string }>(new LevelKv(w.db)).append(1, { number: 200, hash: H(200) }, [], 200, 64);
    expect(await m.receive(block(105, [log(0, A, [])]), ctx)).toEqual({ ok: true, jobs: 1 });
    expect(await m.receive(block(105, [log(0, A, [])], { removed: true }), ctx)).toEqual({ ok: true, jobs: 1 });
    const blocks = [104, 105, 106].map((n) => {
      const b = block(n, [log(0, A, [])]);
      return { number: n, hash: b.blockHash, timestamp: b.timestamp, logs: b.logs };
    });
    const ack = await m.receive(
      {
        type: 'backfill.page',
        chainId: 1,
        subscriptionId: sub.id,
        requestId: request.id,
        seenAt: 1,
        blocks,
        progress: { at: 106, end: 106, done: true },
      },
      ctx,
    );
    expect(ack).toMatchObject({ ok: true, jobs: 3 });
    const ids = new Set((await allJobs()).map((j) => j.id));
    expect(ids.has(webhookId(1, H(104), 0, sub.id, 'log.created', 0))).toBe(true);
    expect(ids.has(webhookId(1, H(105), 0, sub.id, 'log.created', 1))).toBe(true);
    expect(ids.has(webhookId(1, H(106), 0, sub.id, 'log.created', 0))).toBe(true);
  });
});

describe('retractions', () => {
  it('sends log.removed only to subscriptions that received the log, once', async () => {
    const ep = await endpoint();
    const early = await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A] });
    const m = await started();
    const created = block(50, [log(0, A, [T(1)]), log(1, B, [T(1)])]);
    await m.receive(created, ctx);

    // A subscription that appears after the block matches the log too, but never received it.
    const late = await w.subscriptions.create({ endpointId: ep, chainId: 1, topics: [T(1)] });
    expect(await m.receive({ type: 'subscriptions.changed', upserted: [late.id] }, ctx)).toEqual({ ok: true, size: 2 });

    const retraction = block(50, [log(0, A, [T(1)]), log(1, B, [T(1)])], { removed: true, seenAt: 1_800_000_000_000 });
    expect(await m.receive(retraction, ctx)).toEqual({ ok: true, jobs: 1 });
    const removed = (await allJobs()).filter((j) => j.type === 'log.removed');
    expect(removed).toHaveLength(1);
    expect(removed[0]).toMatchObject({
      id: webhookId(1, H(50), 0, early.id, 'log.removed'),
      subscriptionId: early.id,
      payload: {
        type: 'log.removed',
        timestamp: new Date(1_800_000_000_000).toISOString(),
        data: { logIndex: 0, subscriptionId: early.id },
      },
    });
    expect(removed[0]!.id).not.toBe(webhookId(1, H(50), 0, early.id, 'log.created'));
    // The retraction sent again produces nothing.
    expect(await m.receive(retraction, ctx)).toEqual({ ok: true, jobs: 0 });
  });

  it('retracts for a subscription deleted since, and gives a block that comes back new webhook-ids', async () => {
    const ep = await endpoint();
    const sub = await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A] });
    const m = await started();
    const b = block(60, [log(4, A, [])]);
    await m.receive(b, ctx);
    await w.subscriptions.remove(sub.id);
    await m.receive({ type: 'subscriptions.changed', removed: [sub.id] }, ctx);
    expect(await m.receive({ ...b, removed: true }, ctx)).toEqual({ ok: true, jobs: 1 });

    // Reorg flip-flop: the block is canonical again. The subscription is back too.
    await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A], id: sub.id });
    await m.receive({ type: 'subscriptions.changed', upserted: [sub.id] }, ctx);
    expect(await m.receive(b, ctx)).toEqual({ ok: true, jobs: 1 });
    expect(await m.receive({ ...b, removed: true }, ctx)).toEqual({ ok: true, jobs: 1 });
    const ids = (await allJobs()).map((j) => j.id);
    expect(new Set(ids).size).toBe(4);
    expect(ids).toEqual(
      expect.arrayContaining([
        webhookId(1, H(60), 4, sub.id, 'log.created'),
        webhookId(1, H(60), 4, sub.id, 'log.removed'),
        webhookId(1, H(60), 4, sub.id, 'log.created', 1),
        webhookId(1, H(60), 4, sub.id, 'log.removed', 1),
      ]),
    );
  });

  it('a log.removed follows its log.created, and the block come back its log.removed: each waits while the one before is in the outbox', async () => {
    const ep = await endpoint();
    const sub = await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A] });
    const m = await started();
    const b = block(70, [log(2, A, [])]);
    const c0 = webhookId(1, H(70), 2, sub.id, 'log.created');
    const r0 = webhookId(1, H(70), 2, sub.id, 'log.removed');
    const c1 = webhookId(1, H(70), 2, sub.id, 'log.created', 1);
    await m.receive(b, ctx);
    await m.receive(block(70, [log(2, A, [])], { removed: true }), ctx);
    await m.receive(b, ctx);
    const jobs = new Map((await allJobs()).map((j) => [j.id, j]));
    expect(jobs.get(c0)?.follows).toBeUndefined();
    expect(jobs.get(r0)?.follows).toBe(c0);
    expect(jobs.get(c1)?.follows).toBe(r0);
    expect(await dueIds()).toEqual([c0]);
    await w.outbox.complete(c0);
    expect(await dueIds()).toEqual([r0]);
    await w.outbox.complete(r0);
    expect(await dueIds()).toEqual([c1]);
  });

  it('forgets matches that fall out of the reorg window', async () => {
    const ep = await endpoint();
    await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A] });
    const m = await started({ reorgWindowBlocks: 10 });
    for (let n = 1; n <= 130; n++) await m.receive(block(n, [log(0, A, [])]), ctx);
    expect(await m.receive(block(5, [log(0, A, [])], { removed: true }), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await m.receive(block(125, [log(0, A, [])], { removed: true }), ctx)).toEqual({ ok: true, jobs: 1 });
  });
});

describe('subscriptions that want more confirmations than their chain', () => {
  // The chain's listener emits at 2 confirmations; the subscription wants 5: its jobs wait 3 blocks.
  const chainConfirmations = new Map([[1, 2]]);

  it("defers log.created until the block 3 later, then enqueues it with that block's seenAt", async () => {
    const ep = await endpoint();
    const deep = await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A], confirmations: 5 });
    const shallow = await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A], confirmations: 1 });
    const m = await started({ chainConfirmations });
    expect(await m.receive(block(100, [log(0, A, [T(1)])]), ctx)).toEqual({ ok: true, jobs: 1 });
    expect((await allJobs()).map((j) => j.subscriptionId)).toEqual([shallow.id]);
    expect(await m.receive(block(101, []), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await m.receive(block(102, []), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await m.receive(block(103, []), ctx)).toEqual({ ok: true, jobs: 1 });
    const released = (await allJobs()).find((j) => j.subscriptionId === deep.id);
    expect(released).toMatchObject({
      id: webhookId(1, H(100), 0, deep.id, 'log.created'),
      type: 'log.created',
      eventSeenAt: block(103, []).seenAt,
      payload: { type: 'log.created', data: { blockNumber: 100, blockHash: H(100), logIndex: 0, subscriptionId: deep.id } },
    });
    expect(await m.receive(block(104, []), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await allJobs()).toHaveLength(2);
  });

  it('a log retracted while its job waits is never sent, neither created nor removed', async () => {
    const ep = await endpoint();
    await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A], confirmations: 5 });
    const m = await started({ chainConfirmations });
    await m.receive(block(100, [log(0, A, [])]), ctx);
    await m.receive(block(101, []), ctx);
    expect(await m.receive(block(101, [], { removed: true }), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await m.receive(block(100, [log(0, A, [])], { removed: true }), ctx)).toEqual({ ok: true, jobs: 0 });
    for (let n = 100; n <= 110; n++) await m.receive(block(n, [], { blockHash: H(n + 1_000) }), ctx);
    expect(await allJobs()).toEqual([]);
  });

  it('a log retracted after its job was released gets log.removed', async () => {
    const ep = await endpoint();
    const sub = await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A], confirmations: 4 });
    const m = await started({ chainConfirmations });
    await m.receive(block(100, [log(0, A, [])]), ctx);
    await m.receive(block(101, []), ctx);
    expect(await m.receive(block(102, []), ctx)).toEqual({ ok: true, jobs: 1 });
    await m.receive(block(102, [], { removed: true }), ctx);
    await m.receive(block(101, [], { removed: true }), ctx);
    expect(await m.receive(block(100, [log(0, A, [])], { removed: true }), ctx)).toEqual({ ok: true, jobs: 1 });
    expect((await allJobs()).map((j) => j.id).sort()).toEqual(
      [webhookId(1, H(100), 0, sub.id, 'log.created'), webhookId(1, H(100), 0, sub.id, 'log.removed')].sort(),
    );
  });

  it('deferred jobs survive a restart and a block sent again, and are released once', async () => {
    const ep = await endpoint();
    await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A], confirmations: 5 });
    const first = await started({ chainConfirmations });
    await first.receive(block(100, [log(0, A, []), log(1, A, [])]), ctx);
    await first.receive(block(101, []), ctx);
    // A new incarnation (a crash and restart): the listener re-sends the unacknowledged block 101.
    const second = await started({ chainConfirmations });
    expect(await second.receive(block(101, []), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await second.receive(block(100, [log(0, A, []), log(1, A, [])]), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await second.receive(block(102, []), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await second.receive(block(103, []), ctx)).toEqual({ ok: true, jobs: 2 });
    expect(await second.receive(block(103, []), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await allJobs()).toHaveLength(2);
  });

  it("without the chain's confirmations known, a subscription's own count is the wait", async () => {
    const ep = await endpoint();
    await w.subscriptions.create({ endpointId: ep, chainId: 7, addresses: [A], confirmations: 2 });
    const m = await started();
    await m.receive(block(10, [log(0, A, [])], { chainId: 7 }), ctx);
    expect(await m.receive(block(11, [], { chainId: 7 }), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await m.receive(block(12, [], { chainId: 7 }), ctx)).toEqual({ ok: true, jobs: 1 });
  });
});

describe('subscription changes without restart', () => {
  it('applies upserts, removals and full reloads', async () => {
    const ep = await endpoint();
    const m = await started();
    expect(m.index.size).toBe(0);
    const s = await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A] });
    expect(await m.receive(block(1, [log(0, A, [])]), ctx)).toEqual({ ok: true, jobs: 0 });
    await m.receive({ type: 'subscriptions.changed', upserted: [s.id] }, ctx);
    expect(await m.receive(block(2, [log(0, A, [])]), ctx)).toEqual({ ok: true, jobs: 1 });

    await w.subscriptions.remove(s.id);
    await m.receive({ type: 'subscriptions.changed', upserted: [s.id] }, ctx); // gone from the store: dropped
    expect(await m.receive(block(3, [log(0, A, [])]), ctx)).toEqual({ ok: true, jobs: 0 });

    await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [B] });
    await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [B] });
    expect(await m.receive({ type: 'subscriptions.changed' }, ctx)).toEqual({ ok: true, size: 2 });
    expect(await m.receive(block(4, [log(0, B, [])]), ctx)).toEqual({ ok: true, jobs: 2 });

    const metrics = await w.registry.getMetricsAsJSON();
    const jobsMetric = metrics.find((x) => x.name === 'matcher_jobs_enqueued_total')!;
    expect(jobsMetric.values.find((v) => v.labels.type === 'log.created')?.value).toBe(3);
    expect(metrics.find((x) => x.name === 'matcher_subscriptions')!.values[0]!.value).toBe(2);
  });
});

describe('decoding specs through subscription changes', () => {
  const TRANSFER = 'event Transfer(address indexed from, address indexed to, uint256 value)';
  const word = (a: string) => `0x${'0'.repeat(24)}${a.slice(2)}`;
  const transfer = (logIndex: number, value: bigint): ChainLog => ({
    ...log(logIndex, A, [toEventSelector('Transfer(address,address,uint256)'), word(B), word(A)]),
    data: encodeAbiParameters([{ type: 'uint256' }], [value]),
  });
  /** The `value` the job's decoded event carries; null without an event. */
  const valueOf = (j: Job) => ((j.payload.data.event?.args as Record<string, unknown> | undefined)?.value as string | undefined) ?? null;
  /** The decoded value of each job of block `blockNumber`, by subscription. */
  const eventsOf = async (blockNumber: number) =>
    Object.fromEntries(
      (await allJobs()).filter((j) => j.payload.data.blockNumber === blockNumber).map((j) => [j.subscriptionId, valueOf(j)]),
    );

  it('follow updates and removals: a shared abi outlives one of its subscriptions, and an abi can go and come back', async () => {
    const ep = await endpoint();
    const filtered = await w.subscriptions.create({
      endpointId: ep,
      chainId: 1,
      addresses: [A],
      abi: [TRANSFER],
      filter: { 'args.value': { gte: '10' } },
    });
    const plain = await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A], abi: [TRANSFER] });
    const m = await started();
    await m.receive(block(1, [transfer(0, 5n), transfer(1, 50n)]), ctx);
    const first = (await allJobs()).map((j) => [j.subscriptionId === filtered.id ? 'filtered' : 'plain', valueOf(j)]);
    expect(first.sort()).toEqual([
      ['filtered', '50'],
      ['plain', '5'],
      ['plain', '50'],
    ]);

    // The filtered one goes: the other still decodes with the abi they shared.
    await w.subscriptions.remove(filtered.id);
    await m.receive({ type: 'subscriptions.changed', removed: [filtered.id] }, ctx);
    await m.receive(block(2, [transfer(0, 7n)]), ctx);
    expect(await eventsOf(2)).toEqual({ [plain.id]: '7' });

    // Its record replaced without an abi (as a governance update writes it): jobs carry no event.
    const records = new LevelKv(w.db).space<Record<string, unknown>>('subscriptions');
    const { abi, topics, ...bare } = (await records.get(plain.id))!;
    expect(abi).toEqual([TRANSFER]);
    await records.put(plain.id, bare);
    await m.receive({ type: 'subscriptions.changed', upserted: [plain.id] }, ctx);
    await m.receive(block(3, [transfer(0, 8n)]), ctx);
    expect((await allJobs()).find((j) => j.payload.data.blockNumber === 3)!.payload.data).not.toHaveProperty('event');

    // And back with it: decoded again.
    await records.put(plain.id, { ...bare, abi, topics });
    await m.receive({ type: 'subscriptions.changed', upserted: [plain.id] }, ctx);
    await m.receive(block(4, [transfer(0, 9n)]), ctx);
    expect(await eventsOf(4)).toEqual({ [plain.id]: '9' });
  });
});

describe('publishing to the live streams', () => {
  /** A publish that records each event with the outbox depth at that moment. */
  function recorder() {
    const events: Array<{ event: StreamEvent; depth: number }> = [];
    return { events, publish: (event: StreamEvent) => void events.push({ event, depth: w.outbox.depth() }) };
  }

  it('publishes every log of a block, matched or not, as log.created once its jobs are written', async () => {
    const ep = await endpoint();
    await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A] });
    const { events, publish } = recorder();
    const m = await started({ publish });
    const msg = block(100, [log(0, A, [T(1)]), log(1, B, [T(2), T(3)]), log(2, A, [])]);
    const before = Date.now();
    expect(await m.receive(msg, ctx)).toEqual({ ok: true, jobs: 2 });

    expect(events.map((e) => e.depth)).toEqual([2, 2, 2]);
    for (const { event } of events) expect(streamEventSchema.safeParse(event).success).toBe(true);
    expect(events.map(({ event }) => event)).toEqual(
      msg.logs.map((l) => ({
        kind: 'log.created',
        chainId: 1,
        blockNumber: 100,
        blockHash: H(100),
        transactionHash: TX,
        logIndex: l.logIndex,
        address: l.address,
        topics: l.topics,
        data: l.data,
        at: expect.any(Number),
      })),
    );
    expect(events[0]!.event.at).toBeGreaterThanOrEqual(before);
  });

  it('publishes nothing for a block whose write failed; it is published when the block lands', async () => {
    const ep = await endpoint();
    await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A] });
    const failing = Object.create(w.outbox) as LevelOutbox;
    let fail = true;
    failing.enqueueBatch = async (jobs, extra) => {
      if (fail) throw new Error('disk full');
      return w.outbox.enqueueBatch(jobs, extra);
    };
    const { events, publish } = recorder();
    const m = await started({ outbox: failing, publish });
    await expect(Promise.resolve(m.receive(block(9, [log(0, A, [])]), ctx))).rejects.toThrow('disk full');
    expect(events).toEqual([]);
    fail = false;
    expect(await m.receive(block(9, [log(0, A, [])]), ctx)).toEqual({ ok: true, jobs: 1 });
    expect(events.map(({ event, depth }) => [event.kind, depth])).toEqual([['log.created', 1]]);
  });

  it("publishes a retraction's logs as log.removed once its log.removed jobs are written", async () => {
    const ep = await endpoint();
    await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A] });
    const { events, publish } = recorder();
    const m = await started({ publish });
    const logs = [log(0, A, []), log(1, B, [])];
    await m.receive(block(50, logs), ctx);
    events.length = 0;

    expect(await m.receive(block(50, logs, { removed: true }), ctx)).toEqual({ ok: true, jobs: 1 });
    // Both logs are retracted on the stream, though only one was ever delivered as a webhook.
    expect(events.map(({ event, depth }) => [event.kind, 'logIndex' in event ? event.logIndex : null, depth])).toEqual([
      ['log.removed', 0, 2],
      ['log.removed', 1, 2],
    ]);
    for (const { event } of events) expect(streamEventSchema.safeParse(event).success).toBe(true);
  });

  it('a publish that throws does not fail the block: the ack, the jobs and the next blocks are unaffected', async () => {
    const ep = await endpoint();
    await w.subscriptions.create({ endpointId: ep, chainId: 1, addresses: [A] });
    const { logger: captured, lines } = memoryLogger();
    const tried: number[] = [];
    const publish = (event: StreamEvent) => {
      if ('logIndex' in event) tried.push(event.logIndex);
      throw new Error('stream hub on fire');
    };
    const m = await started({ publish, logger: captured });
    expect(await m.receive(block(10, [log(0, A, []), log(1, A, []), log(2, B, [])]), ctx)).toEqual({ ok: true, jobs: 2 });
    expect(await allJobs()).toHaveLength(2);
    // Every log got its chance; one warning for the block.
    expect(tried).toEqual([0, 1, 2]);
    const warned = lines.filter((l) => l.msg === 'matcher: publishing logs to the live streams failed');
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ chainId: 1, blockNumber: 10, failed: 3, err: { message: 'stream hub on fire' } });

    expect(await m.receive(block(10, [log(0, A, [])], { removed: true }), ctx)).toEqual({ ok: true, jobs: 1 });
    expect(await m.receive(block(11, [log(0, A, [])]), ctx)).toEqual({ ok: true, jobs: 1 });
    expect(w.outbox.depth()).toBe(4);
  });
});
