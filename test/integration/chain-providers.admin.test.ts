// A real node with two providers for its chain, as an operator runs it: the per-provider series from the
// start, GET /admin/chains/:chainId, and POST /admin/chains/:chainId/failover (validated, audited): the
// chain moves off a provider and back, and refuses to move when no other provider is healthy.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChainAnswer, ErrorAnswer, FailoverAnswer } from '../support/admin-answers.ts';
import { startAnvil, type TestAnvil } from '../support/anvil.ts';
import { waitFor } from '../support/chain-harness.ts';
import { createNodeDir, killAllNodes, startNodeProcess, type NodeDir, type NodeProcess } from '../support/node-process.ts';
import { startRpcProvider, type RpcProvider } from '../support/rpc-provider.ts';

const CHAIN_ID = 31337;
let anvil: TestAnvil;
let a: RpcProvider;
let b: RpcProvider;
let dir: NodeDir;
let node: NodeProcess;

beforeAll(async () => {
  anvil = await startAnvil({ blockTime: 0.25 });
  [a, b] = (await Promise.all(['a', 'b'].map((name) => startRpcProvider({ name, anvilHttpUrl: anvil.httpUrl })))) as [
    RpcProvider,
    RpcProvider,
  ];
  dir = await createNodeDir();
  node = await startNodeProcess({
    dir,
    config: {
      chains: [
        {
          chainId: CHAIN_ID,
          name: 'dev',
          providers: [
            { name: 'a', wsUrl: a!.wsUrl, weight: 2 },
            { name: 'b', wsUrl: b!.wsUrl },
          ],
          startBlock: 'latest',
          failbackAfterMs: 500,
          reconnect: { minMs: 50, maxMs: 300 },
        },
      ],
    },
  });
});
afterAll(async () => {
  await killAllNodes();
  await Promise.all([a?.stop(), b?.stop()]);
  await anvil?.stop();
  await dir?.remove();
});

const active = async () => {
  for (const provider of ['a', 'b']) if ((await node.metric('chain_provider_active', { chain: 'dev', provider })) === 1) return provider;
  return null;
};
const processed = async () => (await node.metric('chain_processed_height', { chain: 'dev' })) ?? -1;

describe('an operator and a chain with two providers', () => {
  it('sees both providers, moves the chain off one and back, and is refused when nothing else is healthy', async () => {
    await waitFor(
      async () => (await node.api('GET', '/ready')).status === 200 && (await active()) === 'a',
      30_000,
      'ready, reading from a',
    );
    const status = await node.api<ChainAnswer>('GET', `/admin/chains/${CHAIN_ID}`);
    expect(status.status).toBe(200);
    expect(status.body.chain).toMatchObject({ chainId: CHAIN_ID, provider: 'a', connected: true, transport: 'ws' });
    expect(status.body.chain.providers.map((p) => [p.name, p.health])).toEqual([
      ['a', 'healthy'],
      ['b', 'healthy'],
    ]);

    // Validation: each bad body names its field; unknown chain and provider are 404s.
    for (const [body, field] of [
      [{}, 'provider'],
      [{ provider: 'b', holdMs: -1 }, 'holdMs'],
      [{ provider: 'b', holdMs: 1e12 }, 'holdMs'],
      [{ provider: 'b', x: 1 }, 'x'],
    ] as const) {
      const answer = await node.api<ErrorAnswer>('POST', `/admin/chains/${CHAIN_ID}/failover`, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body.error.field).toBe(field);
    }
    expect((await node.api('POST', '/admin/chains/5/failover', { provider: 'a' })).status).toBe(404);
    const unknown = await node.api<ErrorAnswer>('POST', `/admin/chains/${CHAIN_ID}/failover`, { provider: 'nope' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: 'ETHHOOK_ERR_PROVIDER_UNKNOWN', field: 'provider' });

    const moved = await node.api<FailoverAnswer>('POST', `/admin/chains/${CHAIN_ID}/failover`, { provider: 'a', holdMs: 600_000 });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    expect(moved.body.failover).toMatchObject({ from: 'a', to: 'b' });
    expect(Date.parse(moved.body.failover.heldUntil ?? '')).toBeGreaterThan(Date.now() + 500_000);
    expect(await active()).toBe('b');
    expect(await node.metric('chain_provider_failovers_total', { chain: 'dev', provider: 'a', reason: 'operator' })).toBe(1);
    // Reads go to b at once: a read from a in flight may end, none starts after it.
    const at = await processed();
    await waitFor(async () => (await processed()) >= at + 2, 30_000, 'blocks read through b');
    const readsOfA = a.calls.get('eth_getLogs') ?? 0;
    const readsOfB = b.calls.get('eth_getLogs') ?? 0;
    await waitFor(async () => (await processed()) >= at + 5, 30_000, 'more blocks read through b');
    expect(a.calls.get('eth_getLogs') ?? 0).toBe(readsOfA);
    expect(b.calls.get('eth_getLogs') ?? 0).toBeGreaterThan(readsOfB);
    expect((await node.api<ChainAnswer>('GET', `/admin/chains/${CHAIN_ID}`)).body.chain.providers[0]).toMatchObject({
      name: 'a',
      health: 'held',
    });

    // Moving off b now would leave nothing healthy (a is held): refused, nothing changes.
    const refused = await node.api<ErrorAnswer>('POST', `/admin/chains/${CHAIN_ID}/failover`, { provider: 'b' });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('ETHHOOK_ERR_NO_OTHER_PROVIDER');
    expect(await active()).toBe('b');

    const released = await node.api('POST', `/admin/chains/${CHAIN_ID}/failover`, { provider: 'a', holdMs: 0 });
    expect(released.status).toBe(200);
    await waitFor(async () => (await active()) === 'a', 30_000, 'a, of higher weight, read from again');
    await expect
      .poll(() => node.logs.filter((l) => l.audit === true && l.action === 'chain.failover').map((l) => [l.outcome, l.status]), {
        timeout: 10_000,
      })
      .toEqual([...Array(4).fill(['rejected', 400]), ['rejected', 404], ['rejected', 404], ['ok', 200], ['rejected', 409], ['ok', 200]]);
  }, 90_000);

  it('shows a provider that is down in its series, and keeps the chain going on the other', async () => {
    b.fault = 'cut';
    await waitFor(async () => (await node.metric('chain_provider_up', { chain: 'dev', provider: 'b' })) === 0, 30_000, 'b down');
    expect(await node.metric('chain_providers_healthy', { chain: 'dev' })).toBe(1);
    const at = await processed();
    await waitFor(async () => (await processed()) >= at + 3, 30_000, 'blocks through a');
    expect(await node.metric('chain_up', { chain: 'dev' })).toBe(1);
    b.fault = 'none';
    await waitFor(async () => (await node.metric('chain_providers_healthy', { chain: 'dev' })) === 2, 30_000, 'b back');
    // Providers are named in the series by their configured name, never by URL.
    const metrics = String((await node.api<string>('GET', '/metrics')).body);
    expect(metrics).toMatch(/^chain_provider_height\{[^}]*provider="b"[^}]*\} \d+/m);
    expect(metrics).not.toContain('127.0.0.1');
  }, 90_000);
});
