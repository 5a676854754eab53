/**
 * The client's watchdog in plaza.v1 mode against a real Plaza on port 0: a link that goes silent
 * (a TCP proxy freezes it) is given up and rejoined; no beats, no watchdog.
 */
import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import type { CloseInfo, Welcome } from '../../src/client/index.js';
import { startPlaza, wsUrl } from '../helpers/plaza.js';
import { closeClients, roomsClient, sleep, watch } from '../helpers/rooms-client.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { until } from '../helpers/wait.mjs';

/**
 * `ws` that notes when each frame reached the page, as the client sees it: this listener is
 * added in the constructor, before the client sets `onmessage`, so it runs first for every frame.
 */
function recordingWebSocket(heard: { at: number }) {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      this.on('message', () => {
        heard.at = Date.now();
      });
    }
  };
}

describe('client rooms: heartbeat', () => {
  after(closeClients);

  it('reconnects when no frame arrives for 2.5 heartbeats', async () => {
    const plaza = await startPlaza({ rateLimit: 0, heartbeatMs: 100 });
    const proxy = await TcpProxy.start(plaza.port);
    const lag = monitorEventLoopDelay({ resolution: 10 });
    try {
      const heard = { at: 0 };
      const client = roomsClient(proxy.url, { WebSocket: recordingWebSocket(heard) });
      const welcomes: Welcome[] = [];
      const closes: CloseInfo[] = [];
      /** Per close, the silence before it, read when it happens (the next socket is heard too). */
      const silences: number[] = [];
      client.on('welcome', (w) => welcomes.push(w));
      client.on('close', (info) => {
        closes.push(info);
        silences.push(Date.now() - heard.at);
      });
      const seen = watch(client.join('r'));
      await until(() => welcomes.length === 1 && seen.joined.length === 1, 3000, 'welcome');
      assert.equal(welcomes[0]!.heartbeat, 100);

      // Beats keep a quiet link alive. This process runs the server, the proxy and the client;
      // on a busy machine it may itself stall for longer than the watchdog's slack (2.5 beats of
      // silence allowed, minus the 100 ms between two beats), and then the beats waiting unread
      // cannot count. Only such a stall excuses a close here, and only after 2.5 beats of silence.
      lag.enable();
      await sleep(400);
      lag.disable();
      const stalledMs = lag.max / 1e6;
      for (const silence of silences) {
        assert.ok(stalledMs + 10 >= 150 && silence >= 250, `cut a live link after ${silence} ms of silence, the event loop stalled at most ${stalledMs} ms`);
      }
      await until(() => welcomes.length === closes.length + 1 && seen.joined.length === closes.length + 1, 3000, 'open and joined');

      // Measured from the last frame the client heard (not from the freeze, which may come just
      // after a beat or 100 ms after one): at least 2.5 beats of silence, and then only as much
      // later as this process's event loop ran timers late meanwhile.
      const before = closes.length;
      lag.reset();
      lag.enable();
      proxy.freeze();
      await until(() => closes.length === before + 1, 3000, 'the watchdog');
      lag.disable();
      assert.deepEqual(closes[before], { code: 1006, reason: 'heartbeat timeout', willReconnect: true });
      const silence = silences[before]!;
      const lateMs = Math.ceil(lag.max / 1e6);
      // Slack: the monitor samples every 10 ms, and Date.now() is whole milliseconds at both ends.
      assert.ok(silence >= 250 && silence <= 250 + lateMs + 10 + 5, `closed after ${silence} ms of silence (event loop up to ${lateMs} ms late)`);
      await until(() => welcomes.length === before + 2 && seen.joined.length === before + 2, 3000, 'reconnected and rejoined');
      assert.notEqual(welcomes[before + 1]!.session, welcomes[before]!.session);
      assert.equal(client.status, 'open');
    } finally {
      lag.disable();
      closeClients();
      await proxy.close();
      await plaza.close();
    }
  });

  it('keeps the watchdog off when the server sends no beats (heartbeat 0)', async () => {
    const plaza = await startPlaza({ rateLimit: 0, heartbeatMs: 0 });
    try {
      const client = roomsClient(wsUrl(plaza));
      const closes: CloseInfo[] = [];
      client.on('close', (info) => closes.push(info));
      const seen = watch(client.join('r'));
      await until(() => seen.joined.length === 1, 3000, 'joined');
      await sleep(300);
      assert.deepEqual(closes, []);
    } finally {
      closeClients();
      await plaza.close();
    }
  });
});
