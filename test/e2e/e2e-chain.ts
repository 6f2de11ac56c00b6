/**
 * What the end-to-end tests share: a real anvil (automine: one block per transaction) with the Tick
 * contract (src/dev-chain), the canonical logs read back from anvil, and the checks on what a receiver
 * got (Standard Webhooks payloads, grouped by `webhook-id`).
 *
 * - `startTickChain(args?)` starts anvil (with `args` for its command line); `deploy()` deploys one more Tick contract (each scenario uses its
 *   own, so subscriptions on one address never see another scenario's logs); `tick(contract, n)` mines
 *   one block whose transaction emits `n` logs; `logs(address)` is anvil's `eth_getLogs` from block 0.
 * - `nodeChain(chain)` is the `chains[0]` entry of a node config following that anvil.
 * - `expectedId(...)` is the documented webhook-id (src/actors/matcher/jobs.ts): receivers can recompute
 *   it from the payload, so the tests do.
 * - `waitUntil(cond, ms, what)` polls with a deadline and says what it waited for.
 */
import { expect } from 'vitest';
import { webhookId } from '../../src/actors/matcher/jobs.ts';
import { deployTickContract, devAccount, sendTicks, waitForReceipt } from '../../src/dev-chain/tick-contract.ts';
import { startAnvil, type TestAnvil } from '../support/anvil.ts';
import type { ReceivedRequest } from '../support/receiver.ts';

export const CHAIN_ID = 31337;

export interface RpcLog {
  address: string;
  topics: string[];
  data: string;
  blockNumber: string;
  blockHash: string;
  transactionHash: string;
  logIndex: string;
  removed: boolean;
}

export interface TickChain {
  anvil: TestAnvil;
  from: string;
  deploy(): Promise<string>;
  /** One transaction (so one block) emitting `n` Tick logs; resolves when it is mined. */
  tick(contract: string, n: number): Promise<void>;
  logs(address: string): Promise<RpcLog[]>;
  head(): Promise<number>;
  stop(): Promise<void>;
}

export async function startTickChain(args: string[] = []): Promise<TickChain> {
  const anvil = await startAnvil({ chainId: CHAIN_ID, args });
  const rpc = (method: string, params: unknown[]) => anvil.rpc(method, params);
  const from = await devAccount(rpc);
  return {
    anvil,
    from,
    deploy: () => deployTickContract(rpc, from),
    tick: async (contract, n) => {
      await waitForReceipt(rpc, await sendTicks(rpc, from, contract, n));
    },
    logs: (address) => anvil.rpc<RpcLog[]>('eth_getLogs', [{ fromBlock: '0x0', toBlock: 'latest', address }]),
    head: async () => Number.parseInt(await anvil.rpc<string>('eth_blockNumber'), 16),
    stop: () => anvil.stop(),
  };
}

export function nodeChain(chain: TickChain, extra: Record<string, unknown> = {}): Record<string, unknown> {
  // From block 0, not `latest`: a test may mine its first block before the listener's first head, and
  // `latest` would then (rightly) start after it.
  return { chainId: CHAIN_ID, name: 'anvil', wsUrl: chain.anvil.wsUrl, httpUrl: chain.anvil.httpUrl, startBlock: 0, ...extra };
}

/** The webhook payload as the issue defines it. */
export interface WebhookBody {
  type: 'log.created' | 'log.removed';
  timestamp: string;
  data: {
    chainId: number;
    blockNumber: number;
    blockHash: string;
    transactionHash: string;
    logIndex: number;
    address: string;
    topics: string[];
    data: string;
    subscriptionId: string;
  };
}

export const body = (r: ReceivedRequest): WebhookBody => r.json as WebhookBody;

/** The payload `data` a log must produce for a subscription. */
export function payloadData(log: RpcLog, subscriptionId: string): WebhookBody['data'] {
  return {
    chainId: CHAIN_ID,
    blockNumber: Number.parseInt(log.blockNumber, 16),
    blockHash: log.blockHash,
    transactionHash: log.transactionHash,
    logIndex: Number.parseInt(log.logIndex, 16),
    address: log.address.toLowerCase(),
    topics: log.topics,
    data: log.data,
    subscriptionId,
  };
}

export function expectedId(data: WebhookBody['data'], type: WebhookBody['type']): string {
  return webhookId(data.chainId, data.blockHash, data.logIndex, data.subscriptionId, type);
}

/** Requests grouped by webhook-id, in arrival order. */
export function byWebhookId(requests: readonly ReceivedRequest[]): Map<string, ReceivedRequest[]> {
  const groups = new Map<string, ReceivedRequest[]>();
  for (const r of requests) {
    const id = r.webhookId ?? '(none)';
    groups.set(id, [...(groups.get(id) ?? []), r]);
  }
  return groups;
}

export const succeeded = (r: ReceivedRequest): boolean => 'status' in r.reply && r.reply.status >= 200 && r.reply.status < 300;

/** Every request is a well-formed, verified Standard Webhooks delivery whose id matches its payload. */
export function expectWellFormed(requests: readonly ReceivedRequest[]): void {
  for (const r of requests) {
    expect(r.method).toBe('POST');
    expect(r.verified, `signature of ${r.webhookId}`).toBe(true);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.headers['webhook-timestamp']).toMatch(/^\d+$/);
    expect(Math.abs(Number(r.headers['webhook-timestamp']) * 1000 - r.at)).toBeLessThan(60_000);
    const b = body(r);
    expect(Object.keys(b).sort()).toEqual(['data', 'timestamp', 'type']);
    expect(Number.isNaN(Date.parse(b.timestamp))).toBe(false);
    expect(Object.keys(b.data).sort()).toEqual([
      'address',
      'blockHash',
      'blockNumber',
      'chainId',
      'data',
      'logIndex',
      'subscriptionId',
      'topics',
      'transactionHash',
    ]);
    expect(r.webhookId).toBe(expectedId(b.data, b.type));
  }
}

export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string | (() => string)): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
