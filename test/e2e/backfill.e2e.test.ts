// History backfills end to end, on a real anvil and a node process (LevelDB): a subscription created
// with `fromBlock` gets the logs of blocks mined before it, while blocks keep coming live, each log once
// per webhook-id at least (a duplicate of a webhook-id is allowed and counted, none missing); a `kill -9`
// in the middle of a backfill resumes it from its stored progress; a reorg of a backfilled block is
// retracted by the live path; a cancel stops it; bad requests are refused. The backfill is slowed down
// (`backfill.blocksPerSec`, `logsPerSec`) so that there is a middle to kill it in and to cancel it in;
// at 30 logs/s a message to the Matcher holds 3 logs, so the history's two-log blocks are split over
// two messages every other block.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tickCalldata } from '../../src/dev-chain/contract.ts';
import type { BackfillAnswer, EndpointCreated, ErrorAnswer, SubscriptionAnswer } from '../support/admin-answers.ts';
import { createNodeDir, killAllNodes, NODE_TOKEN, startNodeProcess, type NodeDir, type NodeProcess } from '../support/node-process.ts';
import { startReceiver, type Receiver } from '../support/receiver.ts';
import {
  body,
  byWebhookId,
  CHAIN_ID,
  expectedId,
  expectWellFormed,
  nodeChain,
  payloadData,
  startTickChain,
  waitUntil,
  type RpcLog,
  type TickChain,
} from './e2e-chain.ts';

let chain: TickChain;
let dir: NodeDir;
let node: NodeProcess;
let receiver: Receiver;
let secret = '';
let endpointId = '';

const start = () =>
  startNodeProcess({
    dir,
    config: {
      chains: [nodeChain(chain, { confirmations: 0 })],
      security: { allowPrivateTargets: true },
      backfill: { blocksPerSec: 20, logsPerSec: 30, pollMs: 200 },
    },
  });

const createdId = (log: RpcLog, sub: string) => expectedId(payloadData(log, sub), 'log.created');
const removedId = (log: RpcLog, sub: string) => expectedId(payloadData(log, sub), 'log.removed');
const blockOf = (log: RpcLog) => Number.parseInt(log.blockNumber, 16);

/** A new contract with `blocks` blocks of two Tick logs each; resolves with the contract and its first block. */
async function history(blocks: number): Promise<{ contract: string; first: number }> {
  const contract = await chain.deploy();
  const first = (await chain.head()) + 1;
  for (let i = 0; i < blocks; i++) await chain.tick(contract, 2);
  // History for the node: its live path has passed these blocks before any subscription sees them.
  const head = await chain.head();
  await waitUntil(async () => ((await node.metric('chain_processed_height', { chain: 'anvil' })) ?? -1) >= head, 30_000, 'the live path');
  return { contract, first };
}

async function subscribe(contract: string, extra: Record<string, unknown>): Promise<SubscriptionAnswer> {
  const s = await node.api<SubscriptionAnswer>('POST', '/v1/subscriptions', {
    endpointId,
    chainId: CHAIN_ID,
    addresses: [contract],
    ...extra,
  });
  expect(s.status, JSON.stringify(s.body)).toBe(201);
  return s.body;
}

/** The `backfill` events of the node's SSE stream from now on, parsed; `stop()` closes it. */
async function backfillEvents(): Promise<{ events: Array<Record<string, unknown>>; stop(): void }> {
  const abort = new AbortController();
  const res = await fetch(`${node.adminUrl}/v1/sse/events?events=backfill`, {
    headers: { authorization: `Bearer ${NODE_TOKEN}` },
    signal: abort.signal,
  });
  const events: Array<Record<string, unknown>> = [];
  const decoder = new TextDecoder();
  let text = '';
  void (async () => {
    for await (const chunk of res.body!) {
      text += decoder.decode(chunk, { stream: true });
      for (let end = text.indexOf('\n\n'); end >= 0; end = text.indexOf('\n\n')) {
        const data = text
          .slice(0, end)
          .split('\n')
          .find((l) => l.startsWith('data: '));
        if (data) events.push(JSON.parse(data.slice(6)) as Record<string, unknown>);
        text = text.slice(end + 2);
      }
    }
  })().catch(() => undefined);
  return { events, stop: () => abort.abort() };
}

async function backfillOf(sub: string) {
  const read = await node.api<SubscriptionAnswer>('GET', `/v1/subscriptions/${sub}`);
  return read.body.backfill!;
}

beforeAll(async () => {
  chain = await startTickChain();
  dir = await createNodeDir();
  receiver = await startReceiver({ secrets: () => [secret] });
  node = await start();
  const ep = await node.api<EndpointCreated>('POST', '/v1/endpoints', { url: `${receiver.url}/backfill` });
  secret = ep.body.secret;
  endpointId = ep.body.endpoint.id;
});

