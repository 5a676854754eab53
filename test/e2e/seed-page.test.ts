/**
 * A tutorial-style chat page of one's own, served with --public-dir: an inline <script> that
 * opens a plain WebSocket and a stylesheet from a CDN (here, a server on another port), the
 * welcome message such pages print first (--welcome), and the built-in /plaza.js beside it.
 * System Chromium via playwright-core against real servers on port 0.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { createPlaza, type Plaza } from '../../src/server/plaza.js';
import type { PlazaOptions } from '../../src/server/config.js';
import { launchChromium, skipWithoutChromium, watchErrors } from '../helpers/browser.js';
import { PUBLIC_DIR } from '../helpers/plaza.js';

const WELCOME = 'Welcome to the seed chat!';

/** The page as such tutorials write it: everything inline, the style from a CDN. */
const seedPage = (cdn: string) => `<!doctype html>
<html><head><meta charset="utf-8"><title>Seed chat</title>
<link rel="stylesheet" href="${cdn}/chat.css">
</head><body>
<ul id="messages"></ul>
<form id="form"><input id="input" autocomplete="off"><button>Send</button></form>
<script>
  const ws = new WebSocket(location.origin.replace('http', 'ws'));
  ws.onmessage = (event) => {
    const li = document.createElement('li');
    li.textContent = event.data;
    document.getElementById('messages').append(li);
  };
  document.getElementById('form').onsubmit = (event) => {
    event.preventDefault();
    ws.send(document.getElementById('input').value);
    document.getElementById('input').value = '';
  };
</script>
</body></html>`;

describe('a seed-style page served with --public-dir', { skip: skipWithoutChromium(), timeout: 60_000 }, () => {
  let browser: Browser;
  let cdn: Server;
  let cdnOrigin: string;
  const site = mkdtempSync(join(tmpdir(), 'plaza-seed-site-'));

  before(async () => {
    browser = await launchChromium();
    cdn = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/css' });
      res.end('#messages { color: rgb(1, 2, 3); }');
    });
    await new Promise<void>((resolve) => cdn.listen(0, '127.0.0.1', resolve));
    cdnOrigin = `http://127.0.0.1:${(cdn.address() as AddressInfo).port}`;
    writeFileSync(join(site, 'index.html'), seedPage(cdnOrigin));
  });
  after(async () => {
    await browser?.close();
    await new Promise((resolve) => cdn?.close(resolve));
    rmSync(site, { recursive: true, force: true });
  });

  /** A Plaza as `node dist/server.js --public-dir <site> …` builds it: the site laid over dist/public. */
  async function serve(options: Partial<PlazaOptions>): Promise<Plaza> {
    const plaza = createPlaza({ port: 0, host: '127.0.0.1', logLevel: 'silent', publicDir: site, welcome: WELCOME, ...options }, { builtinPublicDir: PUBLIC_DIR });
    await plaza.start();
    return plaza;
  }

  it('is blocked by the strict default policy, and the browser says why', async () => {
    const plaza = await serve({});
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const errors = watchErrors(page);
      await page.goto(plaza.url);
      await page.waitForTimeout(300);
      assert.ok(errors.some((e) => /Content Security Policy/.test(e) && /inline script/i.test(e)), errors.join('\n'));
      assert.ok(errors.some((e) => /Content Security Policy/.test(e) && /stylesheet/i.test(e)), errors.join('\n'));
      assert.equal(await page.locator('#messages li').count(), 0, 'the inline script never ran');
    } finally {
      await context.close();
      await plaza.close();
    }
  });

  it('works with a --content-security-policy that allows it: welcome first, then the chat, /plaza.js still served', async () => {
    const plaza = await serve({
      contentSecurityPolicy: `default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' ${cdnOrigin}; connect-src 'self' ws: wss:`,
    });
    const contexts = [await browser.newContext(), await browser.newContext()];
    try {
      const [a, b] = await Promise.all(contexts.map((context) => context.newPage()));
      const errors = [...watchErrors(a!), ...watchErrors(b!)];
      for (const page of [a!, b!]) {
        await page.goto(plaza.url);
        await page.locator('#messages li').first().waitFor();
        assert.equal(await page.locator('#messages li').first().textContent(), WELCOME);
      }
      await a!.fill('#input', 'hi from a seed page');
      await a!.press('#input', 'Enter');
      await b!.locator('#messages li', { hasText: 'hi from a seed page' }).waitFor();
      assert.equal(await b!.locator('#messages').evaluate((list) => getComputedStyle(list).color), 'rgb(1, 2, 3)', 'the CDN stylesheet applies');
      const client = await fetch(`${plaza.url}/plaza.js`);
      assert.equal(client.status, 200);
      assert.match(await client.text(), /Plaza/);
      assert.deepEqual(errors, []);
    } finally {
      for (const context of contexts) await context.close();
      await plaza.close();
    }
  });
});
