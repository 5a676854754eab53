/**
 * Recovery with the client's plaza.v1 mode: every message exactly once and in order across
 * dropped links (a TCP proxy cuts them) and server restarts, with and without --data-dir, and
 * (from a scripted server) messages a server repeats.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { CloseInfo } from '../../src/client/index.js';
import { startPlaza, wsUrl } from '../helpers/plaza.js';
import { closeClients, range, roomsClient, sleep, watch } from '../helpers/rooms-client.js';
import { message, ScriptedServer, send, welcomeFor } from '../helpers/scripted-server.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { V1Client } from '../helpers/v1.js';
import { until } from '../helpers/wait.mjs';

describe('client rooms: recovery', () => {
  after(closeClients);

  it('delivers every message exactly once, in order, across a dropped link', async () => {
    const plaza = await startPlaza({ rateLimit: 0 });
    const proxy = await TcpProxy.start(plaza.port);
    try {
      const reader = roomsClient(proxy.url);
      const seen = watch(reader.join('feed'));
      const closes: CloseInfo[] = [];
      reader.on('close', (info) => closes.push(info));
      const writer = roomsClient(wsUrl(plaza)).join('feed');
      await until(() => seen.joined.length === 1, 3000, 'reader joined');

      for (const n of range(1, 200)) {
        await writer.publish(n);
        if (n === 60 || n === 140) proxy.cut();
        if (n % 20 === 0) await sleep(5);
      }
      await until(() => seen.data.length >= 200, 5000, 'all 200 at the reader');
      await sleep(50);
      assert.deepEqual(seen.data, range(1, 200));
      assert.deepEqual(seen.resets, []);
      assert.ok(closes.length >= 2 && closes.every((c) => c.code === 1006 && c.willReconnect), JSON.stringify(closes));
      assert.ok(seen.joined.length >= 3, 'rejoined after each cut');
    } finally {
      closeClients();
      await proxy.close();
      await plaza.close();
    }
  });

  it('resumes across a server restart with dataDir, and sends publishes queued offline after the rejoin', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'plaza-client-rooms-'));
    let plaza = await startPlaza({ rateLimit: 0, dataDir });
    const port = plaza.port;
    try {
      const reader = roomsClient(wsUrl(plaza));
      const writer = roomsClient(wsUrl(plaza));
      const seen = watch(reader.join('log', { history: 10 }));
      const writerRoom = writer.join('log');
      for (const n of range(1, 3)) await writerRoom.publish(n);
      await until(() => seen.data.length === 3, 3000, 'first three');

      await plaza.close();
      await until(() => writer.status === 'reconnecting' && reader.status === 'reconnecting', 3000, 'both offline');
      const queued = [writerRoom.publish(4), writerRoom.publish(5)];
      plaza = await startPlaza({ rateLimit: 0, dataDir, port });

      assert.deepEqual((await Promise.all(queued)).map((ack) => ack.offset), [4, 5]);
      await until(() => seen.data.length >= 5, 5000, 'caught up');
      await writerRoom.publish(6);
      await until(() => seen.data.length >= 6, 3000, 'live again');
      await sleep(50);
      assert.deepEqual(seen.data, range(1, 6));
      assert.deepEqual(seen.resets, []);
    } finally {
      closeClients();
      await plaza.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("emits 'reset' with epoch_changed after a restart without dataDir, then the recent history", async () => {
    let plaza = await startPlaza({ rateLimit: 0 });
    const port = plaza.port;
    try {
      const reader = roomsClient(wsUrl(plaza));
      const room = reader.join('log', { history: 10 });
      const seen = watch(room);
      const order: string[] = [];
      room.on('reset', () => order.push('reset'));
      room.on('message', (data) => order.push(`message ${String(data)}`));
      await until(() => seen.joined.length === 1, 3000, 'joined');
      const raw = await V1Client.open(wsUrl(plaza));
      await raw.request({ type: 'join', room: 'log' });
      await raw.request({ type: 'publish', room: 'log', data: 'old' });
      await until(() => seen.data.length === 1, 3000, 'old message');
      const oldEpoch = room.position?.epoch;

      // Hold the reader back until the restarted server has news for it.
      reader.close();
      await plaza.close();
      plaza = await startPlaza({ rateLimit: 0, port });
      const other = await V1Client.open(wsUrl(plaza));
      await other.request({ type: 'join', room: 'log' });
      await other.request({ type: 'publish', room: 'log', data: 'new 1' });
      await other.request({ type: 'publish', room: 'log', data: 'new 2' });
      await other.close();
      await raw.close();

      // A second client resumes from the saved position, as a reloaded page would.
      const back = roomsClient(wsUrl(plaza));
      const again = back.join('log', { history: 10, since: { epoch: oldEpoch!, offset: 1 } });
      const seenAgain = watch(again);
      const orderAgain: string[] = [];
      again.on('reset', () => orderAgain.push('reset'));
      again.on('message', (data) => orderAgain.push(`message ${String(data)}`));
      await until(() => seenAgain.joined.length === 1, 3000, 'rejoined');
      assert.deepEqual(seenAgain.resets, ['epoch_changed']);
      assert.deepEqual(orderAgain, ['reset', 'message new 1', 'message new 2']);
      assert.notEqual(again.position?.epoch, oldEpoch);
      assert.deepEqual(order, ['message old']);
    } finally {
      closeClients();
      await plaza.close();
    }
  });

  it("emits 'reset' on a live client whose server restarted without dataDir", async () => {
    let plaza = await startPlaza({ rateLimit: 0 });
    const port = plaza.port;
    try {
      const reader = roomsClient(wsUrl(plaza));
      const seen = watch(reader.join('log', { history: 10 }));
      const writer = roomsClient(wsUrl(plaza)).join('log');
      await writer.publish('before');
      await until(() => seen.data.length === 1, 3000, 'before');
      await plaza.close();
      await until(() => reader.status === 'reconnecting', 3000, 'reconnecting');
      plaza = await startPlaza({ rateLimit: 0, port });
      await until(() => seen.joined.length === 2, 5000, 'rejoined');
      assert.deepEqual(seen.resets, ['epoch_changed']);
      await writer.publish('after');
      await until(() => seen.data.includes('after'), 3000, 'after');
      assert.equal(seen.data.filter((d) => d === 'after').length, 1);
      assert.equal(seen.data[0], 'before');
    } finally {
      closeClients();
      await plaza.close();
    }
  });

  it('rejoins from the last delivered position and drops messages the server repeats', async () => {
    let connections = 0;
    const server = await ScriptedServer.start((request, socket) => {
      if (request.type === 'hello') send(socket, welcomeFor(request));
      if (request.type !== 'join') return;
      connections++;
      if (connections === 1) {
        send(socket, { type: 'joined', id: request.id, room: 'r', epoch: 'E1', offset: 2, messages: [message('r', 1), message('r', 2)] });
        // A repeat of 2 (as after a re-sent join), then news, then a repeat again.
        for (const offset of [2, 3, 1, 4]) send(socket, message('r', offset));
        setTimeout(() => socket.terminate(), 50);
      } else {
        // The rejoin resumes after 4; the server answers with 3..5, of which only 5 is news.
        send(socket, { type: 'joined', id: request.id, room: 'r', epoch: 'E1', offset: 5, recovered: true, messages: [3, 4, 5].map((n) => message('r', n)) });
        send(socket, message('r', 6));
      }
    });
    try {
      const client = roomsClient(server.url);
      const seen = watch(client.join('r', { history: 2, presence: true }));
      await until(() => seen.data.length >= 6, 3000, 'six messages');
      await sleep(50);
      assert.deepEqual(seen.data, ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
      const joins = server.requests.filter((r) => r.type === 'join');
      assert.equal(joins.length, 2);
      assert.deepEqual(joins[0], { type: 'join', id: joins[0]!.id, room: 'r', history: 2, presence: true });
      assert.deepEqual(joins[1], { type: 'join', id: joins[1]!.id, room: 'r', since: { epoch: 'E1', offset: 4 }, history: 2, presence: true });
      // Every connection starts with hello, then the join, before anything else.
      const hellos = server.requests.map((r, i) => [r.type, i]).filter(([type]) => type === 'hello');
      assert.equal(hellos.length, 2);
      assert.equal(server.requests[0]!.type, 'hello');
    } finally {
      closeClients();
      await server.close();
    }
  });
});
