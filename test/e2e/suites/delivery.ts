// End to end, one real node process (`ethhook start --config`) following a real anvil, delivering to
// real HTTP receivers on loopback: every matching log arrives once per matching subscription, signed
// (verified with `standardwebhooks`), with the payload of the issue; a receiver failing 30% of the
// requests (500s and hangs past the request timeout) still gets everything, each retry carrying the
// same webhook-id and the same body, and the attempt log shows every attempt the receiver saw.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TICK_TOPIC } from '../../../src/dev-chain/contract.ts';
import type { AttemptRecord, EndpointCreated, Page, SubscriptionAnswer } from '../../support/admin-answers.ts';
import {
  createNodeDir,
  killAllNodes,
  openedStore,
  startNodeProcess,
  testStore,
  type NodeDir,
  type NodeProcess,
  type StoreKind,
} from '../../support/node-process.ts';
import { failRatio, startReceiver, type Receiver } from '../../support/receiver.ts';
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
  succeeded,
  waitUntil,
  type TickChain,
} from '../e2e-chain.ts';

const OTHER_TOPIC = `0x${'ab'.repeat(32)}`;
const REQUEST_TIMEOUT_MS = 1_000;

/** The delivery scenarios on one node whose store is `store`. */
export function deliverySuite(store: StoreKind): void {
  const storeConfig = testStore(store);
  let chain: TickChain;
  let dir: NodeDir;
  let node: NodeProcess;
  const receivers: Receiver[] = [];
  /** Receiver path → the endpoint's secret, filled in as endpoints are created. */
  const secrets = new Map<string, string>();

  async function receiver(options: Parameters<typeof startReceiver>[0] = {}): Promise<Receiver> {
    const r = await startReceiver({ ...options, secrets: (path) => [secrets.get(path)].filter((s) => s !== undefined) });
    receivers.push(r);
    return r;
  }

  async function createEndpoint(r: Receiver, path: string): Promise<string> {
    const res = await node.api<EndpointCreated>('POST', '/v1/endpoints', { url: `${r.url}${path}`, description: path });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.secret).toMatch(/^whsec_/);
    secrets.set(path, res.body.secret);
    return res.body.endpoint.id;
  }

  async function subscribe(filter: Record<string, unknown>): Promise<string> {
    const res = await node.api<SubscriptionAnswer>('POST', '/v1/subscriptions', { chainId: CHAIN_ID, ...filter });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.subscription.id;
  }

  beforeAll(async () => {
    chain = await startTickChain();
    dir = await createNodeDir();
    node = await startNodeProcess({
      dir,
      config: {
        store: storeConfig,
        chains: [nodeChain(chain)],
        security: { allowPrivateTargets: true },
        deliverer: {
          requestTimeoutMs: REQUEST_TIMEOUT_MS,
          // Twelve attempts: a job failing all of them at a 30% failure rate is a one-in-two-million event.
          retry: { scheduleMs: [0, 200, 500, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 2000, 4000], jitter: 0.2 },
          circuitBreaker: { failureThreshold: 5, cooldownMs: 1000 },
        },
      },
    });
    expect(openedStore(node)).toBe(store);
  });

  afterAll(async () => {
    await killAllNodes();
    await Promise.all(receivers.map((r) => r.close()));
    await chain?.stop();
    await dir?.remove();
  });

  describe(`delivery (${store})`, () => {
    it('delivers every matching log once per matching subscription, signed, with the payload of the issue', async () => {
      const r = await receiver();
      const [watched, unwatched] = [await chain.deploy(), await chain.deploy()];
      const endpointId = await createEndpoint(r, '/all');
      const byTopic = await subscribe({ endpointId, addresses: [watched], topics: [TICK_TOPIC] });
      const byAddress = await subscribe({ endpointId, addresses: [watched] });
      const none = await subscribe({ endpointId, addresses: [watched], topics: [OTHER_TOPIC] });

      // 200 watched logs over 25 blocks, and logs of another contract in between that nothing matches.
      for (let i = 0; i < 25; i++) {
        await chain.tick(watched, 8);
        if (i % 5 === 0) await chain.tick(unwatched, 3);
      }
      const logs = await chain.logs(watched);
      expect(logs).toHaveLength(200);
      expect(new Set(logs.map((l) => l.blockNumber)).size).toBe(25);
      expect(await chain.logs(unwatched)).toHaveLength(15);

      const expected = new Map(
        logs.flatMap((log) =>
          [byTopic, byAddress].map((sub) => {
            const data = payloadData(log, sub);
            return [expectedId(data, 'log.created'), data] as const;
          }),
        ),
      );
      expect(expected.size).toBe(400);
      await waitUntil(
        () => r.deliveredIds().size >= expected.size,
        60_000,
        () => `400 deliveries (${r.deliveredIds().size} so far)`,
      );

      expect([...r.deliveredIds()].sort()).toEqual([...expected.keys()].sort());
      expectWellFormed(r.requests);
      for (const req of r.requests) {
        expect(req.path).toBe('/all');
        expect(body(req).type).toBe('log.created');
        expect(body(req).data).toEqual(expected.get(req.webhookId!));
      }
      expect(r.requests.some((req) => body(req).data.subscriptionId === none)).toBe(false);
      // A receiver that always answers 200 gets each webhook once; a second copy could only come from an
      // answer slower than the request timeout on a loaded machine, and would be the same webhook.
      for (const [id, copies] of byWebhookId(r.requests)) expect(new Set(copies.map((c) => c.body)).size, id).toBe(1);
      expect(r.requests.length).toBeLessThan(400 * 1.05);
      // The node that delivered all of it says it is ready: its store answers.
      expect(await node.api('GET', '/ready')).toMatchObject({ status: 200, body: { ready: true, reasons: [] } });
    });

    // pipeline_stage_seconds: every stage was reached by the events above, and the stages are cumulative
    // times since the block was seen, so over the same events a stage's mean is at least the one before
    // it: matched and committed (blocks with a match), sent and answered (first attempts). `fetched`
    // counts every block, matched or not, so its mean is not compared.
    it('reports where time goes, stage by stage, as pipeline_stage_seconds', async () => {
      const r = await receiver();
      const contract = await chain.deploy();
      await subscribe({ endpointId: await createEndpoint(r, '/stages'), addresses: [contract] });
      for (let i = 0; i < 5; i++) await chain.tick(contract, 4);
      await waitUntil(
        () => r.deliveredIds().size >= 20,
        30_000,
        () => `20 deliveries (${r.deliveredIds().size} so far)`,
      );
      const stage = async (name: string) => ({
        count: (await node.metric('pipeline_stage_seconds_count', { stage: name })) ?? 0,
        sum: (await node.metric('pipeline_stage_seconds_sum', { stage: name })) ?? 0,
      });
      const [fetched, matched, committed, sent, answered] = await Promise.all(
        ['fetched', 'matched', 'committed', 'sent', 'answered'].map(stage),
      );
      expect(fetched!.count).toBeGreaterThanOrEqual(5);
      expect(matched!.count).toBeGreaterThanOrEqual(5);
      expect(committed!.count).toBeGreaterThanOrEqual(5);
      expect(sent!.count).toBeGreaterThanOrEqual(20);
      expect(answered!.count).toBe(sent!.count);
      const mean = (s: { count: number; sum: number }) => s.sum / s.count;
      expect(mean(matched!)).toBeLessThanOrEqual(mean(committed!));
      expect(mean(sent!)).toBeLessThanOrEqual(mean(answered!));
    });

    it('still delivers everything when 30% of requests fail (500s and timeouts); retries keep the webhook-id and body', async () => {
      const r = await receiver({ behaviour: failRatio(0.3, 20_24, [{ status: 500 }, { hang: true }]) });
      const contract = await chain.deploy();
      const endpointId = await createEndpoint(r, '/flaky');
      const sub = await subscribe({ endpointId, addresses: [contract] });
      for (let i = 0; i < 10; i++) await chain.tick(contract, 6);
      const logs = await chain.logs(contract);
      expect(logs).toHaveLength(60);
      const expected = new Set(logs.map((log) => expectedId(payloadData(log, sub), 'log.created')));

      await waitUntil(
        () => r.deliveredIds().size >= 60,
        75_000,
        () => `60 deliveries (${r.deliveredIds().size} so far, ${r.count} requests)`,
      );
      expect(r.deliveredIds()).toEqual(expected);
      expectWellFormed(r.requests);

      const groups = byWebhookId(r.requests);
      expect(groups.size).toBe(60);
      let retried = 0;
      for (const [id, attempts] of groups) {
        // Each job ends with a success, after its failures; every attempt carries the same body.
        expect(succeeded(attempts.at(-1)!), id).toBe(true);
        expect(new Set(attempts.map((a) => a.body)).size, id).toBe(1);
        if (attempts.length > 1) retried++;
      }
      const failures = r.requests.filter((req) => !succeeded(req));
      expect(failures.some((req) => 'hang' in req.reply)).toBe(true);
      expect(failures.some((req) => 'status' in req.reply && req.reply.status === 500)).toBe(true);
      expect(retried).toBeGreaterThan(5);

      // The attempt log holds one record per request the receiver saw; the node saw one 2xx per job. (A
      // 500 the node waited too long for is recorded as a timeout, hence the inequalities.)
      const attempts = async () =>
        (await node.api<Page<AttemptRecord, number>>('GET', `/v1/endpoints/${endpointId}/attempts?limit=1000`)).body.data;
      await waitUntil(async () => (await attempts()).length === r.count, 10_000, `${r.count} attempt records`);
      const records = await attempts();
      expect(records.filter((a) => a.status === 200)).toHaveLength(60);
      expect(records.filter((a) => a.status === 500).length).toBeLessThanOrEqual(failures.filter((req) => 'status' in req.reply).length);
      expect(records.filter((a) => a.status === undefined).length).toBeGreaterThanOrEqual(
        failures.filter((req) => 'hang' in req.reply).length,
      );
      expect(records.filter((a) => a.status === undefined).every((a) => typeof a.error === 'string' && a.error.length > 0)).toBe(true);
      expect(new Set(records.map((a) => a.jobId))).toEqual(expected);
      console.info(`retry e2e (${store}): 60 webhooks, ${r.count} requests, ${retried} retried, ${failures.length} failed (500 or hang)`);
    });

    // The chain's listener emits at the head (confirmations 0); a subscription asking for 3 gets the log
    // once 3 blocks are mined on top of it, and not before.
    it('a subscription with more confirmations than its chain gets the log once it is that deep', async () => {
      const r = await receiver();
      const contract = await chain.deploy();
      const endpointId = await createEndpoint(r, '/deep');
      const sub = await subscribe({ endpointId, addresses: [contract], confirmations: 3 });
      const now = await subscribe({ endpointId, addresses: [contract] });
      await chain.tick(contract, 1);
      const [log] = await chain.logs(contract);
      const mined = Number.parseInt(log!.blockNumber, 16);
      const deepId = expectedId(payloadData(log!, sub), 'log.created');
      await waitUntil(
        () => r.deliveredIds().has(expectedId(payloadData(log!, now), 'log.created')),
        30_000,
        "the unconfirmed subscription's webhook",
      );
      for (let depth = 1; depth <= 2; depth++) {
        await chain.anvil.rpc('evm_mine', []);
        expect(await chain.head()).toBe(mined + depth);
        await sleep(1_000);
        expect(r.deliveredIds().has(deepId), `delivered at depth ${depth}`).toBe(false);
      }
      await chain.anvil.rpc('evm_mine', []);
      await waitUntil(() => r.deliveredIds().has(deepId), 30_000, 'the webhook at depth 3');
      const [deep] = r.requests.filter((q) => q.webhookId === deepId);
      expect(body(deep!)).toMatchObject({ type: 'log.created', data: payloadData(log!, sub) });
      expectWellFormed(r.requests);
    });
  });
}
