/**
 * The client's plaza.v1 mode (`rooms: true`, src/client/v1.ts and room.ts) in Node against a
 * real Plaza on port 0: rooms, acks and their rejection codes, presence, history, recovery
 * across dropped links and restarts, and the heartbeat watchdog. A TCP proxy written here cuts
 * or freezes links; a scripted plaza.v1 server plays what a real one cannot be made to do.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { WebSocket, WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import {
  connect,
  PlazaError,
  type ClientOptions,
  type CloseInfo,
  type Member,
  type MessageMeta,
  type PlazaClient,
  type Position,
  type Room,
  type Welcome,
} from '../src/client/index.js';
import { createRoom, type RoomHost } from '../src/client/room.js';
import type { Joined, RoomMessage } from '../src/shared/protocol.js';
import { signToken } from '../src/server/access/tokens.js';
import type { Plaza } from '../src/server/plaza.js';
import { eventually, startPlaza, wsUrl } from './helpers/plaza.js';
import { V1Client } from './helpers/v1.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

const clients = new Set<PlazaClient>();

/** A rooms client with `ws` and fast backoff; closed by closeClients(). */
function roomsClient(url: string, options: ClientOptions = {}): PlazaClient {
  const client = connect(url, { WebSocket, rooms: true, minDelay: 10, maxDelay: 50, ...options });
  clients.add(client);
  return client;
}

function closeClients(): void {
  for (const client of clients) client.close();
  clients.clear();
}

/** Everything a room emitted. */
interface Seen {
  data: unknown[];
  metas: MessageMeta[];
  resets: string[];
  joined: Position[];
  presence: Array<{ names: string[]; count: number }>;
  errors: PlazaError[];
}

function watch(room: Room): Seen {
  const seen: Seen = { data: [], metas: [], resets: [], joined: [], presence: [], errors: [] };
  room.on('message', (data, meta) => {
    seen.data.push(data);
    seen.metas.push(meta);
  });
  room.on('reset', ({ reason }) => seen.resets.push(reason));
  room.on('joined', (position) => seen.joined.push(position));
  room.on('presence', (members, count) => seen.presence.push({ names: members.map((m) => m.name).sort(), count }));
  room.on('error', (error) => seen.errors.push(error));
  return seen;
}

/** Resolves with the code of the PlazaError `promise` rejects with. */
async function rejection(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof PlazaError, `expected a PlazaError, got ${String(error)}`);
    assert.equal(typeof error.message, 'string');
    return error.code;
  }
  throw new Error('expected the promise to reject');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/**
 * A plaza.v1 server whose every reply the test scripts: for what a real Plaza never does
 * (repeat messages, stay silent, send garbage).
 */
class ScriptedServer {
  readonly requests: Array<Record<string, any>> = [];
  readonly sockets: ServerSocket[] = [];
  private constructor(
    private readonly wss: WebSocketServer,
    private readonly script: (request: Record<string, any>, socket: ServerSocket) => void,
  ) {}

