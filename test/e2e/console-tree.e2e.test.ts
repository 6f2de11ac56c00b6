// The operator console's supervision tree in a real browser (Chromium through playwright-core), against
// a real node process as `npm start` runs it: the dev chain (anvil mining a block every 500 ms, Tick
// traffic) with its demo receiver and governance server:
// - the page is served by the node with its security headers, and its tree shows every actor;
// - Restart on the matcher's row (confirmed) gives it a new incarnation and counts a manual restart;
// - Stop shows it stopped while its mailbox fills with the listener's blocks; Start runs it again;
// - Reconnect drops the governance stream's connection and it comes back; the action is audited.
import { readdirSync, readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActorSnapshot } from '../../src/runtime/types.ts';
import { actorRow, confirmAction, launchConsoleBrowser, shoot, signIn } from '../support/console-browser.ts';
import { NODE_TOKEN, createNodeDir, killAllNodes, startNodeProcess, type NodeDir, type NodeProcess } from '../support/node-process.ts';

const MATCHER = '/pipeline/matcher';

let dir: NodeDir;
let node: NodeProcess;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  dir = await createNodeDir();
  node = await startNodeProcess({
    dir,
    config: { devChain: { enabled: true, blockTimeMs: 500, txIntervalMs: 1_000 }, demo: { enabled: true, statusIntervalMs: 0 } },
  });
  browser = await launchConsoleBrowser();
  page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  await signIn(page, node.adminUrl, NODE_TOKEN);
});

afterAll(async () => {
  await browser?.close();
  await killAllNodes();
  await dir?.remove();
});

/** The command lines of the processes whose parent is `pid` (Linux /proc). */
function childCommands(pid: number): string[] {
  const out: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(readFileSync(`/proc/${entry}/cmdline`, 'utf8'));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

const paths = (node: ActorSnapshot): string[] => [node.path, ...(node.children ?? []).flatMap(paths)];
const manualRestarts = () => node.metric('actor_restarts_total', { actor: MATCHER, reason: 'manual' });

describe('the console page', () => {
  it('is served by the node with a CSP of its own origin, nosniff and cache headers; its assets are files', async () => {
    const res = await fetch(`${node.adminUrl}/console`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const html = await res.text();
    expect(html).not.toMatch(/<script>|<script [^>]*>[^<]/);
    const script = /src="(\/console\/assets\/app-[0-9a-f]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${node.adminUrl}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(asset.headers.get('cache-control')).toContain('immutable');
    expect((await fetch(`${node.adminUrl}/console/assets/app-000000000000.js`)).status).toBe(404);
    // The page was bundled for that first request, and esbuild's service process did not stay.
    expect(childCommands(node.pid).filter((c) => c.includes('esbuild'))).toEqual([]);
  });

  it('shows every actor of the tree, light and dark', async () => {
    const tree = (await node.api<{ tree: ActorSnapshot }>('GET', '/actors/health')).body.tree;
    for (const path of paths(tree)) await expect(actorRow(page, path).count(), path).resolves.toBe(1);
    await expect(actorRow(page, MATCHER).getAttribute('data-state')).resolves.toBe('running');
    await shoot(page, 'tree-light');
    await page.emulateMedia({ colorScheme: 'dark' });
    await shoot(page, 'tree-dark');
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 1280, height: 800 });
    await shoot(page, 'laptop-1280', false);
    await page.setViewportSize({ width: 1440, height: 900 });
  });
});

describe('actor actions from the page', () => {
  it('Restart gives the matcher a new incarnation and counts a manual restart', async () => {
    const row = actorRow(page, MATCHER);
    const before = Number(await row.getAttribute('data-incarnation'));
    const restarts = (await manualRestarts()) ?? 0;
    await confirmAction(page, row.getByRole('button', { name: 'Restart' }));
    await page.locator(`tr[data-actor="${MATCHER}"][data-incarnation="${before + 1}"]`).waitFor();
    await expect.poll(manualRestarts, { timeout: 10_000 }).toBe(restarts + 1);
    await expect(page.locator('#notice').textContent()).resolves.toContain(`restart ${MATCHER}`);
  });

  it('Stop shows the matcher stopped while its mailbox grows; Start runs it again', async () => {
    const row = actorRow(page, MATCHER);
    await confirmAction(page, row.getByRole('button', { name: 'Stop' }));
    await page.locator(`tr[data-actor="${MATCHER}"][data-state="stopped"]`).waitFor();
    await expect(row.getAttribute('class')).resolves.toContain('row-alert');
    await expect.poll(async () => Number(await row.getAttribute('data-mailbox')), { timeout: 20_000 }).toBeGreaterThan(0);
    await shoot(page, 'matcher-stopped');
    await confirmAction(page, row.getByRole('button', { name: 'Start' }));
    await page.locator(`tr[data-actor="${MATCHER}"][data-state="running"]`).waitFor();
    await expect.poll(async () => Number(await row.getAttribute('data-mailbox')), { timeout: 20_000 }).toBe(0);
  });
});

describe('governance from the page', () => {
  it("the snapshot's governance is GET /admin/governance/status's", async () => {
    await page.locator('#governance .badge', { hasText: 'yes' }).waitFor({ timeout: 20_000 });
    const status = (await node.api<{ governance: { trustedKeys: string[]; height: number } }>('GET', '/admin/governance/status')).body
      .governance;
    const snapshot = (await node.api<{ governance: unknown }>('GET', '/admin/console/snapshot')).body.governance;
    expect(snapshot).toMatchObject({ connected: true, trustedKeys: status.trustedKeys, lastError: null });
    await expect(page.locator('#governance').textContent()).resolves.toContain(`trusted keys${status.trustedKeys.length}`);
  });

  it('Reconnect drops the connection, which comes back; the action is audited', async () => {
    const card = page.locator('#governance');
    await card.locator('.badge', { hasText: 'yes' }).waitFor({ timeout: 20_000 });
    const connects = () => node.logs.filter((l) => l.msg === 'governance stream connected').length;
    const before = connects();
    await confirmAction(page, card.getByRole('button', { name: 'Reconnect' }));
    await expect.poll(() => page.locator('#notice').textContent(), { timeout: 10_000 }).toContain('reconnect requested');
    await expect.poll(connects, { timeout: 20_000 }).toBeGreaterThan(before);
    await card.locator('.badge', { hasText: 'yes' }).waitFor({ timeout: 20_000 });
    await expect
      .poll(() => node.logs.some((l) => l.audit === true && l.action === 'governance.reconnect' && l.outcome === 'ok'))
      .toBe(true);
    await shoot(page, 'governance');
  });
});
