// The operator console's webhook actions in a real browser (Chromium through playwright-core), against a
// real node process following anvil and a loopback receiver that fails, then answers:
// - a webhook dead-lettered after its attempts is listed with its reason; Replay (confirmed) delivers it;
// - the endpoint's attempts show the receiver's 500s; Pause and Resume change its state;
// - Rotate secret shows the new secret once, and the receiver verifies webhooks signed with it;
// - "Replay since" sends an endpoint's dead letters back to the queue.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { confirmAction, launchConsoleBrowser, shoot, signIn } from '../support/console-browser.ts';
import { NODE_TOKEN, createNodeDir, killAllNodes, startNodeProcess, type NodeDir, type NodeProcess } from '../support/node-process.ts';
import { ok, startReceiver, status, type Receiver } from '../support/receiver.ts';
import { CHAIN_ID, nodeChain, startTickChain, type TickChain } from './e2e-chain.ts';

let chain: TickChain;
let dir: NodeDir;
let node: NodeProcess;
let receiver: Receiver;
let browser: Browser;
let page: Page;
let contract: string;
let endpointId: string;
const secrets: string[] = [];

interface DeadLetter {
  id: string;
  endpointId: string;
  reason: string;
}

const deadLetters = async () => (await node.api<{ data: DeadLetter[] }>('GET', `/v1/dead-letters?endpointId=${endpointId}`)).body.data;

/** One Tick log, failed until it is dead-lettered; resolves with its dead letter. */
async function deadLetteredTick(): Promise<DeadLetter> {
  const before = new Set((await deadLetters()).map((d) => d.id));
  receiver.setBehaviour(status(500));
  await chain.tick(contract, 1);
  let letter: DeadLetter | undefined;
  await expect.poll(async () => (letter = (await deadLetters()).find((d) => !before.has(d.id))), { timeout: 20_000 }).toBeDefined();
  return letter!;
}

beforeAll(async () => {
  chain = await startTickChain();
  receiver = await startReceiver({ secrets: () => secrets });
  dir = await createNodeDir();
  node = await startNodeProcess({
    dir,
    config: {
      chains: [nodeChain(chain)],
      security: { allowPrivateTargets: true },
      deliverer: { retry: { scheduleMs: [0, 50], jitter: 0 }, circuitBreaker: { failureThreshold: 1000 } },
    },
  });
  contract = await chain.deploy();
  const created = await node.api<{ endpoint: { id: string }; secret: string }>('POST', '/v1/endpoints', { url: `${receiver.url}/hook` });
  expect(created.status).toBe(201);
  endpointId = created.body.endpoint.id;
  secrets.push(created.body.secret);
  const sub = await node.api('POST', '/v1/subscriptions', { endpointId, chainId: CHAIN_ID, addresses: [contract] });
  expect(sub.status).toBe(201);
  browser = await launchConsoleBrowser();
  page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  await signIn(page, node.adminUrl, NODE_TOKEN);
});

afterAll(async () => {
  await browser?.close();
  await killAllNodes();
  await receiver?.close();
  await chain?.stop();
  await dir?.remove();
});

describe('dead letters in the console', () => {
  it('a dead letter is listed with its reason; Replay delivers it once the receiver answers', async () => {
    const letter = await deadLetteredTick();
    const row = page.locator(`tr[data-dead-letter="${letter.id}"]`);
    await row.waitFor({ timeout: 10_000 });
    await expect(row.textContent()).resolves.toContain(letter.reason);
    await expect.poll(async () => page.locator('[data-fact="dead-letters"]').textContent(), { timeout: 10_000 }).toBe('1');
    await shoot(page, 'dead-letter');
    receiver.setBehaviour(ok);
    const delivered = receiver.deliveredIds().size;
    await confirmAction(page, row.getByRole('button', { name: 'Replay' }));
    await expect.poll(() => receiver.deliveredIds().size, { timeout: 20_000 }).toBe(delivered + 1);
    await row.waitFor({ state: 'detached' });
    expect(await deadLetters()).toEqual([]);
  });

  it("the endpoint's attempts show the receiver's 500s", async () => {
    await page.locator(`tr[data-endpoint="${endpointId}"] a`).click();
    const detail = page.locator('#endpoint-detail');
    await detail.locator('td', { hasText: '500' }).first().waitFor();
    await expect(detail.locator('td', { hasText: '200' }).count()).resolves.toBeGreaterThan(0);
    await shoot(page, 'endpoint-attempts');
  });

  it("Replay since sends the endpoint's dead letters back to the queue", async () => {
    await deadLetteredTick();
    await deadLetteredTick();
    receiver.setBehaviour(ok);
    const delivered = receiver.deliveredIds().size;
    await confirmAction(page, page.locator('#endpoint-detail').getByRole('button', { name: 'Replay since' }));
    await expect.poll(() => receiver.deliveredIds().size, { timeout: 20_000 }).toBe(delivered + 2);
    await expect.poll(deadLetters, { timeout: 10_000 }).toEqual([]);
  });
});

describe('endpoint actions in the console', () => {
  const row = () => page.locator(`tr[data-endpoint="${endpointId}"]`);

  it('Pause and Resume change its state', async () => {
    await confirmAction(page, row().getByRole('button', { name: 'Pause' }));
    await row().locator('.badge', { hasText: 'paused' }).waitFor();
    await expect(node.api<{ endpoint: { paused: boolean } }>('GET', `/v1/endpoints/${endpointId}`)).resolves.toMatchObject({
      body: { endpoint: { paused: true } },
    });
    await confirmAction(page, row().getByRole('button', { name: 'Resume' }));
    await row().locator('.badge', { hasText: 'active' }).waitFor();
  });

  it('Rotate secret shows the new secret once; webhooks signed with it verify', async () => {
    await confirmAction(page, row().getByRole('button', { name: 'Rotate secret' }));
    const shown = (await page.locator('#secret pre').textContent()) ?? '';
    expect(shown).toMatch(/^whsec_/);
    expect(secrets).not.toContain(shown);
    await shoot(page, 'secret-once');
    await page.locator('#secret').getByRole('button', { name: 'Done' }).click();
    await page.locator('#secret').waitFor({ state: 'detached' });
    // The receiver knows only the new secret now: a webhook verifies only if it is signed with it.
    secrets.splice(0, secrets.length, shown);
    receiver.setBehaviour(ok);
    const seen = receiver.requests.length;
    await chain.tick(contract, 1);
    await expect.poll(() => receiver.requests.length, { timeout: 20_000 }).toBeGreaterThan(seen);
    expect(receiver.requests.slice(seen).every((r) => r.verified === true)).toBe(true);
  });
});
