/**
 * Plaza where WebSockets do not pass (issue #21), in a real browser (system Chromium) behind a
 * real HTTP proxy (helpers/http-proxy.ts) in front of a real Plaza: the chat page behind a proxy
 * that refuses the upgrade, and behind one that accepts it and drops every frame, chats over
 * server-sent events and says so; a reload starts on SSE at once (the client remembered it for
 * the origin); and a page whose proxy starts letting WebSockets through moves back to one while
 * messages flow both ways, losing and repeating none.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Plaza } from '../../src/server/plaza.js';
import { launchChromium, ROOT, skipWithoutChromium, watchErrors } from '../helpers/browser.js';
import { HttpProxy, type UpgradeMode } from '../helpers/http-proxy.js';
import { startPlaza } from '../helpers/plaza.js';
import { until } from '../helpers/wait.mjs';
import { connectBuilt, type Client } from '../helpers/plaza-client.js';
import { sleep } from '../helpers/workload.js';

/** Opens the chat page through `proxy` in its own context as `name`, once connected. */
async function openChat(browser: Browser, proxy: HttpProxy, name: string) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${proxy.origin}/`);
  // The proxy that eats frames costs a stall (stallTimeout, 5 s) before the fallback; meanwhile
  // the page's WebSocket looks open.
  await page.locator('#status[data-status="open"][data-transport="sse"]').waitFor({ timeout: 20_000 });
  await page.fill('#name', name);
  await page.locator('#name').dispatchEvent('change');
  return { context, page, errors };
}

/**
 * Errors the page reported, but the browser's own line for each WebSocket the proxy refused
 * (e.g. "WebSocket connection to 'ws://…' failed: … ERR_UNEXPECTED_PROXY_AUTH"): that is the
 * blocked attempt the fallback answers, not a fault of the page.
 */
const unexpected = (errors: string[]) => errors.filter((e) => !/^console: WebSocket connection to '[^']+' failed: /.test(e));

async function say(page: Page, text: string): Promise<void> {
  await page.fill('input[name="message"]', text);
  await page.press('input[name="message"]', 'Enter');
}

/** Waits for a message whose text is exactly `text`; returns the sender's name as shown. */
async function seen(page: Page, text: string): Promise<string> {
  const item = page.locator('[role="log"] .msg').filter({ has: page.locator('.text', { hasText: text }) }).last();
  await item.waitFor({ timeout: 10_000 });
  return (await item.locator('.name').textContent()) ?? '';
}

describe('behind proxies that let no WebSocket through, in a browser', { skip: skipWithoutChromium(), timeout: 90_000 }, () => {
  let plaza: Plaza;
  let browser: Browser;
  const proxies: HttpProxy[] = [];
  const contexts: BrowserContext[] = [];

  const proxy = async (upgrades: UpgradeMode) => {
    const started = await HttpProxy.start({ targets: [plaza.port], upgrades });
    proxies.push(started);
    return started;
  };

  before(async () => {
    plaza = await startPlaza({ publicDir: join(ROOT, 'dist', 'public'), rateLimit: 0 });
    browser = await launchChromium();
  });

  after(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
    await Promise.all(proxies.map((p) => p.close()));
    await plaza?.close();
  });

  it('the chat page chats over server-sent events behind a proxy that refuses the upgrade and one that eats every frame, and says so', async () => {
    const refusing = await proxy('refuse');
    const eating = await proxy('eat');
    const ada = await openChat(browser, refusing, 'Ada');
    const grace = await openChat(browser, eating, 'Grace');
    contexts.push(ada.context, grace.context);
    assert.ok(refusing.upgradesSeen.refuse >= 1 && eating.upgradesSeen.eat >= 1, 'both pages tried a WebSocket first');
    for (const { page } of [ada, grace]) {
      assert.equal(await page.locator('#status').getAttribute('data-transport'), 'sse');
      assert.equal(await page.locator('#status').textContent(), 'Connected (server-sent events)');
    }

    await say(ada.page, 'Hi Grace, no WebSockets here');
    assert.equal(await seen(grace.page, 'Hi Grace, no WebSockets here'), 'Ada');
    await say(grace.page, 'Nor here, and it works all the same');
    assert.equal(await seen(ada.page, 'Nor here, and it works all the same'), 'Grace');

    // The next page load starts where the last one got through: no WebSocket attempt, no stall.
    const before = eating.upgradesSeen.eat;
    const started = Date.now();
    await grace.page.reload();
    await grace.page.locator('#status[data-status="open"]').waitFor();
    assert.equal(await grace.page.locator('#status').getAttribute('data-transport'), 'sse', 'the reloaded page started on SSE');
    assert.equal(eating.upgradesSeen.eat, before, 'the reloaded page went straight to SSE');
    assert.ok(Date.now() - started < 5000, `the reload took ${Date.now() - started} ms: it waited out a stall`);
    // History came back over SSE too.
    await seen(grace.page, 'Nor here, and it works all the same');
    assert.deepEqual(unexpected([...ada.errors, ...grace.errors]), []);
  });

  for (const blocked of ['refuse', 'eat'] as const) {
    it(`a page behind a proxy that ${blocked === 'refuse' ? 'refuses the upgrade' : 'eats every frame'} moves back to WebSocket once the proxy passes it, losing and repeating nothing`, async () => {
      const gate = await proxy(blocked);
      const context = await browser.newContext();
      contexts.push(context);
      // The browser asks for a favicon for a document that names none; Plaza has none (404).
      await context.route('**/favicon.ico', (route) => route.fulfill({ status: 204 }));
      const page = await context.newPage();
      const errors = watchErrors(page);
      // Not the chat page: its own client would learn the transport for this origin first.
      await page.goto(`${gate.origin}/healthz`);
      await page.addScriptTag({ url: '/plaza.js' });
      const room = `switch-${blocked}`;
      // The page's own client (the built plaza.js), with short waits so the test is quick.
      await page.evaluate(async (room) => {
        const w = window as unknown as { Plaza: typeof import('../../src/client/index.js'); seen: string[]; moves: string[]; acked: number; failed: string[]; client: Client.PlazaClient; send: (n: number) => void };
        w.seen = [];
        w.moves = [];
        w.acked = 0;
        w.failed = [];
        const client = (w.client = w.Plaza.connect(undefined, { rooms: true, name: 'page', stallTimeout: 1000, upgradeDelay: 300 }));
        client.on('transport', (name) => w.moves.push(name));
        const joined = client.join(room);
        joined.on('message', (data) => w.seen.push(String(data)));
        w.send = (n) => void joined.publish(`page/${n}`).then(() => w.acked++, (error: Error) => w.failed.push(error.message));
        await new Promise((resolve) => joined.on('joined', resolve));
      }, room);
      assert.equal(await page.evaluate(() => (window as unknown as { client: Client.PlazaClient }).client.transport), 'sse');

      const peer = await connectBuilt(`ws://127.0.0.1:${plaza.port}/`, { name: 'peer' });
      const peerSeen: string[] = [];
      const peerRoom = peer.join(room);
      peerRoom.on('message', (data) => peerSeen.push(String(data)));
      await new Promise((resolve) => peerRoom.on('joined', resolve));
      try {
        // Both publish all along; halfway the proxy starts passing WebSockets.
        const N = 60;
        for (let n = 1; n <= N; n++) {
          if (n === N / 2) gate.upgrades = 'pass';
          await peerRoom.publish(`peer/${n}`);
          await page.evaluate((n) => (window as unknown as { send: (n: number) => void }).send(n), n);
          await sleep(25);
        }
        await until(() => peerSeen.length >= 2 * N, 10_000, 'the peer has every message').catch(() => undefined);
        const page_ = await page.evaluate(() => {
          const w = window as unknown as { seen: string[]; moves: string[]; acked: number; failed: string[]; client: Client.PlazaClient };
          return { moves: w.moves, acked: w.acked, failed: w.failed, transport: w.client.transport };
        });
        let pageSeen: string[] = [];
        const deadline = Date.now() + 10_000;
        while ((pageSeen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen)).length < 2 * N && Date.now() < deadline) await sleep(50);
        const expected = [...Array(N).keys()].flatMap((i) => [`peer/${i + 1}`, `page/${i + 1}`]);
        const inOrder = (list: string[], who: string) => list.filter((m) => m.startsWith(`${who}/`));
        // Each side saw every message once, each sender's in its order.
        for (const [name, list] of [['page', pageSeen], ['peer', peerSeen]] as const) {
          assert.equal(new Set(list).size, list.length, `${name} saw a message twice: ${list.join(' ')}`);
          assert.deepEqual(new Set(list), new Set(expected), `${name} missed messages`);
          for (const who of ['page', 'peer']) assert.deepEqual(inOrder(list, who), inOrder(expected, who), `${name}: ${who}'s messages out of order`);
        }
        // And in the same order: the room's one order.
        assert.deepEqual(pageSeen, peerSeen);
        assert.equal(page_.transport, 'websocket');
        assert.deepEqual(page_.moves, ['sse', 'websocket'], 'down to SSE once, then back to WebSocket once');
        assert.deepEqual(page_.failed, []);
        assert.equal(await page.evaluate(() => (window as unknown as { acked: number }).acked), N);
        assert.deepEqual(unexpected(errors), []);
      } finally {
        peer.close();
      }
    });
  }
});
