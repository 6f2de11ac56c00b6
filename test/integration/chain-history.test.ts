// A Backfill's read of past blocks (src/actors/chain-listener/history.ts) against a real anvil, over the
// listener's own HTTP JSON-RPC client, every call counted: anvil puts `blockTimestamp` in every log, so a
// read of many blocks with logs is one `eth_getLogs` and no header; a block whose logs do not all carry a
// valid, equal `blockTimestamp` (the answer doctored in the transport, as a provider without the field
// gives it) costs its header, read in one batch; a header of another hash than its logs' (a real reorg
// between the two reads) and logs of one block naming two hashes are ETHHOOK_ERR_CHAIN_INCONSISTENT.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readHistory } from '../../src/actors/chain-listener/history.ts';
import { HttpRpcClient } from '../../src/actors/chain-listener/http-rpc.ts';
import { RpcChainSource } from '../../src/actors/chain-listener/rpc-source.ts';
import type { RpcCall, RpcTransport } from '../../src/actors/chain-listener/transport.ts';
import { tickCalldata } from '../../src/dev-chain/contract.ts';
import { CHAIN_ID, startTickChain, type TickChain } from '../e2e/e2e-chain.ts';

type RawLog = Record<string, unknown> & { blockNumber: string };

/** The listener's HTTP client, with every call counted by method (a batch's calls one by one) and `eth_getLogs` answers passed through `logs`. */
function countingTransport(url: string, logs: (raw: RawLog[]) => RawLog[] | Promise<RawLog[]> = (raw) => raw) {
  const inner = new HttpRpcClient({ url, requestTimeoutMs: 10_000, maxFrameBytes: 64 * 1024 * 1024 });
  const calls = new Map<string, number>();
  const count = (method: string) => calls.set(method, (calls.get(method) ?? 0) + 1);
  const transport: RpcTransport = {
    kind: 'http',
    async request(method, params) {
      count(method);
      const result = await inner.request(method, params);
      return method === 'eth_getLogs' ? logs(result as RawLog[]) : result;
    },
    async batch(list: RpcCall[]) {
      for (const c of list) count(c.method);
      return inner.batch(list);
    },
    close: () => inner.close(),
  };
  return { transport, calls };
}

let chain: TickChain;
let contract: string;
let first: number;
let last: number;
const BLOCKS = 40;

const headerOf = (n: number) =>
  chain.anvil.rpc<{ hash: string; timestamp: string }>('eth_getBlockByNumber', [`0x${n.toString(16)}`, false]);

beforeAll(async () => {
  chain = await startTickChain();
  contract = await chain.deploy();
  first = (await chain.head()) + 1;
  for (let i = 0; i < BLOCKS; i++) await chain.tick(contract, 1 + (i % 3));
  last = await chain.head();
});

afterAll(async () => {
  await chain?.stop();
});

async function expectBlocksAsTheChainHasThem(blocks: Array<{ number: number; hash: string; timestamp: number }>) {
  expect(blocks.map((b) => b.number)).toEqual(Array.from({ length: BLOCKS }, (_, i) => first + i));
  for (const b of blocks) {
    const header = await headerOf(b.number);
    expect(b).toEqual({ number: b.number, hash: header.hash, timestamp: Number.parseInt(header.timestamp, 16) });
  }
}

