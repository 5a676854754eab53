/**
 * Several Plaza processes joined through a real Redis must act as one hub: one order per room,
 * exactly once, resumable on any node, presence across nodes, and no crash when Redis or a node
 * goes away.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { PrivateRedis, REDIS_URL, skipWithoutRedis, startNode, stopNode, type Node } from './helpers/cluster.js';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, ROOT } from './helpers/plaza.js';
import { V1Client } from './helpers/v1.js';
import { untilReady } from './helpers/processes.mjs';

const skip = skipWithoutRedis();
const uniqueRoom = (name: string) => `${name}-${randomBytes(4).toString('hex')}`;

describe('cluster (--redis)', { skip }, () => {
  describe('three nodes on one Redis', () => {
    let nodes: Node[] = [];
    before(async () => {
      nodes = await Promise.all([1, 2, 3].map(() => startNode(REDIS_URL)));
    });
    after(() => Promise.all(nodes.map((node) => stopNode(node))));

    it('delivers every message to every member on every node exactly once, in one order', async () => {
      const room = uniqueRoom('order');
      const clients = await Promise.all(nodes.flatMap((node) => [V1Client.open(node.ws), V1Client.open(node.ws)]));
      try {
        for (const client of clients) await client.request({ type: 'join', room });
        const perClient = 30;
        await Promise.all(
          clients.map(async (client, c) => {
            for (let i = 0; i < perClient; i++) client.send({ type: 'publish', room, data: `${c}:${i}` });
          }),
        );
        const total = clients.length * perClient;
        const views = await Promise.all(clients.map((client) => client.waitForMessages(total, room, 15_000)));
        const reference = views[0]!.map((m) => m.offset);
        assert.deepEqual(reference, Array.from({ length: total }, (_, i) => i + 1), 'offsets 1..N, no gap, no duplicate');
        for (const view of views) {
          assert.equal(view.length, total);
          assert.deepEqual(view.map((m) => m.data), views[0]!.map((m) => m.data), 'every member saw the same order');
        }
        // Each publisher's own messages stay in the order it sent them.
        for (let c = 0; c < clients.length; c++) {
          const mine = views[0]!.filter((m) => String(m.data).startsWith(`${c}:`)).map((m) => m.data);
          assert.deepEqual(mine, Array.from({ length: perClient }, (_, i) => `${c}:${i}`));
        }
      } finally {
        await Promise.all(clients.map((client) => client.close()));
      }
    });

    it('acks with the cluster offset and lets plain clients on other nodes see v1 messages', async () => {
      const plain = await connect(nodes[2]!.ws);
      const v1 = await V1Client.open(nodes[0]!.ws);
      try {
        // Plain clients talk in the default room, shared by the whole cluster.
        const joined = await v1.request({ type: 'join', room: 'lobby' });
        const ack = await v1.request({ type: 'publish', room: 'lobby', data: 'hello cluster' });
        assert.equal(ack.type, 'ack', JSON.stringify(ack));
        assert.equal(ack.offset, joined.offset + 1);
        const [got] = await plain.waitFor(1);
        assert.equal(got!.text, 'hello cluster');
      } finally {
        await Promise.all([plain.close(), v1.close()]);
      }
    });

    it('lets a client that moves to another node resume gap-free', async () => {
      const room = uniqueRoom('move');
      const writer = await V1Client.open(nodes[0]!.ws);
      const mover = await V1Client.open(nodes[1]!.ws);
      try {
        await writer.request({ type: 'join', room });
        await mover.request({ type: 'join', room });
        for (let i = 1; i <= 5; i++) await writer.request({ type: 'publish', room, data: i });
        const seen = await mover.waitForMessages(5, room);
        const last = seen[seen.length - 1]!;
        await mover.close();
        for (let i = 6; i <= 10; i++) await writer.request({ type: 'publish', room, data: i });
        const moved = await V1Client.open(nodes[2]!.ws);
        const resumed = await moved.request({ type: 'join', room, since: { epoch: last.epoch, offset: last.offset } });
        assert.equal(resumed.recovered, true);
        assert.deepEqual(resumed.messages.map((m: { data: number }) => m.data), [6, 7, 8, 9, 10]);
        await writer.request({ type: 'publish', room, data: 11 });
        const live = await moved.waitForMessages(6, room);
        assert.equal(live[5]!.data, 11);
        await moved.close();
      } finally {
        await writer.close();
      }
    });

    it('shows presence across nodes, with join and leave deltas', async () => {
      const room = uniqueRoom('presence');
      const watcher = await V1Client.open(nodes[0]!.ws, 'watcher');
      const other = await V1Client.open(nodes[1]!.ws, 'other');
      try {
        await other.request({ type: 'join', room });
        const joined = await watcher.request({ type: 'join', room, presence: true });
        assert.deepEqual(joined.members.map((m: { name: string }) => m.name).sort(), ['other', 'watcher']);
        assert.equal(joined.memberCount, 2);
        const third = await V1Client.open(nodes[2]!.ws, 'third');
        await third.request({ type: 'join', room });
        const delta = await watcher.waitFor((e) => e.type === 'presence' && e.joined?.[0]?.name === 'third');
        assert.equal(delta.memberCount, 3);
        await third.close();
        const gone = await watcher.waitFor((e) => e.type === 'presence' && e.left?.[0]?.name === 'third');
        assert.equal(gone.memberCount, 2);
      } finally {
        await Promise.all([watcher.close(), other.close()]);
      }
    });
  });

  it('runs a cluster node from a copy of dist/ without node_modules (ioredis is bundled)', async () => {
    const copy = await mkdtemp(join(tmpdir(), 'plaza-dist-'));
    try {
      await cp(join(ROOT, 'dist'), copy, { recursive: true });
      const node = await startNode(REDIS_URL, [], join(copy, 'server.js'));
      try {
        await untilReady(node.http, 200);
      } finally {
        await stopNode(node);
      }
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  });

  describe('faults', () => {
    let redis: PrivateRedis;
    before(async () => {
      redis = await PrivateRedis.start();
    });
    after(() => redis.stop());

    it('survives Redis restarting mid-stream: local delivery goes on, then the cluster heals', async () => {
      const [a, b] = await Promise.all([startNode(redis.url), startNode(redis.url)]);
      try {
        const room = uniqueRoom('restart');
        const onA = await V1Client.open(a.ws);
        const alsoOnA = await V1Client.open(a.ws);
        const onB = await V1Client.open(b.ws);
        for (const c of [onA, alsoOnA, onB]) await c.request({ type: 'join', room });
        await onA.request({ type: 'publish', room, data: 'before' });
        await onB.waitForMessages(1, room);

        await redis.stop();
        await untilReady(a.http, 503);
        // Redis is away: members on the same node still hear each other.
        const ack = await onA.request({ type: 'publish', room, data: 'during' });
        assert.equal(ack.type, 'ack');
        const during = await alsoOnA.waitForMessages(2, room);
        assert.equal(during[1]!.data, 'during');
        assert.notEqual(during[1]!.epoch, during[0]!.epoch, 'island messages carry their own epoch');

        await redis.restart();
        await untilReady(a.http, 200, 15_000);
        await untilReady(b.http, 200, 15_000);
        const healed = await onB.request({ type: 'publish', room, data: 'after' });
        assert.equal(healed.type, 'ack');
        await onA.waitFor((e) => e.type === 'message' && e.data === 'after', 10_000);
        await Promise.all([onA.close(), alsoOnA.close(), onB.close()]);
      } finally {
        await Promise.all([stopNode(a), stopNode(b)]);
      }
    });

    it('starts without Redis, says not ready, and joins when Redis comes up', async () => {
      const later = await PrivateRedis.start();
      await later.stop();
      const node = await startNode(later.url);
      try {
        const ready = await fetch(`${node.http}/readyz`);
        assert.equal(ready.status, 503);
        assert.deepEqual(await ready.json(), { status: 'not ready', reasons: ['backplane_down'] });
        const local = await V1Client.open(node.ws);
        await local.request({ type: 'join', room: 'solo' });
        assert.equal((await local.request({ type: 'publish', room: 'solo', data: 1 })).type, 'ack');
        assert.match(await (await fetch(`${node.http}/metrics`)).text(), /^plaza_backplane_up 0$/m);
        await later.restart();
        await untilReady(node.http, 200, 15_000);
        assert.match(await (await fetch(`${node.http}/metrics`)).text(), /^plaza_backplane_up 1$/m);
        await local.close();
      } finally {
        await stopNode(node);
        await later.stop();
      }
    });

    it('loses nothing for clients that move off a node killed with SIGKILL', { timeout: 30_000 }, async () => {
      const [doomed, survivor] = await Promise.all([startNode(redis.url, ['--presence-ttl', '1500']), startNode(redis.url, ['--presence-ttl', '1500'])]);
      try {
        const room = uniqueRoom('kill');
        const writer = await V1Client.open(survivor.ws);
        const watcher = await V1Client.open(survivor.ws, 'watcher');
        const victim = await V1Client.open(doomed.ws, 'victim');
        await writer.request({ type: 'join', room });
        await watcher.request({ type: 'join', room, presence: true });
        await victim.request({ type: 'join', room });
        await watcher.waitFor((e) => e.type === 'presence' && e.joined?.[0]?.name === 'victim');
        for (let i = 1; i <= 5; i++) await writer.request({ type: 'publish', room, data: i });
        const seen = await victim.waitForMessages(5, room);
        doomed.child.kill('SIGKILL');
        await victim.client.closed;
        for (let i = 6; i <= 8; i++) await writer.request({ type: 'publish', room, data: i });
        const last = seen[seen.length - 1]!;
        const moved = await V1Client.open(survivor.ws);
        const resumed = await moved.request({ type: 'join', room, since: { epoch: last.epoch, offset: last.offset } });
        assert.equal(resumed.recovered, true);
        assert.deepEqual(resumed.messages.map((m: { data: number }) => m.data), [6, 7, 8]);
        // The dead node's member vanishes from presence within the TTL.
        const left = await watcher.waitFor((e) => e.type === 'presence' && e.left?.[0]?.name === 'victim', 8000);
        assert.equal(left.type, 'presence');
        await Promise.all([writer.close(), watcher.close(), moved.close()]);
      } finally {
        await Promise.all([stopNode(doomed, 'SIGKILL'), stopNode(survivor)]);
      }
    });
  });
});
