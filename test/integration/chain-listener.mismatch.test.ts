// The listener refuses a node on the wrong chain: another chain id, or the same id with another block 0
// than the one its cursor was built on (a fresh dev chain), loudly (ctx.fail, fatal); clearing the
// cursor lets it start over on the new chain.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmittedBlock } from '../../src/actors/chain-listener/follower.ts';
import { CursorStore } from '../../src/store/cursors.ts';
import { startAnvil, type TestAnvil } from '../support/anvil.ts';
import { startHarness, tempDb, waitFor } from '../support/chain-harness.ts';
import { LevelKv } from '../../src/store/level/kv.ts';

let first: TestAnvil;
let second: TestAnvil;

beforeAll(async () => {
  // Same chain id; another genesis timestamp, so another block 0.
  [first, second] = await Promise.all([
    startAnvil({ blockTime: 0.2 }),
    startAnvil({ blockTime: 0.2, args: ['--timestamp', '1000000000'] }),
  ]);
});
afterAll(async () => {
  await Promise.all([first?.stop(), second?.stop()]);
});

describe('chain identity', () => {
  it('stops on a node that serves another chain id', async () => {
    const store = await tempDb();
    const h = await startHarness({ chain: { chainId: 1, name: 'mainnet', wsUrl: first.wsUrl }, db: store.db });
    try {
      await waitFor(() => h.failures.length > 0, 20_000, 'the fatal error');
      expect(h.failures[0]).toMatchObject({ code: 'ETHHOOK_ERR_CHAIN_MISMATCH', context: { chainId: 1, served: 31337 } });
      expect(h.collector.messages).toEqual([]);
    } finally {
      await h.stop();
      await store.close();
    }
  });

  it("stops on a node whose block 0 is not the cursor's, and starts over once the cursor is cleared", async () => {
    const store = await tempDb();
    const chain = (wsUrl: string) => ({ chainId: 31337, name: 'dev', wsUrl, startBlock: 0 });
    const a = await startHarness({ chain: chain(first.wsUrl), db: store.db });
    try {
      await waitFor(() => a.collector.messages.length >= 3, 20_000, 'blocks of the first chain');
    } finally {
      await a.stop();
    }
    const b = await startHarness({ chain: chain(second.wsUrl), db: store.db });
    try {
      await waitFor(() => b.failures.length > 0, 20_000, 'the fatal error');
      expect(b.failures[0]).toMatchObject({ code: 'ETHHOOK_ERR_CHAIN_MISMATCH' });
      expect(b.collector.messages).toEqual([]);
    } finally {
      await b.stop();
    }
    await new CursorStore<EmittedBlock>(new LevelKv(store.db)).clear(31337);
    const c = await startHarness({ chain: chain(second.wsUrl), db: store.db });
    try {
      await waitFor(() => c.collector.messages.length >= 2, 20_000, 'blocks of the second chain');
      expect(c.collector.messages[0]!.blockNumber).toBe(0);
      expect(c.failures).toEqual([]);
    } finally {
      await c.stop();
      await store.close();
    }
  });
});
