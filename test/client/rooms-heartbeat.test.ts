/**
 * The client's watchdog in plaza.v1 mode against a real Plaza on port 0: a link that goes silent
 * (a TCP proxy freezes it) is given up and rejoined; no beats, no watchdog.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { CloseInfo, Welcome } from '../../src/client/index.js';
import { eventually, startPlaza, wsUrl } from '../helpers/plaza.js';
import { closeClients, roomsClient, sleep, watch } from '../helpers/rooms-client.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

describe('client rooms: heartbeat', () => {
  after(closeClients);

  it('reconnects when no frame arrives for 2.5 heartbeats', async () => {
    const plaza = await startPlaza({ rateLimit: 0, heartbeatMs: 100 });
    const proxy = await TcpProxy.start(plaza.port);
    try {
      const client = roomsClient(proxy.url);
      const welcomes: Welcome[] = [];
      const closes: CloseInfo[] = [];
      client.on('welcome', (w) => welcomes.push(w));
      client.on('close', (info) => closes.push(info));
      const seen = watch(client.join('r'));
      await eventually(() => welcomes.length === 1 && seen.joined.length === 1, 3000, 'welcome');
      assert.equal(welcomes[0]!.heartbeat, 100);
      // Beats keep a quiet link alive.
      await sleep(400);
      assert.deepEqual(closes, []);

      proxy.freeze();
      const frozenAt = Date.now();
      await eventually(() => closes.length === 1, 3000, 'the watchdog');
      const after = Date.now() - frozenAt;
      assert.deepEqual(closes[0], { code: 1006, reason: 'heartbeat timeout', willReconnect: true });
      assert.ok(after >= 150 && after < 1000, `closed ${after} ms after the freeze`);
      await eventually(() => welcomes.length === 2 && seen.joined.length === 2, 3000, 'reconnected and rejoined');
      assert.notEqual(welcomes[1]!.session, welcomes[0]!.session);
      assert.equal(client.status, 'open');
    } finally {
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
      await eventually(() => seen.joined.length === 1, 3000, 'joined');
      await sleep(300);
      assert.deepEqual(closes, []);
    } finally {
      closeClients();
      await plaza.close();
    }
  });
});
