// Faults of the database itself, end to end: a real node process on a PostgreSQL server of the test's
// own (test/support/pg-server.ts), following a real anvil while logs are emitted continuously, delivering
// to a real receiver.
// - PostgreSQL stopped for 10 s during traffic: the node stays up, /ready answers 503 naming the store
//   while it is unreachable (store_up 0), and once the server is back every log emitted before, during
//   and after the outage is delivered, signed, with the chain's payload, and nothing is dead-lettered;
//   /ready is 200 again and store_up 1.
// - Statement timeouts under the deliveries' outbox writes (the test holds an exclusive lock on
//   outbox_jobs for longer than the node's statementTimeoutMs, while answers come in): every timeout is
//   retried, every job delivered, none dead-lettered.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeadLetterView, EndpointCreated, SubscriptionAnswer } from '../support/admin-answers.ts';
import { createNodeDir, killAllNodes, startNodeProcess, type NodeDir, type NodeProcess } from '../support/node-process.ts';
import { startPgServer, type PgServer } from '../support/pg-server.ts';
import { startReceiver, type Behaviour, type Receiver } from '../support/receiver.ts';
import {
  body,
  byWebhookId,
  CHAIN_ID,
  expectedId,
  expectWellFormed,
  nodeChain,
  payloadData,
  sleep,
  startTickChain,
  waitUntil,
  type TickChain,
} from './e2e-chain.ts';

const OUTAGE_MS = 10_000;

let server: PgServer;
let chain: TickChain;
const dirs: NodeDir[] = [];
const receivers: Receiver[] = [];

beforeAll(async () => {
  [server, chain] = await Promise.all([startPgServer(), startTickChain()]);
});

afterAll(async () => {
  await killAllNodes();
  await Promise.all(receivers.map((r) => r.close()));
  await chain?.stop();
  await server?.close();
  await Promise.all(dirs.map((d) => d.remove()));
});

interface Setup {
  node: NodeProcess;
  receiver: Receiver;
  contract: string;
  subscriptionId: string;
  /** Exits of the node, as they happen (none is expected). */
  exits: Array<number | string | null>;
}

/** A node on `schema` of the test's server, one endpoint and one subscription on a new contract. */
async function setup(schema: string, store: Record<string, unknown>, behaviour?: Behaviour): Promise<Setup> {
  const secrets = new Map<string, string>();
  const receiver = await startReceiver({
    ...(behaviour ? { behaviour } : {}),
    secrets: (path) => [secrets.get(path)].filter((s) => s !== undefined),
  });
  receivers.push(receiver);
  const dir = await createNodeDir();
  dirs.push(dir);
  const node = await startNodeProcess({
    dir,
    config: {
      node: { id: `outage-${schema}` },
      chains: [nodeChain(chain)],
      store: { kind: 'postgres', url: server.url, schema, ...store },
      security: { allowPrivateTargets: true },
      deliverer: { requestTimeoutMs: 2_000, retry: { scheduleMs: [0, 200, 500, 1_000, 2_000], jitter: 0.2 } },
    },
  });
  const exits: Setup['exits'] = [];
  node.child.once('exit', (code, signal) => exits.push(code ?? signal));
  const created = await node.api<EndpointCreated>('POST', '/v1/endpoints', { url: `${receiver.url}/hook`, description: schema });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  secrets.set('/hook', created.body.secret);
  const contract = await chain.deploy();
  const sub = await node.api<SubscriptionAnswer>('POST', '/v1/subscriptions', {
    endpointId: created.body.endpoint.id,
    chainId: CHAIN_ID,
    addresses: [contract],
  });
  expect(sub.status, JSON.stringify(sub.body)).toBe(201);
  return { node, receiver, contract, subscriptionId: sub.body.subscription.id, exits };
}

/** Emits 1-3 logs per block, a block every ~100 ms, until `stop()`; resolves with the blocks sent. */
function traffic(contract: string): { stop(): Promise<number> } {
  let on = true;
  let blocks = 0;
  const loop = (async () => {
    while (on) {
      await chain.tick(contract, 1 + (blocks % 3));
      blocks++;
      await sleep(100);
    }
  })();
  return {
    async stop() {
      on = false;
      await loop;
      return blocks;
    },
  };
}

