// Delivery at finality, end to end against a real anvil and a node process (LevelDB).
//
// anvil has no finality of its own; with `--slots-in-an-epoch N` it answers the `safe` tag with
// head - N and `finalized` with head - 2N (checked below). The test runs it with N = 2, so a block is
// finalized once 4 blocks are mined on top of it, and it is the only one mining: before each block it
// mines it raises `finalBound`, the highest finalized height the chain can show from then on. The
// receiver notes that bound as each webhook arrives: a `finality: 'finalized'` webhook whose block was
// above it arrived before its block was final. The node polls the tags every 100 ms
// (`finalityPollMs`), and a job is released by the next block or poll after its block became final, so the
// tests mine a block at a time until what they wait for arrives.
// - a log reaches a 'finalized' subscription only once its block is final (a 'latest' subscription on
//   the same contract gets it at once, and the node counts the other's job as waiting);
// - a reorg (anvil_reorg) while the log waits: nothing is ever sent for the orphaned log to the
//   'finalized' subscription (no log.created, no log.removed), while the 'latest' one gets both;
// - kill -9 while jobs wait: the restarted node releases them once final;
// - a block that becomes final while the node sees no new block (its provider, test/support/rpc-provider.ts
//   in front of anvil, stalls: anvil mines on, the provider shows the same head, and its `finalized` tag
//   reaches the waiting block) is released at the next poll, not at the next block.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tickCalldata } from '../../src/dev-chain/contract.ts';
import type { EndpointCreated, SubscriptionAnswer } from '../support/admin-answers.ts';
import { createNodeDir, killAllNodes, startNodeProcess, type NodeDir, type NodeProcess } from '../support/node-process.ts';
import { startReceiver, type Receiver } from '../support/receiver.ts';
import { startRpcProvider, type RpcProvider } from '../support/rpc-provider.ts';
import { body, CHAIN_ID, expectedId, nodeChain, payloadData, startTickChain, waitUntil, type RpcLog, type TickChain } from './e2e-chain.ts';

const SLOTS = 2;

let chain: TickChain;
let provider: RpcProvider;
let dir: NodeDir;
let node: NodeProcess;
let receiver: Receiver;
let secret = '';
let contract: string;
let finalSub: string;
let latestSub: string;
/** The highest finalized height the chain may show now (see the header). */
let finalBound = 0;
/** Per webhook-id, `finalBound` when it arrived. */
const boundAtArrival = new Map<string, number>();

const start = () =>
  startNodeProcess({
    dir,
    config: {
      chains: [nodeChain(chain, { confirmations: 0, finalityPollMs: 100, wsUrl: provider.wsUrl, httpUrl: provider.httpUrl })],
      security: { allowPrivateTargets: true },
    },
  });

/** Mines one block, after raising the bound to what the chain's finalized block may be with it. */
async function mineOne(): Promise<void> {
  finalBound = Math.max(finalBound, (await chain.head()) + 1 - 2 * SLOTS);
  await chain.anvil.mine(1);
}

async function tick(n: number): Promise<void> {
  finalBound = Math.max(finalBound, (await chain.head()) + 1 - 2 * SLOTS);
  await chain.tick(contract, n);
}

const created = (log: RpcLog, sub: string) => expectedId(payloadData(log, sub), 'log.created');
const removed = (log: RpcLog, sub: string) => expectedId(payloadData(log, sub), 'log.removed');
const got = (id: string) => receiver.requests.some((r) => r.webhookId === id);
const deferredFinalized = async () => (await node.metric('matcher_jobs_deferred_total', { reason: 'finalized' })) ?? 0;

/** Mines a block at a time until `cond` holds. */
async function mineUntil(cond: () => boolean, what: string): Promise<void> {
  await waitUntil(
    async () => {
      if (cond()) return true;
      await mineOne();
      return false;
    },
    30_000,
    what,
  );
}

/** The logs of the newest block of the contract. */
async function lastBlockLogs(): Promise<RpcLog[]> {
  const logs = await chain.logs(contract);
  const top = logs.at(-1)!.blockNumber;
  return logs.filter((l) => l.blockNumber === top);
}

beforeAll(async () => {
  chain = await startTickChain(['--slots-in-an-epoch', String(SLOTS)]);
  provider = await startRpcProvider({ name: 'anvil', anvilHttpUrl: chain.anvil.httpUrl });
  dir = await createNodeDir();
  receiver = await startReceiver({
    secrets: () => [secret],
    behaviour: (req) => {
      if (req.webhookId !== undefined && !boundAtArrival.has(req.webhookId)) boundAtArrival.set(req.webhookId, finalBound);
      return { status: 200 };
    },
  });
  contract = await chain.deploy();
  await chain.anvil.mine(2 * SLOTS);
  node = await start();
  const ep = await node.api<EndpointCreated>('POST', '/v1/endpoints', { url: `${receiver.url}/finality` });
  secret = ep.body.secret;
  const subscribe = async (finality: string) => {
    const s = await node.api<SubscriptionAnswer>('POST', '/v1/subscriptions', {
      endpointId: ep.body.endpoint.id,
      chainId: CHAIN_ID,
      addresses: [contract],
      finality,
    });
    expect(s.status).toBe(201);
    return s.body.subscription.id;
  };
  finalSub = await subscribe('finalized');
  latestSub = await subscribe('latest');
});

afterAll(async () => {
  await killAllNodes();
  await receiver?.close();
  await provider?.stop();
  await chain?.stop();
  await dir?.remove();
});

