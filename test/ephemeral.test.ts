/**
 * Ephemeral publishes (issue #22, item 8) through Plaza's own client (dist/public/plaza.mjs):
 * `room.publish(data, { ephemeral: true })`, its plaza.v1 and HTTP forms. They reach the room's
 * members of the moment and nowhere else: no offset, no history, no journal, never replayed on a
 * resume, never sent again by the client, no publish id; and they still pass the rate limit,
 * token grants and the onPublish hook. In each mode: one server, --data-dir with a SIGKILL
 * restart, and two cluster nodes on Redis, where a following node must not take one for a gap.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { signToken, type TokenClaims } from '../src/server/access/tokens.js';
import { reject } from '../src/server/hooks/types.js';
import { PrivateRedis, REDIS_URL, skipWithoutRedis, spawnPlaza, startNode, stopNode, type Node } from './helpers/cluster.js';
import { untilReady } from './helpers/processes.mjs';
import { listening } from './helpers/library.js';
import { connect, startPlaza, wsUrl } from './helpers/plaza.js';
import { until } from './helpers/wait.mjs';
import { clientPool, type Client } from './helpers/plaza-client.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { V1Client } from './helpers/v1.js';

const KEY = 'ephemeral-test-key';
const pool = clientPool();
const open: Array<{ close(): unknown }> = [];
after(async () => {
  pool.closeAll();
  for (const thing of open.reverse()) await thing.close();
});

/** Joins `name` and resolves once the join was answered, with everything the room emitted recorded. */
async function member(url: string, name: string, options: Client.ClientOptions = {}) {
  const client = await pool.connect(url, options);
  const room = client.join(name);
  const messages: Array<{ data: unknown; offset: number }> = [];
  const ephemerals: Array<{ data: unknown; sender: string; time: number }> = [];
  const resets: string[] = [];
  room.on('message', (data, meta) => messages.push({ data, offset: meta.offset }));
  room.on('ephemeral', (data, meta) => ephemerals.push({ data, sender: meta.sender.name, time: meta.time }));
  room.on('reset', ({ reason }) => resets.push(reason));
  await new Promise<void>((resolve, fail) => {
    room.on('joined', () => resolve());
    room.on('error', fail);
  });
  return { client, room, messages, ephemerals, resets };
}

const fresh = (what: string) => `ephemeral-${what}-${Math.random().toString(36).slice(2, 10)}`;

