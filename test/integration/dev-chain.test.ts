// The embedded dev chain: anvil on a free loopback port, the Tick contract deployed, transactions sent
// on a timer; a ChainListener follows it and the events decode (ethers) as declared; stop() kills anvil.
import { Interface } from 'ethers';
import { describe, expect, it } from 'vitest';
import { startDevChain, TICK_EVENT_SIGNATURE } from '../../src/dev-chain/index.ts';
import { memoryLogger } from '../support/kernel.ts';
import { netLogs, seqs, startHarness, tempDb, waitFor } from '../support/chain-harness.ts';

describe('startDevChain', () => {
  it('runs anvil with a contract that emits decodable events, followed by a ChainListener, until stop()', async () => {
    const { logger, lines } = memoryLogger();
    const dev = await startDevChain({ logger, blockTimeMs: 200, txIntervalMs: 100 });
    const store = await tempDb();
    let stopped = false;
    try {
      expect(dev.chainId).toBe(31_337);
      expect(dev.wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
      expect(lines.some((l) => l.wsUrl === dev.wsUrl && String(l.msg).includes(dev.httpUrl))).toBe(true);
      const h = await startHarness({ chain: { chainId: dev.chainId, name: 'dev', wsUrl: dev.wsUrl, startBlock: 0 }, db: store.db });
      try {
        await waitFor(() => netLogs(h.collector.messages).length >= 15, 30_000, '15 Tick events');
      } finally {
        await h.stop();
      }
      const logs = netLogs(h.collector.messages);
      const iface = new Interface([TICK_EVENT_SIGNATURE]);
      const from = ((await (await fetch(dev.httpUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_accounts', params: [] }),
      })).json()) as { result: string[] }).result[0]!;
      for (const log of logs) {
        expect(log.address).toBe(dev.contractAddress);
        const parsed = iface.parseLog({ topics: log.topics, data: log.data })!;
        expect(parsed.name).toBe('Tick');
        expect(String(parsed.args.sender).toLowerCase()).toBe(from.toLowerCase());
        expect(Number(parsed.args.blockNumber)).toBe(log.blockNumber);
      }
      expect(seqs(logs)).toEqual(logs.map((_, i) => i));

      await dev.stop();
      stopped = true;
      await expect(fetch(dev.httpUrl, { method: 'POST', body: '{}' })).rejects.toThrow();
    } finally {
      if (!stopped) await dev.stop();
      await store.close();
    }
  });

  it('fails with ETHHOOK_ERR_DEV_CHAIN when the anvil binary is missing', async () => {
    const { logger } = memoryLogger();
    await expect(startDevChain({ logger, binary: '/nonexistent/anvil' })).rejects.toMatchObject({ code: 'ETHHOOK_ERR_DEV_CHAIN' });
  });
});
