/**
 * Browser fixtures for test/e2e: the system Chromium driven by playwright-core (never a
 * downloaded browser), and a watch on everything a page reports as an error.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from './plaza.js';
import { CHROMIUM, MISSING_CHROMIUM as MISSING } from './requirements.js';

export { CHROMIUM, skipWithoutChromium } from './requirements.js';
export { ROOT } from './plaza.js';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(MISSING);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Collects uncaught exceptions and console errors (CSP violations are reported there). */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  return errors;
}

/** Set by `npm run screenshots`: the e2e tests then also write the README's pictures under docs/. */
export const WRITE_SCREENSHOTS = process.env.PLAZA_SCREENSHOTS === '1';

/**
 * Renders the page as a picture, and writes it to docs/<name> only when asked
 * (`npm run screenshots`), so that `npm test` leaves the working tree as it found it. The page is
 * rendered either way: one that cannot be drawn fails the test on every run.
 */
export async function docsScreenshot(page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<void> {
  const image = await page.screenshot(options);
  if (!WRITE_SCREENSHOTS) return;
  mkdirSync(join(ROOT, 'docs'), { recursive: true });
  writeFileSync(join(ROOT, 'docs', name), image);
}
