/**
 * The client's plaza.v1 layer (src/client/v1.ts), through connect() with `rooms: true` over a
 * fake WebSocket: the test plays the server, reading each request the client writes and
 * answering it. What is written on each open and in which order, request ids and their
 * replies (an error without an id belongs to the oldest request), acks and every way a publish
 * is rejected, the offline queue, leave, close, and the watchdog the welcome starts.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { connect, PlazaError, type ClientOptions, type PlazaClient, type Room } from '../../src/client/index.js';
import { fakeWebSocket, type FakeSocket } from '../helpers/fake-socket.js';
import { until } from '../helpers/wait.mjs';

const clients = new Set<PlazaClient>();

function start(options: ClientOptions = {}) {
  const { WebSocket, sockets } = fakeWebSocket();
  // WebSocket only: a fake socket dropped before its welcome would otherwise send the next
  // attempt down the ladder to a real event stream (the ladder is tested through the real path).
  const client = connect('ws://plaza.test/', { WebSocket, rooms: true, transports: ['websocket'], minDelay: 1, maxDelay: 1, ...options });
  clients.add(client);
  const socket = (i = sockets.length - 1): FakeSocket => {
    assert.ok(sockets[i], `socket ${i} exists`);
    return sockets[i]!;
  };
  return { client, sockets, socket };
}

/** Plays the server's part: answers the hello on `socket` with a welcome. */
function welcome(socket: FakeSocket, limits: { heartbeat?: number; maxPayload?: number } = {}): void {
  const hello = socket.envelopes.find((e) => e.type === 'hello');
  assert.ok(hello, 'the client said hello');
  socket.receive(
    JSON.stringify({
      type: 'welcome',
      id: hello.id,
      session: `session-${hello.id}`,
      name: hello.name ?? 'anonymous',
      heartbeat: limits.heartbeat ?? 0,
      limits: { maxPayload: limits.maxPayload ?? 65536, maxRoomsPerConnection: 100, maxRoomName: 128, historySize: 100, rate: { perSecond: 0, burst: 0 } },
    }),
  );
}

const reply = (socket: FakeSocket, envelope: Record<string, unknown>) => socket.receive(JSON.stringify(envelope));

/** Answers the join of `room` on `socket`. */
function joined(socket: FakeSocket, room: string, fields: Record<string, unknown> = {}): void {
  const join = socket.envelopes.find((e) => e.type === 'join' && e.room === room);
  assert.ok(join, `the client joined ${room}`);
  reply(socket, { type: 'joined', id: join.id, room, epoch: 'E', offset: 0, messages: [], ...fields });
}

const publishes = (socket: FakeSocket) => socket.envelopes.filter((e) => e.type === 'publish');

/** The code a publish's promise settles with ('ack' when it resolves). */
function outcome(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'ack',
    (error: unknown) => {
      assert.ok(error instanceof PlazaError, String(error));
      return error.code;
    },
  );
}

