/**
 * The line `npm test` prints before the suites when this machine lacks what some of them need
 * (build/prerequisites.js, from test/prerequisites.ts), run as `npm test` runs it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CHROMIUM, skipWithoutRedis } from './helpers/requirements.js';
import { ROOT } from './helpers/plaza.js';

const SCRIPT = join(ROOT, 'build/prerequisites.js');
/** A PATH with node on it and nothing else: no redis-server, as on a newcomer's fresh machine. */
const bare = mkdtempSync(join(tmpdir(), 'plaza-path-'));
symlinkSync(process.execPath, join(bare, 'node'));
after(() => rmSync(bare, { recursive: true, force: true }));

function prerequisites(env: NodeJS.ProcessEnv): string {
  const result = spawnSync(process.execPath, [SCRIPT], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

/** A port where nothing listens (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('npm test\'s prerequisites line', () => {
  it('runs before the suites', () => {
    const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.match(scripts.test!, /^node build\/prerequisites\.js && node --test /);
  });

  it('names, in one line, the suites it skips without redis-server, and how to install it', () => {
    const out = prerequisites({ PATH: bare, HOME: process.env.HOME });
    assert.equal(out.split('\n').filter(Boolean).length, 1, out);
    assert.match(out, /^npm test: .*skipping the suites that need Redis: no redis-server \(apt-get install redis-server redis-tools\)/);
    assert.equal(out.includes(`no ${CHROMIUM}`), !existsSync(CHROMIUM), 'the browser suites named exactly when Chromium is missing');
    assert.match(out, /README\.md says what the whole suite needs\.\n$/);
  });

  it('says the Redis suites will fail when redis-server is there but no Redis answers at REDIS_URL', { skip: skipWithoutRedis() }, async () => {
    const url = `redis://127.0.0.1:${await closedPort()}`;
    const out = prerequisites({ ...process.env, REDIS_URL: url });
    assert.match(out, new RegExp(`^npm test: .*the suites that need Redis will fail: nothing answers at ${url} \\(REDIS_URL; start one with redis-server --daemonize yes\\)`));
  });

  it('says the placement suite will fail without haproxy, where the Redis suites run', () => {
    // CI=true: the Redis suites run (and fail loudly) even where redis-server is not on PATH.
    // HAPROXY names the one to run: here one that is not there, as Debian's /usr/sbin/haproxy may be.
    const env = { PATH: bare, HOME: process.env.HOME, CI: 'true', REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', HAPROXY: join(bare, 'haproxy') };
    const out = prerequisites(env);
    assert.match(out, /^npm test: .*the placement suite will fail: no haproxy \(apt-get install haproxy\)/);
    assert.equal(out.split('\n').filter(Boolean).length, 1, out);
  });

  it('says nothing under CI=true without redis-server: there the suites fail loudly instead of skipping', () => {
    const out = prerequisites({ PATH: bare, HOME: process.env.HOME, CI: 'true', REDIS_URL: 'redis://127.0.0.1:6379' });
    assert.doesNotMatch(out, /skipping/);
  });
});