afterAll(async () => {
  await killAllNodes();
  await receiver?.close();
  await chain?.stop();
  await dir?.remove();
});

describe('history backfill', () => {
  it('refuses bad ranges (400 naming the field), an unknown subscription (404), a second backfill (409), a cancel of none (404)', async () => {
    const { contract } = await history(40);
    const bad = async (path: string, payload: Record<string, unknown>, field: string) => {
      const r = await node.api<ErrorAnswer>('POST', path, payload);
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body.error.field).toBe(field);
    };
    const sub = { endpointId, chainId: CHAIN_ID, addresses: [contract] };
    await bad('/v1/subscriptions', { ...sub, fromBlock: 10, toBlock: 9 }, 'toBlock');
    await bad('/v1/subscriptions', { ...sub, toBlock: 9 }, 'fromBlock');
    await bad('/v1/subscriptions', { ...sub, fromBlock: -1 }, 'fromBlock');
    await bad('/v1/subscriptions', { ...sub, chainId: 999, fromBlock: 0 }, 'chainId');
    const created = await subscribe(contract, {});
    const id = created.subscription.id;
    expect(await backfillOf(id)).toBeNull();
    await bad(`/v1/subscriptions/${id}/replay`, { fromBlock: 5, toBlock: 4 }, 'toBlock');
    await bad(`/v1/subscriptions/${id}/replay`, { toBlock: 4 }, 'fromBlock');
    expect((await node.api('POST', '/v1/subscriptions/sub_nope/replay', { fromBlock: 0 })).status).toBe(404);
    const none = await node.api<ErrorAnswer>('DELETE', `/v1/subscriptions/${id}/replay`);
    expect([none.status, none.body.error.code]).toEqual([404, 'ETHHOOK_ERR_BACKFILL_NOT_RUNNING']);
    // A long range at 20 blocks/s is still running when the second request comes.
    const first = await node.api<BackfillAnswer>('POST', `/v1/subscriptions/${id}/replay`, { fromBlock: 0 });
    expect(first.status).toBe(202);
    expect(first.body.backfill).toMatchObject({ from: 0, state: 'running' });
    const second = await node.api<ErrorAnswer>('POST', `/v1/subscriptions/${id}/replay`, { fromBlock: 0 });
    expect([second.status, second.body.error.code]).toEqual([409, 'ETHHOOK_ERR_BACKFILL_RUNNING']);
    expect((await node.api('DELETE', `/v1/subscriptions/${id}/replay`)).status).toBe(200);
  });

  it('delivers the history while live blocks keep coming: every log of the contract once per webhook-id or more, none missing', async () => {
    const { contract, first } = await history(20);
    const stream = await backfillEvents();
    const created = await subscribe(contract, { fromBlock: first });
    const sub = created.subscription.id;
    expect(created.backfill).toMatchObject({ from: first, state: 'running' });
    // Live blocks of the same contract while the backfill runs: the two paths overlap near the head.
    while ((await backfillOf(sub)).state === 'running') await chain.tick(contract, 1);
    const done = await backfillOf(sub);
    expect(done.state).toBe('done');
    expect(done.at).toBe(done.to);
    // The live streams told the backfill's start and end.
    await waitUntil(() => stream.events.some((e) => e.subscriptionId === sub && e.state === 'done'), 10_000, 'the backfill done event');
    stream.stop();
    const told = stream.events.filter((e) => e.subscriptionId === sub);
    expect(told[0]).toMatchObject({ kind: 'backfill', chainId: CHAIN_ID, state: 'running', from: first });
    expect(told.at(-1)).toMatchObject({ state: 'done', from: first, to: done.to, height: done.to });
    await chain.tick(contract, 1);
    const logs = await chain.logs(contract);
    await waitUntil(
      () => logs.every((l) => receiver.deliveredIds().has(createdId(l, sub))),
      30_000,
      () => `${logs.length} logs (${logs.filter((l) => receiver.deliveredIds().has(createdId(l, sub))).length} delivered)`,
    );
    const mine = receiver.requests.filter((r) => body(r).data.subscriptionId === sub);
    expectWellFormed(mine);
    const groups = byWebhookId(mine);
    const duplicates = [...groups.values()].filter((g) => g.length > 1).length;
    expect(new Set(groups.keys()), `${duplicates} webhook-id(s) arrived more than once`).toEqual(
      new Set(logs.map((l) => createdId(l, sub))),
    );
    expect(await node.metric('backfill_jobs_total', { chain: 'anvil' })).toBeGreaterThanOrEqual(2 * 20);
    for (const log of logs) {
      const r = groups.get(createdId(log, sub))![0]!;
      expect(body(r).data).toEqual(payloadData(log, sub));
      // The block's own time, as the live path gives it.
      const header = await chain.anvil.rpc<{ timestamp: string }>('eth_getBlockByNumber', [log.blockNumber, false]);
      expect(body(r).timestamp).toBe(new Date(Number.parseInt(header.timestamp, 16) * 1000).toISOString());
    }
    expect(await node.metric('backfill_blocks_total', { chain: 'anvil' })).toBeGreaterThanOrEqual(done.to! - first + 1);
  });

  it('resumes a backfill after kill -9 from its stored progress and finishes it', async () => {
    const { contract, first } = await history(60);
    const sub = (await subscribe(contract, { fromBlock: first })).subscription.id;
    await waitUntil(async () => (await backfillOf(sub)).at >= first + 10, 30_000, 'the backfill to be under way');
    const before = await backfillOf(sub);
    expect(before.state).toBe('running');
    node.kill('SIGKILL');
    await node.waitForExit(10_000);
    node = await start();
    const resumed = await backfillOf(sub);
    expect(resumed.at).toBeGreaterThanOrEqual(before.at);
    await waitUntil(async () => (await backfillOf(sub)).state === 'done', 30_000, 'the resumed backfill to finish');
    const logs = await chain.logs(contract);
    await waitUntil(() => logs.every((l) => receiver.deliveredIds().has(createdId(l, sub))), 30_000, 'every log of the history');
    const restarts = node.logs.filter((l) => l.msg === 'backfill running' && l.subscriptionId === sub);
    expect(restarts[0]?.at).toBeGreaterThanOrEqual(before.at);
  });

  it('a reorg of backfilled blocks is retracted by the live path', async () => {
    const { contract, first } = await history(3);
    const sub = (await subscribe(contract, { fromBlock: first })).subscription.id;
    await waitUntil(async () => (await backfillOf(sub)).state === 'done', 30_000, 'the backfill');
    const before = await chain.logs(contract);
    await waitUntil(() => before.every((l) => receiver.deliveredIds().has(createdId(l, sub))), 30_000, 'the backfilled logs');
    const head = await chain.head();
    const depth = 2;
    const orphaned = before.filter((l) => blockOf(l) > head - depth);
    expect(orphaned).toHaveLength(2 * depth);
    await chain.anvil.rpc('anvil_reorg', [depth, [[{ from: chain.from, to: contract, data: tickCalldata(1) }, 0]]]);
    await chain.tick(contract, 1);
    await waitUntil(
      () => orphaned.every((l) => receiver.deliveredIds().has(removedId(l, sub))),
      30_000,
      () => `${orphaned.length} log.removed of backfilled logs`,
    );
    const delivered = (id: string) => receiver.requests.find((r) => r.webhookId === id)!;
    for (const log of orphaned) expect(body(delivered(removedId(log, sub))).data).toEqual(body(delivered(createdId(log, sub))).data);
    const after = await chain.logs(contract);
    await waitUntil(() => after.every((l) => receiver.deliveredIds().has(createdId(l, sub))), 30_000, 'the new branch');
  });

  it('a cancelled backfill stops where it was', async () => {
    const { contract } = await history(2);
    const sub = (await subscribe(contract, {})).subscription.id;
    const started = await node.api<BackfillAnswer>('POST', `/v1/subscriptions/${sub}/replay`, { fromBlock: 0 });
    expect(started.status).toBe(202);
    await waitUntil(async () => (await backfillOf(sub)).at >= 5, 30_000, 'the backfill to be under way');
    const cancelled = await node.api<BackfillAnswer>('DELETE', `/v1/subscriptions/${sub}/replay`);
    expect([cancelled.status, cancelled.body.backfill.state]).toEqual([200, 'cancelled']);
    await waitUntil(async () => (await node.metric('backfills_running', { chain: 'anvil' })) === 0, 10_000, 'the task to end');
    const stopped = await backfillOf(sub);
    // More live blocks, processed: the cancelled backfill did not move meanwhile.
    for (let i = 0; i < 3; i++) await chain.tick(contract, 1);
    const head = await chain.head();
    await waitUntil(async () => (await node.metric('chain_processed_height', { chain: 'anvil' })) === head, 10_000, 'the live path');
    expect(await backfillOf(sub)).toEqual(stopped);
    expect(stopped.state).toBe('cancelled');
    expect(stopped.at).toBeLessThan(stopped.to ?? Number.POSITIVE_INFINITY);
  });
});
