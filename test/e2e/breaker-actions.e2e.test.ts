// An operator ends a breaker's back-off once the receiver is fixed, through a real node process, a real
// anvil and a real receiver. The cool-down is 10 minutes, so every delivery after the fix within the
// test's time is the action's doing:
// - GET /v1/endpoints/:id/breaker shows it open, with the window and cool-down;
// - POST .../breaker/probe lets the next request through as the probe: it succeeds, the breaker
//   closes, and every held webhook arrives;
// - POST .../breaker/close closes it at once; POST .../enable does too;
// - an unknown endpoint is a 404; the actions are audited.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BreakerView } from '../../src/actors/deliverer/circuit-breaker.ts';
import type { EndpointView } from '../../src/store/endpoints.ts';
import { createNodeDir, killAllNodes, startNodeProcess, type NodeDir, type NodeProcess } from '../support/node-process.ts';
import { ok, startReceiver, status, type Receiver } from '../support/receiver.ts';
import { CHAIN_ID, nodeChain, startTickChain, waitUntil, type TickChain } from './e2e-chain.ts';

const COOLDOWN_MS = 600_000;

type Answer = { breaker: BreakerView; endpoint: EndpointView; secret: string; error: { code: string } };

let chain: TickChain;
let dir: NodeDir;
let node: NodeProcess;
const receivers: Receiver[] = [];

beforeAll(async () => {
  chain = await startTickChain();
  dir = await createNodeDir();
  node = await startNodeProcess({
    dir,
    config: {
      chains: [nodeChain(chain)],
      security: { allowPrivateTargets: true },
      deliverer: {
        retry: { scheduleMs: [0, 200, 200, 200, 200, 200, 200, 200, 200, 200], jitter: 0 },
        circuitBreaker: { failureThreshold: 3, cooldownMs: COOLDOWN_MS },
      },
    },
  });
});

afterAll(async () => {
  await killAllNodes();
  await Promise.all(receivers.map((r) => r.close()));
  await chain?.stop();
  await dir?.remove();
});

/** An endpoint whose receiver answers 503 until told otherwise, with `ticks` events held behind its open breaker. */
async function openBreaker(ticks: number) {
  let secret = '';
  const receiver = await startReceiver({ secrets: () => [secret] });
  receivers.push(receiver);
  receiver.setBehaviour(status(503));
  const contract = await chain.deploy();
  const ep = await node.api('POST', '/v1/endpoints', { url: `${receiver.url}/hook` });
  expect(ep.status, JSON.stringify(ep.body)).toBe(201);
  const created = ep.body as Answer;
  secret = created.secret;
  const endpointId = created.endpoint.id;
  const sub = await node.api('POST', '/v1/subscriptions', { endpointId, chainId: CHAIN_ID, addresses: [contract] });
  expect(sub.status, JSON.stringify(sub.body)).toBe(201);
  await chain.tick(contract, ticks);
  const breaker = async () => ((await node.api('GET', `/v1/endpoints/${endpointId}/breaker`)).body as Answer).breaker;
  await waitUntil(async () => (await breaker()).state === 'open', 20_000, 'the breaker to open');
  return { receiver, endpointId, breaker };
}

describe("the operator's breaker actions", () => {
  it('probe: the next request is the probe; it succeeds, the breaker closes and the held webhooks arrive', async () => {
    const s = await openBreaker(5);
    const open = await s.breaker();
    expect(open).toMatchObject({ state: 'open', cooldownMs: COOLDOWN_MS, openUntil: expect.any(Number) });
    expect(open.openUntil).toBeGreaterThan(Date.now() + COOLDOWN_MS / 2);
    expect(s.receiver.deliveredIds().size).toBe(0);

    s.receiver.setBehaviour(ok);
    const probed = await node.api('POST', `/v1/endpoints/${s.endpointId}/breaker/probe`);
    expect(probed.status, JSON.stringify(probed.body)).toBe(200);
    await waitUntil(
      () => s.receiver.deliveredIds().size === 5,
      20_000,
      () => `the held webhooks after the probe (${s.receiver.deliveredIds().size}/5)`,
    );
    expect((await s.breaker()).state).toBe('closed');
    expect(await node.metric('circuit_breaker_state', { endpoint: s.endpointId })).toBe(0);
  });

  it('close: at once, with nothing counted; the held webhooks arrive', async () => {
    const s = await openBreaker(3);
    s.receiver.setBehaviour(ok);
    const closed = await node.api('POST', `/v1/endpoints/${s.endpointId}/breaker/close`);
    expect(closed.status, JSON.stringify(closed.body)).toBe(200);
    expect((closed.body as Answer).breaker).toEqual({
      state: 'closed',
      openUntil: null,
      cooldownMs: null,
      consecutiveFailures: 0,
      window: { calls: 0, failures: 0 },
    });
    await waitUntil(
      () => s.receiver.deliveredIds().size === 3,
      20_000,
      () => `the held webhooks after the close (${s.receiver.deliveredIds().size}/3)`,
    );
  });

  it('enable closes it too', async () => {
    const s = await openBreaker(2);
    s.receiver.setBehaviour(ok);
    const enabled = await node.api('POST', `/v1/endpoints/${s.endpointId}/enable`);
    expect(enabled.status, JSON.stringify(enabled.body)).toBe(200);
    expect((await s.breaker()).state).toBe('closed');
    await waitUntil(
      () => s.receiver.deliveredIds().size === 2,
      20_000,
      () => `the held webhooks after enable (${s.receiver.deliveredIds().size}/2)`,
    );
  });

  it('an unknown endpoint is a 404, and the actions are audited', async () => {
    expect((await node.api('POST', '/v1/endpoints/ep_nope/breaker/close')).status).toBe(404);
    expect(((await node.api('GET', '/v1/endpoints/ep_nope/breaker')).body as Answer).error.code).toBe('ETHHOOK_ERR_ENDPOINT_NOT_FOUND');
    await waitUntil(
      () => node.logs.some((l) => l.audit === true && l.action === 'endpoint.breaker.close' && l.status === 200),
      5_000,
      'the audit line of the close',
    );
    await expect
      .poll(() => node.logs.some((l) => l.audit === true && l.action === 'endpoint.breaker.probe' && l.status === 200), { timeout: 10_000 })
      .toBe(true);
  });
});
