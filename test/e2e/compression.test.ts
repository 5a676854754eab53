/**
 * --compress in a real browser: Chromium offers permessage-deflate itself, Plaza accepts it and
 * sends the 1 KiB chat messages of a room as one shared compressed frame each; the page must get
 * every message intact and in order, and what the page sends compressed must reach the others.
 * System Chromium via playwright-core, a real Plaza on port 0.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium, skipWithoutChromium, watchErrors } from '../helpers/browser.js';
import { startPlaza, wsUrl } from '../helpers/plaza.js';
import { openRaw } from '../helpers/raw-ws.js';
import { V1Client } from '../helpers/v1.js';
import type { Plaza } from '../../src/server/plaza.js';

const chat = (n: number) => ({ user: `user-${n % 3}`, text: `#${n} ${'see you at the meeting after lunch, bring the plan and coffee '.repeat(16)}` });

describe('--compress in Chromium', { skip: skipWithoutChromium(), timeout: 90_000 }, () => {
  let browser: Browser;
  let plaza: Plaza;

  before(async () => {
    browser = await launchChromium();
    plaza = await startPlaza({ compress: true, rateLimit: 0 });
  });
  after(async () => {
    await browser?.close();
    await plaza?.close();
  });

  it('receives compressed room messages intact and in order, and its own compressed messages reach others', async () => {
    // A member on a hand-made socket that offers the extension sees the frames as they are on the
    // wire: the proof that the browser's messages came compressed (RSV1).
    const witness = await openRaw(plaza.port, { headers: { 'Sec-WebSocket-Protocol': 'plaza.v1', 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
    witness.send({ opcode: 1, payload: JSON.stringify({ type: 'join', room: 'zip' }) });
    const publisher = await V1Client.open(wsUrl(plaza));
    await publisher.request({ type: 'join', room: 'zip' });
    const page = await (await browser.newContext()).newPage();
    const errors = watchErrors(page);
    try {
      // Any page of the server will do (it serves no files here): the socket is what is tested.
      await page.goto(`${plaza.url}/readyz`);
      const extensions = await page.evaluate(async (url) => {
        const ws = new WebSocket(url, 'plaza.v1');
        const w = window as unknown as { received: unknown[]; socket: WebSocket };
        w.received = [];
        w.socket = ws;
        ws.onmessage = (event) => w.received.push(JSON.parse(event.data as string));
        await new Promise((resolve, reject) => {
          ws.onopen = resolve;
          ws.onerror = reject;
        });
        ws.send(JSON.stringify({ type: 'join', room: 'zip', id: 1 }));
        return ws.extensions;
      }, wsUrl(plaza));
      assert.match(extensions, /permessage-deflate/);
      assert.match(extensions, /server_no_context_takeover/);
      await page.waitForFunction(() => (window as unknown as { received: Array<{ type: string }> }).received.some((e) => e.type === 'joined'));

      const sent = Array.from({ length: 30 }, (_, i) => chat(i));
      for (const data of sent) publisher.send({ type: 'publish', room: 'zip', data });
      const got = await page.waitForFunction(
        (count) => {
          const list = (window as unknown as { received: Array<{ type: string; data: unknown }> }).received.filter((e) => e.type === 'message');
          return list.length >= count ? list.map((e) => e.data) : false;
        },
        sent.length,
        { timeout: 20_000 },
      );
      assert.deepEqual(await got.jsonValue(), sent);
      const onWire = witness.frames.filter((f) => f.opcode === 1 && f.rsv1);
      assert.ok(onWire.length >= sent.length, `the messages went out compressed (${onWire.length} frames with RSV1)`);

      // Chromium compresses what it sends once the extension is on: the server inflates it.
      const own = chat(99);
      await page.evaluate((data) => (window as unknown as { socket: WebSocket }).socket.send(JSON.stringify({ type: 'publish', room: 'zip', data })), own);
      const arrived = await publisher.waitFor((e) => e.type === 'message' && e.data?.user === own.user && e.data?.text === own.text, 10_000);
      assert.deepEqual(arrived.data, own);
      // (The browser's own request for /favicon.ico answers 404 here: no files are served.)
      assert.deepEqual(errors.filter((e) => !e.includes('404 (Not Found)')), []);
    } finally {
      witness.socket.destroy();
      publisher.client.ws.terminate();
      await page.context().close();
    }
  });
});