function api(http: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${http}${path}`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

async function history(http: string, room: string): Promise<unknown[]> {
  const response = await fetch(`${http}/api/rooms/${encodeURIComponent(room)}/history`, { headers: { authorization: `Bearer ${KEY}` } });
  if (response.status === 404) return [];
  return ((await response.json()) as { messages: Array<{ data: unknown }> }).messages.map((m) => m.data);
}

async function rejectionOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'resolved',
    (error: { code: string }) => error.code,
  );
}

describe('ephemeral publishes on one server', () => {
  it('reach the members there now, take no offset, and stay out of history', async () => {
    const plaza = await startPlaza({ apiKey: KEY });
    open.push(plaza);
    const http = `http://127.0.0.1:${plaza.port}`;
    const room = fresh('one');
    const [ada, bob] = [await member(wsUrl(plaza), room, { name: 'Ada' }), await member(wsUrl(plaza), room, { name: 'Bob' })];
    const first = await ada.room.publish('hello');
    const ack = await ada.room.publish({ typing: true }, { ephemeral: true, excludeSelf: true });
    assert.deepEqual(ack, { room, ephemeral: true });
    const second = await ada.room.publish('again');
    assert.equal(second.offset, first.offset + 1, 'the ephemeral publish took no offset');
    await until(() => bob.messages.length === 2, 3000, 'bob has both messages');
    assert.deepEqual(bob.ephemerals.map(({ data, sender }) => ({ data, sender })), [{ data: { typing: true }, sender: 'Ada' }]);
    assert.ok(Math.abs(bob.ephemerals[0]!.time - Date.now()) < 10_000);
    assert.deepEqual(ada.ephemerals, [], 'excludeSelf keeps it from its sender');
    assert.deepEqual(bob.room.position, { epoch: second.epoch, offset: second.offset });
    // Without excludeSelf the sender gets it too.
    await bob.room.publish('seen', { ephemeral: true });
    await until(() => bob.ephemerals.length === 2 && ada.ephemerals.length === 1, 3000, 'both have the second one');
    // A late joiner asking for history, and the HTTP API's history, see only the messages.
    const late = await pool.connect(wsUrl(plaza));
    const lateRoom = late.join(room, { history: 10 });
    const lateSeen: unknown[] = [];
    lateRoom.on('message', (data) => lateSeen.push(data));
    lateRoom.on('ephemeral', (data) => lateSeen.push(data));
    await new Promise<void>((resolve) => lateRoom.on('joined', () => resolve()));
    assert.deepEqual(lateSeen, ['hello', 'again']);
    assert.deepEqual(await history(http, room), ['hello', 'again']);
    const metrics = await (await fetch(`${http}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text();
    assert.match(metrics, /^plaza_ephemeral_published_total 2$/m);
  });

  it('is not replayed on resume: a member away meanwhile recovers the messages only', async () => {
    const plaza = await startPlaza({});
    open.push(plaza);
    const proxy = await TcpProxy.start(plaza.port);
    open.push(proxy);
    const room = fresh('resume');
    const away = await member(proxy.url, room);
    const here = await member(wsUrl(plaza), room);
    await here.room.publish('before');
    await until(() => away.messages.length === 1, 3000, 'the member behind the proxy has the first message');
    const reconnected = new Promise<void>((resolve) => away.room.on('joined', () => resolve()));
    proxy.freeze();
    await here.room.publish('typing…', { ephemeral: true });
    await here.room.publish('while away');
    proxy.cut();
    await reconnected;
    await until(() => away.messages.length === 2, 3000, 'the missed message recovered');
    assert.deepEqual(away.messages.map((m) => m.data), ['before', 'while away']);
    assert.deepEqual(away.ephemerals, [], 'the ephemeral publish was for the members of its moment');
    assert.deepEqual(away.resets, []);
  });

  it('is never queued or sent again by the client: offline it is refused at once, not sent', async () => {
    const plaza = await startPlaza({});
    open.push(plaza);
    const proxy = await TcpProxy.start(plaza.port);
    open.push(proxy);
    const room = fresh('offline');
    const publisher = await member(proxy.url, room, { minDelay: 2000, maxDelay: 2000 });
    const listener = await member(wsUrl(plaza), room);
    const down = new Promise<void>((resolve) => publisher.client.on('close', () => resolve()));
    proxy.cut();
    await down;
    assert.equal(await rejectionOf(publisher.room.publish('typing', { ephemeral: true })), 'queue_full');
    // Written, then the link drops before the answer: rejected, and never sent again.
    const queued = publisher.room.publish('queued message');
    await new Promise<void>((resolve) => publisher.room.on('joined', () => resolve()));
    await queued;
    proxy.muteReplies();
    const written = publisher.room.publish('typing 2', { ephemeral: true });
    await until(() => listener.ephemerals.length === 1, 3000, 'the written one reached the listener');
    proxy.cut();
    assert.equal(await rejectionOf(written), 'disconnected');
    await new Promise<void>((resolve) => publisher.room.on('joined', () => resolve()));
    await publisher.room.publish('after');
    await until(() => listener.messages.length === 2, 3000, 'the listener has the messages');
    assert.deepEqual(listener.ephemerals.map((e) => e.data), ['typing 2'], 'sent once: not re-sent after the reconnect, the offline one never');
  });

  it('never reaches plain clients, who could not tell it from a message', async () => {
    const plaza = await startPlaza({ defaultRoom: 'lobby' });
    open.push(plaza);
    const plain = await connect(wsUrl(plaza));
    open.push(plain);
    const v1 = await member(wsUrl(plaza), 'lobby');
    await v1.room.publish('typing', { ephemeral: true });
    await v1.room.publish('a message');
    await plain.waitFor(1);
    await until(() => v1.ephemerals.length === 1 && v1.messages.length === 1, 3000, 'the v1 member has both');
    assert.deepEqual(plain.received.map((r) => r.text), ['a message']);
  });

  it('plaza.v1: ephemeral with a publishId is a bad request; the answer is an ack without a place', async () => {
    const plaza = await startPlaza({});
    open.push(plaza);
    const room = fresh('v1');
    const raw = await V1Client.open(wsUrl(plaza));
    open.push(raw);
    await raw.request({ type: 'join', room });
    const refused = await raw.request({ type: 'publish', room, data: 'x', ephemeral: true, publishId: 'abc.1' });
    assert.equal(refused.type, 'error');
    assert.equal(refused.code, 'bad_request');
    assert.equal((await raw.request({ type: 'publish', room, data: 'x', ephemeral: 'yes' })).code, 'bad_request');
    const ack = await raw.request({ type: 'publish', room, data: 'x', ephemeral: true });
    assert.deepEqual({ ...ack, id: undefined }, { type: 'ack', id: undefined, room, ephemeral: true });
    const got = await raw.waitFor((e) => e.type === 'ephemeral');
    assert.deepEqual(Object.keys(got).sort(), ['data', 'from', 'room', 'time', 'type']);
  });

  it('is under the rate limit', async () => {
    const plaza = await startPlaza({ rateLimit: 1, rateBurst: 2 });
    open.push(plaza);
    const room = fresh('rate');
    const { room: joined } = await member(wsUrl(plaza), room);
    const codes = await Promise.all([1, 2, 3, 4].map((n) => rejectionOf(joined.publish(n, { ephemeral: true }))));
    assert.ok(codes.includes('rate_limited'), `codes: ${codes.join(', ')}`);
  });

  it('is under the token\'s publish grants', async () => {
    const secret = 'ephemeral-secret-0123456789abcdef';
    const plaza = await startPlaza({ authSecret: secret });
    open.push(plaza);
    const token = signToken({ sub: 'ada', rooms: '*', publish: ['open-*'], exp: Math.floor(Date.now() / 1000) + 600 } as TokenClaims, secret);
    const closed = await member(wsUrl(plaza), fresh('closed'), { token });
    const openRoom = await member(wsUrl(plaza), `open-${fresh('grant')}`, { token });
    assert.equal(await rejectionOf(closed.room.publish('typing', { ephemeral: true })), 'forbidden');
    assert.deepEqual(await openRoom.room.publish('typing', { ephemeral: true }), { room: openRoom.room.name, ephemeral: true });
  });

  it('goes through the onPublish hook, which may refuse it', async () => {
    const screened: unknown[] = [];
    const plaza = await listening({ onPublish: ({ data }) => (screened.push(data), data === 'blocked' ? reject('moderated', 'not here') : undefined) });
    open.push(plaza);
    const room = fresh('hook');
    const [a, b] = [await member(wsUrl(plaza), room), await member(wsUrl(plaza), room)];
    assert.equal(await rejectionOf(a.room.publish('blocked', { ephemeral: true })), 'moderated');
    await a.room.publish('fine', { ephemeral: true });
    await until(() => b.ephemerals.length === 1, 3000, 'the allowed one arrived');
    assert.deepEqual(b.ephemerals.map((e) => e.data), ['fine']);
    assert.deepEqual(screened, ['blocked', 'fine']);
  });

  it('HTTP: POST /api/publish and /api/broadcast with "ephemeral": true; never with an Idempotency-Key', async () => {
    const plaza = await startPlaza({ apiKey: KEY });
    open.push(plaza);
    const http = `http://127.0.0.1:${plaza.port}`;
    const [one, two] = [fresh('http-a'), fresh('http-b')];
    const a = await member(wsUrl(plaza), one);
    const b = await member(wsUrl(plaza), two);
    const published = await api(http, '/api/publish', { room: one, data: { cursor: 3 }, ephemeral: true });
    assert.equal(published.status, 200);
    assert.deepEqual(await published.json(), { room: one, ephemeral: true, delivered: 1 });
    const broadcast = await api(http, '/api/broadcast', { rooms: [one, two], data: 'all', ephemeral: true });
    assert.deepEqual(await broadcast.json(), { results: [{ room: one, ephemeral: true, delivered: 1 }, { room: two, ephemeral: true, delivered: 1 }] });
    await until(() => a.ephemerals.length === 2 && b.ephemerals.length === 1, 3000, 'both rooms got theirs');
    assert.deepEqual(a.ephemerals.map((e) => [e.data, e.sender]), [[{ cursor: 3 }, 'api'], ['all', 'api']]);
    const keyed = await api(http, '/api/publish', { room: one, data: 'x', ephemeral: true }, { 'idempotency-key': 'k1' });
    assert.equal(keyed.status, 400);
    assert.equal(((await keyed.json()) as { error: { code: string } }).error.code, 'bad_request');
    assert.equal((await api(http, '/api/publish', { room: one, data: 'x', ephemeral: 1 })).status, 400);
    assert.deepEqual(await history(http, one), []);
  });
});

