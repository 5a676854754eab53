/**
 * The chat page's rooms in a real browser (system Chromium via playwright-core) against a real
 * Plaza on port 0 with a data folder: the room from the URL hash, who is online, the recent
 * conversation on arrival, and a server restart on the same port during which the page says
 * "Reconnecting…", then catches up without duplicates. Writes docs/rooms.png under `npm run screenshots`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { PlazaOptions } from '../../src/server/config.js';
import type { Plaza } from '../../src/server/plaza.js';
import { docsScreenshot, launchChromium, ROOT, skipWithoutChromium, watchErrors } from '../helpers/browser.js';
import { startPlaza } from '../helpers/plaza.js';
import { V1Client } from '../helpers/v1.js';


interface Chat {
  context: BrowserContext;
  page: Page;
  errors: string[];
}

/** Opens the chat page at `hash` in its own context (own storage) as `name`, once connected. */
async function openChat(browser: Browser, url: string, hash: string, name: string, viewport = { width: 900, height: 560 }): Promise<Chat> {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${url}/${hash}`);
  await page.locator('#status[data-status="open"]').waitFor();
  await page.fill('#name', name);
  await page.locator('#name').dispatchEvent('change');
  await page.locator('#members li.me', { hasText: name }).waitFor();
  return { context, page, errors };
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill('input[name="message"]', text);
  await page.press('input[name="message"]', 'Enter');
}

/** The log's messages as `name: text`, in order. */
async function conversation(page: Page): Promise<string[]> {
  return page.locator('[role="log"] .msg').evaluateAll((items) =>
    items.map((item) => `${item.querySelector('.name')?.textContent}: ${item.querySelector('.text')?.textContent}`),
  );
}

/** Waits until the log holds a message with exactly `text`. */
async function shown(page: Page, text: string): Promise<void> {
  await page.locator('[role="log"] .msg .text', { hasText: text }).last().waitFor();
}

/** The names in the "Online" list, sorted, and the count shown. */
async function online(page: Page): Promise<{ names: string[]; count: string }> {
  const names = await page.locator('#members li').evaluateAll((items) => items.map((item) => item.firstChild?.textContent ?? ''));
  return { names: names.sort(), count: (await page.locator('#member-count').textContent()) ?? '' };
}

async function waitOnline(page: Page, names: string[]): Promise<void> {
  const expected = [...names].sort();
  const deadline = Date.now() + 10_000;
  for (;;) {
    const now = await online(page);
    if (JSON.stringify(now.names) === JSON.stringify(expected) && now.count === String(expected.length)) return;
    if (Date.now() > deadline) assert.deepEqual(now, { names: expected, count: String(expected.length) });
    await page.waitForTimeout(50);
  }
}

describe('chat rooms in a browser', { skip: skipWithoutChromium(), timeout: 90_000 }, () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'plaza-e2e-rooms-'));
  const serverOptions: Partial<PlazaOptions> = { publicDir: join(ROOT, 'dist', 'public'), dataDir };
  let plaza: Plaza;
  let browser: Browser;
  const chats: Chat[] = [];
  let ada: Page;
  let grace: Page;
  let carol: Page;

  before(async () => {
    plaza = await startPlaza(serverOptions);
    browser = await launchChromium();
    const opened = [
      await openChat(browser, plaza.url, '#team', 'Ada', { width: 900, height: 560 }),
      await openChat(browser, plaza.url, '#team', 'Grace', { width: 390, height: 700 }),
      await openChat(browser, plaza.url, '#other', 'Carol'),
    ];
    chats.push(...opened);
    [ada, grace, carol] = opened.map((chat) => chat.page) as [Page, Page, Page];
  });

  after(async () => {
    for (const chat of chats) await chat.context.close();
    await browser?.close();
    await plaza?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('takes the room from the URL hash', async () => {
    assert.equal(await ada.inputValue('#room'), 'team');
    assert.equal(await carol.inputValue('#room'), 'other');
    assert.equal(await ada.title(), '#team · Plaza chat');
  });

  it('lists who is online in the room, and only there', async () => {
    await waitOnline(ada, ['Ada', 'Grace']);
    await waitOnline(grace, ['Ada', 'Grace']);
    await waitOnline(carol, ['Carol']);
    assert.equal(await ada.locator('#members li.me').textContent(), 'Ada (you)');
  });

  it('carries messages within a room and not into another', async () => {
    await say(ada, 'Morning! Standup notes are in the doc.');
    await shown(grace, 'Morning! Standup notes are in the doc.');
    await say(grace, 'Thanks, reading them now.');
    await shown(ada, 'Thanks, reading them now.');
    await say(carol, 'Anyone in #other?');
    await shown(carol, 'Anyone in #other?');
    await ada.waitForTimeout(200);
    assert.deepEqual(await conversation(ada), ['Ada: Morning! Standup notes are in the doc.', 'Grace: Thanks, reading them now.']);
    assert.deepEqual(await conversation(grace), await conversation(ada));
    assert.deepEqual(await conversation(carol), ['Carol: Anyone in #other?']);
    assert.equal(await ada.locator('[role="log"] .msg.mine').count(), 1);
  });

  it('shows the recent conversation after a reload, with its own messages as its own', async () => {
    await grace.reload();
    await grace.locator('#status[data-status="open"]').waitFor();
    await shown(grace, 'Thanks, reading them now.');
    assert.deepEqual(await conversation(grace), ['Ada: Morning! Standup notes are in the doc.', 'Grace: Thanks, reading them now.']);
    assert.equal(await grace.locator('[role="log"] .msg.mine .text').textContent(), 'Thanks, reading them now.');
    await waitOnline(ada, ['Ada', 'Grace']);
  });

  it('switches rooms from the room field, leaving the old room', async () => {
    await carol.fill('#room', 'team');
    await carol.press('#room', 'Enter');
    await carol.waitForURL(/#team$/);
    await shown(carol, 'Thanks, reading them now.');
    assert.deepEqual(await conversation(carol), ['Ada: Morning! Standup notes are in the doc.', 'Grace: Thanks, reading them now.']);
    await waitOnline(ada, ['Ada', 'Carol', 'Grace']);
    await waitOnline(carol, ['Ada', 'Carol', 'Grace']);
  });

  it('says "Reconnecting…" while the server restarts, then catches up without duplicates', async () => {
    const port = plaza.port;
    await plaza.close();
    for (const page of [ada, grace, carol]) {
      await page.locator('#status[data-status="reconnecting"]').waitFor();
      assert.equal(await page.locator('#status').textContent(), 'Reconnecting…');
    }
    // Written offline: shown at once as "sending…", sent after the page rejoins.
    await say(ada, 'Did the server just restart?');
    assert.equal(await ada.locator('[role="log"] .msg.pending .text').textContent(), 'Did the server just restart?');

    plaza = await startPlaza({ ...serverOptions, port });
    // A message the pages were not connected for, published as soon as the server is back.
    const bot = await V1Client.open(plaza.url.replace('http', 'ws'), 'Deploy bot');
    await bot.request({ type: 'join', room: 'team' });
    await bot.request({ type: 'publish', room: 'team', data: 'Deploy finished: v2 is live.' });
    await bot.close();

    for (const page of [ada, grace, carol]) {
      await page.locator('#status[data-status="open"]').waitFor({ timeout: 20_000 });
      await shown(page, 'Deploy finished: v2 is live.');
      await shown(page, 'Did the server just restart?');
    }
    await say(grace, 'Yes, and nothing was lost.');
    for (const page of [ada, carol]) await shown(page, 'Yes, and nothing was lost.');
    await ada.waitForTimeout(200);

    const expected = [
      'Ada: Morning! Standup notes are in the doc.',
      'Grace: Thanks, reading them now.',
      'Deploy bot: Deploy finished: v2 is live.',
      'Ada: Did the server just restart?',
      'Grace: Yes, and nothing was lost.',
    ];
    for (const page of [grace, carol]) {
      const seen = await conversation(page);
      assert.deepEqual([...seen].sort(), [...expected].sort(), 'each message exactly once');
    }
    // Ada's own offline message was shown when typed; the rest keep their order everywhere.
    assert.deepEqual([...(await conversation(ada))].sort(), [...expected].sort());
    assert.equal(await ada.locator('[role="log"] .msg.pending, [role="log"] .msg.failed').count(), 0);
    assert.equal(await ada.locator('[role="log"] .notice').count(), 0, 'with a data folder nothing needs a reset notice');
    await waitOnline(ada, ['Ada', 'Carol', 'Grace']);

    await docsScreenshot(ada, 'rooms.png');
  });

  it('reports no errors or CSP violations on any page', async () => {
    // Chromium itself logs each refused reconnect attempt while the server is down (the
    // WebSocket's, and the server-sent-events stream's the client falls back to between them);
    // a page cannot silence that, and it is not a page error.
    const refused = /^console: (WebSocket connection to '.*' failed: .*|Failed to load resource: net::)ERR_CONNECTION_REFUSED$/;
    for (const chat of chats) assert.deepEqual(chat.errors.filter((error) => !refused.test(error)), []);
  });
});
