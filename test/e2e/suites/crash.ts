// The durability contract end to end: a real node process is `kill -9`ed five times at random moments
// while blocks are mined and webhooks are in flight, and restarted each time on the same store (its
// dataDir, or its PostgreSQL schema).
// Kills alternate: a random time after the node runs, then a random time after it was spawned (most
// of those land while it starts: opening the store, backfilling from its cursor).
// At the end every matched log has reached the receiver, for each matching subscription (distinct
// webhook-ids == expected), nothing else did, and every request the receiver was still answering when
// the process died was delivered again after the restart, with the same webhook-id and body.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TICK_TOPIC } from '../../../src/dev-chain/contract.ts';
import type { EndpointCreated, SubscriptionAnswer } from '../../support/admin-answers.ts';
import {
  createNodeDir,
  killAllNodes,
  spawnNodeProcess,
  openedStore,
  startNodeProcess,
  testStore,
  type NodeDir,
  type StartNodeOptions,
  type StoreKind,
} from '../../support/node-process.ts';
import { mulberry32, startReceiver, type Receiver } from '../../support/receiver.ts';
import {
  byWebhookId,
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
} from '../e2e-chain.ts';

const KILLS = 5;
const SEED = 0xe2e;

/** The kill -9 loop on a node whose store is `store`; every restart opens the same store. */
export function crashSuite(store: StoreKind): void {
  const storeConfig = testStore(store);
  let chain: TickChain;
  let dir: NodeDir;
  let receiver: Receiver;
  let secret = '';

  const options = (): StartNodeOptions => ({
    dir,
    config: {
      store: storeConfig,
      chains: [nodeChain(chain)],
      security: { allowPrivateTargets: true },
      deliverer: { requestTimeoutMs: 2_000, retry: { scheduleMs: [0, 200, 500, 1000, 2000, 2000, 2000, 2000, 2000, 2000], jitter: 0.2 } },
    },
  });

  beforeAll(async () => {
    chain = await startTickChain();
    dir = await createNodeDir();
    const random = mulberry32(SEED);
    // Answers take 20-250 ms, so kills land while requests are in flight.
    receiver = await startReceiver({
      behaviour: () => ({ status: 200, delayMs: 20 + Math.floor(random() * 230) }),
      secrets: () => [secret],
    });
  });

  afterAll(async () => {
    await killAllNodes();
    await receiver?.close();
    await chain?.stop();
    await dir?.remove();
  });

  describe(`kill -9 while blocks and deliveries flow (${store})`, () => {
    // Its time is the kill loop (~17 s: six starts and the random waits) plus the catch-up of the
    // backlog it left, sent to a receiver answering in 20-250 ms (~10 s): 30-40 s on a quiet machine,
    // past the default 60 s limit when the CPU is shared with other files.
    it(`loses nothing across ${KILLS} kills and restarts on the same store`, { timeout: 120_000 }, async () => {
      const random = mulberry32(SEED + 1);
      let node = await startNodeProcess(options());
      expect(openedStore(node)).toBe(store);
      const contract = await chain.deploy();
      const created = await node.api<EndpointCreated>('POST', '/v1/endpoints', { url: `${receiver.url}/crash` });
      expect(created.status).toBe(201);
      secret = created.body.secret;
      const endpointId = created.body.endpoint.id;
      const subs: string[] = [];
      for (const filter of [{ topics: [TICK_TOPIC] }, {}]) {
        const res = await node.api<SubscriptionAnswer>('POST', '/v1/subscriptions', {
          endpointId,
          chainId: CHAIN_ID,
          addresses: [contract],
          ...filter,
        });
        expect(res.status).toBe(201);
        subs.push(res.body.subscription.id);
      }

      // Blocks keep coming, node up or down: one transaction of 1-4 logs every 50-150 ms.
      let ticking = true;
      const ticker = (async () => {
        while (ticking) {
          await chain.tick(contract, 1 + Math.floor(random() * 4));
          await sleep(50 + random() * 100);
        }
      })();

      const exits: Array<{ code: number | null; signal: NodeJS.Signals | null }> = [];
      const killedAt: number[] = [];
      let whileStarting = 0;
      const loopStarted = Date.now();
      try {
        for (let k = 0; k < KILLS; k++) {
          if (k % 2 === 0) {
            await node.running;
            await sleep(200 + random() * 2_300);
            // Then, within 5 s, a moment when a request is being answered (its reply 60 ms or more
            // away), so that this kill cuts one off (checked below).
            await waitUntil(
              () => receiver.requests.some((r) => 'status' in r.reply && r.at + (r.reply.delayMs ?? 0) > Date.now() + 60),
              5_000,
              'a request in flight',
            ).catch(() => undefined);
          } else {
            await sleep(100 + random() * 1_400);
          }
          if (node.adminUrl === '') whileStarting++;
          killedAt.push(Date.now());
          node.kill('SIGKILL');
          exits.push(await node.waitForExit(10_000));
          await sleep(random() * 800);
          node = k === KILLS - 1 ? await startNodeProcess(options()) : await spawnNodeProcess(options());
        }
        await sleep(1_000);
      } finally {
        ticking = false;
        await ticker;
      }
      expect(exits).toEqual(Array.from({ length: KILLS }, () => ({ code: null, signal: 'SIGKILL' })));

      const loopEnded = Date.now();
      const logs = await chain.logs(contract);
      const expected = new Set(logs.flatMap((log) => subs.map((sub) => expectedId(payloadData(log, sub), 'log.created'))));
      expect(expected.size).toBe(logs.length * subs.length);
      await waitUntil(
        () => receiver.deliveredIds().size >= expected.size,
        60_000,
        () => `${expected.size} deliveries (${receiver.deliveredIds().size} so far)`,
      );
      const caughtUp = Date.now();
      expect(receiver.deliveredIds()).toEqual(expected);
      expectWellFormed(receiver.requests);

      // A request still unanswered when the process died (its answer came > 50 ms after the kill) was
      // never acknowledged to the outbox: it must come again after the restart, the same webhook.
      const groups = byWebhookId(receiver.requests);
      let cutOff = 0;
      for (const t of killedAt) {
        for (const r of receiver.requests) {
          const answeredAt = r.at + ('status' in r.reply ? (r.reply.delayMs ?? 0) : 0);
          if (r.at > t || answeredAt < t + 50) continue;
          cutOff++;
          const again = groups.get(r.webhookId!)!.filter((later) => later.at > t);
          expect(again.length, `${r.webhookId} cut off by the kill at ${t}`).toBeGreaterThan(0);
          for (const later of again) expect(later.body).toBe(r.body);
        }
      }
      expect(cutOff, 'kills that landed while requests were in flight').toBeGreaterThan(0);
      const redelivered = [...groups.values()].filter((g) => g.filter(succeeded).length > 1);
      for (const g of redelivered) expect(new Set(g.map((r) => r.body)).size).toBe(1);
      console.info(
        `crash e2e (${store}): ${logs.length} logs over ${new Set(logs.map((l) => l.blockNumber)).size} blocks, ` +
          `${expected.size} webhooks, ${receiver.count} requests, ${whileStarting} of ${KILLS} kills while starting, ` +
          `${cutOff} requests cut off by a kill, ${redelivered.length} webhooks delivered more than once; ` +
          `kill loop ${((loopEnded - loopStarted) / 1000).toFixed(1)} s, catch-up ${((caughtUp - loopEnded) / 1000).toFixed(1)} s`,
      );
      node.kill('SIGTERM');
      expect((await node.waitForExit(15_000)).code).toBe(0);
    });
  });
}
