// The `governance` notices of a real node (bin/ethhook.mjs start) following the reference governance
// server on 127.0.0.1: every applied message is published on the live event streams exactly once, in
// order — a key rotation (which no applier sees) and a skipped message (a subscription for a missing
// endpoint) included.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGovernanceServer, type GovernanceServer } from '../../src/governance-server/index.ts';
import { makeKey, tempDir, type TestKey } from '../support/governance.ts';
import { createNodeDir, killAllNodes, NODE_TOKEN, startNodeProcess, type NodeDir, type NodeProcess } from '../support/node-process.ts';
import { isRefused, openSse } from '../support/stream-clients.ts';

let keys: Awaited<ReturnType<typeof tempDir>>;
let k1: TestKey;
let k2: TestKey;
let dir: NodeDir;
let server: GovernanceServer;
let n: NodeProcess;

beforeAll(async () => {
  keys = await tempDir('ethhook-gov-notices-');
  k1 = await makeKey(keys.dir, 'k1');
  k2 = await makeKey(keys.dir, 'k2');
  server = await startGovernanceServer({ keyFile: k1.file });
  dir = await createNodeDir();
  n = await startNodeProcess({
    dir,
    config: { governance: { url: server.url, publicKeys: [k1.publicPem], reconnect: { minMs: 50, maxMs: 500 } } },
  });
});
afterAll(async () => {
  await killAllNodes();
  await server?.close();
  await dir?.remove();
  await keys?.remove();
});

async function until(what: string, probe: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('governance notices on the live event streams', () => {
  it('one per applied message, in order: key rotations and skipped messages included', async () => {
    const sse = await openSse(`${n.adminUrl}/v1/sse/events?events=governance`, { authorization: `Bearer ${NODE_TOKEN}` });
    if (isRefused(sse)) throw new Error(`SSE refused: ${JSON.stringify(sse.body)}`);
    type Notice = { kind: string; seq: number; type: string };
    const notices: Notice[] = [];
    sse.onMessage = (text) => notices.push(JSON.parse(text) as Notice);
    try {
      await server.append('endpoint.upsert', { id: 'ep_n', url: 'https://hooks.example.com/in' });
      await server.rotateKey(k2.file);
      await server.append('subscription.upsert', { id: 'sub_n', endpointId: 'ep_missing', chainId: 1 });
      await server.append('endpoint.pause', { id: 'ep_n' });
      await until('four notices', () => notices.length >= 4);
      // A duplicate publisher would show up right behind: give it the time to.
      await new Promise((r) => setTimeout(r, 300));
      expect(notices.map(({ kind, seq, type }) => ({ kind, seq, type }))).toEqual([
        { kind: 'governance', seq: 1, type: 'endpoint.upsert' },
        { kind: 'governance', seq: 2, type: 'key.rotate' },
        { kind: 'governance', seq: 3, type: 'subscription.upsert' },
        { kind: 'governance', seq: 4, type: 'endpoint.pause' },
      ]);
      expect(n.logs.find((l) => l.msg === 'governance message skipped: nothing to apply it to')).toMatchObject({
        seq: 3,
        code: 'ETHHOOK_ERR_GOVERNANCE_SKIPPED',
      });
    } finally {
      sse.close();
    }
  });
});
