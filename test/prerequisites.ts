/**
 * Run by `npm test` before the suites (as build/prerequisites.js): one line when suites will be
 * skipped here for want of Chromium or redis-server, or will fail for want of a Redis to talk
 * to or of haproxy, so a newcomer is told at the start instead of finding `# SKIP` among a thousand lines. It
 * asks the same functions the suites ask, so the line and the skips cannot disagree.
 */
import { connect } from 'node:net';
import { hasHaproxy } from './helpers/haproxy.mjs';
import { CHROMIUM, REDIS_URL, skipWithoutChromium, skipWithoutRedis } from './helpers/requirements.js';

/** Whether a Redis answers PING at `url` within a second. */
function redisAnswers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      resolve(false);
      return;
    }
    const socket = connect(Number(target.port || 6379), target.hostname.replace(/^\[|\]$/g, ''));
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    // A Redis with a password answers -NOAUTH: it is there all the same.
    socket.on('data', (data) => done(/^(\+PONG|-NOAUTH)/.test(String(data))));
    socket.on('error', () => done(false));
  });
}

const problems: string[] = [];
if (skipWithoutChromium()) problems.push(`skipping the browser suites: no ${CHROMIUM} (apt-get install chromium)`);
if (skipWithoutRedis()) problems.push('skipping the suites that need Redis: no redis-server (apt-get install redis-server redis-tools)');
else if (!(await redisAnswers(REDIS_URL))) {
  problems.push(`the suites that need Redis will fail: nothing answers at ${REDIS_URL} (REDIS_URL; start one with redis-server --daemonize yes)`);
}
// The placement suite needs Redis too (it skips with the others), and then fails without haproxy.
if (!skipWithoutRedis() && !hasHaproxy()) problems.push('the placement suite will fail: no haproxy (apt-get install haproxy)');
if (problems.length > 0) console.log(`npm test: ${problems.join('; ')}. README.md says what the whole suite needs.`);
