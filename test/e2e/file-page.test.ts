/**
 * The chat page opened from disk (file:), as a newcomer opens dist/public/index.html, and the
 * page against a server that needs a sign-in token (--auth-secret): system Chromium via
 * playwright-core, real Plaza servers on port 0.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { signToken } from '../../src/server/access/tokens.js';
import type { Plaza } from '../../src/server/plaza.js';
import { launchChromium, skipWithoutChromium, watchErrors } from '../helpers/browser.js';
import { joined, messages, roomsClient } from '../helpers/library.js';
import { PUBLIC_DIR, startPlaza } from '../helpers/plaza.js';
import { until } from '../helpers/wait.mjs';

const PAGE = pathToFileURL(join(PUBLIC_DIR, 'index.html')).href;
const SECRET = 'file-page-test-secret-0123456789abcdef';
/**
 * Chromium logs every refused or failed WebSocket attempt itself, and every refused event stream
 * the client falls back to between them; a page cannot silence that.
 */
const CHROMIUM_SOCKET_NOISE = /^console: (WebSocket connection to '.*' failed: |Failed to load resource: net::ERR_CONNECTION_REFUSED$)/;

/** A TCP port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const token = (claims: Record<string, unknown>) =>
  signToken({ sub: 'ada', name: 'Ada', rooms: '*', exp: Math.floor(Date.now() / 1000) + 600, ...claims } as never, SECRET);

describe('the chat page opened from disk', { skip: skipWithoutChromium(), timeout: 90_000 }, () => {
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
  });

  async function open(url: string, viewport = { width: 760, height: 560 }): Promise<{ page: Page; errors: string[] }> {
    const context = await browser.newContext({ viewport });
    contexts.push(context);
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(url);
    return { page, errors };
  }

  it('chats between two pages from file:// through the server named by ?server= or #server=', async () => {
    const plaza = await startPlaza({ welcome: 'Welcome to the plaza.' });
    try {
      const server = `ws://127.0.0.1:${plaza.port}`;
      const a = await open(`${PAGE}?server=${encodeURIComponent(server)}`);
      const b = await open(`${PAGE}#server=${encodeURIComponent(server)}&team`);
      for (const { page } of [a, b]) await page.locator('#status[data-status="open"]').waitFor();
      // #server= left the address bar; the room stayed in the hash.
      assert.equal(b.page.url(), `${PAGE}#team`);
      await b.page.fill('#room', 'lobby');
      await b.page.press('#room', 'Enter');
      await b.page.waitForURL(/#lobby$/);
      await a.page.fill('#message', 'Hello from a file');
      await a.page.press('#message', 'Enter');
      await b.page.locator('.msg .text', { hasText: 'Hello from a file' }).waitFor();
      await b.page.fill('#message', 'Hello back');
      await b.page.press('#message', 'Enter');
      await a.page.locator('.msg .text', { hasText: 'Hello back' }).waitFor();
      // --welcome reaches the page as a notice of its own, at the top of the room.
      assert.equal(await a.page.locator('[role="log"] > li').first().textContent(), 'Welcome to the plaza.');
      // A reload in the same tab keeps talking to the server #server= named.
      await b.page.reload();
      await b.page.locator('#status[data-status="open"]').waitFor();
      assert.deepEqual([...a.errors, ...b.errors], []);
    } finally {
      await plaza.close();
    }
  });

  it('talks to ws://localhost:8080 when its address names no server', async () => {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await page.goto(PAGE);
    await page.waitForFunction(() => document.querySelector('#status')?.textContent !== 'Connecting…');
    assert.equal(sockets[0], 'ws://localhost:8080/');
  });

  it('says in plain words when no server answers and shows the command that starts one', async () => {
    const port = await closedPort();
    const { page, errors } = await open(`${PAGE}?server=ws://127.0.0.1:${port}`);
    const problem = page.locator('#problem');
    await problem.waitFor();
    const text = (await problem.textContent()) ?? '';
    assert.match(text, new RegExp(`No Plaza server answers at ws://127\\.0\\.0\\.1:${port}\\.`));
    assert.match(text, /run node dist\/server\.js in the Plaza folder/);
    assert.equal(await page.locator('#problem code').first().textContent(), 'node dist/server.js');
    assert.equal(await page.locator('#status').textContent(), 'Reconnecting…');
    // The server comes up on that port: the page connects and the notice goes.
    const plaza = await startPlaza({ port });
    try {
      await page.locator('#status[data-status="open"]').waitFor({ timeout: 20_000 });
      assert.equal(await problem.isHidden(), true);
    } finally {
      await plaza.close();
    }
    assert.deepEqual(errors.filter((e) => !CHROMIUM_SOCKET_NOISE.test(e)), []);
  });

  it('explains an unusable ?server= instead of throwing', async () => {
    const { page, errors } = await open(`${PAGE}?server=ftp://example.com`);
    await page.locator('#problem').waitFor();
    assert.match((await page.locator('#problem').textContent()) ?? '', /cannot use the server address "ftp:\/\/example\.com": ftp:\/\/example\.com\/ is not a server address/);
    assert.equal(await page.locator('#status').getAttribute('data-status'), 'closed');
    assert.deepEqual(errors, []);
  });

  it('gives the embed client on a file: page a clear error for a missing or bad URL, and no page error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plaza-embed-file-'));
    try {
      const html = join(dir, 'embed.html');
      writeFileSync(
        html,
        `<!doctype html><meta charset="utf-8"><script src="${pathToFileURL(join(PUBLIC_DIR, 'plaza.js')).href}"></script>
<script>
  window.problems = [];
  for (const url of [undefined, 'file:///srv/plaza', '/socket', 'ws://[bad']) {
    try { Plaza.connect(url); } catch (error) { window.problems.push(error.name + ': ' + error.message); }
  }
</script>`,
      );
      const { page, errors } = await open(pathToFileURL(html).href);
      const problems = await page.evaluate(() => (window as unknown as { problems: string[] }).problems);
      assert.deepEqual(problems, [
        'TypeError: Plaza: a file: page has no server of its own; pass its URL, e.g. connect("ws://localhost:8080")',
        'TypeError: Plaza: file:///srv/plaza is not a server address: use ws:, wss:, http: or https:, e.g. "ws://localhost:8080"',
        'TypeError: Plaza: file:///socket is not a server address: use ws:, wss:, http: or https:, e.g. "ws://localhost:8080"',
        'TypeError: Plaza: ws://[bad is not a valid URL; use e.g. "wss://chat.example.com/"',
      ]);
      assert.deepEqual(errors, []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('with --auth-secret', () => {
    let plaza: Plaza;
    let server: string;
    before(async () => {
      plaza = await startPlaza({ authSecret: SECRET });
      server = `?server=${encodeURIComponent(`ws://127.0.0.1:${plaza.port}`)}`;
    });
    after(() => plaza?.close());

    async function authFailures(): Promise<number> {
      const text = await (await fetch(`${plaza.url}/metrics`)).text();
      return Number(/^plaza_auth_failures_total (\d+)$/m.exec(text)![1]);
    }

    it('says the server needs a sign-in token and how to get one, and does not retry', async () => {
      const before = await authFailures();
      const { page, errors } = await open(`${PAGE}${server}`);
      await page.locator('#problem').waitFor();
      const text = (await page.locator('#problem').textContent()) ?? '';
      assert.match(text, /^This server needs a sign-in token\. It said: “a token is required/);
      assert.match(text, /node dist\/server\.js token --sub your-name/);
      assert.match(text, /#token=<the token>/);
      assert.equal(await page.locator('#status').textContent(), 'Not signed in');
      await page.waitForTimeout(1000);
      assert.equal(await authFailures(), before + 1, 'one attempt, not a reconnect loop');
      assert.deepEqual(errors, []);
    });

    it('signs in with #token=, takes the token out of the address bar and history, and keeps it for a reload', async () => {
      const t = token({ name: 'Ada (token)' });
      const { page, errors } = await open(`${PAGE}${server}#token=${t}&team`);
      await page.locator('#status[data-status="open"]').waitFor();
      assert.equal(page.url(), `${PAGE}${server}#team`);
      assert.ok(!page.url().includes(t));
      await page.locator('#members li.me', { hasText: 'Ada (token)' }).waitFor();
      assert.equal(await page.inputValue('#room'), 'team');
      // No history entry holds the token: back leaves the page, forward returns without it.
      await page.goBack();
      await page.goForward();
      assert.ok(!page.url().includes('token'), page.url());
      await page.locator('#status[data-status="open"]').waitFor();
      await page.reload();
      await page.locator('#status[data-status="open"]').waitFor();
      assert.deepEqual(errors, []);
    });

    it('shows and uses the name the server gave after the token, never a guest name of its own', async () => {
      const grace = roomsClient(`ws://127.0.0.1:${plaza.port}`, { token: token({ sub: 'grace', name: 'Grace' }) });
      try {
        const graceRoom = grace.join('team');
        await joined(graceRoom);
        const heard = messages(graceRoom);
        // A name stored by an earlier visit without a token must not come back either.
        const { page, errors } = await open(`${PAGE}${server}#token=${token({ name: 'Ada (token)' })}&team`);
        await page.evaluate(() => localStorage.setItem('plaza.name', 'guest-1234'));
        await page.reload();
        await page.locator('#status[data-status="open"]').waitFor();
        await page.waitForFunction(() => (document.querySelector('#name') as HTMLInputElement).value !== '');
        assert.equal(await page.inputValue('#name'), 'Ada (token)');
        assert.equal(await page.locator('#name').getAttribute('readonly'), '', 'the token decides the name: the field cannot change it');

        await page.fill('#message', 'signed in as the token says');
        await page.press('#message', 'Enter');
        const own = page.locator('[role="log"] .msg.mine', { hasText: 'signed in as the token says' });
        assert.equal(await own.locator('.name').textContent(), 'Ada (token)', 'labelled as others see it, before the echo');
        await page.locator('[role="log"] .msg.mine:not(.pending)', { hasText: 'signed in as the token says' }).waitFor();
        assert.equal(await own.count(), 1);
        assert.equal(await own.locator('.name').textContent(), 'Ada (token)');
        await until(() => heard.length === 1, 5000, 'Grace to hear Ada');
        assert.deepEqual([heard[0]!.data, heard[0]!.meta.sender.name], ['signed in as the token says', 'Ada (token)']);
        await page.locator('#members li.me', { hasText: 'Ada (token)' }).waitFor();
        assert.equal(await page.locator('#members li', { hasText: 'guest-' }).count(), 0);
        assert.deepEqual(errors, []);
        await page.context().close();
      } finally {
        grace.close();
      }
    });

    it('says a token was refused, and when one expired while the page was open', async () => {
      const refused = await open(`${PAGE}${server}#token=${token({ exp: Math.floor(Date.now() / 1000) - 5 })}`);
      await refused.page.locator('#problem').waitFor();
      assert.match((await refused.page.locator('#problem').textContent()) ?? '', /^This server needs a sign-in token, and refused the one this page had\. It said: “token has expired”\./);

      // Long enough to connect with on a busy machine (the suite runs two files at once), short enough to watch it pass.
      const expiring = await open(`${PAGE}${server}#token=${token({ exp: Math.floor(Date.now() / 1000) + 5 })}`);
      await expiring.page.locator('#status[data-status="open"]').waitFor();
      await expiring.page.locator('#problem').waitFor({ timeout: 8000 });
      assert.match((await expiring.page.locator('#problem').textContent()) ?? '', /^Your sign-in token has expired\./);
      assert.equal(await expiring.page.locator('#status').textContent(), 'Sign-in expired');
      assert.deepEqual([...refused.errors, ...expiring.errors], []);
    });
  });
});
