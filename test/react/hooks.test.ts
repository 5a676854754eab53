/**
 * plaza-realtime/react in Chromium with real React (19, the repository's, and 18, installed into
 * test/react-18), against a real Plaza on port 0: the page (harness.tsx) is bundled here with
 * esbuild from what the package ships. What the server saw is counted with Plaza's own events
 * (join, leave, connect); what the page holds is counted in the page (sockets, listeners).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { Plaza } from '../../src/server/plaza.js';
import { launchChromium, ROOT, skipWithoutChromium, watchErrors } from '../helpers/browser.js';
import { listening } from '../helpers/library.js';
import { INSTALL_TIMEOUT } from '../helpers/package.js';
import { bundlePage, ensureReact, REACT_VERSIONS } from '../helpers/react.js';
import type { Harness, MountOptions } from './harness.js';
import { until } from '../helpers/wait.mjs';

/** What the server saw: joins and leaves per room by name, and who is in each room now. */
function serverLog(plaza: Plaza) {
  const joins: string[] = [];
  const leaves: string[] = [];
  // Counted per name: a client moving between transports (WebSocket and SSE, after the restart)
  // joins on its new connection before its old one leaves.
  const inRoom = new Map<string, Map<string, number>>();
  const count = (room: string, name: string, by: number) => {
    const names = inRoom.get(room) ?? new Map<string, number>();
    inRoom.set(room, names.set(name, (names.get(name) ?? 0) + by));
  };
  plaza.on('join', ({ room, client }) => {
    joins.push(`${client.name}@${room}`);
    count(room, client.name, 1);
  });
  plaza.on('leave', ({ room, client }) => {
    leaves.push(`${client.name}@${room}`);
    count(room, client.name, -1);
  });
  const connects: string[] = [];
  plaza.on('connect', ({ client }) => connects.push(client.name));
  return { joins, leaves, connects, members: (room: string) => [...(inRoom.get(room) ?? [])].filter(([, n]) => n > 0).map(([name]) => name).sort() };
}

