/**
 * Publishing with the client's plaza.v1 mode: acks and the message's meta against a real Plaza
 * on port 0, every rejection code a publish can end with, and (from a scripted server) a link
 * that drops before the ack or an ack that never comes.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { CloseInfo, PlazaError } from '../../src/client/index.js';
import { signToken } from '../../src/server/access/tokens.js';
import type { Plaza } from '../../src/server/plaza.js';
import { startPlaza, wsUrl } from '../helpers/plaza.js';
import { listening } from '../helpers/library.js';
import { closeClients, rejection, roomsClient, sleep, watch } from '../helpers/rooms-client.js';
import { ScriptedServer, send, welcomeFor } from '../helpers/scripted-server.js';
import { until } from '../helpers/wait.mjs';

describe('client rooms: publishing', () => {
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

    it('joins, publishes, resolves the ack, and delivers the message with its meta', async () => {
      await setup();
      try {
        const ada = roomsClient(url, { name: 'Ada' });
        const grace = roomsClient(url, { name: 'Grace' });
        const adaRoom = ada.join('team');
        const graceRoom = grace.join('team');
        assert.equal(ada.join('team'), adaRoom, 'joining twice returns the same Room');
        const adaSeen = watch(adaRoom);
        const graceSeen = watch(graceRoom);
        await until(() => adaSeen.joined.length === 1 && graceSeen.joined.length === 1, 3000, 'both joined');

        const ack = await adaRoom.publish({ text: 'hello' });
        assert.equal(ack.room, 'team');
        assert.equal(ack.offset, 1);
        assert.equal(typeof ack.epoch, 'string');
        await until(() => graceSeen.data.length === 1, 3000, 'message at grace');
        assert.deepEqual(graceSeen.data, [{ text: 'hello' }]);
        const meta = graceSeen.metas[0]!;
        assert.deepEqual(meta.sender, { session: ada.session, name: 'Ada' });
        assert.equal(meta.offset, 1);
        assert.equal(meta.epoch, ack.epoch);
        assert.equal(meta.id, `${ack.epoch}:1`);
        assert.ok(Math.abs(meta.time - Date.now()) < 5000);
        assert.equal(meta.encoding, undefined);
        // The sender gets its own message too, unless it asks otherwise.
        await until(() => adaSeen.data.length === 1, 3000, 'echo at ada');
        await adaRoom.publish('quiet', { excludeSelf: true });
        await until(() => graceSeen.data.length === 2, 3000, 'second message');
        assert.deepEqual(adaSeen.data, [{ text: 'hello' }]);
        assert.deepEqual(adaRoom.position, { epoch: ack.epoch, offset: 2 }, 'the ack of an excluded message still moves the position');
      } finally {
        await teardown();
      }
    });

    describe('rejections', () => {
      it("rejects with 'closed' what is pending or queued when the client closes, and after", async () => {
        await setup();
        try {
          const ada = roomsClient(url);
          const room = ada.join('r');
          const queued = room.publish('queued while connecting');
          ada.close();
          assert.equal(await rejection(queued), 'closed');
          assert.equal(await rejection(room.publish('after close')), 'closed');
          assert.equal(room.active, false);
          assert.equal(ada.join('other').active, false);
        } finally {
          await teardown();
        }
      });

      it("rejects with 'not_joined' after leave(), including what was queued", async () => {
        await setup();
        try {
          const ada = roomsClient(url);
          const room = ada.join('r');
          const queued = room.publish('queued');
          room.leave();
          assert.equal(await rejection(queued), 'not_joined');
          assert.equal(await rejection(room.publish('after leave')), 'not_joined');
          // A new join of the same name is a new Room.
          const again = ada.join('r');
          assert.notEqual(again, room);
          assert.equal((await again.publish('back')).offset, 1);
        } finally {
          await teardown();
        }
      });

      it("drops the oldest queued publish past maxQueue with 'queue_full'", async () => {
        await setup();
        try {
          const ada = roomsClient(url, { maxQueue: 2 });
          const room = ada.join('r');
          const first = room.publish(1);
          const rest = [room.publish(2), room.publish(3)];
          assert.equal(await rejection(first), 'queue_full');
          assert.deepEqual((await Promise.all(rest)).map((ack) => ack.offset), [1, 2]);
        } finally {
          await teardown();
        }
      });

      it("bounds the queue in bytes too (maxQueueBytes, 1 MiB by default): the oldest rejected 'queue_full'", async () => {
        // A server that lets the publisher take its own burst back at once.
        plaza = await startPlaza({ rateLimit: 0, maxBuffered: 16 << 20 });
        url = wsUrl(plaza);
        try {
          const ada = roomsClient(url);
          const room = ada.join('r');
          // 30 publishes of about 60 KB wait while connecting: 17 of them fit in 1 MiB.
          const publishes = Array.from({ length: 30 }, (_, i) => room.publish({ i, text: 'x'.repeat(60_000) }));
          const outcomes = await Promise.all(publishes.map((p) => p.then((ack) => ack.offset, (error: PlazaError) => error.code)));
          assert.deepEqual(outcomes, [...Array.from({ length: 13 }, () => 'queue_full'), ...Array.from({ length: 17 }, (_, i) => i + 1)]);
        } finally {
          await teardown();
        }
      });

      it("with ackTimeout 0, keeps at most maxInflightBytes unanswered (1 MiB by default); the rest wait in the bounded queue", async () => {
        // A server whose onPublish hook answers nothing until released: no ack comes meanwhile.
        let release!: () => void;
        const held = new Promise<void>((resolve) => (release = resolve));
        const host = await listening({ rateLimit: 0, maxBuffered: 16 << 20, hookTimeout: 60_000, onPublish: () => held.then(() => undefined) });
        try {
          const ada = roomsClient(wsUrl(host), { ackTimeout: 0 });
          const room = ada.join('r');
          const seen = watch(room);
          await until(() => seen.joined.length === 1, 3000, 'joined');
          const outcomes: Array<number | string | undefined> = Array.from({ length: 60 }, () => undefined);
          // About 60 KB each: 17 fit in flight, 17 more in the queue; the 26 oldest queued are pushed out.
          const publishes = Array.from({ length: 60 }, (_, i) =>
            room.publish({ i, text: 'x'.repeat(60_000) }).then((ack) => (outcomes[i] = ack.offset), (error: PlazaError) => (outcomes[i] = error.code)));
          await until(() => outcomes.filter((o) => o === 'queue_full').length === 26, 3000, 'the queue to overflow');
          await sleep(100);
          assert.deepEqual(outcomes.slice(17, 43), Array.from({ length: 26 }, () => 'queue_full'));
          assert.equal(outcomes.filter((o) => o !== undefined).length, 26, 'nothing else is answered while the hook holds');
          release();
          await Promise.all(publishes);
          assert.deepEqual([...outcomes.slice(0, 17), ...outcomes.slice(43)], Array.from({ length: 34 }, (_, i) => i + 1));
        } finally {
          release();
          closeClients();
          await host.close();
        }
      });

      it("rejects data over the server's maxPayload with 'too_large' and keeps the connection", async () => {
        plaza = await startPlaza({ maxPayload: 1024 });
        url = wsUrl(plaza);
        try {
          const ada = roomsClient(url);
          const room = ada.join('r');
          const closes: CloseInfo[] = [];
          ada.on('close', (info) => closes.push(info));
          await room.publish('small');
          assert.equal(await rejection(room.publish('x'.repeat(2000))), 'too_large');
          assert.equal((await room.publish('still here')).offset, 2);
          assert.deepEqual(closes, []);
        } finally {
          await teardown();
        }
      });

      it("attributes the server's id-less 'rate_limited' to the request it dropped", async () => {
        // Burst 3: hello and join take two, the first publish the third.
        plaza = await startPlaza({ rateLimit: 1, rateBurst: 3 });
        url = wsUrl(plaza);
        try {
          const ada = roomsClient(url);
          const room = ada.join('r');
          const results = await Promise.allSettled([room.publish(1), room.publish(2), room.publish(3)]);
          assert.equal(results[0]!.status, 'fulfilled');
          for (const result of results.slice(1)) {
            assert.equal(result.status, 'rejected');
            assert.equal((result.reason as PlazaError).code, 'rate_limited');
          }
        } finally {
          await teardown();
        }
      });

      it("with auth: 'forbidden' for a room the token may not publish to, and a refused join ends the room", async () => {
        const secret = 'x'.repeat(32);
        plaza = await startPlaza({ authSecret: secret, rateLimit: 0 });
        const token = signToken({ sub: 'ada', name: 'Ada', rooms: ['a', 'b'], publish: ['a'], exp: Math.floor(Date.now() / 1000) + 600 }, secret);
        url = `${wsUrl(plaza)}?token=${token}`;
        try {
          const ada = roomsClient(url);
          assert.equal((await ada.join('a').publish('ok')).offset, 1);
          assert.equal(await rejection(ada.join('b').publish('read only')), 'forbidden');

          const refused = ada.join('c');
          const seen = watch(refused);
          await until(() => seen.errors.length === 1, 3000, 'join refusal');
          assert.equal(seen.errors[0]!.code, 'forbidden');
          assert.equal(refused.active, false);
          assert.equal(await rejection(refused.publish('x')), 'not_joined');
          // The refused room is not rejoined (nor refused again) after a reconnect.
          assert.notEqual(ada.join('c'), refused, 'a new join() is a new attempt');
        } finally {
          await teardown();
        }
      });
    });
  });

  describe('against a scripted server', () => {
    it('sends a publish whose link drops before the ack again after the rejoin, with the same publishId, and resolves once (issue #22)', async () => {
      let publishes = 0;
      const server = await ScriptedServer.start((request, socket) => {
        if (request.type === 'hello') send(socket, welcomeFor(request));
        if (request.type === 'join') send(socket, { type: 'joined', id: request.id, room: request.room, epoch: 'E', offset: 0, messages: [] });
        // The first try is cut before its ack; the second is answered as a server with the id would.
        if (request.type === 'publish' && ++publishes === 1) socket.terminate();
        else if (request.type === 'publish') send(socket, { type: 'ack', id: request.id, room: request.room, offset: 1, epoch: 'E', duplicate: true });
      });
      try {
        const client = roomsClient(server.url);
        const room = client.join('r');
        assert.deepEqual(await room.publish('lost?'), { room: 'r', offset: 1, epoch: 'E', duplicate: true });
        const sent = server.requests.filter((r) => r.type === 'publish');
        assert.equal(sent.length, 2);
        assert.equal(typeof sent[0]!.publishId, 'string');
        assert.equal(sent[1]!.publishId, sent[0]!.publishId);
      } finally {
        closeClients();
        await server.close();
      }
    });

    it('reconnects when no ack comes within ackTimeout, and sends the publish again', async () => {
      const server = await ScriptedServer.start((request, socket) => {
        if (request.type === 'hello') send(socket, welcomeFor(request));
        if (request.type === 'join') send(socket, { type: 'joined', id: request.id, room: request.room, epoch: 'E', offset: 0, messages: [] });
      });
      try {
        const client = roomsClient(server.url, { ackTimeout: 50 });
        const room = client.join('r');
        void room.publish('into the void').catch(() => undefined);
        await until(() => server.requests.filter((r) => r.type === 'publish').length >= 2, 3000, 'the publish sent again');
        const [first, second] = server.requests.filter((r) => r.type === 'publish');
        assert.equal(second!.publishId, first!.publishId);
      } finally {
        closeClients();
        await server.close();
      }
    });
  });
});
