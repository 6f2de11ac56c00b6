// Several providers in front of one real anvil, made to stall, lag, drop their connections and rate-limit:
// the listener fails over, comes back by weight, slows down for rate limits, and every log is still
// emitted exactly once, in order, from the blocks anvil has; the failovers show in the metrics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChainConfigInput } from '../../src/actors/chain-listener/index.ts';
import { netLogs, seqs, startHarness, tempDb, waitFor, type Harness } from '../support/chain-harness.ts';
import { expectEveryTickOnce, startProvidersChain, type ProvidersChain } from '../support/providers-chain.ts';
import { RATE_LIMIT_TRIES } from '../../src/actors/chain-listener/provider.ts';

let chain: ProvidersChain;
beforeAll(async () => {
  chain = await startProvidersChain(['a', 'b']);
});
afterAll(async () => {
  await chain?.stop();
});

const config = (over: Partial<ChainConfigInput> = {}): ChainConfigInput => ({
  chainId: 31337,
  name: 'anvil',
  providers: [
    { name: 'a', wsUrl: chain.providers[0]!.wsUrl, weight: 2 },
    { name: 'b', wsUrl: chain.providers[1]!.wsUrl },
  ],
  startBlock: 0,
  heartbeatMs: 300,
  maxLagBlocks: 2,
  stallTimeoutMs: 500,
  failbackAfterMs: 1_000,
  requestTimeoutMs: 2_000,
  reconnect: { minMs: 50, maxMs: 300 },
  ...over,
});

const active = async (h: Harness): Promise<string | null> => {
  for (const name of ['a', 'b']) if ((await h.metric('chain_provider_active', { chain: 'anvil', provider: name })) === 1) return name;
  return null;
};
const failovers = (h: Harness, provider: string, reason: string) =>
  h.metric('chain_provider_failovers_total', { chain: 'anvil', provider, reason });
const caughtUp = (h: Harness) => async () => h.collector.emitted.at(-1)?.blockNumber === (await chain.head());

