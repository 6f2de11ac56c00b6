// Subscriptions with `finality` on a real LevelDB directory: their log.created jobs wait in the store
// until the heights a block carries (`finality: { safe, finalized }`) reach their block, and their
// confirmations too; a block final already is enqueued at once; an unknown tag holds its jobs; a log
// retracted while its job waits is never sent; waiting jobs survive a restart and are released once; a
// `chain.finality` message (the heights moved with no new block) releases them too, at the cursor's height.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { webhookId } from '../../src/actors/matcher/jobs.ts';
import { createMatcher, type Matcher, type MatcherDeps } from '../../src/actors/matcher/matcher.ts';
import type { ChainBlockMessage, ChainLog } from '../../src/actors/matcher/messages.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { openDb, sublevel, type Db } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { BackfillStore } from '../../src/store/backfills.ts';
import { CursorStore } from '../../src/store/cursors.ts';
import { EndpointStore } from '../../src/store/endpoints.ts';
import type { Job } from '../../src/store/outbox/job.ts';
import { LevelOutbox } from '../../src/store/level/outbox/outbox.ts';
import { SubscriptionStore, type Finality } from '../../src/store/subscriptions.ts';

const A = '0x' + 'a1'.repeat(20);
const H = (n: number) => '0x' + n.toString(16).padStart(64, 'e');
const TX = '0x' + 'cd'.repeat(32);
const ctx = {} as never;

