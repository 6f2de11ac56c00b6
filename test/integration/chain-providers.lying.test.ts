// Providers that lie, in front of one real anvil: no logs for a block whose bloom says it has some, logs of
// another block, a fork of their own (a head and blocks nobody else has). Every log is still emitted
// exactly once, from the blocks anvil has, never an empty block in place of one with logs, never a
// retraction; the lie shows in the metrics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChainConfigInput } from '../../src/actors/chain-listener/index.ts';
import { netLogs, seqs, startHarness, tempDb, waitFor, type Harness } from '../support/chain-harness.ts';
import { expectEveryTickOnce, startProvidersChain, type ProvidersChain } from '../support/providers-chain.ts';
import { forkedHash } from '../support/rpc-provider.ts';

let chain: ProvidersChain;
beforeAll(async () => {
  chain = await startProvidersChain(['a', 'b', 'c']);
});
afterAll(async () => {
  await chain?.stop();
});

const config = (names: string[], over: Partial<ChainConfigInput> = {}): ChainConfigInput => ({
  chainId: 31337,
  name: 'anvil',
  providers: names.map((name, i) => ({ name, wsUrl: chain.providers.find((p) => p.name === name)!.wsUrl, weight: names.length - i })),
  startBlock: 0,
  heartbeatMs: 300,
  failbackAfterMs: 60_000,
  requestTimeoutMs: 2_000,
  reconnect: { minMs: 50, maxMs: 300 },
  ...over,
});
const metric = (h: Harness, name: string, labels: Record<string, string>) => h.metric(name, { chain: 'anvil', ...labels });
const caughtUp = (h: Harness) => async () => h.collector.emitted.at(-1)?.blockNumber === (await chain.head());

async function run(names: string[], over: Partial<ChainConfigInput>, body: (h: Harness) => Promise<void>): Promise<void> {
  const store = await tempDb();
  const h = await startHarness({ chain: config(names, over), db: store.db });
  try {
    await body(h);
    expect(h.failures).toEqual([]);
  } finally {
    await h.stop();
    await store.close();
    for (const p of chain.providers) p.fault = 'none';
  }
}

