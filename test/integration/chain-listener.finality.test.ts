// The listener's finality messages against a real anvil (`--slots-in-an-epoch 2`: `finalized` is the
// head - 4) behind a provider that can stall (test/support/rpc-provider.ts): while the provider shows no
// new block and anvil finalizes the listener's last block, the listener sends `chain.finality` with the
// heights and that block (number and hash, as emitted) as its anchor, once: an acknowledged height is not
// sent again; and no block is emitted meanwhile. With confirmations, the `safe` block is often above the
// processed height: the message is then anchored on the `finalized` block, which the listener processed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAnvil, type TestAnvil } from '../support/anvil.ts';
import { startRpcProvider, type RpcProvider } from '../support/rpc-provider.ts';
import { startHarness, tempDb, waitFor } from '../support/chain-harness.ts';

let anvil: TestAnvil;
let provider: RpcProvider;
const head = async () => Number.parseInt(await anvil.rpc<string>('eth_blockNumber'), 16);

beforeAll(async () => {
  anvil = await startAnvil({ args: ['--slots-in-an-epoch', '2'] });
  provider = await startRpcProvider({ name: 'p', anvilHttpUrl: anvil.httpUrl });
});
afterAll(async () => {
  await provider?.stop();
  await anvil?.stop();
});

describe('finality between blocks', () => {
  it("sends chain.finality when the chain's finalized block moves with no new block, anchored on the emitted block, once", async () => {
    await anvil.mine(10);
    const store = await tempDb();
    const h = await startHarness({
      chain: { chainId: 31337, name: 'anvil', wsUrl: provider.wsUrl, startBlock: 0, finalityPollMs: 50 },
      db: store.db,
    });
    try {
      const top = await head();
      await waitFor(() => h.collector.emitted.some((m) => m.blockNumber === top), 10_000, 'the head emitted');
      provider.fault = 'stall';
      const emitted = h.collector.messages.length;
      await anvil.mine(4);
      await waitFor(() => h.collector.finality.some((m) => m.finality.finalized === top), 10_000, 'the finalized head told');
      const told = h.collector.finality.filter((m) => m.finality.finalized === top);
      const block = h.collector.emitted.find((m) => m.blockNumber === top)!;
      expect(told).toEqual([
        {
          type: 'chain.finality',
          chainId: 31337,
          finality: { safe: top, finalized: top },
          anchor: { number: top, hash: block.blockHash },
          seenAt: told[0]!.seenAt,
        },
      ]);
      // Polls go on every 50 ms: the acknowledged heights are not sent again, and no block came.
      const polls = provider.calls.get('eth_getBlockByNumber') ?? 0;
      await waitFor(() => (provider.calls.get('eth_getBlockByNumber') ?? 0) >= polls + 10, 10_000, 'more polls');
      expect(h.collector.finality.filter((m) => m.finality.finalized === top)).toHaveLength(1);
      expect(h.collector.messages).toHaveLength(emitted);
    } finally {
      provider.fault = 'none';
      await h.stop();
      await store.close();
    }
  });

  it('with confirmations, anchors on the finalized block it processed when the safe one is still above', async () => {
    const store = await tempDb();
    const h = await startHarness({
      chain: { chainId: 31337, name: 'anvil', wsUrl: provider.wsUrl, startBlock: 0, finalityPollMs: 50, confirmations: 3 },
      db: store.db,
    });
    try {
      await anvil.mine(10);
      const top = await head();
      // Processed: top - 3. One block more on anvil, unseen by the listener: safe top - 1, finalized top - 3.
      await waitFor(() => h.collector.emitted.some((m) => m.blockNumber === top - 3), 10_000, 'top - 3 emitted');
      provider.fault = 'stall';
      await anvil.mine(1);
      await waitFor(() => h.collector.finality.some((m) => m.finality.finalized === top - 3), 10_000, 'the finalized block told');
      const told = h.collector.finality.find((m) => m.finality.finalized === top - 3)!;
      const block = h.collector.emitted.find((m) => m.blockNumber === top - 3)!;
      expect(told.anchor).toEqual({ number: top - 3, hash: block.blockHash });
      expect(told.finality).toEqual({ safe: top - 3, finalized: top - 3 });
      expect(h.collector.finality.every((m) => m.anchor.number <= top - 3)).toBe(true);
    } finally {
      provider.fault = 'none';
      await h.stop();
      await store.close();
    }
  });
});