for (const version of REACT_VERSIONS) {
  describe(`plaza-realtime/react with React ${version.major}, in Chromium`, { skip: skipWithoutChromium(), timeout: INSTALL_TIMEOUT + 120_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), `plaza-react-${version.major}-`));
    let plaza: Plaza;
    let seen: ReturnType<typeof serverLog>;
    let browser: Browser;
    const pages: Array<{ page: Page; errors: string[] }> = [];

    before(async () => {
      const installed = ensureReact(version);
      assert.equal(installed.split('.')[0], version.major);
      await bundlePage(join(ROOT, 'test/react/harness.tsx'), version, join(dir, 'app.js'));
      writeFileSync(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><title>hooks</title><link rel="icon" href="data:,"><div id="app"></div><script src="/app.js"></script>\n');
      plaza = await listening({ publicDir: dir });
      seen = serverLog(plaza);
      browser = await launchChromium();
    }, { timeout: INSTALL_TIMEOUT + 30_000 });

    after(async () => {
      await browser?.close();
      await plaza?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    /** A new page (own context) with the chat mounted; resolves once its room is joined. */
    async function open(options: Omit<MountOptions, 'url'>): Promise<Page> {
      const page = await (await browser.newContext()).newPage();
      pages.push({ page, errors: watchErrors(page) });
      await page.goto(`${plaza.url}/`);
      assert.equal(await page.evaluate(() => window.harness.reactVersion.split('.')[0]), version.major);
      await page.evaluate((mount) => window.harness.mount(mount), { ...options, url: plaza.url.replace('http', 'ws') });
      await page.locator(`#status[data-joined="true"][data-room="${options.room}"]`).waitFor();
      return page;
    }

    const counts = (page: Page) => page.evaluate(() => window.harness.counts()) as Promise<ReturnType<Harness['counts']>>;
    const shown = (page: Page, selector: string) => page.locator(selector).evaluateAll((items) => items.map((item) => item.textContent ?? ''));

    let ada: Page;
    let bob: Page;

    it('lets two pages chat: messages, who is online, and the ack of a publish', async () => {
      ada = await open({ room: 'lobby', name: 'Ada', strict: true });
      bob = await open({ room: 'lobby', name: 'Bob', strict: true });
      await ada.fill('input[name="text"]', 'hello Bob');
      await ada.press('input[name="text"]', 'Enter');
      await bob.locator('#messages li', { hasText: 'Ada: hello Bob' }).waitFor();
      await ada.locator('#messages li', { hasText: 'Ada: hello Bob' }).waitFor();
      await ada.locator('body[data-last-ack="1"]').waitFor();
      await bob.fill('input[name="text"]', 'hi Ada');
      await bob.press('input[name="text"]', 'Enter');
      await ada.locator('#messages li', { hasText: 'Bob: hi Ada' }).waitFor();
      assert.deepEqual(await shown(ada, '#messages li'), ['Ada: hello Bob', 'Bob: hi Ada']);
      for (const page of [ada, bob]) await page.locator('#members li').nth(1).waitFor();
      assert.deepEqual((await shown(ada, '#members li')).sort(), ['Ada', 'Bob']);
    });

    it('joins once and connects once under StrictMode\'s double mount (counted by the server and the page)', async () => {
      assert.deepEqual(seen.joins.filter((j) => j.startsWith('Ada@')), ['Ada@lobby']);
      assert.deepEqual(seen.leaves, []);
      assert.equal(seen.connects.length, 2, 'one connection each for Ada and Bob');
      assert.equal(plaza.connectionCount, 2);
      assert.deepEqual(await counts(ada), { sockets: 1, open: 1, listeners: 0 });
    });

    it('leaves the old room and joins the new one when the room changes', async () => {
      await ada.evaluate(() => window.harness.setRoom('garden'));
      await ada.locator('#status[data-joined="true"][data-room="garden"]').waitFor();
      await until(() => seen.members('lobby').join() == 'Bob', 5000, 'Ada gone from lobby on the server');
      assert.deepEqual(seen.members('garden'), ['Ada']);
      assert.deepEqual(seen.joins.filter((j) => j.startsWith('Ada@')), ['Ada@lobby', 'Ada@garden']);
      assert.deepEqual(seen.leaves, ['Ada@lobby']);
      await bob.locator('#members li').nth(1).waitFor({ state: 'detached' });
      assert.deepEqual(await shown(bob, '#members li'), ['Bob']);
      assert.deepEqual(await shown(ada, '#messages li'), [], 'the new room shows only its own messages');
      assert.equal((await counts(ada)).sockets, 1, 'the same connection');
      await ada.evaluate(() => window.harness.setRoom('lobby'));
      await ada.locator('#status[data-joined="true"][data-room="lobby"]').waitFor();
    });

    it('shows a server restart as reconnecting, then the reset and the recovery', async () => {
      const port = plaza.port;
      await plaza.close();
      for (const page of [ada, bob]) await page.locator('#status[data-status="reconnecting"][data-joined="false"]').waitFor();
      plaza = await listening({ publicDir: dir, port });
      seen = serverLog(plaza);
      for (const page of [ada, bob]) {
        await page.locator('#status[data-status="open"][data-joined="true"]').waitFor({ timeout: 20_000 });
        // A Plaza without --data-dir starts a new history: what was missed is gone, and said so.
        assert.equal(await page.locator('#reset').textContent(), 'epoch_changed');
      }
      await bob.fill('input[name="text"]', 'back again');
      await bob.press('input[name="text"]', 'Enter');
      await ada.locator('#messages li', { hasText: 'Bob: back again' }).waitFor();
      assert.deepEqual(await shown(ada, '#messages li'), ['Ada: hello Bob', 'Bob: hi Ada', 'Bob: back again'], 'kept, and each once');
      assert.deepEqual((await shown(ada, '#members li')).sort(), ['Ada', 'Bob']);
    });

    it('leaves no socket open and the room left after unmount', async () => {
      await bob.evaluate(() => window.harness.unmount());
      await until(() => seen.members('lobby').join() == 'Ada', 5000, 'Bob gone from lobby on the server');
      await until(() => plaza.connectionCount == 1, 5000, 'Bob\'s connection closed on the server');
      const left = await counts(bob);
      assert.equal(left.open, 0, 'no socket of the page still open');
      assert.ok(left.sockets >= 2, 'one socket per connection: the first and the one after the restart');
    });

    it('leaves no listener on a client of the app\'s own after unmount, nor the room joined', async () => {
      const carol = await open({ room: 'lobby', name: 'Carol', strict: true, ownClient: true });
      const held = await counts(carol);
      assert.ok(held.listeners > 0, 'the hooks listen while mounted');
      assert.deepEqual(seen.joins.filter((j) => j.startsWith('Carol@')), ['Carol@lobby']);
      await carol.evaluate(() => window.harness.unmount());
      await until(() => !seen.members('lobby').includes('Carol'), 5000, 'Carol gone from lobby on the server');
      assert.deepEqual(await counts(carol), { sockets: 1, open: 1, listeners: 0 }, 'the app\'s client stays open, with nothing of the hooks on it');
      await carol.evaluate(() => window.harness.closeOwnClient());
    });

    it('reports no errors on any page', () => {
      // Chromium logs each refused reconnect while the server is down (a WebSocket, or the SSE
      // fallback's fetch); that is no page error.
      const refused = /^console: (WebSocket connection to '.*' failed: .*|Failed to load resource: net::)ERR_CONNECTION_REFUSED$/;
      for (const { errors } of pages) assert.deepEqual(errors.filter((error) => !refused.test(error)), []);
    });
  });
}
