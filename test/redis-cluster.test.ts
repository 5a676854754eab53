/**
 * Plaza over a real Redis Cluster (`--redis redis+cluster://…`): three masters, three replicas,
 * three Plaza nodes, started once for the file. What the README and PROTOCOL.md promise for a
 * cluster, checked through Plaza's own client (dist/public/plaza.mjs, driven by the seeded
 * workload of helpers/workload.ts): rooms spread over the masters and one room's
 * traffic touches one master; the HTTP API still speaks for every node; and the delivery
 * promise (each message once, in one order, or a `reset`) holds while a slot migrates, a
 * replica takes over by plan, and a master dies with writes its replica never got.
 *
 * Seeded like test/delivery.test.ts: replay a failure with PLAZA_SEED=<seed>.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { slotOf } from '../src/server/rooms/backplane/redis/shards.js';
import { skipWithoutRedis, startNode, stopNode, type Node } from './helpers/cluster.js';
import { connectBuilt, type Client } from './helpers/plaza-client.js';
import { RedisCluster, type ClusterNode } from './helpers/redis-cluster.js';
import { firstJoin, seedFromEnv, sleep, Workload } from './helpers/workload.js';
import { until } from './helpers/wait.mjs';
import { untilReady } from './helpers/processes.mjs';

const API_KEY = 'k'.repeat(32);
const auth = { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' };

/** The slot of a room's keys and channel. */
const roomSlot = (room: string) => slotOf(`plaza:{${room}}:ch`);

/** One room name per master: `prefix-<n>` names whose slots fall on different masters. */
async function roomsOnEveryMaster(cluster: RedisCluster, prefix: string): Promise<Array<{ room: string; master: ClusterNode }>> {
  const masters = (await cluster.nodes()).filter((n) => n.role === 'master' && n.slots.length > 0);
  const found = new Map<string, { room: string; master: ClusterNode }>();
  for (let i = 0; found.size < masters.length; i++) {
    const room = `${prefix}-${i}`;
    const master = masters.find((m) => m.slots.some(([a, b]) => roomSlot(room) >= a && roomSlot(room) <= b))!;
    if (!found.has(master.id)) found.set(master.id, { room, master });
  }
  return [...found.values()];
}

