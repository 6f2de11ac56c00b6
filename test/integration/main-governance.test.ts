// runNode's governance wiring, on real node processes (bin/ethhook.mjs start) and a reference
// governance server on 127.0.0.1:
// - with `governance.url`: the governance-stream actor runs; signed changes reach the node's stores
//   (GET /v1/endpoints) through the store applier; each applied message is a `governance` notice on the
//   live event streams; POST /admin/governance/reconnect reconnects (operate, audited), GET
//   /admin/governance/status reports (read); a stopped stream answers 409;
// - without: both routes answer 404 ETHHOOK_ERR_GOVERNANCE_NOT_CONFIGURED.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGovernanceServer, type GovernanceServer } from '../../src/governance-server/index.ts';
import type { EndpointAnswer, ErrorAnswer, GovernanceStatusAnswer, SubscriptionAnswer } from '../support/admin-answers.ts';
import { makeKey, tempDir, type TestKey } from '../support/governance.ts';
import { createNodeDir, killAllNodes, NODE_TOKEN, startNodeProcess, type NodeDir, type NodeProcess } from '../support/node-process.ts';
import { isRefused, openSse } from '../support/stream-clients.ts';

const READ_TOKEN = 'read-token-for-the-governance-test';

let keys: Awaited<ReturnType<typeof tempDir>>;
let key: TestKey;
const dirs: NodeDir[] = [];
beforeAll(async () => {
  keys = await tempDir('ethhook-main-gov-');
  key = await makeKey(keys.dir, 'gov');
});
afterAll(async () => {
  await killAllNodes();
  for (const d of dirs) await d.remove();
  await keys.remove();
});

async function node(config: Record<string, unknown>): Promise<NodeProcess> {
  const dir = await createNodeDir();
  dirs.push(dir);
  return startNodeProcess({
    dir,
    config: {
      ...config,
      admin: {
        tokens: [
          { token: NODE_TOKEN, role: 'operate' },
          { token: READ_TOKEN, role: 'read' },
        ],
      },
    },
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('a node following a governance server', () => {
  let server: GovernanceServer;
  let n: NodeProcess;
  beforeAll(async () => {
    server = await startGovernanceServer({ keyFile: key.file });
    n = await node({ governance: { url: server.url, publicKeys: [key.publicPem], reconnect: { minMs: 50, maxMs: 500 } } });
  });
  afterAll(async () => {
    n?.kill('SIGKILL');
    await server?.close();
  });

  it('applies signed changes to its stores and tells the live streams', async () => {
    const sse = await openSse(`${n.adminUrl}/v1/sse/events?events=governance`, { authorization: `Bearer ${READ_TOKEN}` });
    if (isRefused(sse)) throw new Error(`SSE refused: ${JSON.stringify(sse.body)}`);
    type Notice = { kind: string; seq: number; type: string };
    const notices: Notice[] = [];
    sse.onMessage = (text) => notices.push(JSON.parse(text) as Notice);
    try {
      await server.append('endpoint.upsert', { id: 'ep_gov', url: 'https://hooks.example.com/in' });
      await server.append('subscription.upsert', { id: 'sub_gov', endpointId: 'ep_gov', chainId: 1 });
      const endpoint = await until('the endpoint', async () => {
        const res = await n.api<EndpointAnswer>('GET', '/v1/endpoints/ep_gov');
        return res.status === 200 && res.body.endpoint;
      });
      expect(endpoint).toMatchObject({ id: 'ep_gov', url: 'https://hooks.example.com/in', paused: false });
      // The second message is applied after the first: wait for it too.
      const subscription = await until('the subscription', async () => {
        const res = await n.api<SubscriptionAnswer>('GET', '/v1/subscriptions/sub_gov');
        return res.status === 200 && res.body.subscription;
      });
      expect(subscription).toMatchObject({ endpointId: 'ep_gov', chainId: 1 });
      await until('two notices', async () => notices.length >= 2);
      expect(notices.map(({ kind, seq, type }) => ({ kind, seq, type }))).toEqual([
        { kind: 'governance', seq: 1, type: 'endpoint.upsert' },
        { kind: 'governance', seq: 2, type: 'subscription.upsert' },
      ]);
    } finally {
      sse.close();
    }
  });

  it('reports its status to a read token, and reconnects at an operate token (audited)', async () => {
    const status = await fetch(`${n.adminUrl}/admin/governance/status`, { headers: { authorization: `Bearer ${READ_TOKEN}` } });
    expect(status.status).toBe(200);
    expect(await status.json()).toEqual({ governance: { connected: true, height: 2, trustedKeys: [key.keyId], lastError: null } });

    const denied = await fetch(`${n.adminUrl}/admin/governance/reconnect`, {
      method: 'POST',
      headers: { authorization: `Bearer ${READ_TOKEN}` },
    });
    expect(denied.status).toBe(403);

    const before = n.logs.filter((l) => l.msg === 'governance stream connected').length;
    expect(await n.api('POST', '/admin/governance/reconnect')).toEqual({ status: 200, body: { ok: true } });
    await until('a new connection', async () => n.logs.filter((l) => l.msg === 'governance stream connected').length > before);
    await expect
      .poll(() => n.logs.filter((l) => l.audit === true && l.action === 'governance.reconnect').map((l) => [l.outcome, l.status]), {
        timeout: 10_000,
      })
      .toEqual([
        ['denied', 403],
        ['ok', 200],
      ]);
    await until(
      'connected again',
      async () => (await n.api<GovernanceStatusAnswer>('GET', '/admin/governance/status')).body.governance?.connected,
    );
  });

  it('a stopped stream answers 409 at once', async () => {
    expect((await n.api('POST', '/admin/actors/stop', { actor: 'governance-stream' })).status).toBe(200);
    const res = await n.api<ErrorAnswer>('POST', '/admin/governance/reconnect');
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('ETHHOOK_ERR_ACTOR_STOPPED');
    expect((await n.api('POST', '/admin/actors/start', { actor: 'governance-stream' })).status).toBe(200);
    await until(
      'connected after start',
      async () => (await n.api<GovernanceStatusAnswer>('GET', '/admin/governance/status')).body.governance?.connected,
    );
  });
});

describe('a node without governance', () => {
  it('answers 404 ETHHOOK_ERR_GOVERNANCE_NOT_CONFIGURED, and runs no governance-stream actor', async () => {
    const n = await node({});
    try {
      for (const [method, path] of [
        ['POST', '/admin/governance/reconnect'],
        ['GET', '/admin/governance/status'],
      ] as const) {
        const res = await n.api<ErrorAnswer>(method, path);
        expect(res.status, path).toBe(404);
        expect(res.body.error.code, path).toBe('ETHHOOK_ERR_GOVERNANCE_NOT_CONFIGURED');
      }
      const tree = JSON.stringify((await n.api('GET', '/actors/health')).body);
      expect(tree).not.toContain('governance-stream');
      await expect
        .poll(() => n.logs.find((l) => l.audit === true && l.action === 'governance.reconnect'), { timeout: 10_000 })
        .toMatchObject({
          outcome: 'rejected',
          status: 404,
        });
    } finally {
      n.kill('SIGTERM');
      expect((await n.waitForExit()).code).toBe(0);
    }
  });
});
