/**
 * What some suites need from the machine (Debian's Chromium, redis-server, a Redis to talk to),
 * and why they skip without it. Kept free of heavy imports (no playwright-core, no server), so
 * that `npm test`'s opening line (test/prerequisites.ts) asks the same questions in no time.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian's chromium package. */
export const CHROMIUM = '/usr/bin/chromium';

export const MISSING_CHROMIUM = `Chromium not found at ${CHROMIUM}; install it with \`apt-get install chromium\` (browser e2e tests never download one)`;

/**
 * Why browser tests cannot run, for `describe(…, { skip })` on a developer machine. Under CI
 * (CI=true) this is false so that the tests run and fail loudly in launchChromium() instead.
 */
export function skipWithoutChromium(): string | false {
  return !existsSync(CHROMIUM) && !process.env.CI ? MISSING_CHROMIUM : false;
}

/** The shared Redis the suite uses (`.ci/run` starts one when none answers). */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Why cluster tests cannot run here, or false. Under CI a missing Redis fails instead. */
export function skipWithoutRedis(): string | false {
  const hasServer = spawnSync('redis-server', ['--version']).status === 0;
  if (hasServer || process.env.CI === 'true') return false;
  return 'redis-server is not installed (apt-get install redis-server); under CI=true this fails instead';
}
