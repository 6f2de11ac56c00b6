// Ingestion against a real anvil: backfill from block 0, then live, 1,000 Tick logs over 100+ blocks,
// each exactly once and in chain order; confirmations hold blocks back; metrics follow; a range the node
// refuses is split.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployTickContract, devAccount, sendTicks, waitForReceipt } from '../../src/dev-chain/tick-contract.ts';
import type { ChainLog } from '../../src/actors/chain-listener/messages.ts';
import { startAnvil, type TestAnvil } from '../support/anvil.ts';
import { startFakeRpc } from '../support/fake-rpc.ts';
import { Collector, netBlocks, netLogs, seqs, startHarness, tempDb, waitFor } from '../support/chain-harness.ts';

let anvil: TestAnvil;
let from: string;
let contract: string;
const rpc = (m: string, p: unknown[]) => anvil.rpc(m, p);
const head = async () => Number.parseInt(await anvil.rpc<string>('eth_blockNumber'), 16);

beforeAll(async () => {
  anvil = await startAnvil(); // automine: one block per transaction
  from = await devAccount(rpc);
  contract = await deployTickContract(rpc, from);
});
afterAll(async () => {
  await anvil?.stop();
});

async function tickBlocks(blocks: number, perBlock: number): Promise<void> {
  for (let i = 0; i < blocks; i++) await waitForReceipt(rpc, await sendTicks(rpc, from, contract, perBlock));
}

