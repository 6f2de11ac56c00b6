// The operator console in Firefox: Debian's firefox-esr (installed by .ci/run) driven by puppeteer-core
// over WebDriver BiDi (playwright-core drives only its own patched Firefox builds), against a real node
// process with an operate and a read token:
// - signed in with the operate token, the supervision tree has a row for every actor of the node's
//   tree, the charts are drawn, and restarting the matcher from the page (its confirmation dialog
//   included) raises its incarnation;
// - signed in with the read token, the page shows the tree and no action button.
// Screenshots go where the Chromium tests put theirs (never committed).
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActorSnapshot } from '../../src/runtime/types.ts';
import { SCREENSHOT_DIR } from '../support/console-browser.ts';
import { NODE_TOKEN, createNodeDir, killAllNodes, startNodeProcess, type NodeDir, type NodeProcess } from '../support/node-process.ts';
import { nodeChain, startTickChain, type TickChain } from './e2e-chain.ts';

const FIREFOX = '/usr/bin/firefox-esr';
const READ_TOKEN = 'e2e-read-token-0123456789abcdef';

let chain: TickChain;
let dir: NodeDir;
let node: NodeProcess;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(FIREFOX)) throw new Error(`${FIREFOX} is missing: .ci/run installs Debian's firefox-esr`);
  chain = await startTickChain();
  dir = await createNodeDir();
  node = await startNodeProcess({
    dir,
    config: {
      chains: [nodeChain(chain)],
      admin: {
        tokens: [
          { token: NODE_TOKEN, role: 'operate' },
          { token: READ_TOKEN, role: 'read' },
        ],
      },
    },
  });
  browser = await puppeteer.launch({ browser: 'firefox', executablePath: FIREFOX, headless: true });
});

afterAll(async () => {
  await browser?.close();
  await killAllNodes();
  await chain?.stop();
  await dir?.remove();
});

const row = (path: string) => `tr[data-actor="${path}"]`;

async function signIn(token: string): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1440, height: 1000 });
  await page.goto(`${node.adminUrl}/console`);
  await page.type('input[name="token"]', token);
  await page.click('#login button[type="submit"]');
  await page.waitForSelector(row('/'), { timeout: 20_000 });
  return page;
}

async function shoot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

function paths(n: ActorSnapshot): string[] {
  return [n.path, ...(n.children ?? []).flatMap(paths)];
}

const incarnation = (page: Page, path: string) => page.$eval(row(path), (tr) => Number(tr.getAttribute('data-incarnation')));

describe('the console in Firefox', () => {
  it('shows every actor and the charts to an operate token, and restarts the matcher from the page', async () => {
    const { tree } = (await node.api<{ tree: ActorSnapshot }>('GET', '/actors/health')).body;
    const page = await signIn(NODE_TOKEN);
    try {
      for (const path of paths(tree)) await page.waitForSelector(row(path), { timeout: 10_000 });
      await page.waitForFunction(() => document.querySelectorAll('canvas').length > 0, { timeout: 20_000 });
      await shoot(page, 'firefox-tree');

      const before = await incarnation(page, '/pipeline/matcher');
      await page.click(`${row('/pipeline/matcher')} button:not(.warn)`);
      await page.waitForSelector('#confirm-ok', { visible: true });
      await page.click('#confirm-ok');
      await page.waitForFunction(
        (selector, was) => Number(document.querySelector(selector)?.getAttribute('data-incarnation')) > was,
        { timeout: 20_000 },
        row('/pipeline/matcher'),
        before,
      );
      expect(await incarnation(page, '/pipeline/matcher')).toBe(before + 1);
    } finally {
      await page.close();
    }
  });

  it('shows the tree and no action button to a read token', async () => {
    const page = await signIn(READ_TOKEN);
    try {
      await page.waitForSelector(row('/pipeline/matcher'));
      expect(await page.$$eval('main button', (buttons) => buttons.map((b) => b.textContent?.trim()))).not.toContain('Restart');
      expect(await page.$$(`${row('/pipeline/matcher')} button`)).toHaveLength(0);
      await shoot(page, 'firefox-read-token');
    } finally {
      await page.close();
    }
  });
});
