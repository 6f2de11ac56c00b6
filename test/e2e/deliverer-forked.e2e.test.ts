// A real node (child process) whose Deliverer runs forked (`runtime.actors.deliverer.placement:
// 'forked'`) in a process of its own, while the store stays in the node behind the deliverer-store
// actor. Blocks from a real anvil become signed webhooks that verify; /actors/health shows the
// deliverer in a process other than the node's; a `kill -9` of that process while blocks and
// deliveries flow is a crash the supervisor restarts from (actor_restarts_total{reason="crash"}), and
// every matched log still reaches the receiver (distinct webhook-ids == expected, at least once).
// The node's /metrics counts the deliveries the child made.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TICK_TOPIC } from '../../src/dev-chain/contract.ts';
import type { ActorSnapshot } from '../../src/runtime/types.ts';
import type { EndpointCreated, SubscriptionAnswer } from '../support/admin-answers.ts';
import { createNodeDir, killAllNodes, startNodeProcess, type NodeDir, type NodeProcess } from '../support/node-process.ts';
import { mulberry32, startReceiver, type Receiver } from '../support/receiver.ts';
import {
  CHAIN_ID,
  expectedId,
  expectWellFormed,
  nodeChain,
  payloadData,
  sleep,
  startTickChain,
  succeeded,
  waitUntil,
  type TickChain,
} from './e2e-chain.ts';
import { findActor, isAlive } from '../support/kernel.ts';

const SEED = 0xf0e;

let chain: TickChain;
let dir: NodeDir;
let receiver: Receiver;
let secret = '';

beforeAll(async () => {
  chain = await startTickChain();
  dir = await createNodeDir();
  const random = mulberry32(SEED);
  // Answers take 20-200 ms, so the kill lands while requests are in flight.
  receiver = await startReceiver({ behaviour: () => ({ status: 200, delayMs: 20 + Math.floor(random() * 180) }), secrets: () => [secret] });
});

afterAll(async () => {
  await killAllNodes();
  await receiver?.close();
  await chain?.stop();
  await dir?.remove();
});

async function actor(n: NodeProcess, path: string): Promise<ActorSnapshot | undefined> {
  const res = await n.api<{ tree: ActorSnapshot }>('GET', '/actors/health');
  expect(res.status).toBe(200);
  return findActor(res.body.tree, path);
}

