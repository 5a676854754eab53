/**
 * Joining with the client's plaza.v1 mode (`rooms: true`) against a real Plaza on port 0: the
 * welcome and session, the history a late joiner asks for, what plain clients send, the options
 * that do not mix, and frames that are not envelopes (from a scripted server).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { connect, type Welcome } from '../../src/client/index.js';
import type { Plaza } from '../../src/server/plaza.js';
import { startPlaza, wsUrl } from '../helpers/plaza.js';
import { closeClients, range, roomsClient, watch } from '../helpers/rooms-client.js';
import { message, ScriptedServer, send, welcomeFor } from '../helpers/scripted-server.js';
import { until } from '../helpers/wait.mjs';

describe('client rooms: joining', () => {
  after(closeClients);

  describe('with a running Plaza', () => {
    let plaza: Plaza;
    let url: string;

    const setup = async () => {
      plaza = await startPlaza({ rateLimit: 0 });
      url = wsUrl(plaza);
    };
    const teardown = async () => {
      closeClients();
      await plaza.close();
    };

    it('says hello with its name and exposes the session from the welcome', async () => {
      await setup();
      try {
        const ada = roomsClient(url, { name: 'Ada' });
        const welcomes: Welcome[] = [];
        ada.on('welcome', (w) => welcomes.push(w));
        assert.equal(ada.session, undefined);
        await until(() => welcomes.length === 1, 3000, 'welcome');
        assert.equal(welcomes[0]!.name, 'Ada');
        assert.equal(ada.session, welcomes[0]!.session);
        assert.equal(welcomes[0]!.limits.maxPayload, plaza.options.maxPayload);

        ada.setName('Ada L.');
        await until(() => welcomes.length === 2, 3000, 'second welcome');
        assert.equal(welcomes[1]!.name, 'Ada L.');
        assert.equal(welcomes[1]!.session, welcomes[0]!.session);
      } finally {
        await teardown();
      }
    });

    it('hands binary from a plain client over as base64 with its encoding', async () => {
      await setup();
      try {
        const ada = roomsClient(url);
        const lobby = watch(ada.join(plaza.options.defaultRoom));
        await until(() => lobby.joined.length === 1, 3000, 'joined');
        const plain = new WebSocket(url);
        await new Promise((resolve) => plain.once('open', resolve));
        plain.send('from wscat');
        plain.send(Buffer.from([1, 2, 3]));
        await until(() => lobby.data.length === 2, 3000, 'plain messages');
        plain.close();
        assert.deepEqual(lobby.data, ['from wscat', 'AQID']);
        assert.equal(lobby.metas[0]!.sender.name, 'anonymous');
        assert.equal(lobby.metas[1]!.encoding, 'base64');
      } finally {
        await teardown();
      }
    });

    it('gives a late joiner the recent history it asks for, in order', async () => {
      await setup();
      try {
        const ada = roomsClient(url);
        const room = ada.join('news');
        for (const n of range(1, 5)) await room.publish(n);
        const grace = roomsClient(url);
        const late = watch(grace.join('news', { history: 3 }));
        await until(() => late.joined.length === 1, 3000, 'joined');
        assert.deepEqual(late.data, [3, 4, 5]);
        assert.deepEqual(late.metas.map((m) => m.offset), [3, 4, 5]);
        await room.publish(6);
        await until(() => late.data.length === 4, 3000, 'live message');
        assert.deepEqual(late.data, [3, 4, 5, 6]);
      } finally {
        await teardown();
      }
    });
  });

  describe('options', () => {
    it('throws a TypeError for a mode mix-up, naming what to change', () => {
      assert.throws(() => connect('ws://127.0.0.1:1/', { WebSocket, rooms: true, protocols: 'chat' }), {
        name: 'TypeError',
        message: /leave out options\.protocols/,
      });
      assert.throws(() => connect('ws://127.0.0.1:1/', { WebSocket, name: 'Ada' }), { name: 'TypeError', message: /options\.name needs options\.rooms: true/ });
      assert.throws(() => connect('ws://127.0.0.1:1/', { WebSocket, rooms: 'yes' as never }), { name: 'TypeError', message: /options\.rooms/ });
      assert.throws(() => connect('ws://127.0.0.1:1/', { WebSocket, rooms: true, ackTimeout: -1 }), { name: 'TypeError', message: /options\.ackTimeout/ });
      const plain = connect('ws://127.0.0.1:1/', { WebSocket });
      const rooms = connect('ws://127.0.0.1:1/', { WebSocket, rooms: true });
      try {
        assert.throws(() => plain.join('r'), { name: 'TypeError', message: /join\(\) needs connect\(url, \{ rooms: true \}\)/ });
        assert.throws(() => plain.setName('x'), { name: 'TypeError', message: /rooms: true/ });
        assert.throws(() => rooms.send('x'), { name: 'TypeError', message: /use room\.publish\(\)/ });
        assert.throws(() => rooms.join(7 as never), { name: 'TypeError', message: /room name/ });
      } finally {
        plain.close();
        rooms.close();
      }
    });
  });

  describe('security', () => {
    it('ignores frames that are not plaza.v1 envelopes and keeps working', async () => {
      const server = await ScriptedServer.start((request, socket) => {
        if (request.type === 'hello') send(socket, welcomeFor(request));
        if (request.type !== 'join') return;
        for (const garbage of ['not json', 'null', '7', '"text"', '[]', '{"type":"joined","room":"r"}', '{"type":"message"}', '{"type":"presence","room":"r"}']) {
          send(socket, garbage);
        }
        socket.send(Buffer.from([0, 1, 2]));
        send(socket, { type: 'joined', id: request.id, room: 'r', epoch: 'E', offset: 0, messages: [] });
        // For a room it never joined: not delivered anywhere.
        send(socket, message('elsewhere', 1));
        const hostile = JSON.stringify({ ...message('r', 1), data: { text: '<img src=x onerror=alert(1)>' } });
        send(socket, hostile.replace('"data":{', '"data":{"__proto__":{"polluted":true},'));
      });
      try {
        const client = roomsClient(server.url);
        const seen = watch(client.join('r'));
        await until(() => seen.data.length === 1, 3000, 'the one real message');
        assert.equal((seen.data[0] as { text: string }).text, '<img src=x onerror=alert(1)>');
        assert.equal(({} as { polluted?: boolean }).polluted, undefined);
        assert.equal(client.status, 'open');
      } finally {
        closeClients();
        await server.close();
      }
    });
  });
});