describe('plaza.publish(room, data, { ephemeral: true }): the library form', () => {
  it('goes to the members there now, as the server, with no place; bad options are a bad_request', async () => {
    const plaza = await listening();
    open.push(plaza);
    const room = fresh('library');
    const a = await member(wsUrl(plaza), room);
    const first = await plaza.publish(room, 'stored');
    const result = await plaza.publish(room, { typing: 'server' }, { ephemeral: true });
    assert.deepEqual(result, { room, ephemeral: true, delivered: 1 });
    const second = await plaza.publish(room, 'stored too', { ephemeral: false });
    assert.equal(second.offset, first.offset + 1, 'the ephemeral publish took no offset');
    await until(() => a.messages.length === 2 && a.ephemerals.length === 1, 3000, 'both kinds arrived');
    assert.deepEqual(a.ephemerals.map((e) => [e.data, e.sender]), [[{ typing: 'server' }, 'server']]);
    assert.deepEqual((await plaza.publish(fresh('nobody'), 1, { ephemeral: true })).delivered, 0, 'a room need not have members');
    await assert.rejects(plaza.publish(room, 1, { ephemeral: 'yes' } as never), (error: { code: string }) => error.code === 'bad_request');
    await assert.rejects(plaza.publish('plaza:status', 1, { ephemeral: true }), (error: { code: string }) => error.code === 'forbidden');
    // A member joining later never sees it: there is nothing to replay.
    const late = await member(wsUrl(plaza), room);
    await plaza.publish(room, 'after');
    await until(() => late.messages.length === 1, 3000, 'the late member is caught up');
    assert.deepEqual(late.ephemerals, []);
  });

  it('reaches the members on another cluster node, and neither node takes it for a gap', { skip: skipWithoutRedis() }, async () => {
    const [one, two] = [await listening({ redis: REDIS_URL }), await listening({ redis: REDIS_URL })];
    open.push(one, two);
    const room = fresh('library-cluster');
    const far = await member(wsUrl(two), room);
    const first = await one.publish(room, 'a');
    assert.deepEqual(await one.publish(room, 'cursor', { ephemeral: true }), { room, ephemeral: true, delivered: 0 });
    const second = await one.publish(room, 'b');
    assert.equal(second.offset, first.offset + 1);
    await until(() => far.messages.length === 2 && far.ephemerals.length === 1, 5000, 'the far member has both kinds');
    assert.deepEqual(far.ephemerals.map((e) => [e.data, e.sender]), [['cursor', 'server']]);
    assert.deepEqual(far.messages.map((m) => m.data), ['a', 'b']);
    assert.deepEqual(far.resets, [], 'no gap seen');
  });
});