describe('backfill then live', () => {
  it('delivers 1,000 logs over 100+ blocks exactly once, in chain order, every block once', async () => {
    await tickBlocks(50, 10); // before the listener starts: backfilled in ranges
    const store = await tempDb();
    const h = await startHarness({
      chain: { chainId: 31337, name: 'anvil', wsUrl: anvil.wsUrl, startBlock: 0, backfillRange: 7, heartbeatMs: 1_000 },
      db: store.db,
    });
    try {
      await tickBlocks(50, 10); // while it follows: live
      const last = await head();
      await waitFor(() => h.collector.emitted.at(-1)?.blockNumber === last, 30_000, `block ${last}`);
      expect(h.collector.retracted).toEqual([]);
      const blocks = netBlocks(h.collector.messages);
      expect(blocks.map((b) => b.blockNumber)).toEqual(Array.from({ length: last + 1 }, (_, i) => i));
      const logs = netLogs(h.collector.messages);
      expect(logs).toHaveLength(1_000);
      expect(seqs(logs)).toEqual(Array.from({ length: 1_000 }, (_, i) => i));
      expect(new Set(logs.map((l) => `${l.transactionHash}:${l.logIndex}`)).size).toBe(1_000);
      for (const b of blocks) {
        for (const l of b.logs) expect([l.blockNumber, l.blockHash, l.address]).toEqual([b.blockNumber, b.blockHash, contract]);
      }
      expect(await h.metric('events_received_total')).toBe(1_000);
      // The processed height is the persisted cursor: it moves once the last block's ack is written,
      // a moment after the block was emitted (asserting it at once failed 1 run in ~100 under load).
      await waitFor(async () => (await h.metric('chain_processed_height')) === last, 10_000, `processed height ${last}`);
      expect(await h.metric('chain_height')).toBe(last);
      expect(await h.metric('chain_lag_blocks')).toBe(0);
      expect(await h.metric('chain_ws_connected')).toBe(1);
      expect(h.failures).toEqual([]);
    } finally {
      await h.stop();
      await store.close();
    }
    expect(await h.metric('chain_ws_connected')).toBe(0);
  });

  it('holds blocks back until they are `confirmations` deep; `latest` starts at the confirmed head', async () => {
    const store = await tempDb();
    const start = await head();
    const h = await startHarness({
      chain: { chainId: 31337, name: 'anvil', wsUrl: anvil.wsUrl, confirmations: 3, heartbeatMs: 500 },
      db: store.db,
    });
    try {
      await waitFor(() => h.collector.messages.length > 0, 20_000, 'the first confirmed block');
      expect(h.collector.messages[0]!.blockNumber).toBe(start - 3);
      await tickBlocks(5, 2);
      const last = await head();
      await waitFor(() => h.collector.emitted.at(-1)?.blockNumber === last - 3, 20_000, `block ${last - 3}`);
      await new Promise((r) => setTimeout(r, 300));
      expect(h.collector.emitted.at(-1)!.blockNumber).toBe(last - 3);
      expect(netBlocks(h.collector.messages).map((b) => b.blockNumber)).toEqual(
        Array.from({ length: last - start + 1 }, (_, i) => start - 3 + i),
      );
      expect(await h.metric('chain_height')).toBe(last);
      expect(await h.metric('chain_processed_height')).toBe(last - 3);
      // A listener that keeps up lags by its confirmations, no more.
      expect(await h.metric('chain_lag_blocks')).toBe(3);
    } finally {
      await h.stop();
      await store.close();
    }
  });

  it('asks again, without advancing, while the target does not acknowledge', async () => {
    const store = await tempDb();
    const h = await startHarness({
      chain: { chainId: 31337, name: 'anvil', wsUrl: anvil.wsUrl, heartbeatMs: 500, reconnect: { minMs: 20, maxMs: 100 } },
      db: store.db,
    });
    try {
      await waitFor(() => h.collector.messages.length > 0, 20_000, 'the first block');
      h.collector.refusing = true;
      await tickBlocks(3, 1);
      await new Promise((r) => setTimeout(r, 500));
      const before = h.collector.messages.length;
      h.collector.refusing = false;
      const last = await head();
      await waitFor(() => h.collector.emitted.at(-1)?.blockNumber === last, 20_000, `block ${last}`);
      expect(h.collector.messages.length).toBe(before + 3);
      netBlocks(h.collector.messages);
    } finally {
      await h.stop();
      await store.close();
    }
  });

  it('stops promptly even while an ask to the target is pending', async () => {
    const store = await tempDb();
    const collector = new Collector();
    let asked = 0;
    collector.ask = () => {
      asked++;
      return new Promise(() => {}); // a target that never answers
    };
    const h = await startHarness({
      chain: { chainId: 31337, name: 'anvil', wsUrl: anvil.wsUrl, ackTimeoutMs: 600_000 },
      db: store.db,
      collector,
    });
    try {
      await waitFor(() => asked > 0, 20_000, 'the first ask');
      const started = Date.now();
      await h.stop();
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await store.close();
    }
  });

  it('splits a range the node refuses as too large, and still delivers every log once', async () => {
    const fake = await startFakeRpc({ upstreamHttpUrl: anvil.httpUrl, maxLogsPerRange: 25 });
    const store = await tempDb();
    const h = await startHarness({
      chain: { chainId: 31337, name: 'limited', wsUrl: fake.wsUrl, startBlock: 0, backfillRange: 64 },
      db: store.db,
    });
    try {
      const last = await head();
      await waitFor(() => h.collector.emitted.at(-1)?.blockNumber === last, 30_000, `block ${last}`);
      const canonical = await anvil.rpc<ChainLog[]>('eth_getLogs', [{ fromBlock: '0x0', toBlock: `0x${last.toString(16)}` }]);
      expect(seqs(netLogs(h.collector.messages))).toEqual(seqs(canonical));
      expect(await h.metric('chain_rpc_errors_total', { chain: 'limited', kind: 'range-too-large' })).toBeGreaterThan(0);
    } finally {
      await h.stop();
      await store.close();
      await fake.stop();
    }
  });

  it('splits ranges whose answers exceed maxFrameBytes, and still delivers every log once', async () => {
    const store = await tempDb();
    const h = await startHarness({
      chain: {
        chainId: 31337,
        name: 'small-frames',
        wsUrl: anvil.wsUrl,
        startBlock: 0,
        backfillRange: 64,
        maxFrameBytes: 24 * 1024, // ~ 3 blocks of 10 logs, ~ 16 headers
        reconnect: { minMs: 10, maxMs: 50 },
      },
      db: store.db,
    });
    try {
      const last = await head();
      await waitFor(() => h.collector.emitted.at(-1)?.blockNumber === last, 40_000, `block ${last}`);
      const canonical = await anvil.rpc<ChainLog[]>('eth_getLogs', [{ fromBlock: '0x0', toBlock: `0x${last.toString(16)}` }]);
      expect(seqs(netLogs(h.collector.messages))).toEqual(seqs(canonical));
      expect(await h.metric('chain_rpc_errors_total', { chain: 'small-frames', kind: 'range-too-large' })).toBeGreaterThan(0);
    } finally {
      await h.stop();
      await store.close();
    }
  });
});
