/** The test proxy itself (test/helpers/http-proxy.ts): each upgrade mode does what browsers meet behind such proxies. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { HttpProxy } from '../helpers/http-proxy.js';
import { startPlaza } from '../helpers/plaza.js';
import { SseClient } from '../helpers/sse-client.js';

/** Opens a plaza.v1 WebSocket through the proxy: what happened to it within `ms`. */
function tryWebSocket(url: string, ms = 1500): Promise<{ opened: boolean; status?: number; welcome: boolean }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, 'plaza.v1');
    let opened = false;
    let status: number | undefined;
    const done = (welcome: boolean) => {
      clearTimeout(timer);
      ws.terminate();
      resolve({ opened, ...(status !== undefined && { status }), welcome });
    };
    const timer = setTimeout(() => done(false), ms);
    ws.on('open', () => {
      opened = true;
      ws.send(JSON.stringify({ type: 'hello', id: 1 }));
    });
    ws.on('message', (data) => (String(data).includes('"welcome"') ? done(true) : undefined));
    ws.on('unexpected-response', (_req, res) => {
      status = res.statusCode;
      done(false);
    });
    ws.on('error', () => done(false));
  });
}

describe('HttpProxy (test helper)', () => {
  it('passes, refuses, strips or eats WebSocket upgrades, and always passes SSE', async () => {
    const plaza = await startPlaza({});
    const proxy = await HttpProxy.start({ targets: [plaza.port] });
    try {
      const url = `ws://127.0.0.1:${proxy.port}/`;
      assert.deepEqual(await tryWebSocket(url), { opened: true, welcome: true });
      proxy.upgrades = 'refuse';
      assert.deepEqual(await tryWebSocket(url), { opened: false, status: 407, welcome: false });
      proxy.upgrades = 'strip';
      const stripped = await tryWebSocket(url);
      assert.equal(stripped.opened, false);
      assert.notEqual(stripped.status, 101);
      proxy.upgrades = 'eat';
      assert.deepEqual(await tryWebSocket(url, 800), { opened: true, welcome: false });
      assert.deepEqual(proxy.upgradesSeen, { pass: 1, refuse: 1, strip: 1, eat: 1 });
      const stream = await SseClient.open(`${proxy.origin}/sse?room=lobby`);
      await stream.next((e) => e.type === 'joined');
      assert.equal((await stream.post([{ type: 'publish', id: 1, room: 'lobby', data: 'through' }])).status, 204);
      await stream.next((e) => e.type === 'message' && e.data === 'through');
      stream.close();
    } finally {
      await proxy.close();
      await plaza.close();
    }
  });
});
