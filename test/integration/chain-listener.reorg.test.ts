// Reorgs made by anvil_reorg at depths 1 to 5: the listener retracts exactly the orphaned blocks it had
// emitted (newest first, with their logs), then emits the new branch in order; chain_reorgs_total
// counts each; the receiver's net view equals the node's canonical logs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tickCalldata } from '../../src/dev-chain/contract.ts';
import { deployTickContract, devAccount, sendTicks, waitForReceipt } from '../../src/dev-chain/tick-contract.ts';
import { startAnvil, type TestAnvil } from '../support/anvil.ts';
import { netBlocks, netLogs, startHarness, tempDb, waitFor, type Harness } from '../support/chain-harness.ts';

let anvil: TestAnvil;
let from: string;
let contract: string;
let h: Harness;
let store: Awaited<ReturnType<typeof tempDb>>;
const rpc = (m: string, p: unknown[]) => anvil.rpc(m, p);
const head = async () => Number.parseInt(await anvil.rpc<string>('eth_blockNumber'), 16);
const hashAt = async (n: number) => (await anvil.rpc<{ hash: string }>('eth_getBlockByNumber', [`0x${n.toString(16)}`, false])).hash;

beforeAll(async () => {
  anvil = await startAnvil();
  from = await devAccount(rpc);
  contract = await deployTickContract(rpc, from);
  store = await tempDb();
  h = await startHarness({
    chain: { chainId: 31337, name: 'anvil', wsUrl: anvil.wsUrl, startBlock: 0, maxReorgDepth: 8, heartbeatMs: 300 },
    db: store.db,
  });
});
afterAll(async () => {
  await h?.stop();
  await store?.close();
  await anvil?.stop();
});

async function caughtUp(): Promise<number> {
  const last = await head();
  const tip = await hashAt(last);
  await waitFor(() => netBlocks(h.collector.messages).at(-1)?.blockHash === tip, 20_000, `block ${last} (${tip})`);
  return last;
}

describe('anvil_reorg at depths 1 to 5', () => {
  for (const depth of [1, 2, 3, 4, 5]) {
    it(`depth ${depth}: retracts the ${depth} orphaned blocks newest first, then emits the new branch`, async () => {
      for (let i = 0; i <= depth; i++) await waitForReceipt(rpc, await sendTicks(rpc, from, contract, 2));
      const last = await caughtUp();
      const mark = h.collector.messages.length;
      const orphans = netBlocks(h.collector.messages).filter((b) => b.blockNumber > last - depth);
      expect(orphans).toHaveLength(depth);
      const reorgsBefore = await h.metric('chain_reorgs_total');

      // The new branch has the same height; its first block carries one Tick transaction.
      await anvil.rpc('anvil_reorg', [depth, [[{ from, to: contract, data: tickCalldata(1) }, 0]]]);
      expect(await head()).toBe(last);
      await caughtUp();

      const after = h.collector.messages.slice(mark);
      const retractions = after.slice(0, depth);
      expect(retractions.map((m) => [m.removed, m.blockNumber, m.blockHash])).toEqual(
        orphans.reverse().map((b) => [true, b.blockNumber, b.blockHash]),
      );
      for (const [i, r] of retractions.entries()) {
        expect(r.logs).toEqual(orphans[i]!.logs.map((l) => ({ ...l, removed: true })));
      }
      const branch = after.slice(depth);
      expect(branch.every((m) => !m.removed)).toBe(true);
      expect(branch.map((m) => m.blockNumber)).toEqual(Array.from({ length: depth }, (_, i) => last - depth + 1 + i));
      for (const m of branch) expect(m.blockHash).toBe(await hashAt(m.blockNumber));
      expect(branch[0]!.logs).toHaveLength(1);
      expect(await h.metric('chain_reorgs_total')).toBe(reorgsBefore + 1);
    });
  }

  it('leaves the receiver with exactly the canonical logs, and never failed', async () => {
    const last = await caughtUp();
    const canonical = await anvil.rpc<Array<{ blockHash: string; logIndex: string }>>('eth_getLogs', [
      { fromBlock: '0x0', toBlock: `0x${last.toString(16)}` },
    ]);
    expect(netLogs(h.collector.messages).map((l) => `${l.blockHash}:${l.logIndex}`)).toEqual(
      canonical.map((l) => `${l.blockHash}:${Number.parseInt(l.logIndex, 16)}`),
    );
    expect(await h.metric('chain_reorgs_total')).toBe(5);
    expect(h.failures).toEqual([]);
  });
});

describe('a reorg deeper than maxReorgDepth', () => {
  it('stops that listener loudly: ctx.fail(ETHHOOK_ERR_REORG_TOO_DEEP), failed health, no retraction', async () => {
    const deepStore = await tempDb();
    const deep = await startHarness({
      chain: { chainId: 31337, name: 'shallow', wsUrl: anvil.wsUrl, maxReorgDepth: 2, heartbeatMs: 300 },
      db: deepStore.db,
    });
    try {
      // Its first block (its floor) must lie below the reorg, or it could retract everything it emitted.
      await waitFor(() => deep.collector.messages.length > 0, 20_000, 'the first block');
      for (let i = 0; i < 4; i++) await waitForReceipt(rpc, await sendTicks(rpc, from, contract, 1));
      const last = await head();
      await waitFor(() => deep.collector.emitted.at(-1)?.blockNumber === last, 20_000, `block ${last}`);
      await anvil.rpc('anvil_reorg', [4, []]);
      await waitFor(() => deep.failures.length > 0, 20_000, 'the fatal error');
      expect(deep.failures[0]).toMatchObject({ code: 'ETHHOOK_ERR_REORG_TOO_DEEP' });
      expect(await deep.behaviour.health!()).toMatchObject({ ok: false });
      expect(deep.collector.retracted).toEqual([]);
    } finally {
      await deep.stop();
      await deepStore.close();
    }
  });
});