describe('providers that lie', () => {
  it('reads a block again from another provider when one answers no logs under a non-empty bloom', async () => {
    await run(['a', 'b'], {}, async (h) => {
      chain.providers[0]!.fault = 'empty-logs';
      await chain.ticks(4);
      await waitFor(caughtUp(h), 20_000, 'every tick, through b');
      await expectEveryTickOnce(h.collector, chain);
      expect(await metric(h, 'chain_provider_errors_total', { provider: 'a', kind: 'incomplete' })).toBeGreaterThanOrEqual(1);
      expect(await metric(h, 'chain_provider_failovers_total', { provider: 'a', reason: 'error' })).toBeGreaterThanOrEqual(1);
      expect(await metric(h, 'chain_provider_active', { provider: 'b' })).toBe(1);
    });
  });

  it('with a single provider that answers no logs, waits and emits the block once it answers them', async () => {
    await run(['a'], { reconnect: { minMs: 20, maxMs: 100 } }, async (h) => {
      await waitFor(caughtUp(h), 20_000, 'caught up');
      const before = h.collector.emitted.length;
      chain.providers[0]!.fault = 'empty-logs';
      await chain.ticks(2);
      await waitFor(
        async () => (await metric(h, 'chain_provider_errors_total', { provider: 'a', kind: 'incomplete' })) >= 2,
        20_000,
        'the lie noticed twice',
      );
      expect(h.collector.emitted.length).toBe(before);
      chain.providers[0]!.fault = 'none';
      await waitFor(caughtUp(h), 20_000, 'the blocks, once the provider answers their logs');
      await expectEveryTickOnce(h.collector, chain);
    });
  });

  it('leaves a provider whose logs belong to another block', async () => {
    await run(['a', 'b'], {}, async (h) => {
      await waitFor(caughtUp(h), 20_000, 'caught up: each new block is read alone, by hash');
      chain.providers[0]!.fault = 'foreign-logs';
      for (let i = 0; i < 3; i++) {
        await chain.ticks(1);
        await waitFor(caughtUp(h), 20_000, 'the tick, through b');
      }
      expect(await metric(h, 'chain_provider_errors_total', { provider: 'a', kind: 'malformed' })).toBeGreaterThanOrEqual(1);
      await expectEveryTickOnce(h.collector, chain);
      expect(await metric(h, 'chain_provider_active', { provider: 'b' })).toBe(1);
    });
  });

  it('leaves a provider that answers another block than the one asked for', async () => {
    await run(['a', 'b'], {}, async (h) => {
      chain.providers[0]!.fault = 'wrong-block';
      await chain.ticks(3);
      await waitFor(caughtUp(h), 20_000, 'every tick, through b');
      await expectEveryTickOnce(h.collector, chain);
      expect(await metric(h, 'chain_provider_errors_total', { provider: 'a', kind: 'malformed' })).toBeGreaterThanOrEqual(1);
      expect(await metric(h, 'chain_provider_active', { provider: 'b' })).toBe(1);
    });
  });

  it('does not retract what one provider alone shows as orphaned (its own fork); moves to the others', async () => {
    await run(['a', 'b', 'c'], {}, async (h) => {
      await chain.ticks(3);
      await waitFor(caughtUp(h), 20_000, 'the first ticks, through a');
      const a = chain.providers[0]!;
      a.forkFrom = (await chain.head()) - 1;
      a.fault = 'fork';
      await chain.ticks(3);
      await waitFor(caughtUp(h), 20_000, 'the ticks after a forked, through b');
      await expectEveryTickOnce(h.collector, chain);
      expect(await metric(h, 'chain_reorgs_total', {})).toBe(0);
      expect(await metric(h, 'chain_provider_disagreements_total', { provider: 'b' })).toBeGreaterThanOrEqual(1);
      expect(await metric(h, 'chain_provider_failovers_total', { provider: 'a', reason: 'disagreement' })).toBeGreaterThanOrEqual(1);
    });
  });

  it('with quorum 2 emits only the blocks two providers show: never the fork one provider claims', async () => {
    await run(['a', 'b', 'c'], { quorum: 2 }, async (h) => {
      const a = chain.providers[0]!;
      a.forkFrom = (await chain.head()) + 1;
      a.fault = 'fork';
      await chain.ticks(3);
      await waitFor(caughtUp(h), 20_000, 'every tick, confirmed by b and c');
      await expectEveryTickOnce(h.collector, chain);
      expect(h.collector.messages.some((m) => m.blockHash === forkedHash(m.blockNumber))).toBe(false);
      expect(await metric(h, 'chain_provider_active', { provider: 'a' })).toBe(0);
      expect(await metric(h, 'chain_provider_failovers_total', { provider: 'a', reason: 'disagreement' })).toBeGreaterThanOrEqual(1);

      // b and c gone: a alone cannot make a quorum, so nothing more is emitted until one is back.
      chain.providers[1]!.fault = 'cut';
      chain.providers[2]!.fault = 'cut';
      await waitFor(
        async () =>
          (await metric(h, 'chain_provider_up', { provider: 'b' })) + (await metric(h, 'chain_provider_up', { provider: 'c' })) === 0,
        20_000,
        'b and c down',
      );
      const emitted = h.collector.messages.length;
      await chain.ticks(2);
      await waitFor(
        async () => (await metric(h, 'chain_provider_height', { provider: 'a' })) === (await chain.head()),
        20_000,
        'a sees the new head',
      );
      expect(h.collector.messages.length).toBe(emitted);
      // b back: b alone (the liar held off, without a vote) cannot make a quorum either.
      chain.providers[1]!.fault = 'none';
      const head = await chain.head();
      await waitFor(
        async () =>
          (await metric(h, 'chain_provider_active', { provider: 'b' })) === 1 &&
          (await metric(h, 'chain_provider_height', { provider: 'b' })) === head,
        20_000,
        'b read from, at the head',
      );
      expect(h.collector.messages.length).toBe(emitted);
      chain.providers[2]!.fault = 'none';
      await waitFor(caughtUp(h), 20_000, 'the last ticks once b and c are back');
      await expectEveryTickOnce(h.collector, chain);
    });
  });

  it('a provider claiming a far head moves neither the `latest` start past real blocks nor what is emitted', async () => {
    const http = (name: string) => ({ name, httpUrl: chain.providers.find((p) => p.name === name)!.httpUrl });
    const liar = chain.providers[0]!;
    liar.aheadBlocks = 1_000;
    liar.fault = 'ahead';
    const start = await chain.head();
    // Polled over HTTP, so the far head is claimed at every poll; a first, of the highest weight.
    await run(
      ['a', 'b'],
      { providers: [{ ...http('a'), weight: 2 }, http('b')], startBlock: 'latest', pollIntervalMs: 100, failbackAfterMs: 60_000 },
      async (h) => {
        await waitFor(async () => (await metric(h, 'chain_up', {})) === 1, 20_000, 'the start pinned');
        const before = chain.sent;
        await chain.ticks(3);
        await waitFor(caughtUp(h), 20_000, 'the ticks, from the blocks that exist');
        expect(h.collector.emitted[0]!.blockNumber).toBeLessThanOrEqual(start + 1);
        const got = seqs(netLogs(h.collector.messages));
        expect(got.slice(-3)).toEqual([before, before + 1, before + 2]);
        expect(h.collector.retracted).toEqual([]);
      },
    );
  });

  it('with three providers, one claiming a far head is never read from', async () => {
    chain.providers[0]!.aheadBlocks = 1_000;
    chain.providers[0]!.fault = 'ahead';
    const http = (name: string, weight = 1) => ({ name, httpUrl: chain.providers.find((p) => p.name === name)!.httpUrl, weight });
    const logReads = () => chain.providers[0]!.calls.get('eth_getLogs') ?? 0;
    const before = logReads();
    await run(
      ['a', 'b', 'c'],
      { providers: [http('a', 5), http('b'), http('c')], startBlock: 'latest', pollIntervalMs: 100 },
      async (h) => {
        await waitFor(async () => (await metric(h, 'chain_provider_active', { provider: 'b' })) === 1, 20_000, 'b read from');
        await chain.ticks(2);
        await waitFor(caughtUp(h), 20_000, 'the ticks');
        expect(logReads()).toBe(before);
        expect(await metric(h, 'chain_provider_active', { provider: 'a' })).toBe(0);
        expect(h.collector.retracted).toEqual([]);
      },
    );
  });
});
