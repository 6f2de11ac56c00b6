// The Deliverer's guards end to end, through a real node process, a real anvil and real receivers:
// - circuit breaker: an endpoint failing everything opens (`circuit_breaker_state` 2 in /metrics),
//   the receiver then sees probes only, and once it recovers the breaker closes (0) and every webhook
//   arrives, the ones held while open and the new ones;
// - 410 Gone disables the endpoint (GET shows why), later jobs are parked unsent as dead letters, and
//   after enable + replay they arrive with their webhook-ids;
// - the rate limit holds: at `rateLimitPerSec: 5` no window of the receiver's arrivals exceeds
//   5/s plus the bucket's burst of 5;
// - bad admin input gets 400 naming the field; with `allowPrivateTargets: false` (a second node)
//   loopback, private and link-local targets are refused with 400 on `url`.
// Each scenario has its own Tick contract, endpoint and receiver, so they cannot see each other's logs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TICK_TOPIC } from '../../../src/dev-chain/contract.ts';
import type {
  DeadLetterView,
  EndpointAnswer,
  EndpointCreated,
  EndpointView,
  ErrorAnswer,
  Page,
  ReplayAnswer,
  Subscription,
  SubscriptionAnswer,
} from '../../support/admin-answers.ts';
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
import { ok, startReceiver, status, type Receiver } from '../../support/receiver.ts';
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
} from '../e2e-chain.ts';

const BREAKER_COOLDOWN_MS = 1_500;

