/**
 * What a cluster promises, checked the way users meet it: Plaza's own client (dist/public/
 * plaza.mjs) against real nodes on a real Redis. Each case is one of the failures measured in
 * the delivery-promise issue, re-measured: every message to every member, no offset given
 * twice, no ghost members, bounded memory while Redis stalls, history replies of any allowed
 * size, resets only for members whose view has a gap, and an HTTP API that speaks for the
 * whole cluster.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { PrivateRedis, REDIS_URL, skipWithoutRedis, startNode, stopNode, type Node } from './helpers/cluster.js';

import { V1Client } from './helpers/v1.js';
import { clientPool, type Client } from './helpers/plaza-client.js';
import { firstJoin, sleep } from './helpers/workload.js';
import { until } from './helpers/wait.mjs';
import { untilReady } from './helpers/processes.mjs';
import { metric as sample } from './helpers/metrics.mjs';

/** One sample of a node's /metrics (behind the API key). */
const metric = (node: Node, name: string) => sample(node, name, auth);

const uniqueRoom = (name: string) => `${name}-${randomBytes(4).toString('hex')}`;
const API_KEY = 'k'.repeat(32);
const auth = { Authorization: `Bearer ${API_KEY}` };

interface View {
  data: unknown[];
  offsets: number[];
  resets: string[];
}

/** Kills the Redis subscriber connection of `node`, found by its name (it carries the node's id). */
async function killSubscriberOf(admin: Redis, node: Node): Promise<number> {
  const nodeId = node.lines.map((line) => /"msg":"cluster backplane ready","node":"([^"]+)"/.exec(line)?.[1]).find(Boolean);
  if (!nodeId) throw new Error('the node has not said its id');
  const line = String(await admin.client('LIST')).split('\n').find((l) => l.includes(` name=plaza-${nodeId}-subscriber `));
  if (!line) throw new Error(`no subscriber connection named for node ${nodeId}`);
  return Number(await admin.call('CLIENT', 'KILL', 'ID', /id=(\d+)/.exec(line)![1]!));
}

function watch(room: Client.Room): View {
  const view: View = { data: [], offsets: [], resets: [] };
  room.on('message', (data, meta) => {
    view.data.push(data);
    view.offsets.push(meta.offset);
  });
  room.on('reset', ({ reason }) => view.resets.push(reason));
  return view;
}

