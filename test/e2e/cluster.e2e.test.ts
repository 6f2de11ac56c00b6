// A 3-instance cluster, as docs/architecture.md ("Clustering, as it is today") describes it, on real
// processes: three nodes (`node.cluster` ordinals 0..2 of 3, each with its own store) follow the same
// anvil chain and the same governance server, which gives all three the same endpoints (same ids, same
// secrets) and subscriptions. Every matching log reaches its endpoint exactly once, signed, delivered by
// the one instance whose shard holds the endpoint (src/cluster.ts); every instance follows the chain.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointShard } from '../../src/cluster.ts';
import { startGovernanceServer, type GovernanceServer } from '../../src/governance-server/index.ts';
import { generateWebhookSecret } from '../../src/store/secrets.ts';
import { makeKey, tempDir } from '../support/governance.ts';
import type { GovernanceStatusAnswer } from '../support/admin-answers.ts';
import { createNodeDir, killAllNodes, startNodeProcess, type NodeDir, type NodeProcess } from '../support/node-process.ts';
import { startReceiver, type Receiver } from '../support/receiver.ts';
import {
  CHAIN_ID,
  expectedId,
  expectWellFormed,
  nodeChain,
  payloadData,
  startTickChain,
  succeeded,
  waitUntil,
  type TickChain,
} from './e2e-chain.ts';

const SIZE = 3;
const ENDPOINTS = 9;
const LOGS = 12;

let chain: TickChain;
let keys: Awaited<ReturnType<typeof tempDir>>;
let server: GovernanceServer;
let receiver: Receiver;
const dirs: NodeDir[] = [];
const nodes: NodeProcess[] = [];
const secrets = new Map<string, string>();

beforeAll(async () => {
  chain = await startTickChain();
  keys = await tempDir('ethhook-cluster-');
  const key = await makeKey(keys.dir, 'gov');
  server = await startGovernanceServer({ keyFile: key.file });
  receiver = await startReceiver({ secrets: (path) => [secrets.get(path)].filter((s) => s !== undefined) });
  for (let ordinal = 0; ordinal < SIZE; ordinal++) {
    const dir = await createNodeDir();
    dirs.push(dir);
    nodes.push(
      await startNodeProcess({
        dir,
        config: {
          node: { id: `node-${ordinal}`, cluster: { ordinal, size: SIZE } },
          chains: [nodeChain(chain)],
          governance: { url: server.url, publicKeys: [key.publicPem], reconnect: { minMs: 50, maxMs: 500 } },
          security: { allowPrivateTargets: true },
        },
      }),
    );
  }
});

afterAll(async () => {
  await killAllNodes();
  await receiver?.close();
  await server?.close();
  await chain?.stop();
  for (const d of dirs) await d.remove();
  await keys?.remove();
});

describe('a 3-instance cluster', () => {
  it('delivers every matching log exactly once, from the instance that owns its endpoint', async () => {
    const contract = await chain.deploy();
    const endpointIds = Array.from({ length: ENDPOINTS }, (_, n) => `ep_cluster${n}`);
    for (const id of endpointIds) {
      const secret = generateWebhookSecret();
      secrets.set(`/${id}`, secret);
      await server.append('endpoint.upsert', { id, url: `${receiver.url}/${id}`, secret });
      await server.append('subscription.upsert', { id: `sub_${id.slice(3)}`, endpointId: id, chainId: CHAIN_ID, addresses: [contract] });
    }
    const height = 2 * ENDPOINTS;
    for (const n of nodes) {
      await waitUntil(
        async () => (await n.api<GovernanceStatusAnswer>('GET', '/admin/governance/status')).body.governance?.height === height,
        30_000,
        `${n.adminUrl} at governance height ${height}`,
      );
    }
    // The shards are not all empty, or the test would prove less than it says.
    const shardOf = new Map(endpointIds.map((id) => [id, endpointShard(id, SIZE)]));
    expect(new Set(shardOf.values()).size).toBe(SIZE);

    for (let i = 0; i < LOGS / 3; i++) await chain.tick(contract, 3);
    const logs = await chain.logs(contract);
    expect(logs).toHaveLength(LOGS);
    const expected = new Set(
      logs.flatMap((log) => endpointIds.map((id) => expectedId(payloadData(log, `sub_${id.slice(3)}`), 'log.created'))),
    );
    expect(expected.size).toBe(LOGS * ENDPOINTS);
    await waitUntil(
      () => receiver.deliveredIds().size >= expected.size,
      60_000,
      () => `${expected.size} deliveries (${receiver.deliveredIds().size} so far)`,
    );
    expect(receiver.deliveredIds()).toEqual(expected);
    expectWellFormed(receiver.requests);

    // Each instance delivered exactly its shard's webhooks, and every instance follows the chain.
    const head = await chain.head();
    for (const [ordinal, n] of nodes.entries()) {
      const owned = endpointIds.filter((id) => shardOf.get(id) === ordinal).length;
      await waitUntil(
        async () => (await n.metric('webhook_deliveries_total', { status: 'success' })) === owned * LOGS,
        10_000,
        () => `node ${ordinal}: ${owned * LOGS} deliveries counted`,
      );
      await waitUntil(
        async () => ((await n.metric('chain_height', { chain: 'anvil' })) ?? -1) >= head,
        10_000,
        `node ${ordinal} following the chain`,
      );
    }
    // Nothing was sent twice: one 2xx request per webhook-id, across the three instances.
    expect(receiver.requests.filter(succeeded)).toHaveLength(expected.size);
  });
});