describe('Plaza on a Redis Cluster (3 masters, 3 replicas, 3 nodes)', { skip: skipWithoutRedis() }, () => {
  let cluster: RedisCluster;
  let nodes: Node[] = [];
  const clients: Client.PlazaClient[] = [];
  const client = async (node: Node, name: string) => {
    const c = await connectBuilt(node.ws, { name, minDelay: 20, maxDelay: 300 });
    clients.push(c);
    return c;
  };

  before(async () => {
    cluster = await RedisCluster.start({ masters: 3, replicas: 1 });
    nodes = await Promise.all([0, 1, 2].map(() => startNode(cluster.url, ['--api-key', API_KEY, '--presence-ttl', '1500'])));
    await Promise.all(nodes.map((n) => untilReady(n.http, 200)));
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(nodes.map((n) => stopNode(n)));
    await cluster?.destroy();
  });

  it('hashes a room the way Redis does (CRC16 of the {room} tag)', async () => {
    for (const room of ['alpha', 'team-7', 'ünïcode/room', 'a:b@c#d']) {
      assert.equal(roomSlot(room), Number(await cluster.admin((await cluster.nodes())[0]!.port).call('CLUSTER', 'KEYSLOT', `plaza:{${room}}:ch`)), room);
    }
  });

  it('spreads rooms over the masters and keeps each room\'s messages on its own master (sharded pub/sub)', async () => {
    const rooms = await roomsOnEveryMaster(cluster, 'spread');
    const members = await Promise.all(nodes.map((node, i) => client(node, `m${i}`)));
    const joined = rooms.map(({ room }) => members.map((m) => m.join(room)));
    await Promise.all(joined.flat().map(firstJoin));
    await sleep(300); // the joins' presence deltas, sent on the rooms' channels, are out
    for (const [i, { room, master }] of rooms.entries()) {
      // Every node follows the room at the room's own master, and nowhere else.
      const subscribers = Number(((await cluster.admin(master.port).call('PUBSUB', 'SHARDNUMSUB', `plaza:{${room}}:ch`)) as [string, number])[1]);
      assert.equal(subscribers, 3, `${room}: one sharded subscription per node at its master`);
      const before = { spublish: await cluster.callsOnMasters('spublish'), publish: await cluster.callsOnMasters('publish') };
      const received = new Promise<number>((resolve) => {
        let n = 0;
        joined[i]![2]!.on('message', () => ++n === 20 && resolve(n));
      });
      for (let n = 0; n < 20; n++) await joined[i]![n % 3]!.publish(`${room}/${n}`);
      assert.equal(await received, 20);
      const afterwards = { spublish: await cluster.callsOnMasters('spublish'), publish: await cluster.callsOnMasters('publish') };
      for (const [port, calls] of afterwards.spublish) {
        assert.equal(calls - (before.spublish.get(port) ?? 0), port === master.port ? 20 : 0, `${room}: SPUBLISH on master ${port}`);
        // Classic PUBLISH would be broadcast over the cluster bus to every shard; room traffic never uses it.
        assert.equal(afterwards.publish.get(port)! - (before.publish.get(port) ?? 0), 0, `${room}: no classic PUBLISH on ${port}`);
      }
    }
  });

  it('answers rooms, presence and disconnect for the whole cluster', async () => {
    const { room } = (await roomsOnEveryMaster(cluster, 'api'))[0]!;
    const members = await Promise.all(nodes.map((node, i) => client(node, `api${i}`)));
    await Promise.all(members.map((m) => firstJoin(m.join(room))));
    const ask = async (path: string, init: RequestInit = {}) => {
      const res = await fetch(`${nodes[0]!.http}${path}`, { ...init, headers: auth });
      return { status: res.status, body: (await res.json()) as any };
    };
    await until(async () => {
      const { body } = await ask('/api/rooms');
      return body.rooms.find((r: { room: string }) => r.room === room)?.members === 3 ? true : undefined;
    }, 5000, 'the room summaries of every node', 100);
    const presence = await ask(`/api/rooms/${room}/presence`);
    assert.deepEqual(presence.body.members.map((m: { name: string }) => m.name).sort(), ['api0', 'api1', 'api2']);
    const closed = Promise.all(members.slice(1).map((m) => new Promise<number>((resolve) => m.on('close', (info) => resolve(info.code)))));
    const disconnected = await ask('/api/disconnect', { method: 'POST', body: JSON.stringify({ session: members[2]!.session }) });
    assert.equal(disconnected.body.disconnected, 1, 'a session on a third node, reached over the control channel');
    const again = await ask('/api/disconnect', { method: 'POST', body: JSON.stringify({ session: members[1]!.session }) });
    assert.equal(again.body.disconnected, 1);
    assert.deepEqual(await closed, [4001, 4001]);
  });

  it('keeps the delivery promise through a slot migration, a planned failover and a master killed with writes its replica never got', { timeout: 120_000 }, async (t) => {
    const seed = seedFromEnv();
    const placed = await roomsOnEveryMaster(cluster, `promise-${seed}`);
    const rooms = placed.map((p) => p.room);
    const ports = nodes.map((n) => Number(new URL(n.http).port));
    const workload = new Workload({ seed, ports, members: 6, rooms, publishEvery: 20 });
    const log: string[] = [];
    let lost = 0;
    let resetsBefore: number[] = [];
    const epochs = new Map<string, string>();
    const epochOf = async (room: string) => (await fetch(`${nodes[0]!.http}/api/rooms/${room}/history?limit=1`, { headers: auth }).then((r) => r.json()) as { epoch: string }).epoch;
    const churn = (ms: number) => workload.churn(ms, 100, 300, log);
    try {
      await workload.start();
      workload.run();
      try {
        await churn(1000);
        for (const room of rooms) epochs.set(room, await epochOf(room));
        // 1. A slot moves to another master, traffic going on while it is half moved.
        const [first, second, third] = placed as [(typeof placed)[0], (typeof placed)[0], (typeof placed)[0]];
        log.push(`migrate ${first.room} to ${second.master.port}`);
        await cluster.migrate(roomSlot(first.room), second.master, async () => {
          await sleep(200 + workload.random() * 300);
        });
        await churn(800);
        // 2. A planned failover of the master that now serves two of the rooms.
        const replica = await cluster.replicaOf(await cluster.masterOf(roomSlot(second.room)));
        log.push(`CLUSTER FAILOVER to ${replica.port}`);
        await cluster.failover(replica);
        await churn(800);
        // 3. The third room's replica is cut off, its master takes more writes (acknowledged,
        //    delivered), then dies: the replica promoted in its place never had them.
        const master = await cluster.masterOf(roomSlot(third.room));
        const behind = await cluster.replicaOf(master);
        await cluster.cutReplication(behind);
        resetsBefore = rooms.map((room) => workload.checker.resetsIn(room));
        await sleep(400);
        const offsetKey = `plaza:{${third.room}}:offset`;
        await cluster.admin(behind.port).call('READONLY'); // a replica answers reads only after this
        lost = Number(await cluster.admin(master.port).get(offsetKey)) - Number(await cluster.admin(behind.port).get(offsetKey));
        log.push(`cut ${behind.port} off, killed ${master.port} ${lost} writes ahead`);
        await cluster.kill(master.port);
        await cluster.newMasterOf(roomSlot(third.room), master);
        await cluster.restoreReplication(behind);
        await churn(1500);
      } finally {
        await workload.stop();
      }
      await workload.settle(nodes[0]!.ws, 30_000);
      workload.checker.assertClean(seed);
      assert.ok(lost > 0, `seed ${seed}: the frozen replica missed ${lost} writes (the test must lose some to prove anything)`);
      assert.notEqual(await epochOf(placed[2]!.room), epochs.get(placed[2]!.room), 'the room that lost writes lives on under a new epoch');
      assert.ok(workload.checker.resets > 0, 'members of rooms whose master changed were told');
      const resetsAfter = rooms.map((room) => workload.checker.resetsIn(room));
      assert.deepEqual(resetsAfter.slice(0, 2), resetsBefore.slice(0, 2), 'the killed master\'s failover reset no room of another shard');
      assert.ok(resetsAfter[2]! > resetsBefore[2]!, 'it reset the room it served');
      assert.ok(workload.acked > 100, `seed ${seed}: only ${workload.acked} of ${workload.published} publishes were acked`);
      t.diagnostic(`seed ${seed}: ${workload.published} published, ${workload.acked} acked, ${workload.checker.deliveries} deliveries, ${workload.checker.resets} resets, ${lost} acknowledged writes lost by the failover`);
    } catch (error) {
      throw new Error(`${(error as Error).message}\nfaults: ${log.join(', ')}`);
    } finally {
      await workload.close();
    }
  });
});