describe('the Deliverer placed forked in a real node', () => {
  it('delivers signed webhooks from its own process, and loses nothing when that process is killed', async () => {
    const random = mulberry32(SEED + 1);
    const n = await startNodeProcess({
      dir,
      config: {
        chains: [nodeChain(chain)],
        security: { allowPrivateTargets: true },
        deliverer: { requestTimeoutMs: 2_000, retry: { scheduleMs: [0, 200, 500, 1000, 2000, 2000, 2000, 2000], jitter: 0.2 } },
        runtime: { actors: { deliverer: { placement: 'forked' } } },
      },
    });

    // The tree: the deliverer in a child process, its store actor in the node's.
    const deliverer = (await actor(n, '/pipeline/deliverer'))!;
    expect(deliverer).toMatchObject({ placement: 'forked', state: 'running' });
    expect(deliverer.pid).not.toBeNull();
    expect(deliverer.pid).not.toBe(n.pid);
    expect(isAlive(deliverer.pid!)).toBe(true);
    expect(await actor(n, '/pipeline/deliverer-store')).toMatchObject({ placement: 'local', pid: n.pid, state: 'running' });

    const contract = await chain.deploy();
    const created = await n.api<EndpointCreated>('POST', '/v1/endpoints', { url: `${receiver.url}/forked` });
    expect(created.status).toBe(201);
    secret = created.body.secret;
    const endpointId = created.body.endpoint.id;
    const subs: string[] = [];
    for (const filter of [{ topics: [TICK_TOPIC] }, {}]) {
      const res = await n.api<SubscriptionAnswer>('POST', '/v1/subscriptions', {
        endpointId,
        chainId: CHAIN_ID,
        addresses: [contract],
        ...filter,
      });
      expect(res.status).toBe(201);
      subs.push(res.body.subscription.id);
    }
    const expectedIds = async () => {
      const logs = await chain.logs(contract);
      return new Set(logs.flatMap((log) => subs.map((sub) => expectedId(payloadData(log, sub), 'log.created'))));
    };

    // Before the kill: a few blocks, every webhook delivered from the child.
    for (let i = 0; i < 5; i++) await chain.tick(contract, 2);
    const early = await expectedIds();
    expect(early.size).toBe(20);
    await waitUntil(
      () => [...early].every((id) => receiver.deliveredIds().has(id)),
      30_000,
      () => `${early.size} deliveries (${receiver.deliveredIds().size} so far)`,
    );
    // The child reports its counts to the node every second.
    const counted = async () => (await n.metric('webhook_deliveries_total', { status: 'success' })) ?? 0;
    await waitUntil(async () => (await counted()) >= early.size, 10_000, 'the early deliveries counted in the node');
    const countedEarly = await counted();

    // Blocks keep coming; the deliverer's process is killed while requests are in flight.
    let ticking = true;
    const ticker = (async () => {
      while (ticking) {
        await chain.tick(contract, 1 + Math.floor(random() * 3));
        await sleep(50 + random() * 100);
      }
    })();
    let restartSeenAt = 0;
    try {
      await sleep(800);
      await waitUntil(() => receiver.inFlight > 0, 10_000, 'a request in flight');
      process.kill(deliverer.pid!, 'SIGKILL');
      await waitUntil(
        async () => {
          const now = await actor(n, '/pipeline/deliverer');
          return now?.state === 'running' && now.pid !== null && now.pid !== deliverer.pid;
        },
        30_000,
        'the deliverer running in a new process',
      );
      restartSeenAt = Date.now();
      await sleep(1_500);
    } finally {
      ticking = false;
      await ticker;
    }
    expect(isAlive(deliverer.pid!)).toBe(false);
    expect(await n.metric('actor_restarts_total', { actor: '/pipeline/deliverer', reason: 'crash' })).toBeGreaterThanOrEqual(1);
    const restarted = (await actor(n, '/pipeline/deliverer'))!;
    expect(restarted.pid).not.toBe(n.pid);
    expect(restarted.incarnation).toBeGreaterThan(deliverer.incarnation);

    // Every matched log reached the receiver, signed, at least once; nothing else did.
    const expected = await expectedIds();
    await waitUntil(
      () => receiver.deliveredIds().size >= expected.size,
      60_000,
      () => `${expected.size} deliveries (${receiver.deliveredIds().size} so far)`,
    );
    expect(receiver.deliveredIds()).toEqual(expected);
    expectWellFormed(receiver.requests);

    // The node's /metrics has what the children did: every success of the new child (the killed one's
    // last second of counts went with it, store-port.ts), and the outbox drained.
    const afterRestart = receiver.requests.filter((r) => r.at > restartSeenAt && succeeded(r)).length;
    await waitUntil(
      async () => (await counted()) >= countedEarly + afterRestart,
      10_000,
      () => `${countedEarly} + ${afterRestart} deliveries counted in the node`,
    );
    await waitUntil(async () => (await n.metric('webhook_queue_depth')) === 0, 10_000, 'an empty outbox');
    expect(await n.metric('webhook_delivery_duration_seconds_count')).toBeGreaterThanOrEqual(expected.size);
    console.info(
      `deliverer forked e2e: ${expected.size} webhooks, ${receiver.count} requests, child pids ${deliverer.pid} -> ${restarted.pid}`,
    );

    // A graceful stop ends the deliverer's process with the node.
    n.kill('SIGTERM');
    expect((await n.waitForExit(20_000)).code).toBe(0);
    await waitUntil(() => !isAlive(restarted.pid!), 5_000, 'the deliverer process gone');
  });
});
