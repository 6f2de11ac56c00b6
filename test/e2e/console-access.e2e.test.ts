// Who may see and do what in the operator console, and what the admin API gives it, against a real node
// process with an operate and a read token:
// - GET /admin/whoami names the token's role; the snapshot's parts are what the existing routes answer;
//   the series endpoint keeps its columns aligned;
// - in Chromium, a wrong token gets the login prompt again with the API's 401; a read token sees the
//   whole page and no action button; the token is in no URL and no cookie;
// - restarted on the same port without the read token and with the operate one lowered to read: the
//   read page gets the prompt back with the 401 at its next poll (while the node is down it says it is
//   not updating); the operate page's next action is refused with a 403 shown as such, and its buttons go.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActorSnapshot } from '../../src/runtime/types.ts';
import { actorRow, confirmAction, launchConsoleBrowser, shoot, signIn } from '../support/console-browser.ts';
import { freePort } from '../support/pg-server.ts';
import { NODE_TOKEN, createNodeDir, killAllNodes, startNodeProcess, type NodeDir, type NodeProcess } from '../support/node-process.ts';
import { CHAIN_ID, nodeChain, startTickChain, type TickChain } from './e2e-chain.ts';

const READ_TOKEN = 'e2e-read-token-0123456789abcdef';
const STORED_TOKEN = "sessionStorage.getItem('ethhook.console.token')";

let chain: TickChain;
let dir: NodeDir;
let node: NodeProcess;
let browser: Browser;
let port: number;

/** The node on `port` (a fixed one: the page's origin must outlive a restart), accepting `tokens`. */
const startNode = (tokens: Array<{ token: string; role: string }>) =>
  startNodeProcess({ dir, config: { chains: [nodeChain(chain)], admin: { port, tokens } } });

beforeAll(async () => {
  chain = await startTickChain();
  dir = await createNodeDir();
  port = await freePort();
  node = await startNode([
    { token: NODE_TOKEN, role: 'operate' },
    { token: READ_TOKEN, role: 'read' },
  ]);
  browser = await launchConsoleBrowser();
});

afterAll(async () => {
  await browser?.close();
  await killAllNodes();
  await chain?.stop();
  await dir?.remove();
});