const dirs: string[] = [];
const dbs: Db[] = [];
afterAll(async () => {
  for (const db of dbs) if (db.status === 'open') await db.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

let db: Db;
let subscriptions: SubscriptionStore;
let endpointId: string;
let deps: MatcherDeps;

beforeEach(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ethhook-matcher-finality-'));
  dirs.push(dir);
  db = await openDb(dir);
  dbs.push(db);
  const endpoints = new EndpointStore(new LevelKv(db), randomBytes(32));
  subscriptions = new SubscriptionStore(new LevelKv(db), endpoints);
  const outbox = await LevelOutbox.open(new LevelKv(db));
  endpointId = (await endpoints.create({ url: 'https://receiver.example/hook' })).endpoint.id;
  deps = { kv: new LevelKv(db), subscriptions, outbox, logger: createLogger({ level: 'silent' }), registry: new Registry() };
});

async function started(extra: Partial<MatcherDeps> = {}): Promise<Matcher> {
  const m = createMatcher({ ...deps, ...extra });
  await m.preStart!(ctx);
  return m;
}

const subscribe = (finality: Finality, confirmations?: number) =>
  subscriptions.create({ endpointId, chainId: 1, addresses: [A], finality, ...(confirmations === undefined ? {} : { confirmations }) });

function block(
  blockNumber: number,
  logCount: number,
  finality?: ChainBlockMessage['finality'],
  opts: { removed?: boolean; blockHash?: string } = {},
): ChainBlockMessage {
  const blockHash = opts.blockHash ?? H(blockNumber);
  const logs: ChainLog[] = Array.from({ length: logCount }, (_, logIndex) => ({
    address: A,
    topics: [],
    data: '0x',
    blockNumber,
    blockHash,
    transactionHash: TX,
    transactionIndex: 0,
    logIndex,
    removed: opts.removed ?? false,
  }));
  return {
    type: 'chain.block',
    chainId: 1,
    blockNumber,
    blockHash,
    parentHash: H(blockNumber - 1),
    timestamp: 1_700_000_000 + blockNumber,
    seenAt: 1_700_000_000_000 + blockNumber * 1000,
    removed: opts.removed ?? false,
    logs,
    ...(finality ? { finality } : {}),
  };
}

async function jobIds(): Promise<string[]> {
  return (await sublevel<Job>(db, 'outbox-jobs').values().all()).map((j) => j.id).sort();
}

describe('finality: jobs wait until their block is final', () => {
  it("'finalized': held while finalized < the block, released by the block whose heights reach it, with its seenAt", async () => {
    const sub = await subscribe('finalized');
    const latest = await subscriptions.create({ endpointId, chainId: 1, addresses: [A] });
    const m = await started();
    expect(await m.receive(block(100, 1, { safe: 99, finalized: 90 }), ctx)).toEqual({ ok: true, jobs: 1 });
    expect(await jobIds()).toEqual([webhookId(1, H(100), 0, latest.id, 'log.created')]);
    // `safe` passing the block does not release a 'finalized' job.
    expect(await m.receive(block(101, 0, { safe: 100, finalized: 99 }), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await m.receive(block(102, 0, { safe: 101, finalized: 100 }), ctx)).toEqual({ ok: true, jobs: 1 });
    const released = (await sublevel<Job>(db, 'outbox-jobs').values().all()).find((j) => j.subscriptionId === sub.id);
    expect(released).toMatchObject({ id: webhookId(1, H(100), 0, sub.id, 'log.created'), eventSeenAt: block(102, 0).seenAt });
    expect(await m.receive(block(103, 0, { safe: 102, finalized: 101 }), ctx)).toEqual({ ok: true, jobs: 0 });
  });

  it("'safe' is released by the safe height, or by a finalized one (a finalized block is safe)", async () => {
    await subscribe('safe');
    const m = await started();
    expect(await m.receive(block(100, 1, { safe: 99 }), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await m.receive(block(101, 0, { safe: 100 }), ctx)).toEqual({ ok: true, jobs: 1 });
    expect(await m.receive(block(102, 1, { finalized: 101 }), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await m.receive(block(103, 0, { finalized: 102 }), ctx)).toEqual({ ok: true, jobs: 1 });
  });

  it('a block final already is enqueued at once; an unknown tag holds jobs until it is known', async () => {
    await subscribe('finalized');
    const m = await started();
    expect(await m.receive(block(50, 2, { finalized: 60 }), ctx)).toEqual({ ok: true, jobs: 2 });
    expect(await m.receive(block(100, 1), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await m.receive(block(101, 0, { safe: 101 }), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await m.receive(block(102, 0, { finalized: 100 }), ctx)).toEqual({ ok: true, jobs: 1 });
    expect(await jobIds()).toHaveLength(3);
  });

  it('with confirmations too, a job waits for both', async () => {
    await subscribe('finalized', 5);
    const m = await started({ chainConfirmations: new Map([[1, 0]]) });
    await m.receive(block(100, 1, { finalized: 100 }), ctx);
    expect(await m.receive(block(104, 0, { finalized: 104 }), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await m.receive(block(105, 0, { finalized: 104 }), ctx)).toEqual({ ok: true, jobs: 1 });
    await m.receive(block(106, 1, { finalized: 90 }), ctx);
    expect(await m.receive(block(108, 0, { finalized: 106 }), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await m.receive(block(111, 0, { finalized: 106 }), ctx)).toEqual({ ok: true, jobs: 1 });
  });

  it('a log retracted while its job waits is never sent, neither created nor removed', async () => {
    await subscribe('finalized');
    const m = await started();
    await m.receive(block(100, 2, { finalized: 95 }), ctx);
    expect(await m.receive(block(100, 2, undefined, { removed: true }), ctx)).toEqual({ ok: true, jobs: 0 });
    await m.receive(block(100, 0, { finalized: 95 }, { blockHash: H(100_100) }), ctx);
    expect(await m.receive(block(101, 0, { finalized: 101 }), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await jobIds()).toEqual([]);
  });

  it('waiting jobs survive a restart and a block sent again, and are released once', async () => {
    const sub = await subscribe('safe');
    await started().then((m) => m.receive(block(100, 2, { safe: 98 }), ctx));
    const second = await started();
    expect(await second.receive(block(100, 2, { safe: 98 }), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await second.receive(block(101, 0, { safe: 100 }), ctx)).toEqual({ ok: true, jobs: 2 });
    expect(await second.receive(block(101, 0, { safe: 100 }), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await jobIds()).toEqual([0, 1].map((i) => webhookId(1, H(100), i, sub.id, 'log.created')).sort());
  });

  it('releases more waiting jobs than one batch holds', async () => {
    await subscribe('finalized');
    const m = await started();
    await m.receive(block(100, 1_500, { finalized: 1 }), ctx);
    await m.receive(block(101, 700, { finalized: 1 }), ctx);
    expect(await m.receive(block(102, 0, { finalized: 101 }), ctx)).toEqual({ ok: true, jobs: 2_200 });
    expect(await m.receive(block(103, 0, { finalized: 102 }), ctx)).toEqual({ ok: true, jobs: 0 });
  });
});

describe('finality: the heights moving between blocks (chain.finality)', () => {
  /** A finality message whose highest height was trusted from block `anchor` (default: H(its number)). */
  const moved = (
    finality: { safe?: number; finalized?: number },
    seenAt = 1_800_000_000_000,
    anchor?: { number: number; hash: string },
  ) => {
    const number = Math.max(finality.safe ?? 0, finality.finalized ?? 0);
    return { type: 'chain.finality', chainId: 1, finality, anchor: anchor ?? { number, hash: H(number) }, seenAt };
  };
  /** The chain cursor processed up to `n`, its window holding blocks `from..n` with hashes H(number). */
  const processed = async (n: number, from = n + 1) => {
    const cursors = new CursorStore(new LevelKv(db));
    for (let b = from; b <= n; b++) await cursors.append(1, { number: b, hash: H(b) }, [], 0, 1_000);
    await cursors.setPosition(1, { next: n + 1, floor: 0 });
  };

  it('releases what the new heights make final with no new block, with the message seenAt; a lower height releases nothing', async () => {
    const sub = await subscribe('finalized');
    const m = await started();
    await m.receive(block(100, 2, { finalized: 90 }), ctx);
    await processed(100, 95);
    expect(await m.receive(moved({ safe: 100, finalized: 99 }), ctx)).toEqual({ ok: true, jobs: 0 });
    const enqueued = async () =>
      (await deps.registry!.getSingleMetric('matcher_jobs_enqueued_total')!.get()).values.find((v) => v.labels.type === 'log.created')!
        .value;
    const before = await enqueued();
    expect(await m.receive(moved({ finalized: 100 }, 1_800_000_000_500), ctx)).toEqual({ ok: true, jobs: 2 });
    expect(await enqueued()).toBe(before + 2);
    const released = (await sublevel<Job>(db, 'outbox-jobs').values().all()).filter((j) => j.subscriptionId === sub.id);
    expect(released.map((j) => j.eventSeenAt)).toEqual([1_800_000_000_500, 1_800_000_000_500]);
    expect(await m.receive(moved({ finalized: 100 }), ctx)).toEqual({ ok: true, jobs: 0 });
    expect(await jobIds()).toEqual([0, 1].map((i) => webhookId(1, H(100), i, sub.id, 'log.created')).sort());
  });

  it("counts confirmations from the cursor's processed height; releases nothing before the cursor reaches the final block", async () => {
    await subscribe('finalized', 3);
    const m = await started({ chainConfirmations: new Map([[1, 0]]) });
    await m.receive(block(100, 1, { finalized: 90 }), ctx);
    // Not acknowledged while the cursor lacks the final block: the listener tells it again.
    const unanchored = { ok: false, code: 'ETHHOOK_ERR_FINALITY_UNANCHORED' };
    expect(await m.receive(moved({ finalized: 100 }), ctx)).toEqual(unanchored);
    await processed(99);
    expect(await m.receive(moved({ finalized: 100 }), ctx)).toEqual(unanchored);
    await processed(102);
    expect(await m.receive(moved({ finalized: 100 }), ctx)).toEqual({ ok: true, jobs: 0 });
    await processed(103);
    expect(await m.receive(moved({ finalized: 100 }), ctx)).toEqual({ ok: true, jobs: 1 });
  });

  it('releases nothing when the final block is not the one the cursor holds at its height (a retraction on its way)', async () => {
    await subscribe('finalized');
    const m = await started();
    await m.receive(block(100, 1, { finalized: 90 }), ctx);
    await processed(101, 99);
    expect(await m.receive(moved({ finalized: 101 }, 1, { number: 101, hash: H(100_101) }), ctx)).toEqual({
      ok: false,
      code: 'ETHHOOK_ERR_FINALITY_UNANCHORED',
    });
    expect(await jobIds()).toEqual([]);
    expect(await m.receive(moved({ finalized: 101 }), ctx)).toEqual({ ok: true, jobs: 1 });
  });

  it('refuses a message without heights or without the final block', async () => {
    const m = await started();
    const bad = { type: 'chain.finality', chainId: 1, seenAt: 1 };
    for (const msg of [bad, { ...bad, finality: { finalized: 3 } }, { ...bad, anchor: { number: 3, hash: H(3) } }])
      await expect(m.receive(msg, ctx)).rejects.toMatchObject({ code: 'ETHHOOK_ERR_MATCHER_BAD_MESSAGE' });
  });
});

describe('finality: a backfilled page', () => {
  // A page's blocks are at or below the processed height: they are as final as the chain's last
  // live block said, so the jobs of final blocks go at once and the others wait as live ones do.
  it("takes the finality heights of the chain's last live block: final blocks' jobs go at once, the others wait", async () => {
    const sub = await subscribe('finalized');
    const m = await started();
    const request = await new BackfillStore(new LevelKv(db)).start({ subscriptionId: sub.id, chainId: 1, from: 100 });
    await new CursorStore<{ number: number; hash: string }>(new LevelKv(db)).append(1, { number: 200, hash: H(200) }, [], 200, 64);
    const page = (numbers: number[], at: number) => ({
      type: 'backfill.page',
      chainId: 1,
      subscriptionId: sub.id,
      requestId: request.id,
      seenAt: 1,
      blocks: numbers.map((n) => {
        const b = block(n, 1);
        return { number: n, hash: b.blockHash, timestamp: b.timestamp, logs: b.logs };
      }),
      progress: { at, end: 130 },
    });
    // No live block yet: the chain's finalized block is not known, every job waits.
    expect(await m.receive(page([100, 101], 101), ctx)).toMatchObject({ ok: true, jobs: 0 });
    expect(await jobIds()).toEqual([]);
    // A live block (no logs of its own) with finalized 110 releases the jobs of 100 and 101.
    expect(await m.receive(block(201, 0, { finalized: 110 }), ctx)).toMatchObject({ ok: true });
    expect(await jobIds()).toEqual([100, 101].map((n) => webhookId(1, H(n), 0, sub.id, 'log.created')).sort());
    // Blocks 109..112 of a page: 109 and 110 are final, 111 and 112 wait.
    expect(await m.receive(page([109, 110, 111, 112], 112), ctx)).toMatchObject({ ok: true, jobs: 2 });
    expect(await jobIds()).toEqual([100, 101, 109, 110].map((n) => webhookId(1, H(n), 0, sub.id, 'log.created')).sort());
    expect(await m.receive(block(202, 0, { finalized: 112 }), ctx)).toMatchObject({ ok: true, jobs: 2 });
    expect(await jobIds()).toHaveLength(6);
  });
});