/** The guard scenarios on a node whose store is `store` (the strict node has a store of its own). */
export function guardsSuite(store: StoreKind): void {
  const storeConfig = testStore(store);
  const strictStoreConfig = testStore(store);
  let chain: TickChain;
  const dirs: NodeDir[] = [];
  let node: NodeProcess;
  const receivers: Receiver[] = [];

  async function scenario(options: { rateLimitPerSec?: number } = {}) {
    let secret = '';
    const receiver = await startReceiver({ secrets: () => [secret] });
    receivers.push(receiver);
    const contract = await chain.deploy();
    const ep = await node.api<EndpointCreated>('POST', '/v1/endpoints', { url: `${receiver.url}/hook`, ...options });
    expect(ep.status, JSON.stringify(ep.body)).toBe(201);
    secret = ep.body.secret;
    const endpointId = ep.body.endpoint.id;
    const sub = await node.api<SubscriptionAnswer>('POST', '/v1/subscriptions', { endpointId, chainId: CHAIN_ID, addresses: [contract] });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const subscriptionId = sub.body.subscription.id;
    const expectedIds = async () =>
      new Set((await chain.logs(contract)).map((l) => expectedId(payloadData(l, subscriptionId), 'log.created')));
    return { receiver, contract, endpointId, subscriptionId, expectedIds };
  }

  async function newDir(): Promise<NodeDir> {
    const dir = await createNodeDir();
    dirs.push(dir);
    return dir;
  }

  beforeAll(async () => {
    chain = await startTickChain();
    node = await startNodeProcess({
      dir: await newDir(),
      config: {
        store: storeConfig,
        chains: [nodeChain(chain)],
        security: { allowPrivateTargets: true },
        deliverer: {
          requestTimeoutMs: 2_000,
          retry: { scheduleMs: [0, 300, 600, 1000, 2000, 3000, 5000, 5000, 5000, 5000], jitter: 0.2 },
          circuitBreaker: { failureThreshold: 5, cooldownMs: BREAKER_COOLDOWN_MS },
        },
      },
    });
    expect(openedStore(node)).toBe(store);
  });

  afterAll(async () => {
    await killAllNodes();
    await Promise.all(receivers.map((r) => r.close()));
    await chain?.stop();
    await Promise.all(dirs.map((d) => d.remove()));
  });

  describe(`circuit breaker (${store})`, () => {
    it('opens on an endpoint that fails everything, lets only probes through, and closes when it recovers', async () => {
      const s = await scenario();
      const breaker = () => node.metric('circuit_breaker_state', { endpoint: s.endpointId });
      const opensBefore = (await node.metric('circuit_breaker_opens_total')) ?? 0;
      s.receiver.setBehaviour(status(503));
      await chain.tick(s.contract, 10);
      await waitUntil(async () => (await breaker()) === 2, 15_000, 'the breaker to open (circuit_breaker_state 2)');
      expect(await node.metric('circuit_breaker_opens_total')).toBeGreaterThan(opensBefore);

      // While open, the 10 jobs wait: over two cool-downs the receiver sees the first 10 attempts and a
      // probe or two, where retries alone (0, 300, 600, 1000 ms ...) would have made over 40 requests.
      await sleep(2 * BREAKER_COOLDOWN_MS);
      expect(s.receiver.count).toBeGreaterThanOrEqual(5);
      expect(s.receiver.count).toBeLessThanOrEqual(10 + 3);
      expect(s.receiver.deliveredIds().size).toBe(0);

      s.receiver.setBehaviour(ok);
      const expected = await s.expectedIds();
      expect(expected.size).toBe(10);
      await waitUntil(
        () => s.receiver.deliveredIds().size === 10,
        30_000,
        () => `the held webhooks after recovery (${s.receiver.deliveredIds().size}/10)`,
      );
      await waitUntil(async () => (await breaker()) === 0, 10_000, 'the breaker to close (circuit_breaker_state 0)');

      // Deliveries resume for new events too.
      await chain.tick(s.contract, 4);
      const all = await s.expectedIds();
      await waitUntil(() => s.receiver.deliveredIds().size === 14, 15_000, 'deliveries after the breaker closed');
      expect(s.receiver.deliveredIds()).toEqual(all);
      expectWellFormed(s.receiver.requests);
    });
  });

  describe(`410 Gone (${store})`, () => {
    it('disables the endpoint with a reason, parks later jobs unsent, and replays them once enabled', async () => {
      const s = await scenario();
      s.receiver.setBehaviour(status(410));
      await chain.tick(s.contract, 3);
      const read = async () => (await node.api<EndpointAnswer>('GET', `/v1/endpoints/${s.endpointId}`)).body.endpoint;
      await waitUntil(async () => (await read()).disabled !== null, 15_000, 'the endpoint to be disabled');
      const disabled = (await read()).disabled;
      expect(disabled?.reason).toMatch(/410/);
      expect(typeof disabled?.at).toBe('number');

      // The jobs answered 410 and those of a disabled endpoint are dead letters; the latter cost no request.
      const letters = async () =>
        (await node.api<Page<DeadLetterView, string>>('GET', `/v1/dead-letters?endpointId=${s.endpointId}`)).body.data;
      await waitUntil(async () => (await letters()).length === 3, 15_000, 'three dead letters');
      const seen = s.receiver.count;
      expect(seen).toBeGreaterThanOrEqual(1);
      expect(seen).toBeLessThanOrEqual(3);
      await chain.tick(s.contract, 2);
      await waitUntil(async () => (await letters()).length === 5, 15_000, 'five dead letters');
      expect(s.receiver.count).toBe(seen);
      expect((await letters()).every((l) => l.type === 'log.created' && l.reason.length > 0)).toBe(true);
      const expected = await s.expectedIds();
      expect(new Set((await letters()).map((l) => l.id))).toEqual(expected);

      s.receiver.setBehaviour(ok);
      const enabled = await node.api<EndpointAnswer>('POST', `/v1/endpoints/${s.endpointId}/enable`);
      expect(enabled.status).toBe(200);
      expect(enabled.body.endpoint.disabled).toBeNull();
      const replay = await node.api<ReplayAnswer>('POST', '/v1/dead-letters/replay', { endpointId: s.endpointId });
      expect(replay.status).toBe(200);
      expect(replay.body.replayed).toBe(5);
      await waitUntil(() => s.receiver.deliveredIds().size === 5, 15_000, 'the replayed webhooks');
      expect(s.receiver.deliveredIds()).toEqual(expected);
      expect((await letters()).length).toBe(0);
      expectWellFormed(s.receiver.requests);
    });
  });

  describe(`rate limit (${store})`, () => {
    it('keeps an endpoint at rateLimitPerSec 5 (plus a burst of 5) over a burst of 30 webhooks', async () => {
      const rate = 5;
      const burst = 5;
      const s = await scenario({ rateLimitPerSec: rate });
      await chain.tick(s.contract, 30);
      await waitUntil(
        () => s.receiver.deliveredIds().size === 30,
        30_000,
        () => `30 webhooks (${s.receiver.deliveredIds().size} so far)`,
      );
      expect(s.receiver.deliveredIds()).toEqual(await s.expectedIds());
      const arrivals = s.receiver.requests
        .filter(succeeded)
        .map((r) => r.at)
        .sort((a, b) => a - b);
      expect(arrivals).toHaveLength(30);
      // Token bucket: any window [t_i, t_j] holds at most rate·(t_j − t_i) + burst arrivals
      // (+1: the receiver's clock reads whole milliseconds).
      for (let i = 0; i < arrivals.length; i++) {
        for (let j = i; j < arrivals.length; j++) {
          const allowed = (rate * (arrivals[j]! - arrivals[i]!)) / 1000 + burst + 1;
          expect(j - i + 1, `arrivals ${i}..${j}`).toBeLessThanOrEqual(allowed);
        }
      }
      const spanS = (arrivals.at(-1)! - arrivals[0]!) / 1000;
      const measured = (arrivals.length - burst) / spanS;
      console.info(
        `rate limit e2e (${store}): 30 webhooks in ${spanS.toFixed(2)} s, ${measured.toFixed(2)}/s after the burst (limit ${rate}/s)`,
      );
      expect(measured).toBeLessThanOrEqual(rate * 1.05);
    });
  });

  describe(`admin input (${store})`, () => {
    it('answers 400 naming the field for bad bodies and queries', async () => {
      const ep = await node.api<EndpointCreated>('POST', '/v1/endpoints', { url: 'http://127.0.0.1:9/input' });
      expect(ep.status).toBe(201);
      const endpointId = ep.body.endpoint.id;
      const cases: Array<[string, string, unknown, string]> = [
        ['POST', '/v1/endpoints', { url: 'not a url' }, 'url'],
        ['POST', '/v1/endpoints', { url: 'ftp://127.0.0.1/x' }, 'url'],
        ['POST', '/v1/endpoints', {}, 'url'],
        ['POST', '/v1/endpoints', { url: 'http://127.0.0.1:9/x', rateLimitPerSec: -1 }, 'rateLimitPerSec'],
        ['POST', '/v1/endpoints', { url: 'http://127.0.0.1:9/x', colour: 'red' }, 'colour'],
        ['PATCH', `/v1/endpoints/${endpointId}`, { url: 42 }, 'url'],
        ['POST', `/v1/endpoints/${endpointId}/rotate-secret`, { overlapMs: -5 }, 'overlapMs'],
        ['POST', '/v1/subscriptions', { endpointId: 'nope', chainId: CHAIN_ID }, 'endpointId'],
        ['POST', '/v1/subscriptions', { endpointId, chainId: -1 }, 'chainId'],
        ['POST', '/v1/subscriptions', { endpointId, chainId: CHAIN_ID, addresses: ['0x12'] }, 'addresses[0]'],
        ['POST', '/v1/subscriptions', { endpointId, chainId: CHAIN_ID, topics: [TICK_TOPIC, '0xzz'] }, 'topics[1]'],
        ['POST', '/v1/subscriptions', { endpointId, chainId: CHAIN_ID, topics: [null, null, null, null, null] }, 'topics'],
        ['POST', '/v1/subscriptions', { endpointId, chainId: CHAIN_ID, confirmations: 1.5 }, 'confirmations'],
        ['GET', '/v1/endpoints?limit=0', undefined, 'limit'],
        ['GET', '/v1/subscriptions?endpointId=nope', undefined, 'endpointId'],
        ['GET', '/v1/dead-letters?since=yesterday', undefined, 'since'],
        ['POST', '/v1/dead-letters/replay', { since: 0 }, 'endpointId'],
      ];
      for (const [method, path, body, field] of cases) {
        const res = await node.api<ErrorAnswer>(method, path, body);
        const what = `${method} ${path} ${JSON.stringify(body)} → ${res.status} ${JSON.stringify(res.body)}`;
        expect(res.status, what).toBe(400);
        expect(res.body.error.field, what).toBe(field);
        expect(res.body.error.code, what).toBe('ETHHOOK_ERR_ADMIN_INVALID_REQUEST');
      }
      const notJson = await node.api('POST', '/v1/endpoints', '{"url": ');
      expect(notJson.status).toBe(400);
      const unknown = await node.api<ErrorAnswer>('GET', '/v1/endpoints/ep_doesnotexist');
      expect(unknown.status).toBe(404);
      expect(unknown.body.error.code).toBe('ETHHOOK_ERR_ENDPOINT_NOT_FOUND');
      // None of the refused requests created anything.
      const list = await node.api<Page<Subscription, string>>('GET', '/v1/subscriptions?limit=1000');
      expect(list.body.data.filter((s) => s.endpointId === endpointId)).toHaveLength(0);
    });
  });

  describe(`SSRF (allowPrivateTargets: false) (${store})`, () => {
    it('refuses loopback, private and link-local targets with 400 on url', async () => {
      const strict = await startNodeProcess({
        dir: await newDir(),
        config: { store: strictStoreConfig, chains: [], security: { allowPrivateTargets: false } },
      });
      expect(openedStore(strict)).toBe(store);
      try {
        for (const url of [
          `${receivers[0]?.url ?? 'http://127.0.0.1:8080'}/hook`,
          'http://localhost:8080/hook',
          'http://[::1]:8080/hook',
          'http://10.0.0.7/hook',
          'http://192.168.1.20/hook',
          'http://172.16.0.1/hook',
          'http://169.254.169.254/latest/meta-data',
          'http://0.0.0.0:8080/hook',
          'http://[::ffff:127.0.0.1]/hook',
        ]) {
          const res = await strict.api<ErrorAnswer>('POST', '/v1/endpoints', { url });
          expect(res.status, `${url}: ${JSON.stringify(res.body)}`).toBe(400);
          expect(res.body.error.code, url).toBe('ETHHOOK_ERR_TARGET_REFUSED');
          expect(res.body.error.field, url).toBe('url');
        }
        // A public address literal is accepted (nothing is sent: this node follows no chain), and
        // changing it to a private one is refused the same way.
        const created = await strict.api<EndpointCreated>('POST', '/v1/endpoints', { url: 'https://8.8.8.8/hook' });
        expect(created.status, JSON.stringify(created.body)).toBe(201);
        const patched = await strict.api<ErrorAnswer>('PATCH', `/v1/endpoints/${created.body.endpoint.id}`, {
          url: 'http://127.0.0.1/hook',
        });
        expect(patched.status).toBe(400);
        expect(patched.body.error.field).toBe('url');
        expect((await strict.api<Page<EndpointView, string>>('GET', '/v1/endpoints?limit=1000')).body.data).toHaveLength(1);
        expect((await strict.api<EndpointAnswer>('GET', `/v1/endpoints/${created.body.endpoint.id}`)).body.endpoint.url).toBe(
          'https://8.8.8.8/hook',
        );
      } finally {
        strict.kill('SIGTERM');
        await strict.waitForExit(15_000);
      }
    });
  });
}
