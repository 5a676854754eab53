/**
 * The README's library-less page (README, "Without WebSockets"): its `new EventSource` line, run
 * as written in the system Chromium against a real Plaza, subscribes, and after the server ends
 * the stream the browser's own reconnect sends Last-Event-ID and gets exactly what it missed.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { launchChromium, ROOT, skipWithoutChromium, watchErrors } from '../helpers/browser.js';
import { startPlaza, wsUrl } from '../helpers/plaza.js';
import { V1Client } from '../helpers/v1.js';

const API_KEY = 'eventsource-test-key-0123456789';
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const section = readme.slice(readme.indexOf('## Without WebSockets'), readme.indexOf('## Operations'));
const snippet = /```js\n([\s\S]*?)```/.exec(section)![1]!;

type Envelope = { type: string; [key: string]: unknown };

describe('a bare EventSource, as the README shows it', { skip: skipWithoutChromium(), timeout: 60_000 }, () => {
  it('subscribes with one line and resumes through Last-Event-ID after the server closes the stream', async () => {
    const plaza = await startPlaza({ apiKey: API_KEY });
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const errors = watchErrors(page);
      // Any page of the origin: the snippet opens /sse relative to it.
      await page.goto(`${plaza.url}/healthz`);
      // The snippet logs each envelope; the test keeps what it logs.
      await page.evaluate(`window.got = []; console.log = (envelope) => window.got.push(envelope); ${snippet}`);
      const got = () => page.evaluate(() => (window as unknown as { got: Envelope[] }).got);
      const until = async (check: (envelopes: Envelope[]) => boolean, what: string) => {
        const deadline = Date.now() + 15_000;
        while (!check(await got())) {
          assert.ok(Date.now() < deadline, `timed out waiting for ${what}: ${JSON.stringify(await got())}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      };
      await until((e) => e.some((x) => x.type === 'joined'), 'the joined of ?room=lobby');
      const writer = await V1Client.open(wsUrl(plaza));
      await writer.request({ type: 'join', room: 'lobby' });
      await writer.request({ type: 'publish', room: 'lobby', data: 'one' });
      await until((e) => e.some((x) => x.type === 'message' && x.data === 'one'), 'the first message');
      const session = (await got()).find((x) => x.type === 'welcome')!.session as string;
      const disconnect = await fetch(`${plaza.url}/api/disconnect`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ session, reason: 'moved' }),
      });
      assert.equal(disconnect.status, 200);
      await until((e) => e.some((x) => x.type === 'close'), 'the close event');
      // Published while the page has no stream: the reconnect must bring exactly these.
      await writer.request({ type: 'publish', room: 'lobby', data: 'two' });
      await writer.request({ type: 'publish', room: 'lobby', data: 'three' });
      await until((e) => e.filter((x) => x.type === 'joined').length === 2, 'the joined of the reconnect');
      const resumed = (await got()).filter((x) => x.type === 'joined')[1]!;
      assert.equal(resumed.recovered, true);
      assert.deepEqual((resumed.messages as Envelope[]).map((m) => m.data), ['two', 'three']);
      await writer.request({ type: 'publish', room: 'lobby', data: 'four' });
      await until((e) => e.some((x) => x.type === 'message' && x.data === 'four'), 'a live message after the resume');
      const all = (await got()).filter((x) => x.type === 'message').map((x) => x.data);
      assert.deepEqual(all, ['one', 'four']);
      // The browser's own favicon request is the only 404 (a test server has no icon).
      assert.deepEqual(errors.filter((e) => !/status of 404/.test(e)), []);
      await writer.close();
    } finally {
      await browser.close();
      await plaza.close();
    }
  });
});
