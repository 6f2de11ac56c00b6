/**
 * A real anvil (automine) with the Tick contract, and loopback RpcProviders in front of it (rpc-provider.ts),
 * for the multi-provider listener tests: `ticks(blocks)` sends one-log transactions, one block each,
 * numbered on from the last; `expectEveryTickOnce` checks a collector's net view against them (every
 * tick once, in order, each log in the block anvil has for it); `canonicalHash` is anvil's own word.
 */
import { expect } from 'vitest';
import { deployTickContract, devAccount, sendTicks, waitForReceipt } from '../../src/dev-chain/tick-contract.ts';
import { startAnvil, type TestAnvil } from './anvil.ts';
import { netBlocks, netLogs, seqs, type Collector } from './chain-harness.ts';
import { startRpcProvider, type RpcProvider } from './rpc-provider.ts';

export interface ProvidersChain {
  anvil: TestAnvil;
  providers: RpcProvider[];
  /** Ticks sent so far. */
  readonly sent: number;
  head(): Promise<number>;
  ticks(blocks: number): Promise<void>;
  canonicalHash(n: number): Promise<string>;
  stop(): Promise<void>;
}

export async function startProvidersChain(names: string[]): Promise<ProvidersChain> {
  const anvil = await startAnvil();
  const rpc = (m: string, p: unknown[]) => anvil.rpc(m, p);
  const from = await devAccount(rpc);
  const contract = await deployTickContract(rpc, from);
  const providers = await Promise.all(names.map((name) => startRpcProvider({ name, anvilHttpUrl: anvil.httpUrl, headPollMs: 25 })));
  let sent = 0;
  return {
    anvil,
    providers,
    get sent() {
      return sent;
    },
    head: async () => Number.parseInt(await anvil.rpc<string>('eth_blockNumber'), 16),
    ticks: async (blocks) => {
      for (let i = 0; i < blocks; i++) {
        await waitForReceipt(rpc, await sendTicks(rpc, from, contract, 1));
        sent++;
      }
    },
    canonicalHash: async (n) => (await anvil.rpc<{ hash: string }>('eth_getBlockByNumber', [`0x${n.toString(16)}`, false])).hash,
    stop: async () => {
      await Promise.all(providers.map((p) => p.stop()));
      await anvil.stop();
    },
  };
}

/** Every tick sent, exactly once and in order, no retraction, each block the one anvil has at its height. */
export async function expectEveryTickOnce(collector: Collector, chain: ProvidersChain): Promise<void> {
  expect(collector.retracted).toEqual([]);
  const logs = netLogs(collector.messages);
  expect(seqs(logs)).toEqual(Array.from({ length: chain.sent }, (_, i) => i));
  for (const block of netBlocks(collector.messages)) {
    expect(block.blockHash, `block ${block.blockNumber}`).toBe(await chain.canonicalHash(block.blockNumber));
    for (const log of block.logs) expect(log.blockHash).toBe(block.blockHash);
  }
}
