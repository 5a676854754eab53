/**
 * Webhooks through the real path: Plaza's own client joins, publishes and leaves; a real
 * receiver (node:http on port 0) checks each signature the way docs/server.md tells receivers
 * to, and fails, stalls, dies and recovers on cue. In a cluster, two nodes on the suite's Redis.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../src/server/config.js';
import { createPlaza, type Plaza, type PlazaConfig } from '../src/server/plaza.js';
import { signWebhook, verifyWebhook } from '../src/server/webhooks/signature.js';
import { REDIS_URL, skipWithoutRedis } from './helpers/cluster.js';
import { assertHealthy, connect, wsUrl } from './helpers/plaza.js';
import { joined, listening, messages, roomsClient } from './helpers/library.js';
import { until } from './helpers/wait.mjs';
import { metric } from './helpers/metrics.mjs';

const SECRET = 'webhook-test-secret-0123456789abcdef0123';

const cleanup: Array<() => unknown> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

interface WebhookEvent {
  id: string;
  type: string;
  room: string;
  time: number;
  node: string;
  member?: { session: string; name: string; user?: string };
  offset?: number;
  epoch?: string;
  from?: { session: string; name: string } | null;
  data?: unknown;
  encoding?: string;
}

/** `half`: the 200 status line and part of the body, then nothing more (the socket stays open). */
type Mode = 'ok' | 'fail' | 'stall' | 'half';

/** A webhook receiver: verifies like the docs say, answers as told, keeps what it accepted. */
class Receiver {
  /** Events of the POSTs it answered 2xx, in arrival order. */
  readonly accepted: WebhookEvent[] = [];
  /** Every POST that reached it, answered or not. */
  posts = 0;
  /** When each POST arrived (ms). */
  readonly arrivals: number[] = [];
  badSignatures = 0;
  private modes: Mode[] = [];
  private readonly stalled: ServerResponse[] = [];
  private constructor(readonly server: Server) {}