describe('failover between providers', () => {
  it('leaves a stalled provider, returns to it by weight, leaves it when cut; every log once', async () => {
    const [a, b] = chain.providers;
    const store = await tempDb();
    const h = await startHarness({ chain: config(), db: store.db });
    try {
      await chain.ticks(5);
      await waitFor(caughtUp(h), 20_000, 'the first ticks through a');
      expect(await active(h)).toBe('a');
      await waitFor(async () => (await h.metric('chain_providers_healthy')) === 2, 20_000, 'both providers healthy');

      a!.fault = 'stall';
      await chain.ticks(5);
      await waitFor(caughtUp(h), 20_000, 'the ticks sent while a stalls, through b');
      expect(await active(h)).toBe('b');
      expect((await failovers(h, 'a', 'lagging')) + (await failovers(h, 'a', 'stalled'))).toBeGreaterThanOrEqual(1);

      a!.fault = 'none';
      await waitFor(async () => (await active(h)) === 'a', 20_000, 'a, of higher weight, read from again');
      expect(await failovers(h, 'b', 'weight')).toBeGreaterThanOrEqual(1);
      await chain.ticks(3);
      await waitFor(caughtUp(h), 20_000, 'ticks through a again');

      a!.fault = 'cut';
      await chain.ticks(4);
      await waitFor(caughtUp(h), 20_000, 'the ticks sent while a is cut, through b');
      expect(await active(h)).toBe('b');
      expect(await h.metric('chain_provider_up', { chain: 'anvil', provider: 'a' })).toBe(0);
      a!.fault = 'none';
      await waitFor(async () => (await active(h)) === 'a', 20_000, 'a back after the cut');
      expect(await h.metric('chain_provider_height', { chain: 'anvil', provider: 'b' })).toBe(await chain.head());
      expect(b!.calls.get('eth_getLogs') ?? 0).toBeGreaterThan(0);
      await expectEveryTickOnce(h.collector, chain);
      expect(h.failures).toEqual([]);
    } finally {
      await h.stop();
      await store.close();
      for (const p of chain.providers) p.fault = 'none';
    }
  });

  it('does not read from a provider that lags, and never retracts anything because of it', async () => {
    const [a] = chain.providers;
    a!.lagBlocks = 4;
    a!.fault = 'lag';
    const store = await tempDb();
    const h = await startHarness({ chain: config({ startBlock: 'latest' }), db: store.db });
    try {
      await waitFor(async () => (await h.metric('chain_up')) === 1, 20_000, 'the start block pinned');
      const before = chain.sent;
      await chain.ticks(6);
      await waitFor(caughtUp(h), 20_000, 'ticks through b while a lags');
      expect(await active(h)).toBe('b');
      expect(await h.metric('chain_provider_lag_blocks', { chain: 'anvil', provider: 'a' })).toBeGreaterThanOrEqual(4);
      a!.fault = 'none';
      await waitFor(async () => (await active(h)) === 'a', 20_000, 'a read from once in step');
      await chain.ticks(2);
      await waitFor(caughtUp(h), 20_000, 'the last ticks');
      expect(h.collector.retracted).toEqual([]);
      // `latest` may have been pinned at a's lagging head (the first provider up): earlier, never later.
      const got = seqs(netLogs(h.collector.messages));
      expect(got[0]).toBeLessThanOrEqual(before);
      expect(got).toEqual(Array.from({ length: chain.sent - got[0]! }, (_, i) => got[0]! + i));
      expect(await h.metric('chain_reorgs_total')).toBe(0);
    } finally {
      await h.stop();
      await store.close();
      a!.fault = 'none';
    }
  });

  it('slows down for a rate-limiting provider instead of failing it (one provider, HTTP only)', async () => {
    const [a] = chain.providers;
    const store = await tempDb();
    const h = await startHarness({
      chain: {
        chainId: 31337,
        name: 'anvil',
        httpUrl: chain.providers[0]!.httpUrl,
        startBlock: 0,
        pollIntervalMs: 100,
        reconnect: { minMs: 50, maxMs: 300 },
      },
      db: store.db,
    });
    try {
      await waitFor(caughtUp(h), 20_000, 'caught up over HTTP');
      a!.rateLimitCount = 4;
      expect(RATE_LIMIT_TRIES).toBeGreaterThan(4);
      a!.fault = 'rate-limit';
      await chain.ticks(3);
      await waitFor(caughtUp(h), 30_000, 'the ticks sent while rate-limited');
      // Every limited answer was slowed down for and asked again: none failed a call (fewer in a row than RATE_LIMIT_TRIES).
      expect(a!.rateLimited).toBe(4);
      expect(await h.metric('chain_provider_throttled_total', { chain: 'anvil', provider: 'primary' })).toBe(4);
      expect(await h.metric('chain_provider_errors_total', { chain: 'anvil', provider: 'primary', kind: 'rate-limited' })).toBe(0);
      expect(h.collector.retracted).toEqual([]);
      expect(h.failures).toEqual([]);
    } finally {
      await h.stop();
      await store.close();
      a!.fault = 'none';
      a!.rateLimitCount = Number.POSITIVE_INFINITY;
    }
  });

  it('leaves a provider that reports eth_syncing, and one too slow to keep up', async () => {
    const [a] = chain.providers;
    const store = await tempDb();
    const h = await startHarness({ chain: config({ heartbeatMs: 200, requestTimeoutMs: 1_000 }), db: store.db });
    try {
      await chain.ticks(2);
      await waitFor(caughtUp(h), 20_000, 'caught up through a');
      expect(await active(h)).toBe('a');
      a!.fault = 'syncing';
      await waitFor(async () => (await active(h)) === 'b', 20_000, 'b while a syncs');
      expect(await failovers(h, 'a', 'syncing')).toBe(1);
      await chain.ticks(2);
      await waitFor(caughtUp(h), 20_000, 'ticks through b');
      a!.fault = 'none';
      await waitFor(async () => (await active(h)) === 'a', 20_000, 'a synced again');

      a!.delayMs = 3_000;
      a!.fault = 'slow';
      await chain.ticks(3);
      await waitFor(caughtUp(h), 20_000, 'ticks through b while a is too slow');
      // Its heads arrive late (it lags) and its answers time out (an error): either way it is left.
      const left = (await failovers(h, 'a', 'lagging')) + (await failovers(h, 'a', 'stalled')) + (await failovers(h, 'a', 'error'));
      expect(left).toBeGreaterThanOrEqual(1);
      expect(await active(h)).toBe('b');
      await expectEveryTickOnce(h.collector, chain);
    } finally {
      await h.stop();
      await store.close();
      a!.fault = 'none';
    }
  });

  it('with quorum 2, keeps reading from the fastest provider while the other one is a step behind', async () => {
    const [, b] = chain.providers;
    b!.delayMs = 150;
    b!.fault = 'slow';
    const store = await tempDb();
    const h = await startHarness({ chain: config({ quorum: 2 }), db: store.db });
    try {
      for (let i = 0; i < 4; i++) {
        await chain.ticks(1);
        await waitFor(caughtUp(h), 20_000, 'the tick, confirmed by the slow b');
      }
      // Read from a (the heavier one): a loaded machine may make a look stalled for a moment, but b's
      // being a step behind is never held against a (no incomplete read, no failover for an error).
      await waitFor(async () => (await active(h)) === 'a', 20_000, 'a read from');
      expect(await h.metric('chain_provider_errors_total', { chain: 'anvil', provider: 'a', kind: 'incomplete' })).toBe(0);
      expect(await h.metric('chain_provider_failovers_total', { chain: 'anvil', provider: 'a', reason: 'error' })).toBe(0);
      await expectEveryTickOnce(h.collector, chain);
    } finally {
      await h.stop();
      await store.close();
      b!.fault = 'none';
    }
  });

  it('polls over HTTP when reads keep failing over a WebSocket that stays open', async () => {
    const [a, b] = chain.providers;
    const store = await tempDb();
    // One provider: its WebSocket (a) answers logs of the wrong block, its HTTP endpoint (b) is honest.
    const h = await startHarness({
      chain: {
        chainId: 31337,
        name: 'anvil',
        wsUrl: a!.wsUrl,
        httpUrl: b!.httpUrl,
        startBlock: 'latest',
        pollIntervalMs: 100,
        reconnect: { minMs: 20, maxMs: 100 },
      },
      db: store.db,
    });
    const status = () => h.behaviour.receive({ type: 'chain.status' }, {} as never) as { transport: string };
    try {
      await waitFor(async () => (await h.metric('chain_up')) === 1 && status().transport === 'ws', 20_000, 'the WebSocket session');
      const httpReads = b!.calls.get('eth_getLogs') ?? 0;
      const before = chain.sent;
      a!.fault = 'foreign-logs';
      await chain.ticks(1);
      await waitFor(caughtUp(h), 20_000, 'the tick, read over HTTP');
      // Polling goes on: the WebSocket, which connects but cannot be read from, is not tried again before
      // failbackAfterMs (60 s), so the transports do not flap (each switch would cut a round short).
      const sessions = a!.calls.get('eth_subscribe') ?? 0;
      for (let i = 0; i < 2; i++) {
        await chain.ticks(1);
        await waitFor(caughtUp(h), 20_000, 'the tick, read over HTTP');
      }
      expect(status().transport).toBe('http');
      expect(a!.calls.get('eth_subscribe') ?? 0).toBe(sessions);
      expect(b!.calls.get('eth_getLogs') ?? 0).toBeGreaterThan(httpReads);
      expect(seqs(netLogs(h.collector.messages)).slice(-3)).toEqual([before, before + 1, before + 2]);
      expect(h.collector.retracted).toEqual([]);
      expect(h.failures).toEqual([]);
    } finally {
      await h.stop();
      await store.close();
      a!.fault = 'none';
    }
  });
});
