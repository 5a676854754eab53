/**
 * Browser fixtures for test/e2e: the system Chromium driven by playwright-core (never a
 * downloaded browser), and a watch on everything a page reports as an error.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's chromium package. */
export const CHROMIUM = '/usr/bin/chromium';

export { ROOT } from './plaza.js';

const MISSING = `Chromium not found at ${CHROMIUM}; install it with \`apt-get install chromium\` (browser e2e tests never download one)`;

/**
 * Why browser tests cannot run, for `describe(…, { skip })` on a developer machine. Under CI
 * (CI=true) this is false so that the tests run and fail loudly in launchChromium() instead.
 */
export function skipWithoutChromium(): string | false {
  return !existsSync(CHROMIUM) && !process.env.CI ? MISSING : false;
}

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
