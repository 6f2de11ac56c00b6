// Reorgs end to end (chain confirmations 0, so logs are delivered at the head and may be retracted):
// after `anvil_reorg` at depths 1 to 3, every delivered log of an orphaned block comes again as a
// `log.removed` webhook with the same `data` and a different webhook-id, nothing still canonical is
// retracted, and every log of the new branch is delivered as `log.created`. The same holds for a reorg
// that happens while the node is down (kill -9, reorg, restart on the same store): the listener's
// reorg window is persisted, so the restarted node still retracts what it had delivered.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tickCalldata } from '../../../src/dev-chain/contract.ts';
import type { EndpointCreated, SubscriptionAnswer } from '../../support/admin-answers.ts';
import {
  createNodeDir,
  killAllNodes,
  openedStore,
  startNodeProcess,
  testStore,
  type NodeDir,
  type NodeProcess,
  type StoreKind,
} from '../../support/node-process.ts';
import { startReceiver, type ReceivedRequest, type Receiver } from '../../support/receiver.ts';
import {
  body,
  CHAIN_ID,
  expectedId,
  expectWellFormed,
  nodeChain,
  payloadData,
  startTickChain,
  waitUntil,
  type RpcLog,
  type TickChain,
} from '../e2e-chain.ts';

/** The reorg scenarios on one node whose store is `store`. */
export function reorgSuite(store: StoreKind): void {
  const storeConfig = testStore(store);
  let chain: TickChain;
  let dir: NodeDir;
  let node: NodeProcess;
  let receiver: Receiver;
  const start = () =>
    startNodeProcess({
      dir,
      config: { store: storeConfig, chains: [nodeChain(chain, { confirmations: 0 })], security: { allowPrivateTargets: true } },
    });
  let secret = '';
  let contract: string;
  let sub: string;

  const createdId = (log: RpcLog) => expectedId(payloadData(log, sub), 'log.created');
  const removedId = (log: RpcLog) => expectedId(payloadData(log, sub), 'log.removed');
  const delivered = (id: string): ReceivedRequest | undefined => receiver.requests.find((r) => r.webhookId === id);

  beforeAll(async () => {
    chain = await startTickChain();
    dir = await createNodeDir();
    receiver = await startReceiver({ secrets: () => [secret] });
    node = await start();
    expect(openedStore(node)).toBe(store);
    contract = await chain.deploy();
    const ep = await node.api<EndpointCreated>('POST', '/v1/endpoints', { url: `${receiver.url}/reorg` });
    expect(ep.status).toBe(201);
    secret = ep.body.secret;
    const s = await node.api<SubscriptionAnswer>('POST', '/v1/subscriptions', {
      endpointId: ep.body.endpoint.id,
      chainId: CHAIN_ID,
      addresses: [contract],
    });
    expect(s.status).toBe(201);
    sub = s.body.subscription.id;
  });

  afterAll(async () => {
    await killAllNodes();
    await receiver?.close();
    await chain?.stop();
    await dir?.remove();
  });

  describe(`reorgs retract delivered logs (${store})`, () => {
    for (const depth of [1, 2, 3]) {
      it(`depth ${depth}: each orphaned log gets a log.removed with the same data and another webhook-id`, async () => {
        for (let i = 0; i <= depth; i++) await chain.tick(contract, 2);
        const before = await chain.logs(contract);
        await waitUntil(() => before.every((l) => receiver.deliveredIds().has(createdId(l))), 20_000, 'the logs before the reorg');
        const head = await chain.head();
        const orphaned = before.filter((l) => Number.parseInt(l.blockNumber, 16) > head - depth);
        expect(orphaned).toHaveLength(2 * depth);
        const reorgs = (await node.metric('chain_reorgs_total', { chain: 'anvil' })) ?? 0;

        // The new branch, as high as the old one, holds one Tick transaction; one more block on top
        // makes the node see it without waiting for its liveness check.
        await chain.anvil.rpc('anvil_reorg', [depth, [[{ from: chain.from, to: contract, data: tickCalldata(1) }, 0]]]);
        expect(await chain.head()).toBe(head);
        await chain.tick(contract, 1);
        const after = await chain.logs(contract);
        const canonical = new Set(after.map(createdId));
        expect(orphaned.some((l) => canonical.has(createdId(l)))).toBe(false);

        await waitUntil(
          () => orphaned.every((l) => delivered(removedId(l))),
          20_000,
          () => `${orphaned.length} log.removed (${orphaned.filter((l) => delivered(removedId(l))).length} so far)`,
        );
        for (const log of orphaned) {
          const created = delivered(createdId(log))!;
          const removed = delivered(removedId(log))!;
          expect(removed.webhookId).not.toBe(created.webhookId);
          expect(body(created).type).toBe('log.created');
          expect(body(removed).type).toBe('log.removed');
          expect(body(removed).data).toEqual(body(created).data);
          expect(body(removed).data).toEqual(payloadData(log, sub));
          expect(removed.seq).toBeGreaterThan(created.seq);
        }
        await waitUntil(() => after.every((l) => receiver.deliveredIds().has(createdId(l))), 20_000, 'the logs of the new branch');
        expect(await node.metric('chain_reorgs_total', { chain: 'anvil' })).toBe(reorgs + 1);
      });
    }

    it('retracts after a restart what was delivered before a reorg that happened while the node was down', async () => {
      const depth = 2;
      for (let i = 0; i <= depth; i++) await chain.tick(contract, 2);
      const before = await chain.logs(contract);
      await waitUntil(() => before.every((l) => receiver.deliveredIds().has(createdId(l))), 20_000, 'the logs before the crash');
      const head = await chain.head();
      const orphaned = before.filter((l) => Number.parseInt(l.blockNumber, 16) > head - depth);
      expect(orphaned).toHaveLength(2 * depth);

      node.kill('SIGKILL');
      await node.waitForExit(10_000);
      await chain.anvil.rpc('anvil_reorg', [depth, [[{ from: chain.from, to: contract, data: tickCalldata(1) }, 0]]]);
      await chain.tick(contract, 1);
      node = await start();

      await waitUntil(
        () => orphaned.every((l) => delivered(removedId(l))),
        30_000,
        () => `${orphaned.length} log.removed after the restart (${orphaned.filter((l) => delivered(removedId(l))).length} so far)`,
      );
      for (const log of orphaned) expect(body(delivered(removedId(log))!).data).toEqual(body(delivered(createdId(log))!).data);
      const after = await chain.logs(contract);
      await waitUntil(() => after.every((l) => receiver.deliveredIds().has(createdId(l))), 20_000, 'the logs of the new branch');
    });

    it('retracted exactly the orphaned logs, each once, and every request was well formed', () => {
      expectWellFormed(receiver.requests);
      const removed = receiver.requests.filter((r) => body(r).type === 'log.removed');
      expect(removed).toHaveLength(2 * (1 + 2 + 3 + 2));
      expect(new Set(removed.map((r) => r.webhookId)).size).toBe(removed.length);
      // What the receiver sees net (created minus removed) is exactly the canonical chain.
      const net = new Set(
        receiver.requests.filter((r) => body(r).type === 'log.created').map((r) => `${body(r).data.blockHash}:${body(r).data.logIndex}`),
      );
      for (const r of removed) net.delete(`${body(r).data.blockHash}:${body(r).data.logIndex}`);
      return chain.logs(contract).then((logs) => {
        expect([...net].sort()).toEqual(logs.map((l) => `${l.blockHash}:${Number.parseInt(l.logIndex, 16)}`).sort());
      });
    });
  });
}
