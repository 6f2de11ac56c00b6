// Resilience on a real anvil behind a loopback TCP proxy: ten connection cuts while blocks are produced
// leave no gap and no duplicate; a WebSocket that stays down hands over to HTTP polling, and the listener
// goes back to the WebSocket once it works again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChainLog } from '../../src/actors/chain-listener/messages.ts';
import { deployTickContract, devAccount, sendTicks } from '../../src/dev-chain/tick-contract.ts';
import { startAnvil, type TestAnvil } from '../support/anvil.ts';
import { netBlocks, seqs, startHarness, tempDb, waitFor } from '../support/chain-harness.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';

let anvil: TestAnvil;
let from: string;
let contract: string;
const rpc = (m: string, p: unknown[]) => anvil.rpc(m, p);
const head = async () => Number.parseInt(await anvil.rpc<string>('eth_blockNumber'), 16);
const fast = { minMs: 50, maxMs: 400, factor: 2, jitter: 0.2 };

beforeAll(async () => {
  anvil = await startAnvil({ blockTime: 0.2 });
  from = await devAccount(rpc);
  contract = await deployTickContract(rpc, from);
});
afterAll(async () => {
  await anvil?.stop();
});

describe('connection cuts', () => {
  it('survives 10 cuts while blocks are produced: every block once, every log once, in order', async () => {
    const proxy = await startTcpProxy(anvil.port);
    const store = await tempDb();
    const h = await startHarness({
      chain: {
        chainId: 31337,
        name: 'anvil',
        wsUrl: `ws://127.0.0.1:${proxy.port}`,
        heartbeatMs: 1_000,
        requestTimeoutMs: 2_000,
        backfillRange: 5,
        reconnect: fast,
      },
      db: store.db,
    });
    let sending = true;
    const sender = (async () => {
      while (sending) {
        await sendTicks(rpc, from, contract, 3);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      for (let cut = 0; cut < 10; cut++) {
        const before = h.collector.messages.length;
        await waitFor(() => proxy.open > 0 && h.collector.messages.length > before, 20_000, `progress before cut ${cut + 1}`);
        proxy.cutAll();
        await new Promise((r) => setTimeout(r, 150 + cut * 40));
      }
      sending = false;
      await sender;
      await new Promise((r) => setTimeout(r, 500)); // the last transactions are mined
      const last = await head();
      await waitFor(() => h.collector.emitted.at(-1)?.blockNumber === last, 30_000, `block ${last}`);
      const blocks = netBlocks(h.collector.messages); // asserts no gap and no duplicate
      expect(h.collector.retracted).toEqual([]);
      const first = blocks[0]!.blockNumber;
      expect(blocks.map((b) => b.blockNumber)).toEqual(Array.from({ length: last - first + 1 }, (_, i) => first + i));
      const got = seqs(blocks.flatMap((b) => b.logs));
      const canonical = await anvil.rpc<ChainLog[]>('eth_getLogs', [
        { fromBlock: `0x${first.toString(16)}`, toBlock: `0x${last.toString(16)}` },
      ]);
      expect(got).toEqual(seqs(canonical));
      expect(got.length).toBeGreaterThan(30);
      expect(got).toEqual(Array.from({ length: got.length }, (_, i) => got[0]! + i));
      expect(await h.metric('chain_rpc_errors_total', { chain: 'anvil', kind: 'connection' })).toBeGreaterThanOrEqual(10);
      expect(h.failures).toEqual([]);
    } finally {
      sending = false;
      await sender;
      await h.stop();
      await store.close();
      await proxy.stop();
    }
  });
});

describe('HTTP fallback', () => {
  it('polls over HTTP while the WebSocket is down, then returns to the WebSocket', async () => {
    const proxy = await startTcpProxy(anvil.port);
    proxy.refuse(true);
    const store = await tempDb();
    const h = await startHarness({
      chain: {
        chainId: 31337,
        name: 'anvil',
        wsUrl: `ws://127.0.0.1:${proxy.port}`,
        httpUrl: anvil.httpUrl,
        wsFailuresBeforeFallback: 3,
        pollIntervalMs: 100,
        heartbeatMs: 1_000,
        reconnect: fast,
      },
      db: store.db,
    });
    try {
      await waitFor(() => status(h).transport === 'http', 20_000, 'HTTP mode');
      await sendTicks(rpc, from, contract, 2);
      const polled = await head();
      await waitFor(() => (h.collector.emitted.at(-1)?.blockNumber ?? 0) >= polled, 20_000, `block ${polled} over HTTP`);
      expect(await h.metric('chain_ws_connected')).toBe(0);
      expect(status(h).transport).toBe('http');

      proxy.refuse(false);
      await waitFor(async () => (await h.metric('chain_ws_connected')) === 1, 20_000, 'the WebSocket back');
      expect(status(h).transport).toBe('ws');
      await sendTicks(rpc, from, contract, 2);
      const last = await head();
      await waitFor(() => (h.collector.emitted.at(-1)?.blockNumber ?? 0) >= last, 20_000, `block ${last} over ws`);
      netBlocks(h.collector.messages);
      expect(h.collector.retracted).toEqual([]);
      expect(h.failures).toEqual([]);
    } finally {
      await h.stop();
      await store.close();
      await proxy.stop();
    }
  });
});

function status(h: { behaviour: { receive(msg: unknown, ctx: never): unknown } }): { transport: string } {
  return h.behaviour.receive({ type: 'chain.status' }, {} as never) as { transport: string };
}
