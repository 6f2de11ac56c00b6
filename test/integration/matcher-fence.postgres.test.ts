// The Matcher's writes fenced by its chain's lease, on a real PostgreSQL: a block carrying the fence of
// the lease as held writes its jobs and match records; after another instance took the lease, a block
// carrying the old fence writes nothing (no job, no match record, no deferred job) and is answered
// { ok: false, code: 'ETHHOOK_ERR_LEASE_LOST' } instead of failing the actor, and the cursor ops it
// carries are not written either; the new holder's block writes normally, its cursor ops with its jobs.
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createMatcher } from '../../src/actors/matcher/matcher.ts';
import type { ChainBlockMessage } from '../../src/actors/matcher/messages.ts';
import { chainLease } from '../../src/cluster/coordinator.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { CursorStore } from '../../src/store/cursors.ts';
import { EndpointStore } from '../../src/store/endpoints.ts';
import type { KvFence } from '../../src/store/kv.ts';
import { PgClusterStore } from '../../src/store/postgres/cluster.ts';
import { PgKv } from '../../src/store/postgres/kv.ts';
import { PgOutbox } from '../../src/store/postgres/outbox.ts';
import { SubscriptionStore } from '../../src/store/subscriptions.ts';
import { freshPgPool, type TestPgPool } from '../support/postgres.ts';

const logger = createLogger({ level: 'silent' });
const H = (n: number) => '0x' + n.toString(16).padStart(64, 'e');
const A = '0x' + 'a1'.repeat(20);
let pool: TestPgPool;
let outbox: PgOutbox;

beforeAll(async () => {
  pool = await freshPgPool('matcher_fence');
});
afterAll(async () => {
  await outbox?.close();
  await pool.drop();
});

function block(blockNumber: number, fence: KvFence): ChainBlockMessage {
  const blockHash = H(blockNumber);
  return {
    type: 'chain.block',
    chainId: 1,
    blockNumber,
    blockHash,
    parentHash: H(blockNumber - 1),
    timestamp: 1_700_000_000 + blockNumber,
    seenAt: Date.now(),
    removed: false,
    logs: [0, 1].map((logIndex) => ({
      address: A,
      topics: [],
      data: '0x',
      blockNumber,
      blockHash,
      transactionHash: '0x' + 'cd'.repeat(32),
      transactionIndex: 0,
      logIndex,
      removed: false,
    })),
    fence,
    cursor: cursors.appendOps(1, { number: blockNumber, hash: blockHash }, [], blockNumber, 64),
  };
}

let cursors: CursorStore<{ number: number; hash: string }>;

it('writes a block fenced by the lease as held, and nothing of one fenced by a lease taken over since', async () => {
  const kv = new PgKv(pool);
  cursors = new CursorStore(kv);
  outbox = await PgOutbox.open(pool, kv, { owner: 'a' });
  const endpoints = new EndpointStore(kv, randomBytes(32));
  const subscriptions = new SubscriptionStore(kv, endpoints);
  const { endpoint } = await endpoints.create({ url: 'https://receiver.example/hook' });
  await subscriptions.create({ endpointId: endpoint.id, chainId: 1 });
  await subscriptions.create({ endpointId: endpoint.id, chainId: 1, confirmations: 5 });
  const matcher = createMatcher({ kv, subscriptions, outbox, logger, registry: new Registry(), chainConfirmations: new Map([[1, 0]]) });
  await matcher.preStart!({} as never);

  const name = chainLease(1);
  const a = new PgClusterStore(pool, { id: 'a', version: 'test' }, 1_000);
  const b = new PgClusterStore(pool, { id: 'b', version: 'test' }, 1_000);
  const epochA = (await a.acquire(name, 60_000))!;
  const fenceA: KvFence = { type: 'fence', lease: name, holder: 'a', epoch: epochA };
  expect(await matcher.receive(block(10, fenceA), {} as never)).toEqual({ ok: true, jobs: 2, persisted: true });
  expect((await cursors.position(1))?.next).toBe(11);

  const rows = async () => {
    const { rows: r } = await pool.run('t', (c) =>
      c.query<{ jobs: number; kv: number }>(
        `SELECT (SELECT count(*) FROM outbox_jobs)::int AS jobs, (SELECT count(*) FROM kv WHERE space IN ('matches', 'deferred-jobs'))::int AS kv`,
      ),
    );
    return r[0]!;
  };
  const before = await rows();
  expect(before.jobs).toBe(2);

  // b takes the lease over (a's expired or was released): a's fence is stale.
  await a.forceRelease(name, 0);
  const epochB = (await b.acquire(name, 60_000))!;
  expect(epochB).toBe(epochA + 1);
  expect(await matcher.receive(block(11, fenceA), {} as never)).toEqual({ ok: false, code: 'ETHHOOK_ERR_LEASE_LOST' });
  expect(await rows()).toEqual(before);
  expect((await cursors.position(1))?.next).toBe(11);

  const fenceB: KvFence = { type: 'fence', lease: name, holder: 'b', epoch: epochB };
  expect(await matcher.receive(block(11, fenceB), {} as never)).toEqual({ ok: true, jobs: 2, persisted: true });
  expect((await rows()).jobs).toBe(4);
  expect((await cursors.position(1))?.next).toBe(12);
});