/** Every log of `contract` delivered, as the chain has it, signed; nothing else; no dead letter. */
async function expectEverythingDelivered(s: Setup, timeoutMs: number): Promise<number> {
  const logs = await chain.logs(s.contract);
  const expected = new Map(
    logs.map((log) => {
      const data = payloadData(log, s.subscriptionId);
      return [expectedId(data, 'log.created'), data] as const;
    }),
  );
  await waitUntil(
    () => s.receiver.deliveredIds().size >= expected.size,
    timeoutMs,
    () => `${expected.size} deliveries (${s.receiver.deliveredIds().size} so far)`,
  );
  expect([...s.receiver.deliveredIds()].sort()).toEqual([...expected.keys()].sort());
  expectWellFormed(s.receiver.requests);
  for (const r of s.receiver.requests) expect(body(r)).toMatchObject({ type: 'log.created', data: expected.get(r.webhookId!) });
  // A retry (an answer whose outbox write was cut off) carries the same body.
  for (const [id, copies] of byWebhookId(s.receiver.requests)) expect(new Set(copies.map((c) => c.body)).size, id).toBe(1);
  const dead = await s.node.api<{ data: DeadLetterView[] }>('GET', '/v1/dead-letters?limit=1000');
  expect(dead.status).toBe(200);
  expect(dead.body.data).toEqual([]);
  expect(await s.node.metric('webhook_dead_letters')).toBe(0);
  return expected.size;
}

interface Ready {
  ready: boolean;
  reasons: string[];
}

describe('PostgreSQL outage', () => {
  it('the node stays up through 10 s without its database, says so on /ready, and then delivers everything, nothing dead-lettered', async () => {
    const s = await setup('outage', {});
    const flow = traffic(s.contract);
    await waitUntil(() => s.receiver.deliveredIds().size >= 10, 30_000, 'deliveries flowing before the outage');

    await server.stop();
    const stoppedAt = Date.now();
    let ready: { status: number; body: Ready } | undefined;
    await waitUntil(
      async () => {
        ready = await s.node.api<Ready>('GET', '/ready');
        return ready.status === 503 && ready.body.reasons.some((r) => r.startsWith('store unreachable'));
      },
      15_000,
      () => `/ready 503 naming the store (last: ${JSON.stringify(ready)})`,
    );
    await waitUntil(async () => (await s.node.metric('store_up')) === 0, 15_000, 'store_up 0');
    const deliveredBefore = s.receiver.deliveredIds().size;
    // The fault: 10 s of traffic the node must take in with no database.
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt)));
    expect(s.exits).toEqual([]);
    expect((await s.node.api<Ready>('GET', '/ready')).status).toBe(503);
    await server.start();

    const blocks = await flow.stop();
    const delivered = await expectEverythingDelivered(s, 90_000);
    expect(delivered).toBeGreaterThan(deliveredBefore + 20);
    await waitUntil(async () => (await s.node.api('GET', '/ready')).status === 200, 30_000, '/ready 200 again');
    expect(await s.node.metric('store_up')).toBe(1);
    expect(s.exits).toEqual([]);
    console.info(
      `store outage e2e: ${blocks} blocks, ${delivered} webhooks, ${s.receiver.count} requests, ${deliveredBefore} delivered before the outage`,
    );
  }, 180_000);

  it('statement timeouts under the outbox writes are retried: every job delivered once, none dead-lettered', async () => {
    const STATEMENT_TIMEOUT_MS = 300;
    const LOCK_MS = 3_000;
    const schema = 'timeouts';
    let locking: Promise<void> | undefined;
    // The first answer starts the lock, and is itself sent once the lock is held: the writes of its
    // outcome, and of every answer in the next 3 s, meet the lock and time out.
    const holdLock = async (): Promise<void> => {
      const client = new pg.Client({ connectionString: server.url, options: `-c search_path=${schema}` });
      await client.connect();
      try {
        await client.query('BEGIN');
        await client.query('LOCK TABLE outbox_jobs IN ACCESS EXCLUSIVE MODE');
        lockHeld = true;
        await sleep(LOCK_MS);
        await client.query('COMMIT');
      } finally {
        await client.end();
      }
    };
    let lockHeld = false;
    const behaviour: Behaviour = () => {
      locking ??= holdLock();
      return { status: 200, body: 'ok', delayMs: 200 };
    };
    const s = await setup(schema, { statementTimeoutMs: STATEMENT_TIMEOUT_MS }, behaviour);
    for (let i = 0; i < 10; i++) await chain.tick(s.contract, 3);
    await waitUntil(() => locking !== undefined, 30_000, 'the first delivery');
    await locking;
    expect(lockHeld).toBe(true);
    const delivered = await expectEverythingDelivered(s, 60_000);
    expect(delivered).toBe(30);
    // Each job reached the receiver once: its completion waited out the lock instead of failing.
    expect(s.receiver.count).toBe(30);
    const timeouts = (await s.node.metric('store_errors_total', { op: 'outbox.commit', kind: 'timeout' })) ?? 0;
    expect(timeouts).toBeGreaterThan(0);
    expect(s.exits).toEqual([]);
  }, 120_000);
});
