/**
 * The chain of bench:e2e: a real anvil (src/dev-chain/anvil-process.ts) on 127.0.0.1 and Tick contracts
 * (src/dev-chain/contract.ts: a call with calldata n emits n `Tick` logs whose indexed `seq` counts
 * 0, 1, 2, ... per contract).
 *
 * - anvil runs with a block gas limit of 1e9 instead of 30M, so that a block can hold 1,000 one-log
 *   transactions (~30k gas each) and a transaction 20,000 logs; nothing else differs from its defaults
 *   (automine: one block per transaction).
 * - Transactions carry their nonce and gas (estimated once per call size, +20% + 25,000: the first call
 *   on a fresh contract pays more for its storage write): anvil then neither
 *   estimates each call again nor serializes on the account's pending nonce, and many can be in flight.
 * - `send(contract, n)` sends one transaction of n logs and resolves with its hash when anvil took it;
 *   `sendMany(contract, count)` sends `count` one-log transactions in one JSON-RPC batch.
 * - `setAutomine(false)` + `mine()`: many transactions in one block.
 * Every RPC call has a 60 s timeout.
 */
import { spawnAnvil, type AnvilProcess } from '../../src/dev-chain/anvil-process.ts';
import { tickCalldata } from '../../src/dev-chain/contract.ts';
import { deployTickContract, devAccount } from '../../src/dev-chain/tick-contract.ts';

export const CHAIN_ID = 31337;
const RPC_TIMEOUT_MS = 60_000;

export interface Chain {
  readonly anvil: AnvilProcess;
  /** The `chains[]` entry of a node following this anvil from block `startBlock`. */
  nodeChain(startBlock: number): Record<string, unknown>;
  deploy(): Promise<string>;
  send(contract: string, n: number): Promise<string>;
  sendMany(contract: string, count: number): Promise<string[]>;
  setAutomine(on: boolean): Promise<void>;
  mine(): Promise<void>;
  head(): Promise<number>;
  /** Resolves when the transaction is mined (default deadline 5 min); throws if it reverted. */
  waitMined(txHash: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startChain(): Promise<Chain> {
  const anvil = await spawnAnvil({ args: ['--chain-id', String(CHAIN_ID), '--gas-limit', '1000000000'] });
  let id = 0;
  const post = async (body: unknown): Promise<unknown> => {
    const res = await fetch(anvil.httpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(RPC_TIMEOUT_MS),
    });
    return res.json();
  };
  const rpc = async (method: string, params: unknown[] = []): Promise<unknown> => {
    const answer = (await post({ jsonrpc: '2.0', id: ++id, method, params })) as { result?: unknown; error?: { message: string } };
    if (answer.error) throw new Error(`${method}: ${answer.error.message}`);
    return answer.result;
  };
  const from = await devAccount(rpc);
  let nonce = 0;
  const syncNonce = async () => {
    nonce = Number.parseInt((await rpc('eth_getTransactionCount', [from, 'pending'])) as string, 16);
  };
  const gas = new Map<number, number>();
  let estimateFor: string | undefined;
  const gasFor = async (contract: string, n: number): Promise<string> => {
    if (!gas.has(n)) {
      estimateFor ??= contract;
      const estimate = Number.parseInt((await rpc('eth_estimateGas', [{ from, to: estimateFor, data: tickCalldata(n) }])) as string, 16);
      gas.set(n, Math.ceil(estimate * 1.2) + 25_000);
    }
    return `0x${gas.get(n)!.toString(16)}`;
  };
  const tx = async (contract: string, n: number) => ({
    from,
    to: contract,
    data: tickCalldata(n),
    gas: await gasFor(contract, n),
    nonce: `0x${(nonce++).toString(16)}`,
  });

  return {
    anvil,
    nodeChain: (startBlock) => ({ chainId: CHAIN_ID, name: 'anvil', wsUrl: anvil.wsUrl, httpUrl: anvil.httpUrl, startBlock }),
    async deploy() {
      const address = await deployTickContract(rpc, from);
      await syncNonce();
      return address;
    },
    async send(contract, n) {
      return (await rpc('eth_sendTransaction', [await tx(contract, n)])) as string;
    },
    async sendMany(contract, count) {
      const batch = [];
      for (let i = 0; i < count; i++)
        batch.push({ jsonrpc: '2.0', id: ++id, method: 'eth_sendTransaction', params: [await tx(contract, 1)] });
      const answers = (await post(batch)) as Array<{ result?: string; error?: { message: string } }>;
      const failed = answers.find((a) => a.error);
      if (failed) throw new Error(`eth_sendTransaction (batch): ${failed.error!.message}`);
      return answers.map((a) => a.result as string);
    },
    async setAutomine(on) {
      await rpc('evm_setAutomine', [on]);
    },
    async mine() {
      await rpc('evm_mine', []);
    },
    head: async () => Number.parseInt((await rpc('eth_blockNumber')) as string, 16),
    async waitMined(txHash, timeoutMs = 300_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const receipt = (await rpc('eth_getTransactionReceipt', [txHash])) as { status: string } | null;
        if (receipt) {
          if (receipt.status !== '0x1') throw new Error(`transaction ${txHash} reverted`);
          return;
        }
        if (Date.now() > deadline) throw new Error(`transaction ${txHash} not mined within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    stop: () => anvil.stop(),
  };
}
