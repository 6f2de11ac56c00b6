/**
 * Deploying and calling the Tick contract (contract.ts) through any JSON-RPC function, with anvil's
 * unlocked dev accounts (`eth_sendTransaction`, no signing). Receipts are polled because anvil may
 * answer `eth_sendTransaction` before the block that holds the transaction is mined.
 */
import { EthhookError } from '../runtime/errors.ts';
import { TICK_CONTRACT_BYTECODE, tickCalldata } from './contract.ts';

export type RpcFn = (method: string, params: unknown[]) => Promise<unknown>;

interface Receipt {
  status: string;
  contractAddress: string | null;
  blockNumber: string;
}

const RECEIPT_TIMEOUT_MS = 30_000;

export async function devAccount(rpc: RpcFn): Promise<string> {
  const accounts = (await rpc('eth_accounts', [])) as string[];
  if (!Array.isArray(accounts) || typeof accounts[0] !== 'string') {
    throw new EthhookError('ETHHOOK_ERR_DEV_CHAIN', 'the dev chain has no unlocked account', {});
  }
  return accounts[0];
}

export async function waitForReceipt(rpc: RpcFn, txHash: string): Promise<Receipt> {
  const deadline = Date.now() + RECEIPT_TIMEOUT_MS;
  for (;;) {
    const receipt = (await rpc('eth_getTransactionReceipt', [txHash])) as Receipt | null;
    if (receipt) {
      if (receipt.status !== '0x1') throw new EthhookError('ETHHOOK_ERR_DEV_CHAIN', 'transaction reverted', { txHash });
      return receipt;
    }
    if (Date.now() > deadline) throw new EthhookError('ETHHOOK_ERR_DEV_CHAIN', 'transaction not mined in time', { txHash });
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Deploys the Tick contract; resolves with its address (lowercase). */
export async function deployTickContract(rpc: RpcFn, from: string): Promise<string> {
  const tx = (await rpc('eth_sendTransaction', [{ from, data: TICK_CONTRACT_BYTECODE }])) as string;
  const receipt = await waitForReceipt(rpc, tx);
  if (!receipt.contractAddress) throw new EthhookError('ETHHOOK_ERR_DEV_CHAIN', 'deployment has no contract address', { tx });
  return receipt.contractAddress.toLowerCase();
}

/** Sends one transaction that emits `count` Tick events; resolves with its hash (not waiting for it). */
export async function sendTicks(rpc: RpcFn, from: string, contract: string, count: number): Promise<string> {
  return (await rpc('eth_sendTransaction', [{ from, to: contract, data: tickCalldata(count) }])) as string;
}