  static async start(script: (request: Record<string, any>, socket: ServerSocket) => void): Promise<ScriptedServer> {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => 'plaza.v1' });
    await new Promise((resolve) => wss.once('listening', resolve));
    const server = new ScriptedServer(wss, script);
    wss.on('connection', (socket) => {
      server.sockets.push(socket);
      socket.on('message', (data) => {
        const request = JSON.parse(String(data)) as Record<string, any>;
        server.requests.push(request);
        server.script(request, socket);
      });
    });
    return server;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as { port: number }).port}/`;
  }

  async close(): Promise<void> {
    for (const socket of this.wss.clients) socket.terminate();
    await new Promise((resolve) => this.wss.close(resolve));
  }
}

const send = (socket: ServerSocket, envelope: unknown) => socket.send(typeof envelope == 'string' ? envelope : JSON.stringify(envelope));

function welcomeFor(request: Record<string, any>, heartbeat = 0): Welcome {
  return {
    type: 'welcome',
    id: request.id,
    session: `s${request.id}`,
    name: request.name ?? 'anonymous',
    heartbeat,
    limits: { maxPayload: 65536, maxRoomsPerConnection: 100, maxRoomName: 128, historySize: 100, rate: { perSecond: 0, burst: 0 } },
  };
}

function message(room: string, offset: number, epoch = 'E1'): Record<string, unknown> {
  return { type: 'message', room, id: `${epoch}:${offset}`, offset, epoch, time: 1_700_000_000_000 + offset, from: { session: 'peer', name: 'Peer' }, data: `m${offset}` };
}

describe('client rooms (plaza.v1)', () => {
  after(closeClients);

  describe('Room bookkeeping (no sockets)', () => {
    const host: RoomHost = {
      publish: () => Promise.reject(new Error('not in these tests')),
      leave: () => {},
    };
    const joined = (fields: Partial<Joined>): Joined => ({ type: 'joined', room: 'r', epoch: 'E1', offset: 0, messages: [], ...fields });
    const live = (offset: number, epoch = 'E1') => message('r', offset, epoch) as unknown as RoomMessage;

    it('delivers in order, drops what it already delivered, and tracks the position', () => {
      const state = createRoom('r', { history: 5 }, host);
      const seen = watch(state.room);
      assert.deepEqual(state.request(), { type: 'join', room: 'r', history: 5 });
      state.joined(joined({ offset: 2, messages: [live(1), live(2)] }));
      for (const offset of [2, 1, 3, 3, 4]) state.message(live(offset));
      assert.deepEqual(seen.data, ['m1', 'm2', 'm3', 'm4']);
      assert.deepEqual(state.room.position, { epoch: 'E1', offset: 4 });
      assert.deepEqual(state.request(), { type: 'join', room: 'r', since: { epoch: 'E1', offset: 4 }, history: 5 });
      // A resumed join repeating 3 and 4 adds only 5.
      state.joined(joined({ offset: 5, recovered: true, messages: [live(3), live(4), live(5)] }));
      assert.deepEqual(seen.data, ['m1', 'm2', 'm3', 'm4', 'm5']);
      assert.deepEqual(seen.joined, [{ epoch: 'E1', offset: 2 }, { epoch: 'E1', offset: 5 }]);
      // The ack of our own excludeSelf message is stepped over once everything before it came.
      state.skip({ epoch: 'E1', offset: 7 });
      assert.deepEqual(state.room.position, { epoch: 'E1', offset: 5 }, 'an ack is not a delivery: 6 has not come yet');
      state.message(live(6));
      assert.deepEqual(state.room.position, { epoch: 'E1', offset: 7 });
      state.message(live(7));
      assert.deepEqual(seen.data, ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'], 'our own excluded message is never shown');
      state.skip({ epoch: 'E0', offset: 99 });
      assert.deepEqual(state.room.position, { epoch: 'E1', offset: 7 });
    });

    it('never lets an ack move the position past messages still on their way (cluster: acks overtake channel messages)', () => {
      const state = createRoom('r', {}, host);
      const seen = watch(state.room);
      state.joined(joined({ offset: 0 }));
      // Acks of plain publishes are not given to the room at all; only excludeSelf ones are.
      state.message(live(1));
      state.skip({ epoch: 'E1', offset: 3 });
      state.message(live(2));
      state.message(live(4));
      assert.deepEqual(seen.data, ['m1', 'm2', 'm4']);
      assert.deepEqual(state.room.position, { epoch: 'E1', offset: 4 });
      // A resume that repeats our excluded message never shows it.
      state.joined(joined({ offset: 4, recovered: true, messages: [] }));
      assert.deepEqual(seen.data, ['m1', 'm2', 'm4']);
    });

    it("emits 'reset' before the history of a failed resume, and starts over in the new epoch", () => {
      const state = createRoom('r', { since: { epoch: 'E1', offset: 40 } }, host);
      const order: string[] = [];
      state.room.on('reset', ({ reason }) => order.push(`reset ${reason}`));
      state.room.on('message', (data) => order.push(String(data)));
      state.joined(joined({ epoch: 'E2', offset: 2, recovered: false, reason: 'epoch_changed', messages: [live(1, 'E2'), live(2, 'E2')] }));
      assert.deepEqual(order, ['reset epoch_changed', 'm1', 'm2']);
      assert.deepEqual(state.room.position, { epoch: 'E2', offset: 2 });
    });

    it('keeps members from the snapshot and the deltas, one entry per session', () => {
      const state = createRoom('r', { presence: true }, host);
      const ada = { session: 'a', name: 'Ada' };
      const grace = { session: 'g', name: 'Grace' };
      state.joined(joined({ members: [ada], memberCount: 1 }));
      state.presence({ type: 'presence', room: 'r', joined: [grace], memberCount: 2 });
      state.presence({ type: 'presence', room: 'r', joined: [grace], memberCount: 2 });
      const before = state.room.members;
      assert.deepEqual(before, [ada, grace]);
      state.presence({ type: 'presence', room: 'r', left: [ada], memberCount: 1 });
      assert.deepEqual(state.room.members, [grace]);
      assert.equal(state.room.memberCount, 1);
      assert.deepEqual(before, [ada, grace], 'a list handed out is never changed afterwards');
    });
  });

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
        await eventually(() => welcomes.length === 1, 3000, 'welcome');
        assert.equal(welcomes[0]!.name, 'Ada');
        assert.equal(ada.session, welcomes[0]!.session);
        assert.equal(welcomes[0]!.limits.maxPayload, plaza.options.maxPayload);

        ada.setName('Ada L.');
        await eventually(() => welcomes.length === 2, 3000, 'second welcome');
        assert.equal(welcomes[1]!.name, 'Ada L.');
        assert.equal(welcomes[1]!.session, welcomes[0]!.session);
      } finally {
        await teardown();
      }
    });

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
        await eventually(() => adaSeen.joined.length === 1 && graceSeen.joined.length === 1, 3000, 'both joined');

        const ack = await adaRoom.publish({ text: 'hello' });
        assert.equal(ack.room, 'team');
        assert.equal(ack.offset, 1);
        assert.equal(typeof ack.epoch, 'string');
        await eventually(() => graceSeen.data.length === 1, 3000, 'message at grace');
        assert.deepEqual(graceSeen.data, [{ text: 'hello' }]);
        const meta = graceSeen.metas[0]!;
        assert.deepEqual(meta.sender, { session: ada.session, name: 'Ada' });
        assert.equal(meta.offset, 1);
        assert.equal(meta.epoch, ack.epoch);
        assert.equal(meta.id, `${ack.epoch}:1`);
        assert.ok(Math.abs(meta.time - Date.now()) < 5000);
        assert.equal(meta.encoding, undefined);
        // The sender gets its own message too, unless it asks otherwise.
        await eventually(() => adaSeen.data.length === 1, 3000, 'echo at ada');
        await adaRoom.publish('quiet', { excludeSelf: true });
        await eventually(() => graceSeen.data.length === 2, 3000, 'second message');
        assert.deepEqual(adaSeen.data, [{ text: 'hello' }]);
        assert.deepEqual(adaRoom.position, { epoch: ack.epoch, offset: 2 }, 'the ack of an excluded message still moves the position');
      } finally {
        await teardown();
      }
    });

    it('hands binary from a plain client over as base64 with its encoding', async () => {
      await setup();
      try {
        const ada = roomsClient(url);
        const lobby = watch(ada.join(plaza.options.defaultRoom));
        await eventually(() => lobby.joined.length === 1, 3000, 'joined');
        const plain = new WebSocket(url);
        await new Promise((resolve) => plain.once('open', resolve));
        plain.send('from wscat');
        plain.send(Buffer.from([1, 2, 3]));
        await eventually(() => lobby.data.length === 2, 3000, 'plain messages');
        plain.close();
        assert.deepEqual(lobby.data, ['from wscat', 'AQID']);
        assert.equal(lobby.metas[0]!.sender.name, 'anonymous');
        assert.equal(lobby.metas[1]!.encoding, 'base64');
      } finally {
        await teardown();
      }
    });

    it('keeps the presence list from the snapshot and the deltas', async () => {
      await setup();
      try {
        const ada = roomsClient(url, { name: 'Ada' });
        const room = ada.join('team', { presence: true });
        const seen = watch(room);
        await eventually(() => seen.joined.length === 1, 3000, 'joined');
        assert.deepEqual(seen.presence, [{ names: ['Ada'], count: 1 }]);

        const grace = roomsClient(url, { name: 'Grace' });
        const graceRoom = grace.join('team');
        const graceSeen = watch(graceRoom);
        await eventually(() => room.memberCount === 2 && graceSeen.joined.length === 1, 3000, 'grace in the list');
        assert.deepEqual(room.members.map((m: Member) => m.name).sort(), ['Ada', 'Grace']);
        assert.ok(room.members.some((m) => m.session === grace.session));

        graceRoom.leave();
        graceRoom.leave();
        await eventually(() => room.memberCount === 1, 3000, 'grace gone');
        assert.deepEqual(room.members.map((m) => m.name), ['Ada']);
        assert.equal(graceRoom.active, false);
        assert.deepEqual(seen.presence.at(-1), { names: ['Ada'], count: 1 });
        // Without presence: true there is no list.
        assert.deepEqual(graceRoom.members, []);
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
        await eventually(() => late.joined.length === 1, 3000, 'joined');
        assert.deepEqual(late.data, [3, 4, 5]);
        assert.deepEqual(late.metas.map((m) => m.offset), [3, 4, 5]);
        await room.publish(6);
        await eventually(() => late.data.length === 4, 3000, 'live message');
        assert.deepEqual(late.data, [3, 4, 5, 6]);
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
          await eventually(() => seen.errors.length === 1, 3000, 'join refusal');
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

  describe('recovery', () => {
    it('delivers every message exactly once, in order, across a dropped link', async () => {
      const plaza = await startPlaza({ rateLimit: 0 });
      const proxy = await TcpProxy.start(plaza.port);
      try {
        const reader = roomsClient(proxy.url);
        const seen = watch(reader.join('feed'));
        const closes: CloseInfo[] = [];
        reader.on('close', (info) => closes.push(info));
        const writer = roomsClient(wsUrl(plaza)).join('feed');
        await eventually(() => seen.joined.length === 1, 3000, 'reader joined');

        for (const n of range(1, 200)) {
          await writer.publish(n);
          if (n === 60 || n === 140) proxy.cut();
          if (n % 20 === 0) await sleep(5);
        }
        await eventually(() => seen.data.length >= 200, 5000, 'all 200 at the reader');
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
        await eventually(() => seen.data.length === 3, 3000, 'first three');

        await plaza.close();
        await eventually(() => writer.status === 'reconnecting' && reader.status === 'reconnecting', 3000, 'both offline');
        const queued = [writerRoom.publish(4), writerRoom.publish(5)];
        plaza = await startPlaza({ rateLimit: 0, dataDir, port });

        assert.deepEqual((await Promise.all(queued)).map((ack) => ack.offset), [4, 5]);
        await eventually(() => seen.data.length >= 5, 5000, 'caught up');
        await writerRoom.publish(6);
        await eventually(() => seen.data.length >= 6, 3000, 'live again');
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
        await eventually(() => seen.joined.length === 1, 3000, 'joined');
        const raw = await V1Client.open(wsUrl(plaza));
        await raw.request({ type: 'join', room: 'log' });
        await raw.request({ type: 'publish', room: 'log', data: 'old' });
        await eventually(() => seen.data.length === 1, 3000, 'old message');
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
        await eventually(() => seenAgain.joined.length === 1, 3000, 'rejoined');
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
        await eventually(() => seen.data.length === 1, 3000, 'before');
        await plaza.close();
        await eventually(() => reader.status === 'reconnecting', 3000, 'reconnecting');
        plaza = await startPlaza({ rateLimit: 0, port });
        await eventually(() => seen.joined.length === 2, 5000, 'rejoined');
        assert.deepEqual(seen.resets, ['epoch_changed']);
        await writer.publish('after');
        await eventually(() => seen.data.includes('after'), 3000, 'after');
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
        await eventually(() => seen.data.length >= 6, 3000, 'six messages');
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

    it("rejects a publish whose link drops before the ack with 'disconnected', and never re-sends it", async () => {
      const server = await ScriptedServer.start((request, socket) => {
        if (request.type === 'hello') send(socket, welcomeFor(request));
        if (request.type === 'join') send(socket, { type: 'joined', id: request.id, room: request.room, epoch: 'E', offset: 0, messages: [] });
        if (request.type === 'publish') socket.terminate();
      });
      try {
        const client = roomsClient(server.url);
        const room = client.join('r');
        assert.equal(await rejection(room.publish('lost?')), 'disconnected');
        await eventually(() => server.requests.filter((r) => r.type === 'join').length === 2, 3000, 'the rejoin');
        await sleep(50);
        assert.equal(server.requests.filter((r) => r.type === 'publish').length, 1);
      } finally {
        closeClients();
        await server.close();
      }
    });

    it("rejects with 'timeout' when no ack comes within ackTimeout", async () => {
      const server = await ScriptedServer.start((request, socket) => {
        if (request.type === 'hello') send(socket, welcomeFor(request));
        if (request.type === 'join') send(socket, { type: 'joined', id: request.id, room: request.room, epoch: 'E', offset: 0, messages: [] });
      });
      try {
        const client = roomsClient(server.url, { ackTimeout: 50 });
        const room = client.join('r');
        const started = Date.now();
        assert.equal(await rejection(room.publish('into the void')), 'timeout');
        assert.ok(Date.now() - started < 2000);
        assert.equal(client.status, 'open');
      } finally {
        closeClients();
        await server.close();
      }
    });
  });

  describe('heartbeat', () => {
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
        await eventually(() => seen.data.length === 1, 3000, 'the one real message');
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
