/**
 * The operator console in a real browser for tests: Debian's Chromium (/usr/bin/chromium, installed by
 * .ci/run) driven by playwright-core, whose own browser downloads are not used.
 *
 * - `launchConsoleBrowser()` starts Chromium headless (`--no-sandbox`: CI runs as root); close it in
 *   afterAll (`browser.close()` ends the process).
 * - `signIn(page, adminUrl, token)` opens /console, enters the token in the prompt and waits for the
 *   supervision tree's root row.
 * - `shoot(page, name, fullPage?)` saves a screenshot (of the whole page unless `fullPage` is false) under `SCREENSHOT_DIR` (the system temp dir's
 *   `ethhook-console-screenshots/`: kept as CI artifacts, never committed).
 * - `actorRow(page, path)` is the tree's row of one actor; its `data-state`, `data-incarnation` and
 *   `data-mailbox` attributes carry what the row shows.
 */
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const SCREENSHOT_DIR = join(tmpdir(), 'ethhook-console-screenshots');

export async function launchConsoleBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}

export async function signIn(page: Page, adminUrl: string, token: string): Promise<void> {
  await page.goto(`${adminUrl}/console`);
  await page.locator('input[name="token"]').fill(token);
  await page.locator('#login button[type="submit"]').click();
  await actorRow(page, '/').waitFor({ timeout: 20_000 });
}

export function actorRow(page: Page, path: string): Locator {
  return page.locator(`tr[data-actor="${path}"]`);
}

/** Clicks one of a row's action buttons, then the confirmation dialog's button. */
export async function confirmAction(page: Page, button: Locator): Promise<void> {
  await button.click();
  await page.locator('#confirm-ok').click();
}

export async function shoot(page: Page, name: string, fullPage = true): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage });
  return path;
}