describe('history read', () => {
  it("takes each block's timestamp from its logs' blockTimestamp: one eth_getLogs for 40 blocks with logs, no header", async () => {
    const { transport, calls } = countingTransport(chain.anvil.httpUrl);
    const read = await readHistory(new RpcChainSource(transport), CHAIN_ID, first, last, { address: [contract] });
    expect(read.logs).toHaveLength(Array.from({ length: BLOCKS }, (_, i) => 1 + (i % 3)).reduce((a, b) => a + b, 0));
    await expectBlocksAsTheChainHasThem(read.blocks);
    expect(read.calls).toBe(1);
    expect(Object.fromEntries(calls)).toEqual({ eth_getLogs: 1 });
  });

  it('reads the header of each block whose logs lack a valid, equal blockTimestamp, in one batch, and counts those calls', async () => {
    // Every 4th block without the field, every 4th + 1 with a log whose field is no quantity, every 4th + 2
    // (blocks of 2 or 3 logs there) with its logs disagreeing.
    const doctored = new Set<number>();
    const { transport, calls } = countingTransport(chain.anvil.httpUrl, (raw) =>
      raw.map((log, i) => {
        const n = Number.parseInt(log.blockNumber, 16) - first;
        if (n % 4 === 0) {
          doctored.add(n + first);
          const { blockTimestamp: _, ...rest } = log;
          return rest;
        }
        if (n % 4 === 1) {
          doctored.add(n + first);
          return { ...log, blockTimestamp: 'yesterday' };
        }
        if (n % 4 === 2 && raw[i - 1]?.blockNumber === log.blockNumber) {
          doctored.add(n + first);
          return { ...log, blockTimestamp: '0x1' };
        }
        return log;
      }),
    );
    const read = await readHistory(new RpcChainSource(transport), CHAIN_ID, first, last, { address: [contract] });
    await expectBlocksAsTheChainHasThem(read.blocks);
    // 20 blocks of the first two kinds, and the 7 of the third with more than one log.
    expect(doctored.size).toBe(27);
    expect(read.calls).toBe(1 + doctored.size);
    expect(Object.fromEntries(calls)).toEqual({ eth_getLogs: 1, eth_getBlockByNumber: doctored.size });
  });

  it('a header of another hash than its logs (a reorg between the two reads) is ETHHOOK_ERR_CHAIN_INCONSISTENT', async () => {
    const head = await chain.head();
    const { transport } = countingTransport(chain.anvil.httpUrl, async (raw) => {
      // After the logs were read, the top block is replaced: its header now has another hash.
      await chain.anvil.rpc('anvil_reorg', [1, [[{ from: chain.from, to: contract, data: tickCalldata(2) }, 0]]]);
      return raw.map(({ blockTimestamp: _, ...rest }) => rest as RawLog);
    });
    await expect(readHistory(new RpcChainSource(transport), CHAIN_ID, head, head, { address: [contract] })).rejects.toMatchObject({
      code: 'ETHHOOK_ERR_CHAIN_INCONSISTENT',
      context: { chainId: CHAIN_ID, block: head },
    });
  });

  it('logs of one block naming two hashes are ETHHOOK_ERR_CHAIN_INCONSISTENT, without a header read', async () => {
    const other = '0x' + 'ee'.repeat(32);
    const { transport, calls } = countingTransport(chain.anvil.httpUrl, (raw) =>
      raw.map((log, i) => (i > 0 && raw[i - 1]!.blockNumber === log.blockNumber ? { ...log, blockHash: other } : log)),
    );
    await expect(readHistory(new RpcChainSource(transport), CHAIN_ID, first, last, { address: [contract] })).rejects.toMatchObject({
      code: 'ETHHOOK_ERR_CHAIN_INCONSISTENT',
    });
    expect(Object.fromEntries(calls)).toEqual({ eth_getLogs: 1 });
  });

  it('a log outside the blocks asked for is ETHHOOK_ERR_RPC_MALFORMED, without a header read', async () => {
    // Blocks first+1..last asked, the answer of first..last given: the provider answered another question.
    const { transport, calls } = countingTransport(chain.anvil.httpUrl, async () =>
      chain.anvil.rpc<RawLog[]>('eth_getLogs', [
        { fromBlock: `0x${first.toString(16)}`, toBlock: `0x${last.toString(16)}`, address: [contract] },
      ]),
    );
    await expect(readHistory(new RpcChainSource(transport), CHAIN_ID, first + 1, last, { address: [contract] })).rejects.toMatchObject({
      code: 'ETHHOOK_ERR_RPC_MALFORMED',
      context: { method: 'eth_getLogs', from: first + 1, to: last, block: first },
    });
    expect(Object.fromEntries(calls)).toEqual({ eth_getLogs: 1 });
  });
});