describe('delivery at finality (anvil --slots-in-an-epoch 2)', () => {
  it("anvil's safe and finalized tags are head - 2 and head - 4", async () => {
    const head = await chain.head();
    const tag = async (t: string) =>
      Number.parseInt((await chain.anvil.rpc<{ number: string }>('eth_getBlockByNumber', [t, false])).number, 16);
    expect(await tag('safe')).toBe(head - SLOTS);
    expect(await tag('finalized')).toBe(head - 2 * SLOTS);
  });

  it("a log reaches a 'finalized' subscription only once its block is final", async () => {
    const waiting = await deferredFinalized();
    await tick(2);
    const logs = await lastBlockLogs();
    const block = Number.parseInt(logs[0]!.blockNumber, 16);
    await waitUntil(() => logs.every((l) => got(created(l, latestSub))), 20_000, "the 'latest' subscription's webhooks");
    await waitUntil(async () => (await deferredFinalized()) === waiting + 2, 20_000, "the 'finalized' jobs written to wait");
    expect(logs.some((l) => got(created(l, finalSub)))).toBe(false);

    await mineUntil(() => logs.every((l) => got(created(l, finalSub))), "the 'finalized' subscription's webhooks");
    for (const l of logs) {
      expect(boundAtArrival.get(created(l, finalSub))).toBeGreaterThanOrEqual(block);
      expect(body(receiver.requests.find((r) => r.webhookId === created(l, finalSub))!).data).toEqual(payloadData(l, finalSub));
    }
    expect(await node.metric('chain_finalized_height', { chain: 'anvil' })).toBeGreaterThanOrEqual(block);
  });

  it('a reorg before finality sends nothing for the orphaned log', async () => {
    const waiting = await deferredFinalized();
    await tick(1);
    const [orphan] = await lastBlockLogs();
    await waitUntil(() => got(created(orphan!, latestSub)), 20_000, "the 'latest' subscription's webhook");
    await waitUntil(async () => (await deferredFinalized()) === waiting + 1, 20_000, "the 'finalized' job written to wait");

    // A new branch as high as the old one, its block holding another Tick; the node sees it at the next block.
    await chain.anvil.rpc('anvil_reorg', [1, [[{ from: chain.from, to: contract, data: tickCalldata(3) }, 0]]]);
    const branch = await lastBlockLogs();
    expect(branch[0]!.blockHash).not.toBe(orphan!.blockHash);
    await mineUntil(
      () => got(removed(orphan!, latestSub)) && branch.every((l) => got(created(l, finalSub))),
      "the orphan's retraction and the new branch's 'finalized' webhooks",
    );
    expect(got(created(orphan!, finalSub))).toBe(false);
    expect(got(removed(orphan!, finalSub))).toBe(false);
    for (const l of branch) expect(boundAtArrival.get(created(l, finalSub))).toBeGreaterThanOrEqual(Number.parseInt(l.blockNumber, 16));
  });

  it('kill -9 while jobs wait: the restarted node releases them once final', async () => {
    const waiting = await deferredFinalized();
    await tick(2);
    const logs = await lastBlockLogs();
    await waitUntil(async () => (await deferredFinalized()) === waiting + 2, 20_000, "the 'finalized' jobs written to wait");
    node.kill('SIGKILL');
    await node.waitForExit(10_000);
    node = await start();
    await mineUntil(() => logs.every((l) => got(created(l, finalSub))), "the 'finalized' webhooks after the restart");
    for (const l of logs) expect(boundAtArrival.get(created(l, finalSub))).toBeGreaterThanOrEqual(Number.parseInt(l.blockNumber, 16));
  });

  it('a block that becomes final while the node sees no new block is released at the next finality poll', async () => {
    const waiting = await deferredFinalized();
    await tick(1);
    const [log] = await lastBlockLogs();
    const block = Number.parseInt(log!.blockNumber, 16);
    await waitUntil(async () => (await deferredFinalized()) === waiting + 1, 20_000, "the 'finalized' job written to wait");
    await waitUntil(
      async () => (await node.metric('chain_processed_height', { chain: 'anvil' })) === block,
      20_000,
      'the node at the block',
    );
    provider.fault = 'stall';
    try {
      // anvil finalizes the block; the node, whose provider shows no block above it, learns it by the tag alone.
      for (let i = 0; i < 2 * SLOTS; i++) await mineOne();
      await waitUntil(() => got(created(log!, finalSub)), 20_000, "the 'finalized' webhook with no new block");
      expect(await node.metric('chain_processed_height', { chain: 'anvil' })).toBe(block);
      expect(await node.metric('chain_finalized_height', { chain: 'anvil' })).toBe(block);
    } finally {
      provider.fault = 'none';
    }
    expect(boundAtArrival.get(created(log!, finalSub))).toBeGreaterThanOrEqual(block);
  });

  it("no 'finalized' webhook arrived before its block was final, and each came once", () => {
    const finals = receiver.requests.filter((r) => body(r).data.subscriptionId === finalSub);
    expect(finals.length).toBeGreaterThanOrEqual(7);
    for (const r of finals) {
      expect(body(r).type).toBe('log.created');
      expect(boundAtArrival.get(r.webhookId!)).toBeGreaterThanOrEqual(body(r).data.blockNumber);
    }
    expect(new Set(finals.map((r) => r.webhookId)).size).toBe(finals.length);
  });
});