describe('plaza.v1 client layer', { timeout: 10_000 }, () => {
  afterEach(() => {
    for (const client of clients) client.close();
    clients.clear();
  });

  describe('on every open', () => {
    it('says hello with its name, then joins each room, before any queued publish', () => {
      const { client, socket } = start({ name: 'Ada' });
      const room = client.join('team', { history: 5, presence: true });
      const queued = room.publish({ text: 'early' });
      assert.deepEqual(socket().sent, [], 'nothing is written before the socket opens');
      assert.deepEqual(socket(0).protocols, 'plaza.v1');
      socket().open();
      assert.deepEqual(
        socket().envelopes.map(({ id, publishId, ...rest }) => [typeof id, typeof publishId, rest]),
        [
          ['number', 'undefined', { type: 'hello', name: 'Ada' }],
          ['number', 'undefined', { type: 'join', room: 'team', history: 5, presence: true }],
          ['number', 'string', { type: 'publish', room: 'team', data: { text: 'early' } }],
        ],
      );
      // The publish kept the id it got when publish() was called; every request has its own.
      assert.equal(new Set(socket().envelopes.map((e) => e.id)).size, 3);
      void outcome(queued);
    });

    it('rejoins after a drop from the last delivered position, with the same name', async () => {
      const { client, sockets, socket } = start();
      client.setName('Grace');
      const room = client.join('r', { history: 2 });
      socket().open();
      welcome(socket());
      joined(socket(), 'r', { epoch: 'E1', offset: 3 });
      reply(socket(), { type: 'message', room: 'r', id: 'E1:4', offset: 4, epoch: 'E1', time: 1, from: { session: 'x', name: 'X' }, data: 'four' });
      assert.deepEqual(room.position, { epoch: 'E1', offset: 4 });
      socket().drop(1006);
      await until(() => sockets.length === 2, 1000, 'the reconnect');
      socket(1).open();
      assert.deepEqual(
        socket(1).envelopes.map(({ id: _id, ...rest }) => rest),
        [{ type: 'hello', name: 'Grace' }, { type: 'join', room: 'r', since: { epoch: 'E1', offset: 4 }, history: 2 }],
      );
    });

    it('takes the session from each welcome, and says hello again on setName()', () => {
      const { client, socket } = start();
      const welcomes: string[] = [];
      client.on('welcome', (w) => welcomes.push(w.session));
      assert.equal(client.session, undefined);
      socket().open();
      welcome(socket());
      assert.equal(client.session, welcomes[0]);
      client.setName('Linus');
      assert.deepEqual(socket().envelopes.at(-1), { type: 'hello', id: socket().envelopes.at(-1)!.id, name: 'Linus' });
    });
  });

  describe('replies', () => {
    it('resolves a publish with its ack, and rejects one with the error carrying its id', async () => {
      const { client, socket } = start();
      socket().open();
      welcome(socket());
      const room = client.join('r');
      joined(socket(), 'r');
      const first = room.publish(1);
      const second = room.publish(2);
      const [p1, p2] = publishes(socket());
      reply(socket(), { type: 'error', id: p2!.id, code: 'forbidden', message: 'read only' });
      reply(socket(), { type: 'ack', id: p1!.id, room: 'r', offset: 7, epoch: 'E' });
      assert.deepEqual(await first, { room: 'r', offset: 7, epoch: 'E' });
      await assert.rejects(second, (error: PlazaError) => error.code === 'forbidden' && error.message === 'read only');
    });

    it('settles an error without an id against the oldest request still waiting', async () => {
      const { client, socket } = start();
      socket().open();
      welcome(socket());
      const room = client.join('r');
      joined(socket(), 'r');
      const dropped = room.publish('over the rate');
      const kept = room.publish('next');
      reply(socket(), { type: 'error', code: 'rate_limited', message: 'slow down' });
      assert.equal(await outcome(dropped), 'rate_limited');
      reply(socket(), { type: 'ack', id: publishes(socket())[1]!.id, room: 'r', offset: 1, epoch: 'E' });
      assert.equal(await outcome(kept), 'ack');
    });

    it("ends a room whose join is refused: its 'error' event, inactive, its publishes not_joined", async () => {
      const { client, socket } = start();
      socket().open();
      welcome(socket());
      const room = client.join('secret');
      const errors: string[] = [];
      room.on('error', (error) => errors.push(error.code));
      const join = socket().envelopes.find((e) => e.type === 'join')!;
      reply(socket(), { type: 'error', id: join.id, code: 'forbidden', message: 'no' });
      assert.deepEqual(errors, ['forbidden']);
      assert.equal(room.active, false);
      assert.equal(await outcome(room.publish('x')), 'not_joined');
      assert.notEqual(client.join('secret'), room, 'a new join() is a new attempt');
    });

    it('ignores frames that are not envelopes, and messages for rooms it is not in', () => {
      const { client, socket } = start();
      socket().open();
      welcome(socket());
      const room = client.join('r');
      joined(socket(), 'r');
      const data: unknown[] = [];
      room.on('message', (d) => data.push(d));
      for (const garbage of ['not json', 'null', '[]', '{"type":"message"}', '{"type":"joined"}']) socket().receive(garbage);
      socket().receive(new ArrayBuffer(4));
      reply(socket(), { type: 'message', room: 'elsewhere', id: 'E:1', offset: 1, epoch: 'E', time: 1, from: { session: 'x', name: 'X' }, data: 'not ours' });
      reply(socket(), { type: 'message', room: 'r', id: 'E:1', offset: 1, epoch: 'E', time: 1, from: { session: 'x', name: 'X' }, data: 'ours' });
      assert.deepEqual(data, ['ours']);
      assert.equal(client.status, 'open');
    });

    it("hands the server's notice to the client's 'notice' event", () => {
      const { client, socket } = start();
      const notices: string[] = [];
      client.on('notice', (text) => notices.push(text));
      socket().open();
      reply(socket(), { type: 'notice', text: 'Be kind.' });
      assert.deepEqual(notices, ['Be kind.']);
    });
  });

  describe('publish', () => {
    it('sends excludeSelf only when asked, and steps the position over its own excluded message', async () => {
      const { client, socket } = start();
      socket().open();
      welcome(socket());
      const room = client.join('r');
      joined(socket(), 'r', { epoch: 'E', offset: 2 });
      const quiet = room.publish('me only elsewhere', { excludeSelf: true });
      void outcome(room.publish('loud'));
      const [excluded, loud] = publishes(socket());
      assert.equal(excluded!.excludeSelf, true);
      assert.equal('excludeSelf' in loud!, false);
      reply(socket(), { type: 'ack', id: excluded!.id, room: 'r', offset: 3, epoch: 'E' });
      await quiet;
      assert.deepEqual(room.position, { epoch: 'E', offset: 3 });
    });

    it("refuses data over the server's maxPayload with too_large, without sending it", async () => {
      const { client, socket } = start();
      socket().open();
      welcome(socket(), { maxPayload: 100 });
      const room = client.join('r');
      joined(socket(), 'r');
      assert.equal(await outcome(room.publish('x'.repeat(100))), 'too_large');
      assert.equal(await outcome(room.publish('é'.repeat(40))), 'too_large', 'counted in UTF-8 bytes');
      assert.deepEqual(publishes(socket()), []);
      void outcome(room.publish('x'.repeat(10)));
      assert.equal(publishes(socket()).length, 1);
    });

    it('takes a link with no ack within ackTimeout for dead: reconnects and sends the publish again with the same publishId (issue #22)', async () => {
      const { client, sockets, socket } = start({ ackTimeout: 50 });
      const reasons: string[] = [];
      client.on('close', (info) => reasons.push(info.reason));
      socket().open();
      welcome(socket());
      const room = client.join('r');
      joined(socket(), 'r');
      const silent = outcome(room.publish('into the void'));
      const [first] = publishes(socket(0));
      await until(() => sockets.length === 2, 2000, 'the reconnect');
      assert.equal(reasons[0], 'ack timeout');
      socket(1).open();
      welcome(socket(1));
      joined(socket(1), 'r');
      const [again] = publishes(socket(1));
      assert.equal(again!.publishId, first!.publishId);
      assert.deepEqual(again!.data, 'into the void');
      reply(socket(1), { type: 'ack', id: again!.id, room: 'r', offset: 1, epoch: 'E', duplicate: true });
      assert.equal(await silent, 'ack');
    });

    it('past publishTimeout: one never written rejects with timeout, unsent; one written is withdrawn on the next connection, never re-sent (issue #22)', async () => {
      const { client, sockets, socket } = start({ publishTimeout: 30, minDelay: 200, maxDelay: 200 });
      socket().open();
      welcome(socket());
      const room = client.join('r');
      joined(socket(), 'r', { epoch: 'E' });
      const lost = outcome(room.publish('lost'));
      const landed = room.publish('landed');
      const ids = publishes(socket()).map((e) => e.publishId as string);
      socket().drop(1006);
      const offline = outcome(room.publish('offline'));
      assert.equal(await offline, 'timeout');
      await until(() => sockets.length === 2, 2000, 'the reconnect');
      socket(1).open();
      welcome(socket(1));
      joined(socket(1), 'r', { epoch: 'E' });
      assert.deepEqual(publishes(socket(1)), [], 'nothing is sent again after its deadline');
      const withdraws = socket(1).envelopes.filter((e) => e.type === 'withdraw');
      assert.deepEqual(withdraws.map((e) => [e.room, e.publishId]), [['r', ids[0]], ['r', ids[1]]]);
      reply(socket(1), { type: 'withdrawn', id: withdraws[0]!.id, room: 'r', publishId: ids[0] });
      reply(socket(1), { type: 'ack', id: withdraws[1]!.id, room: 'r', offset: 1, epoch: 'E', duplicate: true });
      assert.equal(await lost, 'timeout');
      assert.deepEqual(await landed, { room: 'r', offset: 1, epoch: 'E', duplicate: true });
    });

    it('past publishTimeout on an open link: the withdraw follows the publish; its own ack, if it comes first, settles it (issue #22)', async () => {
      const { client, socket } = start({ publishTimeout: 30, ackTimeout: 0 });
      socket().open();
      welcome(socket());
      const room = client.join('r');
      joined(socket(), 'r', { epoch: 'E' });
      const late = room.publish('late');
      const slow = outcome(room.publish('slow'));
      await until(() => socket().envelopes.filter((e) => e.type === 'withdraw').length === 2, 2000, 'both withdrawn');
      const [first, second] = publishes(socket());
      const withdraws = socket().envelopes.filter((e) => e.type === 'withdraw');
      reply(socket(), { type: 'ack', id: first!.id, room: 'r', offset: 1, epoch: 'E' });
      reply(socket(), { type: 'error', id: second!.id, code: 'unavailable', message: 'Redis is away' });
      reply(socket(), { type: 'ack', id: withdraws[0]!.id, room: 'r', offset: 1, epoch: 'E', duplicate: true });
      // Redis away: the withdraw is asked again after a backoff, and its answer decides.
      reply(socket(), { type: 'error', id: withdraws[1]!.id, code: 'unavailable', message: 'Redis is away' });
      await until(() => socket().envelopes.filter((e) => e.type === 'withdraw').length === 3, 2000, 'the withdraw asked again');
      reply(socket(), { type: 'withdrawn', id: socket().envelopes.filter((e) => e.type === 'withdraw')[2]!.id, room: 'r', publishId: second!.publishId });
      assert.deepEqual(await late, { room: 'r', offset: 1, epoch: 'E' });
      assert.equal(await slow, 'timeout');
      assert.equal(publishes(socket()).length, 2, 'neither was sent again');
    });

    it('past publishTimeout, a withdraw answered after the room started over cannot say: epoch_changed (issue #22)', async () => {
      const { client, socket } = start({ publishTimeout: 30, ackTimeout: 0 });
      socket().open();
      welcome(socket());
      const room = client.join('r');
      joined(socket(), 'r', { epoch: 'E' });
      const result = outcome(room.publish('x'));
      reply(socket(), { type: 'joined', room: 'r', epoch: 'F', offset: 0, recovered: false, reason: 'epoch_changed', messages: [] });
      await until(() => socket().envelopes.some((e) => e.type === 'withdraw'), 2000, 'the withdraw');
      const withdraw = socket().envelopes.find((e) => e.type === 'withdraw')!;
      reply(socket(), { type: 'withdrawn', id: withdraw.id, room: 'r', publishId: withdraw.publishId });
      assert.equal(await result, 'epoch_changed');
    });

    it('queues publishes while offline, at most maxQueue (the oldest rejected queue_full), and sends them after the rejoin', async () => {
      const { client, sockets, socket } = start({ maxQueue: 2 });
      socket().open();
      welcome(socket());
      const room = client.join('r');
      joined(socket(), 'r');
      socket().drop(1006);
      const results = [1, 2, 3].map((n) => outcome(room.publish(n)));
      assert.equal(await results[0], 'queue_full');
      await until(() => sockets.length === 2, 1000, 'the reconnect');
      socket(1).open();
      assert.deepEqual(socket(1).envelopes.map((e) => (e.type === 'publish' ? e.data : e.type)), ['hello', 'join', 2, 3]);
    });

    it('queues at most maxQueueBytes of publishes; one larger than that alone is refused without pushing others out', async () => {
      const { client, sockets, socket } = start({ maxQueueBytes: 300 });
      socket().open();
      welcome(socket());
      const room = client.join('r');
      joined(socket(), 'r');
      socket().drop(1006);
      // Each frame is about 85 bytes (its publishId included) plus its data: two fit, not three.
      const results = ['a'.repeat(50), 'b'.repeat(50), 'huge'.repeat(100), 'c'.repeat(50)].map((data) => outcome(room.publish(data)));
      assert.equal(await results[2], 'queue_full');
      assert.equal(await results[0], 'queue_full');
      await until(() => sockets.length === 2, 1000, 'the reconnect');
      socket(1).open();
      assert.deepEqual(publishes(socket(1)).map((e) => e.data), ['b'.repeat(50), 'c'.repeat(50)]);
    });

    it('keeps at most maxInflightBytes unanswered; the next publishes go out, in order, as answers come', async () => {
      const { client, socket } = start({ maxInflightBytes: 150, ackTimeout: 0 });
      socket().open();
      welcome(socket());
      const room = client.join('r');
      joined(socket(), 'r');
      const results = ['a', 'b', 'c', 'd'].map((letter) => outcome(room.publish(letter.repeat(50))));
      // About 110 bytes each: the first always goes, the second would pass 150.
      assert.deepEqual(publishes(socket()).map((e) => e.data), ['a'.repeat(50)]);
      for (let i = 0; i < 4; i++) {
        const sent = publishes(socket());
        assert.equal(sent.length, i + 1, 'one more each time an ack comes');
        socket().receive(JSON.stringify({ type: 'ack', id: sent[i]!.id, room: 'r', offset: i + 1, epoch: 'e' }));
      }
      assert.deepEqual(await Promise.all(results), ['ack', 'ack', 'ack', 'ack']);
    });

    it('sends what was written to a link that dropped again after the rejoin, first and in order, with the same publishIds (issue #22)', async () => {
      const { client, sockets, socket } = start();
      socket().open();
      welcome(socket());
      const room = client.join('r');
      joined(socket(), 'r', { epoch: 'E', offset: 0 });
      const results = [room.publish('one'), room.publish('two')];
      reply(socket(), { type: 'ack', id: publishes(socket())[0]!.id, room: 'r', offset: 1, epoch: 'E' });
      const unanswered = room.publish('three');
      const first = publishes(socket(0));
      socket().drop(1006);
      const queued = room.publish('four');
      await until(() => sockets.length === 2, 1000, 'the reconnect');
      socket(1).open();
      assert.deepEqual(socket(1).envelopes.map((e) => (e.type === 'publish' ? e.data : e.type)), ['hello', 'join', 'two', 'three', 'four']);
      const again = publishes(socket(1));
      assert.deepEqual(again.slice(0, 2).map((e) => e.publishId), [first[1]!.publishId, first[2]!.publishId]);
      assert.equal(new Set([...first, ...again].map((e) => e.publishId)).size, 4, 'one id per publish');
      welcome(socket(1));
      joined(socket(1), 'r', { epoch: 'E', offset: 2 });
      reply(socket(1), { type: 'ack', id: again[0]!.id, room: 'r', offset: 2, epoch: 'E', duplicate: true });
      reply(socket(1), { type: 'ack', id: again[1]!.id, room: 'r', offset: 3, epoch: 'E' });
      reply(socket(1), { type: 'ack', id: again[2]!.id, room: 'r', offset: 4, epoch: 'E' });
      assert.deepEqual(await Promise.all([...results, unanswered, queued]), [
        { room: 'r', offset: 1, epoch: 'E' },
        { room: 'r', offset: 2, epoch: 'E', duplicate: true },
        { room: 'r', offset: 3, epoch: 'E' },
        { room: 'r', offset: 4, epoch: 'E' },
      ]);
    });

    it('says mayRepeat when a re-sent publish lands in a room that started over (another epoch) (issue #22)', async () => {
      const { client, sockets, socket } = start();
      socket().open();
      welcome(socket());
      const room = client.join('r');
      joined(socket(), 'r', { epoch: 'OLD', offset: 5 });
      const result = room.publish('maybe twice');
      socket().drop(1006);
      await until(() => sockets.length === 2, 1000, 'the reconnect');
      socket(1).open();
      welcome(socket(1));
      joined(socket(1), 'r', { epoch: 'NEW', offset: 0, recovered: false, reason: 'epoch_changed' });
      reply(socket(1), { type: 'ack', id: publishes(socket(1))[0]!.id, room: 'r', offset: 1, epoch: 'NEW' });
      assert.deepEqual(await result, { room: 'r', offset: 1, epoch: 'NEW', mayRepeat: true });
    });

    it('says mayRepeat when the room was reset between the first try and the ack, even in the same epoch (an island copy)', async () => {
      const { client, sockets, socket } = start();
      socket().open();
      welcome(socket());
      const room = client.join('r');
      joined(socket(), 'r', { epoch: 'C', offset: 5 });
      const result = room.publish('placed on an island, then again');
      socket().drop(1006);
      await until(() => sockets.length === 2, 1000, 'the reconnect');
      socket(1).open();
      welcome(socket(1));
      joined(socket(1), 'r', { epoch: 'C', offset: 6, recovered: false, reason: 'epoch_changed' });
      reply(socket(1), { type: 'ack', id: publishes(socket(1))[0]!.id, room: 'r', offset: 7, epoch: 'C' });
      assert.deepEqual(await result, { room: 'r', offset: 7, epoch: 'C', mayRepeat: true });
      // Without a reset in between, a re-sent publish acked in its epoch is simply placed once.
      const second = room.publish('once');
      socket(1).drop(1006);
      await until(() => sockets.length === 3, 1000, 'the second reconnect');
      socket(2).open();
      welcome(socket(2));
      joined(socket(2), 'r', { epoch: 'C', offset: 7 });
      reply(socket(2), { type: 'ack', id: publishes(socket(2))[0]!.id, room: 'r', offset: 8, epoch: 'C' });
      assert.deepEqual(await second, { room: 'r', offset: 8, epoch: 'C' });
    });

    it('sends again, after a backoff and in order, publishes the cluster answered unavailable (issue #22)', async () => {
      const { client, sockets, socket } = start({ minDelay: 20, maxDelay: 20 });
      socket().open();
      welcome(socket());
      const room = client.join('r');
      joined(socket(), 'r');
      const results = [room.publish('x'), room.publish('y')];
      const [x, y] = publishes(socket());
      reply(socket(), { type: 'error', id: x!.id, code: 'unavailable', message: 'the cluster backplane did not confirm the publish' });
      // The server refuses the room's later ones until x comes again; they go again behind it.
      reply(socket(), { type: 'error', id: y!.id, code: 'unavailable', message: 'an earlier publish of yours to this room could not be taken' });
      const z = room.publish('z');
      await until(() => publishes(socket()).length === 5, 1000, 'the re-sends');
      assert.deepEqual(publishes(socket()).slice(2).map((e) => [e.data, e.publishId]), [['x', x!.publishId], ['y', y!.publishId], ['z', publishes(socket())[4]!.publishId]]);
      assert.equal(sockets.length, 1, 'on the same link');
      for (const [i, e] of publishes(socket()).slice(2).entries()) reply(socket(), { type: 'ack', id: e.id, room: 'r', offset: i + 1, epoch: 'E' });
      assert.deepEqual((await Promise.all([...results, z])).map((ack) => ack.offset), [1, 2, 3]);
    });
  });

  describe('leave and close', () => {
    it("leave() sends leave, rejects the room's queued publishes with not_joined, and a later join is a new Room", async () => {
      const { client, socket } = start();
      const room = client.join('r');
      const queued = outcome(room.publish('queued'));
      room.leave();
      room.leave();
      assert.equal(await queued, 'not_joined');
      assert.equal(room.active, false);
      socket().open();
      assert.deepEqual(socket().envelopes.map((e) => e.type), ['hello'], 'a room left before the open is not joined');
      const again: Room = client.join('r');
      assert.notEqual(again, room);
      assert.equal(again.active, true);
      welcome(socket());
      joined(socket(), 'r');
      again.leave();
      assert.deepEqual(socket().envelopes.at(-1), { type: 'leave', id: socket().envelopes.at(-1)!.id, room: 'r' });
    });

    it("close() rejects what is waiting and what is queued with 'closed', ends every room, and joins nothing after", async () => {
      const { client, socket } = start();
      socket().open();
      welcome(socket());
      const room = client.join('r');
      joined(socket(), 'r');
      const waiting = outcome(room.publish('written'));
      client.close();
      assert.equal(await waiting, 'closed');
      assert.equal(room.active, false);
      assert.equal(await outcome(room.publish('after')), 'closed');
      assert.equal(client.join('other').active, false);
    });
  });

  describe('the watchdog', () => {
    it('gives up a link after 2.5 heartbeats of silence, the interval the welcome announced', (t) => {
      t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
      const { client, socket } = start();
      const closes: string[] = [];
      client.on('close', (info) => closes.push(info.reason));
      socket().open();
      welcome(socket(), { heartbeat: 100 });
      t.mock.timers.tick(200);
      reply(socket(), { type: 'beat' });
      t.mock.timers.tick(249);
      assert.deepEqual(closes, []);
      t.mock.timers.tick(1);
      assert.deepEqual(closes, ['heartbeat timeout']);
    });
  });
});