describe('ephemeral publishes with --data-dir', () => {
  it('are never journaled: after a SIGKILL restart the history has the messages only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plaza-ephemeral-'));
    let node: Node | undefined;
    try {
      const args = ['--data-dir', dir, '--api-key', KEY];
      node = await spawnPlaza(args);
      const room = fresh('disk');
      const [a, b] = [await member(node.ws, room), await member(node.ws, room)];
      await a.room.publish('kept 1');
      await a.room.publish('EPHEMERAL-MARK', { ephemeral: true });
      await a.room.publish('kept 2');
      await until(() => b.ephemerals.length === 1 && b.messages.length === 2, 3000, 'the member has all three');
      await stopNode(node, 'SIGKILL');
      pool.closeAll();
      node = await spawnPlaza(args);
      assert.deepEqual(await history(node.http, room), ['kept 1', 'kept 2']);
      for (const file of await readdir(dir, { recursive: true })) {
        const text = await readFile(join(dir, file)).catch(() => Buffer.alloc(0));
        assert.ok(!text.includes('EPHEMERAL-MARK'), `${file} holds the ephemeral publish`);
      }
    } finally {
      if (node) await stopNode(node);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('ephemeral publishes on two cluster nodes on Redis', { skip: skipWithoutRedis() }, () => {
  it('reach the members on the other node, and the following node takes them for no gap', async () => {
    const nodes = [await startNode(REDIS_URL, ['--api-key', KEY]), await startNode(REDIS_URL, ['--api-key', KEY])];
    try {
      const room = fresh('cluster');
      const a = await member(nodes[0]!.ws, room, { name: 'Ada' });
      const b = await member(nodes[1]!.ws, room, { name: 'Bob' });
      const first = await a.room.publish('one');
      assert.deepEqual(await b.room.publish('typing', { ephemeral: true, excludeSelf: true }), { room, ephemeral: true });
      const published = await api(nodes[0]!.http, '/api/publish', { room, data: 'from the api', ephemeral: true });
      assert.equal(((await published.json()) as { delivered: number }).delivered, 1);
      const second = await b.room.publish('two');
      assert.equal(second.offset, first.offset + 1);
      await until(() => a.messages.length === 2 && a.ephemerals.length === 2 && b.ephemerals.length === 1, 5000, 'every member has its share');
      assert.deepEqual(a.ephemerals.map((e) => [e.data, e.sender]), [['typing', 'Bob'], ['from the api', 'api']]);
      assert.deepEqual(b.ephemerals.map((e) => e.data), ['from the api']);
      assert.deepEqual(a.messages.map((m) => m.data), ['one', 'two']);
      assert.deepEqual([...a.resets, ...b.resets], [], 'no gap seen on either node');
      assert.deepEqual(a.room.position, { epoch: second.epoch, offset: second.offset });
      for (const node of nodes) {
        const metrics = await (await fetch(`${node.http}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text();
        assert.match(metrics, /^plaza_backplane_resets_total 0$/m, 'no node re-read the room with a gap');
      }
      assert.deepEqual(await history(nodes[1]!.http, room), ['one', 'two']);
    } finally {
      await Promise.all(nodes.map((node) => stopNode(node)));
    }
  });

  it('count against --redis-max-inflight while Redis stalls: past it, unavailable at once, and the members here still got each one', async () => {
    const redis = await PrivateRedis.start();
    const node = await startNode(redis.url, ['--redis-max-inflight', '3']);
    try {
      await untilReady(node.http, 200);
      const room = fresh('bound');
      const raw = await V1Client.open(node.ws);
      open.push(raw);
      await raw.request({ type: 'join', room });
      const listener = await member(node.ws, room);
      redis.pause();
      try {
        for (let n = 0; n < 10; n++) raw.send({ type: 'publish', id: `e${n}`, room, data: `e${n}`, ephemeral: true });
        const answers = await Promise.all(Array.from({ length: 7 }, (_, n) => raw.waitFor((e) => e.id === `e${n + 3}`, 2000).then((e) => e.code)));
        assert.deepEqual(answers, Array(7).fill('unavailable'), 'past the bound: refused at once, nothing queued');
        await until(() => listener.ephemerals.length === 3, 2000, 'the three taken reached the member here');
      } finally {
        redis.resume();
      }
      for (let n = 0; n < 3; n++) assert.deepEqual(await raw.waitFor((e) => e.id === `e${n}`, 5000), { type: 'ack', id: `e${n}`, room, ephemeral: true });
    } finally {
      await stopNode(node);
      await redis.destroy();
    }
  });
});