  static async start(): Promise<Receiver> {
    let receiver!: Receiver;
    const server = createServer((req, res) => receiver.handle(req, res));
    receiver = new Receiver(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanup.push(() => receiver.stop());
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}/plaza-events`;
  }

  /** The next POSTs get these answers, then 200 again. */
  answer(...modes: Mode[]): void {
    this.modes.push(...modes);
  }

  events(room?: string): WebhookEvent[] {
    return room === undefined ? this.accepted : this.accepted.filter((event) => event.room === room);
  }

  async stop(): Promise<void> {
    for (const res of this.stalled) res.destroy();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      this.posts++;
      this.arrivals.push(Date.now());
      const body = Buffer.concat(chunks);
      // The recipe from docs/server.md, written out with node:crypto.
      const header = String(req.headers['plaza-signature'] ?? '');
      const t = /(?:^|,)t=(\d+)/.exec(header)?.[1];
      const v1 = /(?:^|,)v1=([0-9a-f]{64})/.exec(header)?.[1];
      const expected = t && createHmac('sha256', SECRET).update(`${t}.${body.toString('utf8')}`).digest();
      const fresh = t !== undefined && Math.abs(Date.now() / 1000 - Number(t)) <= 300;
      if (!expected || !v1 || !fresh || !timingSafeEqual(Buffer.from(v1, 'hex'), expected) || req.headers['content-type'] !== 'application/json') {
        this.badSignatures++;
        res.writeHead(400).end();
        return;
      }
      const mode = this.modes.shift() ?? 'ok';
      if (mode === 'stall') return void this.stalled.push(res);
      if (mode === 'half') {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': 1000 });
        res.write('{"received":');
        return void this.stalled.push(res);
      }
      if (mode === 'fail') return void res.writeHead(500).end('receiver down');
      const { node, events } = JSON.parse(body.toString('utf8')) as { node: string; events: WebhookEvent[] };
      for (const event of events) this.accepted.push({ ...event, node });
      res.writeHead(204).end();
    });
  }
}

async function plazaFor(url: string, config: PlazaConfig = {}): Promise<Plaza> {
  const plaza = await listening({ webhookUrl: url, webhookSecret: SECRET, webhookTimeout: 300, ...config });
  cleanup.push(() => plaza.close());
  return plaza;
}

function client(plaza: Plaza, name: string) {
  const c = roomsClient(wsUrl(plaza), { name });
  cleanup.push(() => c.close());
  return c;
}

const kinds = (events: WebhookEvent[]) => events.map((event) => `${event.type}${event.member ? ` ${event.member.name}` : ''}`);

describe('webhooks', () => {
  it('POSTs signed events about rooms and members, in order per room, each with an id, the time and the node', async () => {
    const receiver = await Receiver.start();
    const plaza = await plazaFor(receiver.url);
    const ada = client(plaza, 'Ada');
    const bob = client(plaza, 'Bob');
    await joined(ada.join('team'));
    await joined(ada.join('other'));
    const bobTeam = bob.join('team');
    await joined(bobTeam);
    bobTeam.leave();
    await until(() => receiver.events('team').length === 4, 5000, 'four team events');
    const adaSession = ada.session;
    ada.close();
    await until(() => receiver.events('team').length === 6 && receiver.events('other').length === 4, 5000, 'the rest');
    assert.deepEqual(kinds(receiver.events('team')), ['room_occupied', 'member_joined Ada', 'member_joined Bob', 'member_left Bob', 'member_left Ada', 'room_vacated']);
    assert.deepEqual(kinds(receiver.events('other')), ['room_occupied', 'member_joined Ada', 'member_left Ada', 'room_vacated']);
    const [first] = receiver.events('team');
    assert.equal(new Set(receiver.accepted.map((event) => event.id)).size, receiver.accepted.length, 'ids are unique');
    assert.ok(Math.abs(first!.time - Date.now()) < 60_000);
    assert.equal(new Set(receiver.accepted.map((event) => event.node)).size, 1);
    assert.equal(receiver.events('team')[1]!.member!.session, adaSession);
    assert.equal(receiver.badSignatures, 0);
    assert.equal(await metric(plaza, 'plaza_webhook_events_delivered_total'), 10);
  });

  it('with message_published, also each message: place, sender and data as plaza.v1 clients get it', async () => {
    const receiver = await Receiver.start();
    const plaza = await plazaFor(receiver.url, { webhookEvents: ['message_published'] });
    const ada = client(plaza, 'Ada');
    const room = ada.join('lobby');
    await joined(room);
    await room.publish({ text: 'hi' });
    const plain = await connect(wsUrl(plaza));
    cleanup.push(() => plain.close());
    await until(() => plaza.connectionCount === 2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    plain.send(Buffer.from([1, 2, 3]));
    await until(() => receiver.events().length === 2, 5000, 'the plain message');
    await plaza.publish('lobby', 'from the app');
    await until(() => receiver.events().length === 3, 5000, 'three messages');
    const [v1, binary, server] = receiver.events();
    assert.deepEqual([v1!.type, v1!.offset, v1!.from?.name, v1!.data], ['message_published', 1, 'Ada', { text: 'hi' }]);
    assert.equal(typeof v1!.epoch, 'string');
    assert.deepEqual([binary!.offset, binary!.data, binary!.encoding, binary!.from?.name], [2, 'AQID', 'base64', 'anonymous']);
    assert.deepEqual([server!.offset, server!.data, server!.from], [3, 'from the app', null]);
    assert.equal(receiver.events().some((event) => event.type === 'member_joined'), false, 'only the events asked for');
  });

  it('retries a receiver that fails, with backoff, and loses nothing once it recovers', async () => {
    const receiver = await Receiver.start();
    receiver.answer('fail', 'fail');
    const plaza = await plazaFor(receiver.url);
    const ada = client(plaza, 'Ada');
    await joined(ada.join('team'));
    await until(() => receiver.events('team').length === 2, 10_000, 'delivery after two failures');
    assert.deepEqual(kinds(receiver.events('team')), ['room_occupied', 'member_joined Ada']);
    assert.equal(receiver.posts, 3);
    // Backoff: the first retry waits at least half of 500 ms, the second at least half of 1 s.
    assert.ok(receiver.arrivals[1]! - receiver.arrivals[0]! >= 250, `first retry after ${receiver.arrivals[1]! - receiver.arrivals[0]!} ms`);
    assert.ok(receiver.arrivals[2]! - receiver.arrivals[1]! >= 500, `second retry after ${receiver.arrivals[2]! - receiver.arrivals[1]!} ms`);
    assert.equal(await metric(plaza, 'plaza_webhook_requests_failed_total'), 2);
    assert.equal(await metric(plaza, 'plaza_webhook_events_dropped_total{reason="failed"}'), 0);
  });

  it('a receiver that stalls times out and is retried, and fan-out never waits for it', async () => {
    const receiver = await Receiver.start();
    receiver.answer('stall', 'stall');
    const plaza = await plazaFor(receiver.url, { webhookEvents: ['room_occupied', 'member_joined', 'message_published'], rateLimit: 0 });
    const ada = client(plaza, 'Ada');
    const bob = client(plaza, 'Bob');
    const adaRoom = ada.join('team');
    const bobRoom = bob.join('team');
    await Promise.all([joined(adaRoom), joined(bobRoom)]);
    const got = messages(bobRoom);
    // While the receiver holds the first POST unanswered, 50 messages go around as usual.
    await Promise.all(Array.from({ length: 50 }, (_, i) => adaRoom.publish(i)));
    await until(() => got.length === 50, 5000, 'fan-out during the stall');
    assert.equal(receiver.accepted.length, 0, 'nothing was accepted yet: the receiver was stalling');
    await until(() => receiver.events('team').length === 53, 10_000, 'every event after the stall');
    assert.deepEqual(kinds(receiver.events('team').slice(0, 3)), ['room_occupied', 'member_joined Ada', 'member_joined Bob']);
    assert.deepEqual(receiver.events('team').slice(3).map((event) => event.data), Array.from({ length: 50 }, (_, i) => i));
    assert.ok(await metric(plaza, 'plaza_webhook_requests_failed_total') >= 2);
  });

  it('a receiver that sends 200 and never finishes the body times out like a stall, and delivery resumes once it behaves', async () => {
    const receiver = await Receiver.start();
    // As many half answers as POSTs may be on their way at once (WEBHOOK_CONCURRENCY in bounds.ts):
    // if any of them kept its socket, no later POST would get one.
    receiver.answer(...Array.from({ length: 8 }, () => 'half' as const));
    const plaza = await plazaFor(receiver.url, { webhookRetries: 3 });
    const ada = client(plaza, 'Ada');
    const rooms = Array.from({ length: 8 }, (_, i) => `half-${i}`);
    await Promise.all(rooms.map((room) => joined(ada.join(room))));
    await until(() => receiver.posts >= 8, 5000, 'the eight half-answered POSTs');
    // Not delivered, so retried: every event reaches the receiver once it answers in full.
    for (const room of rooms) {
      await until(() => receiver.events(room).length === 2, 10_000, `the events of ${room}, retried`);
      assert.deepEqual(kinds(receiver.events(room)), ['room_occupied', 'member_joined Ada']);
    }
    // And later events go out on sockets of their own.
    await joined(ada.join('after'));
    await until(() => receiver.events('after').length === 2, 5000, 'events after the receiver recovered');
    assert.ok(await metric(plaza, 'plaza_webhook_requests_failed_total') >= 8);
    assert.equal(await metric(plaza, 'plaza_webhook_events_dropped_total{reason="failed"}'), 0);
  });

  it('drops and counts what a dead receiver cannot take: the queue stays within --webhook-max-queue, retries stop', async () => {
    const receiver = await Receiver.start();
    const url = receiver.url;
    await receiver.stop();
    const plaza = await plazaFor(url, { webhookMaxQueue: 2048, webhookRetries: 1 });
    const ada = client(plaza, 'Ada');
    await Promise.all(Array.from({ length: 40 }, (_, i) => joined(ada.join(`room-${i}`))));
    assert.ok((await metric(plaza, 'plaza_webhook_queue_bytes')) <= 2048);
    assert.ok((await metric(plaza, 'plaza_webhook_events_dropped_total{reason="queue_full"}')) > 0);
    // Events whose retries were spent are dropped and counted.
    await until(async () => (await metric(plaza, 'plaza_webhook_events_dropped_total{reason="failed"}')) > 0, 10_000, 'events dropped after their retries', 100);
    await assertHealthy(plaza);
  });

  it('close() waits for what is queued, the leaves of the clients it closes included', async () => {
    const receiver = await Receiver.start();
    const plaza = createPlaza({ port: 0, host: '127.0.0.1', logLevel: 'silent', webhookUrl: receiver.url, webhookSecret: SECRET, shutdownTimeout: 2000 });
    await plaza.listen();
    const ada = await connect(wsUrl(plaza));
    await until(() => receiver.events().length === 2, 5000, 'the plain client in the lobby');
    await plaza.close();
    await ada.closed;
    assert.deepEqual(kinds(receiver.events('lobby')), ['room_occupied', 'member_joined anonymous', 'member_left anonymous', 'room_vacated']);
  });

  it('close() gives up on a receiver that never answers: bounded by shutdownTimeout', async () => {
    const receiver = await Receiver.start();
    receiver.answer(...Array<Mode>(20).fill('stall'));
    const plaza = createPlaza({ port: 0, host: '127.0.0.1', logLevel: 'silent', webhookUrl: receiver.url, webhookSecret: SECRET, webhookTimeout: 60_000, shutdownTimeout: 300 });
    await plaza.listen();
    const ada = await connect(wsUrl(plaza));
    await until(() => receiver.posts === 1, 5000, 'the first POST, which stalls');
    await plaza.close();
    await ada.closed;
    assert.equal(plaza.state, 'closed');
    assert.equal(receiver.accepted.length, 0);
  });

  it('is refused at start without a secret of 32+ characters, with a URL that is not http(s), or an unknown event', () => {
    assert.throws(() => createPlaza({ webhookUrl: 'http://127.0.0.1:9/x' }), (error: ConfigError) => error.option === 'webhookSecret');
    assert.throws(() => createPlaza({ webhookUrl: 'ftp://x', webhookSecret: SECRET }), (error: ConfigError) => error.option === 'webhookUrl');
    assert.throws(() => createPlaza({ webhookUrl: 'http://x/', webhookSecret: SECRET, webhookEvents: ['room_exploded' as 'room_occupied'] }), (error: ConfigError) => error.option === 'webhookEvents');
  });
});

describe('verifyWebhook', () => {
  const body = '{"node":"n","events":[]}';
  it('accepts the body it signed, within the tolerance, and any of several v1 values (a secret being rotated)', () => {
    const header = signWebhook(SECRET, body);
    assert.equal(verifyWebhook(body, header, SECRET), true);
    assert.equal(verifyWebhook(Buffer.from(body), header, SECRET), true);
    const rotated = `${header},v1=${signWebhook('another-secret-0123456789abcdef0123', body).split('v1=')[1]}`;
    assert.equal(verifyWebhook(body, rotated, 'another-secret-0123456789abcdef0123'), true);
  });

  it('refuses a changed body, another secret, an old or future time, and a malformed header', () => {
    const now = Math.floor(Date.now() / 1000);
    assert.equal(verifyWebhook(`${body} `, signWebhook(SECRET, body), SECRET), false);
    assert.equal(verifyWebhook(body, signWebhook(SECRET, body), `${SECRET}x`), false);
    assert.equal(verifyWebhook(body, signWebhook(SECRET, body, now - 301), SECRET), false);
    assert.equal(verifyWebhook(body, signWebhook(SECRET, body, now + 301), SECRET), false);
    assert.equal(verifyWebhook(body, signWebhook(SECRET, body, now - 1000), SECRET, { toleranceSeconds: 2000 }), true);
    for (const header of [undefined, '', 't=1', `v1=${'0'.repeat(64)}`, 'garbage', `t=${now},v1=zz`]) assert.equal(verifyWebhook(body, header, SECRET), false, String(header));
  });
});

describe('webhooks in a cluster', { skip: skipWithoutRedis() }, () => {
  it('each node tells of its own members; occupied and vacated are per node; a message is told once, by the node it was published through', async () => {
    const receiver = await Receiver.start();
    const room = `hook-${randomBytes(4).toString('hex')}`;
    const nodes = await Promise.all([0, 1].map(() => plazaFor(receiver.url, { redis: REDIS_URL, webhookEvents: ['room_occupied', 'room_vacated', 'member_joined', 'member_left', 'message_published'] })));
    // A node starts before Redis answers it (and serves as an island meanwhile): wait until both are in.
    for (const node of nodes) {
      const deadline = Date.now() + 5000;
      while ((await fetch(`${node.url}/readyz`)).status !== 200 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const ada = client(nodes[0]!, 'Ada');
    const bob = client(nodes[1]!, 'Bob');
    const adaRoom = ada.join(room);
    const bobRoom = bob.join(room);
    await Promise.all([joined(adaRoom), joined(bobRoom)]);
    const bobGot = messages(bobRoom);
    const adaGot = messages(adaRoom);
    await adaRoom.publish('across');
    await until(() => bobGot.length === 1, 5000, 'the message on the other node');
    // plaza.publish() on one node reaches the members of every node, like the HTTP API.
    await nodes[1]!.publish(room, 'from the app');
    await until(() => adaGot.length === 2, 5000, 'the server\'s message on the other node');
    assert.deepEqual(adaGot.map((m) => m.data), ['across', 'from the app']);
    await until(() => receiver.events(room).length === 6, 5000, 'six events');
    const byNode = new Map<string, string[]>();
    for (const event of receiver.events(room)) byNode.set(event.node, [...(byNode.get(event.node) ?? []), `${event.type}${event.member ? ` ${event.member.name}` : ''}`]);
    const lists = [...byNode.values()].sort((a, b) => b.length - a.length);
    assert.deepEqual(lists, [['room_occupied', 'member_joined Ada', 'message_published'], ['room_occupied', 'member_joined Bob', 'message_published']]);
  });
});
