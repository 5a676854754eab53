/**
 * The live status page in a real browser (system Chromium via playwright-core) against a real
 * Plaza on port 0 with traffic flowing. Writes docs/status.png under `npm run screenshots`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Plaza } from '../../src/server/plaza.js';
import { docsScreenshot, launchChromium, ROOT, skipWithoutChromium, watchErrors } from '../helpers/browser.js';
import { connect, startPlaza, wsUrl, type TestClient } from '../helpers/plaza.js';
import { V1Client } from '../helpers/v1.js';

const KEY = 'status-page-key-0123456789';

/** The big number of one card, once it shows one. */
async function cardValue(page: Page, id: string): Promise<string> {
  const value = page.locator(`#${id} [data-value]`);
  await page.waitForFunction((selector) => document.querySelector(selector)?.textContent !== '–', `#${id} [data-value]`);
  return (await value.textContent()) ?? '';
}

describe('status page in a browser', { skip: skipWithoutChromium(), timeout: 60_000 }, () => {
  let plaza: Plaza;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const v1Clients: V1Client[] = [];
  const plainClients: TestClient[] = [];
  let traffic: NodeJS.Timeout | undefined;

  before(async () => {
    plaza = await startPlaza({ publicDir: join(ROOT, 'dist', 'public'), apiKey: KEY });
    const rooms: Array<[string, number]> = [['support', 5], ['team-7', 3], ['announcements', 2], ['random', 1]];
    for (const [room, members] of rooms) {
      for (let i = 0; i < members; i++) {
        const client = await V1Client.open(wsUrl(plaza));
        await client.request({ type: 'join', room });
        v1Clients.push(client);
      }
    }
    for (let i = 0; i < 2; i++) plainClients.push(await connect(wsUrl(plaza)));
    // Uneven bursts, so the charts have a shape.
    let tick = 0;
    traffic = setInterval(() => {
      tick++;
      const burst = 1 + ((tick * 7) % 11);
      // Only members may publish (the first five clients are in support).
      for (let n = 0; n < burst; n++) v1Clients[n % 5]!.send({ type: 'publish', room: 'support', data: { n } });
      if (tick % 3 === 0) plainClients[0]!.send(`plain ${tick}`);
    }, 100);
    browser = await launchChromium();
  });

  after(async () => {
    clearInterval(traffic);
    for (const context of contexts) await context.close();
    await browser?.close();
    await Promise.all([...v1Clients.map((c) => c.close()), ...plainClients.map((c) => c.close())]);
    await plaza?.close();
  });

  async function open(path: string, headers: Record<string, string> = {}) {
    const context = await browser.newContext({ viewport: { width: 1100, height: 760 }, deviceScaleFactor: 1, extraHTTPHeaders: headers });
    contexts.push(context);
    const page = await context.newPage();
    const errors = watchErrors(page);
    const response = await page.goto(`${plaza.url}${path}`);
    return { page, errors, status: response?.status() };
  }

  it('shows live numbers, the busiest rooms and sparklines, without errors', async () => {
    const { page, errors, status } = await open(`/status?key=${encodeURIComponent(KEY)}`);
    assert.equal(status, 200);
    await page.locator('#status[data-status="open"]').waitFor();
    assert.equal(await page.locator('#status').textContent(), 'Live');
    // The key leaves the address bar at once, as #token= does on the chat page (issue 29).
    assert.equal(page.url(), `${plaza.url}/status`);

    // 11 v1 clients, 2 plain ones and the page itself.
    assert.equal(await cardValue(page, 'card-connections'), '14');
    assert.equal(await page.locator('#card-connections [data-detail]').textContent(), 'plain 2 · plaza.v1 12 · SSE 0');
    const rows = page.locator('#busiest tr');
    await page.waitForFunction(() => document.querySelectorAll('#busiest tr').length === 5);
    const table = await rows.evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    assert.deepEqual(table, [['support', '5'], ['team-7', '3'], ['announcements', '2'], ['lobby', '2'], ['random', '1']]);

    // Messages are flowing: published per second is above zero after a few snapshots.
    await page.waitForFunction(() => Number(document.querySelector('#card-published [data-value]')?.textContent) > 0, undefined, { timeout: 10_000 });
    assert.ok(Number(await cardValue(page, 'card-deliveries')) > 0);
    assert.match(await cardValue(page, 'card-loop'), /^\d+(\.\d)? ms$/);
    assert.match(await cardValue(page, 'card-memory'), /^\d+(\.\d)? MiB$/);

    // Let the sparklines gather a few seconds of points.
    await page.waitForFunction(() => (document.querySelector('#card-published .line')?.getAttribute('points') ?? '').split(' ').length >= 8, undefined, { timeout: 15_000 });
    const points = await page.locator('#card-published .line').getAttribute('points');
    for (const point of (points ?? '').split(' ')) assert.match(point, /^\d+(\.\d)?,\d+(\.\d)?$/);
    assert.match((await page.locator('#fact-uptime').textContent()) ?? '', /^\d+ s$/);
    // support, team-7, announcements, random and the plain clients' lobby; not plaza:status,
    // the page's own room (issue 29).
    assert.equal(await page.locator('#fact-rooms').textContent(), '5');
    assert.match((await page.locator('#updated').textContent()) ?? '', /^Updated /);
    assert.equal(await page.locator('#notice').isHidden(), true);

    await docsScreenshot(page, 'status.png', { fullPage: true });
    assert.deepEqual(errors, [], 'no CSP violations or script errors');
  });

  it('ignores anything in the room not sent by the server, and never writes HTML', async () => {
    const { page } = await open(`/status?key=${encodeURIComponent(KEY)}`);
    await cardValue(page, 'card-connections');
    // plaza:status takes no client's messages, not even an operator's (and the page listens
    // only to the server besides).
    const operator = await V1Client.open(wsUrl(plaza, `/?key=${encodeURIComponent(KEY)}`));
    v1Clients.push(operator);
    await operator.request({ type: 'join', room: 'plaza:status' });
    const fake = { v: 1, time: Date.now(), connections: { total: 999, plain: 0, v1: 999 }, rates: { published: 0 }, eventLoop: { p99: 0 }, memory: { rss: 0 }, busiest: [{ room: '<b>x</b>', members: 1e6 }], history: { entries: 0 } };
    const refused = await operator.request({ type: 'publish', room: 'plaza:status', data: fake });
    assert.equal(refused.code, 'forbidden');
    await page.waitForTimeout(1500);
    assert.notEqual(await page.locator('#card-connections [data-value]').textContent(), '999');
    assert.equal(await page.locator('#busiest b').count(), 0);
    const source = readFileSync(join(ROOT, 'public', 'status.ts'), 'utf8');
    assert.doesNotMatch(source, /\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write/);
  });

  it('keeps ?key= out of the address bar and the tab\'s history, and keeps other parts of the address', async () => {
    const { page, errors } = await open(`/status?key=${encodeURIComponent(KEY)}&view=wide#rooms`);
    await cardValue(page, 'card-connections');
    assert.equal(page.url(), `${plaza.url}/status?view=wide#rooms`);
    assert.deepEqual(errors, []);
    // No entry of the tab's history holds the key: back leaves the page, and forward returns to
    // it without the key, which the server then asks for again (docs/operations.md says so).
    await page.goBack();
    assert.equal(page.url(), 'about:blank');
    const again = await page.goForward();
    assert.equal(page.url(), `${plaza.url}/status?view=wide#rooms`);
    assert.equal(again?.status(), 401);
  });

  it('tells a visitor without the key on its WebSocket what to do', async () => {
    // The header gets the page, but the page has no ?key= to hand on to its WebSocket.
    const { page, errors } = await open('/status', { authorization: `Bearer ${KEY}` });
    await page.locator('#notice:not([hidden])').waitFor({ timeout: 5000 });
    assert.match((await page.locator('#notice').textContent()) ?? '', /status\?key=<API key>/);
    assert.equal(await page.locator('#card-connections [data-value]').textContent(), '–');
    assert.deepEqual(errors, []);
  });

  it('is refused without the key', async () => {
    const { status } = await open('/status');
    assert.equal(status, 401);
  });
});