describe('a cluster through Plaza\'s own client', { skip: skipWithoutRedis() }, () => {
  const pool = clientPool();
  const client = pool.connect;
  after(pool.closeAll);

  describe('two nodes on one Redis', () => {
    let nodes: Node[] = [];
    before(async () => {
      nodes = await Promise.all([0, 1].map(() => startNode(REDIS_URL, ['--api-key', API_KEY, '--presence-ttl', '1500'])));
      await Promise.all(nodes.map((n) => untilReady(n.http, 200)));
    });
    after(() => Promise.all(nodes.map((n) => stopNode(n))));

    it('delivers all 200 of 200 to each of four members publishing 50 each, in one order', async () => {
      const name = uniqueRoom('four');
      const members = await Promise.all([0, 1, 2, 3].map((i) => client(nodes[i % 2]!.ws, { name: `p${i}` })));
      const rooms = members.map((m) => m.join(name));
      const views = rooms.map(watch);
      await Promise.all(rooms.map(firstJoin));
      await Promise.all(rooms.map(async (room, i) => {
        for (let n = 0; n < 50; n++) void room.publish(`${i}:${n}`);
      }));
      await until(() => views.every((v) => v.data.length >= 200), 15_000, 'every member to get 200 messages');
      for (const view of views) {
        assert.equal(view.data.length, 200);
        assert.deepEqual(view.data, views[0]!.data, 'one order for everyone');
        assert.deepEqual(view.offsets, views[0]!.offsets);
        assert.deepEqual(view.resets, []);
      }
      assert.equal(new Set(views[0]!.data).size, 200);
    });

    it('publishes once when the HTTP API is sent one Idempotency-Key on both nodes at once (issue #22)', async () => {
      const name = uniqueRoom('idempotent');
      const member = await client(nodes[0]!.ws);
      const room = member.join(name);
      const view = watch(room);
      await firstJoin(room);
      const post = (node: Node, data: unknown) => fetch(`${node.http}/api/publish`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json', 'idempotency-key': `pay-${name}` },
        body: JSON.stringify({ room: name, data }),
      }).then(async (response) => ({ status: response.status, body: await response.json() as { offset: number; epoch: string; duplicate?: boolean } }));
      const answers = await Promise.all([post(nodes[0]!, 'paid'), post(nodes[1]!, 'paid'), post(nodes[1]!, 'paid'), post(nodes[0]!, 'paid')]);
      assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200]);
      assert.equal(new Set(answers.map((a) => `${a.body.epoch}:${a.body.offset}`)).size, 1, 'one place for all four');
      assert.equal(answers.filter((a) => !a.body.duplicate).length, 1, 'one of them published');
      assert.equal((await post(nodes[1]!, 'another body')).status, 422);
      await until(() => view.data.length > 0, 5000, 'the payment delivered');
      await sleep(300); // time for a second delivery, which must not come
      assert.deepEqual(view.data, ['paid']);
    });

    it('delivers every one of 100 messages to the one member that published them', async () => {
      const name = uniqueRoom('solo');
      const member = await client(nodes[0]!.ws);
      const room = member.join(name);
      const view = watch(room);
      await firstJoin(room);
      const acks = await Promise.all(Array.from({ length: 100 }, (_, n) => room.publish(n)));
      // Every ack came after its own message: by then the member had seen it.
      assert.equal(view.data.length, 100);
      assert.deepEqual(view.offsets, acks.map((a) => a.offset));
    });

    it('leaves no member behind when connections close while their join waits on Redis', async () => {
      const name = uniqueRoom('ghost');
      const open = async (node: Node) => (await metric(node, 'plaza_connections{protocol="v1"}')) + (await metric(node, 'plaza_connections{protocol="plain"}'));
      const baseline = await Promise.all(nodes.map(open));
      const sockets = [];
      for (let i = 0; i < 150; i++) {
        const plain = i % 3 === 0;
        const ws = new WebSocket(nodes[i % 2]!.ws, plain ? undefined : 'plaza.v1');
        ws.on('error', () => undefined);
        ws.on('open', () => {
          if (!plain) ws.send(JSON.stringify({ type: 'join', room: name, presence: i % 2 === 0 }));
          ws.terminate();
        });
        sockets.push(new Promise((resolve) => ws.on('close', resolve)));
      }
      await Promise.all(sockets);
      for (const [i, node] of nodes.entries()) {
        let orphans = -1;
        let connections = -1;
        const deadline = Date.now() + 5000;
        while (Date.now() < deadline && (orphans !== 0 || connections !== baseline[i])) {
          orphans = await metric(node, 'plaza_members_without_connection');
          connections = await open(node);
          await sleep(50);
        }
        assert.equal(connections, baseline[i], 'every terminated connection is gone');
        assert.equal(orphans, 0, 'no member without a connection');
      }
      const rooms = (await (await fetch(`${nodes[0]!.http}/api/rooms`, { headers: auth })).json()) as { rooms: Array<{ room: string }> };
      assert.equal(rooms.rooms.find((r) => r.room === name), undefined, 'the room has no member anywhere');
      const redis = new Redis(REDIS_URL);
      try {
        assert.equal(await redis.hlen(`plaza:{${name}}:presence`), 0, 'nobody left in cluster presence');
      } finally {
        redis.disconnect();
      }
    });

    it('keeps no subscription for joins it refused', async () => {
      const node = await startNode(REDIS_URL, ['--api-key', API_KEY, '--max-rooms-per-connection', '1']);
      await untilReady(node.http, 200);
      try {
        const before = await metric(node, 'plaza_backplane_channels');
        for (let c = 0; c < 3; c++) {
          const member = await client(node.ws);
          await firstJoin(member.join(uniqueRoom('kept')));
          const refusals = Array.from({ length: 15 }, () => member.join(uniqueRoom('refused')));
          const codes = await Promise.all(refusals.map((room) => new Promise<string>((resolve) => room.on('error', (error) => resolve(error.code)))));
          assert.deepEqual(new Set(codes), new Set(['too_many_rooms']));
          member.close();
        }
        await until(async () => (await metric(node, 'plaza_backplane_channels')) === before, 5000, 'the channels of the closed members unsubscribed', 100);
        assert.equal(await metric(node, 'plaza_backplane_rooms'), 0);
      } finally {
        await stopNode(node);
      }
    });

    it('writes presence that expires once no node refreshes it', async () => {
      const name = uniqueRoom('expiry');
      const node = await startNode(REDIS_URL, ['--presence-ttl', '1000']);
      await untilReady(node.http, 200);
      const redis = new Redis(REDIS_URL);
      try {
        const member = await client(node.ws, { name: 'ada' });
        await firstJoin(member.join(name, { presence: true }));
        const key = `plaza:{${name}}:presence`;
        for (let i = 0; i < 50 && (await redis.exists(key)) === 0; i++) await sleep(20);
        const ttl = await redis.pttl(key);
        assert.ok(ttl > 0 && ttl <= 2000, `presence key has an expiry (${ttl} ms)`);
        await stopNode(node, 'SIGKILL');
        await until(async () => (await redis.exists(`plaza:{${name}}:presence`)) === 0, 5000, 'the presence gone once its only writer is gone', 100);
      } finally {
        redis.disconnect();
        await stopNode(node);
      }
    });

    it('answers rooms, presence, history and disconnect for the whole cluster', async () => {
      const name = uniqueRoom('api');
      const ada = await client(nodes[0]!.ws, { name: 'ada' });
      const bob = await client(nodes[1]!.ws, { name: 'bob' });
      const adaRoom = ada.join(name);
      const bobRoom = bob.join(name);
      await Promise.all([firstJoin(adaRoom), firstJoin(bobRoom)]);
      await bobRoom.publish('from bob');
      await until(() => ada.session !== undefined && bob.session !== undefined, 2000, 'welcome');
      const ask = async (path: string, init: RequestInit = {}) => {
        const res = await fetch(`${nodes[0]!.http}${path}`, { ...init, headers: { ...auth, 'Content-Type': 'application/json' } });
        return { status: res.status, body: (await res.json()) as any };
      };
      let rooms = await ask('/api/rooms');
      for (let i = 0; i < 20 && rooms.body.rooms.find((r: { room: string }) => r.room === name)?.members !== 2; i++) {
        await sleep(100);
        rooms = await ask('/api/rooms');
      }
      assert.equal(rooms.body.rooms.find((r: { room: string }) => r.room === name)?.members, 2);
      const presence = await ask(`/api/rooms/${name}/presence`);
      assert.deepEqual(presence.body.members.map((m: { name: string }) => m.name).sort(), ['ada', 'bob']);
      assert.equal(presence.body.memberCount, 2);
      const history = await ask(`/api/rooms/${name}/history`);
      assert.deepEqual(history.body.messages.map((m: { data: string }) => m.data), ['from bob']);
      const closed = new Promise<number>((resolve) => bob.on('close', (info) => resolve(info.code)));
      const disconnected = await ask('/api/disconnect', { method: 'POST', body: JSON.stringify({ session: bob.session }) });
      assert.equal(disconnected.status, 200);
      assert.equal(disconnected.body.disconnected, 1, 'a session on the other node');
      assert.equal(await closed, 4001);
    });

    it('sends history of any allowed size without closing the member (25 × 60 KB, --max-buffered 1 MiB)', async () => {
      const name = uniqueRoom('big');
      const writer = await client(nodes[0]!.ws);
      const room = writer.join(name);
      await firstJoin(room);
      const big = (n: number) => `${n}:${'x'.repeat(60_000)}`;
      for (let n = 0; n < 25; n++) await room.publish(big(n));
      const reader = await client(nodes[1]!.ws);
      const late = reader.join(name, { history: 25 });
      const view = watch(late);
      await until(() => view.data.length >= 25, 10_000, '25 messages of history');
      assert.deepEqual(view.data.map((d) => String(d).split(':')[0]), Array.from({ length: 25 }, (_, n) => String(n)));
      const resumer = await client(nodes[0]!.ws);
      const resumed = resumer.join(name, { since: { epoch: late.position!.epoch, offset: 0 } });
      const again = watch(resumed);
      await until(() => again.data.length >= 25, 10_000, 'a resume from offset 0');
      assert.deepEqual(again.resets, []);
      await room.publish('live');
      await until(() => view.data.at(-1) === 'live' && again.data.at(-1) === 'live', 5000, 'live after history');
      assert.equal(reader.status, 'open');
      assert.equal(resumer.status, 'open');
    });
  });

  describe('faults', () => {
    let redis: PrivateRedis;
    before(async () => {
      redis = await PrivateRedis.start({ persistent: true });
    });
    after(() => redis.destroy());

    it('never gives one offset to two messages across an outage (a released room, then an island)', async () => {
      const [a, b] = await Promise.all([startNode(redis.url), startNode(redis.url)]);
      // Joined before the node reaches Redis, a member starts on an island (and is reset later).
      await Promise.all([untilReady(a.http, 200), untilReady(b.http, 200)]);
      try {
        const name = uniqueRoom('reuse');
        const onB = await client(b.ws);
        const roomB = onB.join(name);
        const seenB = watch(roomB);
        await firstJoin(roomB);
        // A follows the room for a while, then lets it go.
        const visitor = await client(a.ws);
        const visit = visitor.join(name);
        await firstJoin(visit);
        await roomB.publish('one');
        visit.leave();
        await roomB.publish('two');
        await redis.stop();
        await untilReady(a.http, 503);
        // While Redis is away A serves an island: its offsets get an epoch of their own.
        const islander = await client(a.ws);
        const island = islander.join(name);
        await firstJoin(island);
        const islandAck = await island.publish('island');
        await redis.restart();
        await Promise.all([untilReady(a.http, 200, 15_000), untilReady(b.http, 200, 15_000)]);
        const clusterAck = await roomB.publish('three');
        assert.notEqual(islandAck.epoch, clusterAck.epoch, 'the island never used the cluster epoch');
        await until(() => seenB.data.includes('three'), 5000, 'the cluster message');
        assert.deepEqual(seenB.data, ['one', 'two', 'three']);
        assert.deepEqual(seenB.offsets, [1, 2, 3]);
      } finally {
        await Promise.all([stopNode(a), stopNode(b)]);
      }
    });

    it('catches a node up, in order and without a reset, on what was published while it was cut off from Redis', async () => {
      const [a, b] = await Promise.all([startNode(redis.url), startNode(redis.url)]);
      await Promise.all([untilReady(a.http, 200), untilReady(b.http, 200)]);
      const admin = new Redis(redis.url);
      try {
        const name = uniqueRoom('catchup');
        const [onA, onB] = await Promise.all([client(a.ws), client(b.ws)]);
        const roomA = onA.join(name);
        const roomB = onB.join(name);
        const seenA = watch(roomA);
        await Promise.all([firstJoin(roomA), firstJoin(roomB)]);
        await roomB.publish(0);
        await until(() => seenA.data.length === 1, 5000, 'the first message');
        // Cut only A's subscriber: A hears nothing of the room until it has reconnected.
        const acks = [];
        const resyncs = await metric(a, 'plaza_backplane_resyncs_total');
        const killed = await killSubscriberOf(admin, a);
        assert.equal(killed, 1);
        for (let n = 1; n <= 20; n++) acks.push(roomB.publish(n));
        await Promise.all(acks);
        await until(() => seenA.data.length === 21, 10_000, 'A to catch up');
        assert.deepEqual(seenA.data, Array.from({ length: 21 }, (_, n) => n));
        assert.deepEqual(seenA.resets, []);
        assert.ok((await metric(a, 'plaza_backplane_resyncs_total')) > resyncs, 'A re-read the room from the stream');
      } finally {
        admin.disconnect();
        await Promise.all([stopNode(a), stopNode(b)]);
      }
    });

    it('tells only members whose view has a gap: Redis back with its data and nothing missed means no reset', async () => {
      const [a, b] = await Promise.all([startNode(redis.url), startNode(redis.url)]);
      // Joined before the node reaches Redis, a member starts on an island (and is reset later).
      await Promise.all([untilReady(a.http, 200), untilReady(b.http, 200)]);
      try {
        const name = uniqueRoom('calm');
        const members = await Promise.all([client(a.ws), client(b.ws)]);
        const rooms = members.map((m) => m.join(name));
        const views = rooms.map(watch);
        await Promise.all(rooms.map(firstJoin));
        await rooms[0]!.publish('before');
        await until(() => views.every((v) => v.data.length === 1), 5000, 'before');
        await redis.stop();
        await Promise.all([untilReady(a.http, 503), untilReady(b.http, 503)]);
        await redis.restart();
        await Promise.all([untilReady(a.http, 200, 15_000), untilReady(b.http, 200, 15_000)]);
        await rooms[1]!.publish('after');
        await until(() => views.every((v) => v.data.length === 2), 5000, 'after');
        for (const view of views) {
          assert.deepEqual(view.resets, [], 'nothing was missed, so nothing is reset');
          assert.deepEqual(view.data, ['before', 'after']);
        }
      } finally {
        await Promise.all([stopNode(a), stopNode(b)]);
      }
    });

    it('refuses publishes at once past --redis-max-inflight while Redis stalls, and keeps memory bounded; Plaza\'s client sends them again and each lands once', async () => {
      const node = await startNode(redis.url, ['--redis-max-inflight', '5', '--api-key', API_KEY]);
      await untilReady(node.http, 200);
      try {
        const name = uniqueRoom('stall');
        const member = await client(node.ws, { ackTimeout: 0 });
        const room = member.join(name);
        const view = watch(room);
        await firstJoin(room);
        // The server's bound, as a plaza.v1 client sees it: the answer is immediate.
        const raw = await V1Client.open(node.ws, 'raw');
        await raw.request({ type: 'join', room: name });
        const plain = new WebSocket(node.ws);
        await new Promise((resolve) => plain.on('open', resolve));
        redis.pause();
        try {
          for (let n = 0; n < 20; n++) raw.send({ type: 'publish', id: `p${n}`, room: name, data: `raw ${n}` });
          const refused = await Promise.race([
            Promise.all(Array.from({ length: 15 }, (_, n) => raw.waitFor((e) => e.id === `p${n + 5}`, 2000).then((e) => e.code))),
            sleep(2500).then(() => 'still waiting'),
          ]);
          assert.deepEqual(refused, Array(15).fill('unavailable'), 'past the bound: unavailable at once');
          assert.equal(await metric(node, 'plaza_backplane_inflight'), 5);
          // Plaza's client is told the same, and keeps its publishes to send again (issue #22).
          const outcomes = Array.from({ length: 5 }, (_, n) => room.publish(n).then(() => 'ack', (error: Client.PlazaError) => error.code));
          for (let n = 0; n < 10; n++) plain.send(`plain ${n}`);
          await until(async () => (await metric(node, 'plaza_plain_messages_dropped_total')) >= 10, 5000, 'the plain messages dropped', 100);
          assert.equal(await metric(node, 'plaza_plain_messages_dropped_total'), 10);
          redis.resume();
          assert.deepEqual(await Promise.all(outcomes), Array(5).fill('ack'), 'each published once Redis is back');
          await until(() => view.data.filter((d) => typeof d === 'number').length === 5, 10_000, 'the five delivered');
          await sleep(300);
          assert.deepEqual(view.data.filter((d) => typeof d === 'number'), [0, 1, 2, 3, 4], 'once each, in order');
          assert.ok((await metric(node, 'plaza_backplane_rejected_total')) >= 15);
        } finally {
          await raw.close();
          redis.resume();
          plain.terminate();
        }
      } finally {
        await stopNode(node);
      }
    });
  });
});