const get = async <T>(path: string, token = NODE_TOKEN): Promise<{ status: number; body: T }> => {
  const res = await fetch(`${node.adminUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as T };
};

interface Snapshot {
  tree: ActorSnapshot & { restartsByReason: Record<string, number>; storming: boolean };
  chains: Array<{ chainId: number; status: { chainId: number; name: string; provider: string } | null }>;
  governance: unknown;
  streams: unknown;
  cluster: { self: string; instances: Array<{ id: string }> };
  endpoints: { data: Array<{ id: string; url?: string; origin?: string; breaker: string }> };
}

const shape = (n: ActorSnapshot): unknown => ({
  path: n.path,
  state: n.state,
  incarnation: n.incarnation,
  kind: n.kind,
  children: n.children?.map(shape),
});

describe('the admin API for the console', () => {
  it('GET /admin/whoami names the role of the token, and needs one', async () => {
    await expect(get('/admin/whoami', READ_TOKEN)).resolves.toMatchObject({ status: 200, body: { role: 'read' } });
    await expect(get('/admin/whoami')).resolves.toMatchObject({ status: 200, body: { role: 'operate' } });
    expect((await fetch(`${node.adminUrl}/admin/whoami`)).status).toBe(401);
    await expect(get('/admin/whoami', 'not-a-token')).resolves.toMatchObject({ status: 401 });
  });

  it('the snapshot shows what the tree, chain, governance, streaming and cluster routes show', async () => {
    const created = await node.api<{ endpoint: { id: string } }>('POST', '/v1/endpoints', {
      url: 'https://hooks.example.com/a?key=secret',
    });
    expect(created.status).toBe(201);
    const snap = (await get<Snapshot>('/admin/console/snapshot')).body;
    const tree = (await get<{ tree: ActorSnapshot }>('/actors/health')).body.tree;
    expect(shape(snap.tree)).toEqual(shape(tree));
    expect(snap.tree.restartsByReason).toEqual({});
    expect(snap.tree.storming).toBe(false);
    const chainStatus = (await get<{ chain: object }>(`/admin/chains/${CHAIN_ID}`)).body.chain;
    expect(snap.chains).toHaveLength(1);
    expect(snap.chains[0]!.status).toMatchObject({
      chainId: CHAIN_ID,
      name: 'anvil',
      provider: (chainStatus as { provider: string }).provider,
    });
    expect((await get('/admin/governance/status')).status).toBe(404);
    expect(snap.governance).toBeNull();
    const streaming = (await get<{ websocket: unknown; sse: unknown }>('/v1/health/streaming')).body;
    expect(snap.streams).toEqual({ websocket: streaming.websocket, sse: streaming.sse });
    const cluster = (await get<{ cluster: Snapshot['cluster'] }>('/v1/cluster')).body.cluster;
    expect(snap.cluster.self).toBe(cluster.self);
    expect(snap.cluster.instances.map((i) => i.id)).toEqual(cluster.instances.map((i) => i.id));
    expect(snap.endpoints.data.find((e) => e.id === created.body.endpoint.id)).toMatchObject({
      url: 'https://hooks.example.com/a?key=secret',
      breaker: 'closed',
    });
    // A read token sees endpoints as GET /v1/endpoints shows them to it: no URL, only its origin.
    const asRead = (await get<Snapshot>('/admin/console/snapshot', READ_TOKEN)).body;
    const redacted = asRead.endpoints.data.find((e) => e.id === created.body.endpoint.id);
    expect(redacted).toMatchObject({ origin: 'https://hooks.example.com', breaker: 'closed' });
    expect(redacted).not.toHaveProperty('url');
  });

  it('GET /admin/console/series keeps aligned columns of the last 15 minutes, chains by name', async () => {
    await expect
      .poll(async () => (await get<{ t: number[] }>('/admin/console/series')).body.t.length, { timeout: 15_000 })
      .toBeGreaterThanOrEqual(2);
    const { body } = await get<{ stepMs: number; windowMs: number; t: number[]; series: Record<string, unknown[]> }>(
      '/admin/console/series',
    );
    expect(body).toMatchObject({ stepMs: 2_000, windowMs: 900_000 });
    expect(Object.keys(body.series)).toEqual(
      expect.arrayContaining(['webhooks.delivered', 'webhooks.queue', 'webhooks.latencyP95', 'chain.anvil.head', 'chain.anvil.lag']),
    );
    for (const column of Object.values(body.series)) expect(column).toHaveLength(body.t.length);
  });
});

describe('the console in the browser', () => {
  let page: Page;
  beforeAll(async () => {
    page = await browser.newPage({ viewport: { width: 1366, height: 800 } });
  });

  it('a wrong token gets the login prompt again, with the 401', async () => {
    await page.goto(`${node.adminUrl}/console`);
    await page.locator('input[name="token"]').fill('not-a-token');
    await page.locator('#login button[type="submit"]').click();
    await expect(page.locator('#login-error').textContent()).resolves.toMatch(/401 ETHHOOK_ERR_ADMIN_UNAUTHORIZED/);
    await expect(page.locator('input[name="token"]').isVisible()).resolves.toBe(true);
    await expect(page.locator('tr[data-actor]').count()).resolves.toBe(0);
    await shoot(page, 'login-refused');
  });

  it('a read token sees the whole page and no action button; the token is in no URL and no cookie', async () => {
    await signIn(page, node.adminUrl, READ_TOKEN);
    await expect(page.locator('#role').textContent()).resolves.toBe('read');
    await actorRow(page, '/pipeline/matcher').waitFor();
    await page.locator('[data-chain]').first().waitFor();
    await expect(
      page.locator('button', { hasText: /Restart|Stop|Start|Pause|Resume|Enable|Replay|Rotate|Reconnect/ }).count(),
    ).resolves.toBe(0);
    await expect(page.locator('#webhooks').textContent()).resolves.toContain('need an operate token');
    expect(page.url()).toBe(`${node.adminUrl}/console`);
    await expect(page.context().cookies()).resolves.toEqual([]);
    await expect(page.evaluate(STORED_TOKEN)).resolves.toBe(READ_TOKEN);
    await shoot(page, 'read-token');
  });

  it('signing out forgets the token', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#login').waitFor();
    await expect(page.evaluate(STORED_TOKEN)).resolves.toBeNull();
  });
});

describe('tokens the node stops accepting, or accepts with a lower role', () => {
  // Both pages are signed in; the node restarts on the same port without the read token, and with the
  // operate token lowered to read.
  let reader: Page;
  let operator: Page;
  beforeAll(async () => {
    reader = await browser.newPage({ viewport: { width: 1366, height: 800 } });
    operator = await browser.newPage({ viewport: { width: 1366, height: 800 } });
    await signIn(reader, node.adminUrl, READ_TOKEN);
    await signIn(operator, node.adminUrl, NODE_TOKEN);
    node.kill('SIGTERM');
    await node.waitForExit();
    await reader.locator('header.top', { hasText: 'not updating' }).waitFor({ timeout: 15_000 });
    node = await startNode([{ token: NODE_TOKEN, role: 'read' }]);
  });
  afterAll(async () => {
    await reader?.close();
    await operator?.close();
  });

  it('a token no longer accepted brings the login prompt back with the 401 at the next poll', async () => {
    await expect
      .poll(() => reader.locator('#login-error').textContent(), { timeout: 20_000 })
      .toMatch(/401 ETHHOOK_ERR_ADMIN_UNAUTHORIZED/);
    await expect(reader.evaluate(STORED_TOKEN)).resolves.toBeNull();
  });

  it('an action refused with 403 is shown as such, and the buttons follow the lowered role', async () => {
    await confirmAction(operator, actorRow(operator, '/pipeline/matcher').getByRole('button', { name: 'Restart' }));
    await expect.poll(() => operator.locator('#notice').textContent(), { timeout: 10_000 }).toMatch(/403 ETHHOOK_ERR_ADMIN_FORBIDDEN/);
    await expect.poll(() => operator.locator('#role').textContent(), { timeout: 10_000 }).toBe('read');
    await expect(operator.locator('button', { hasText: /Restart|Stop|Start/ }).count()).resolves.toBe(0);
    await shoot(operator, 'forbidden');
  });
});
