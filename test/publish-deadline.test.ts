/**
 * The total deadline of a publish (issue #22, item 3) through Plaza's own client
 * (dist/public/plaza.mjs): past `publishTimeout`, a publish that was written and never answered
 * is not sent again; the client asks the server to settle its id (`withdraw`), and the publish
 * resolves with its place if it had been published, or rejects with `timeout`, which then means
 * for certain that it was not, and that no copy still on its way can be published any more.
 *
 * The publisher reaches the server through a TCP proxy: once the publish goes through and its ack
 * is dropped (it landed), once the publish is held by the network until the client gave up on
 * the link and withdrew it, and then delivered late on the old connection (a copy in flight).
 * On one server and on two cluster nodes on Redis, where the withdraw and the late copy reach
 * different nodes. helpers/exactly-once-checker.ts judges; a server that ignores withdrawals
 * fails it (noted in the report of the change that added this file).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { REDIS_URL, skipWithoutRedis, startNode, stopNode, type Node } from './helpers/cluster.js';
import { ExactlyOnceChecker } from './helpers/exactly-once-checker.js';
import { startPlaza, wsUrl } from './helpers/plaza.js';
import { until } from './helpers/wait.mjs';
import { clientPool, type Client } from './helpers/plaza-client.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { V1Client } from './helpers/v1.js';
import { sleep } from './helpers/workload.js';

/** Short, so a test waits it out quickly; the proxy's scenes last longer than it. */
const DEADLINE = 300;

const open: Array<{ close(): unknown }> = [];
after(async () => {
  for (const thing of open.reverse()) await thing.close();
});

function joinedOnce(room: Client.Room): Promise<void> {
  return new Promise((resolve, reject) => {
    const off = room.on('joined', () => (off(), resolve()));
    room.on('error', reject);
  });
}

interface Scene {
  /** The server the publisher's proxy leads to first. */
  port: number;
  /** Where the member listens, directly. */
  memberUrl: string;
  /** Called before each reconnect of the publisher: a cluster moves it to the other node. */
  move?: (proxy: TcpProxy) => void;
}

async function play(scene: Scene): Promise<{ checker: ExactlyOnceChecker; outcomes: Record<string, string> }> {
  const checker = new ExactlyOnceChecker();
  const outcomes: Record<string, string> = {};
  const proxy = await TcpProxy.start(scene.port);
  const pool = clientPool({ minDelay: 20, maxDelay: 100 });
  open.push(proxy, { close: () => pool.closeAll() });
  const name = `deadline-${Math.random().toString(36).slice(2, 10)}`;
  const publisherClient = await pool.connect(proxy.url, { publishTimeout: DEADLINE, ackTimeout: 30_000 });
  const publisher = publisherClient.join(name);
  await joinedOnce(publisher);
  const member = (await pool.connect(scene.memberUrl)).join(name);
  member.on('message', (data, meta) => checker.delivered('member', String(data), meta.epoch, meta.offset));
  publisher.on('message', (data, meta) => checker.delivered('publisher', String(data), meta.epoch, meta.offset));
  await joinedOnce(member);
  const publish = (data: string) => {
    checker.published(data);
    return publisher.publish(data).then(
      (ack) => {
        checker.settled(data, { ack });
        outcomes[data] = ack.duplicate ? 'duplicate' : 'ack';
      },
      (error: { code: string }) => {
        checker.settled(data, { rejected: error.code });
        outcomes[data] = error.code;
      },
    );
  };

  await publish('first');
  // Landed: the publish reaches the server, its ack (and the withdraw's answer) never come back.
  proxy.muteReplies();
  const landed = publish('landed');
  await sleep(DEADLINE * 2);
  scene.move?.(proxy);
  proxy.cut();
  await landed;

  // In flight: the network holds the publish (and the withdraw written after the deadline) while
  // the client gives up on the link and withdraws it on a new one; then the copy arrives late.
  await until(() => proxy.linkCount === 1 && publisherClient.status === 'open', 5000, 'the publisher back');
  proxy.hold();
  const held = publish('held');
  await sleep(DEADLINE * 2);
  scene.move?.(proxy);
  proxy.dropClientsOfHeld();
  await held;
  const answered = proxy.lateAnswers;
  proxy.release();
  // The server answered the late copy (to nobody): it was decided before 'last' is published.
  await until(() => proxy.lateAnswers > answered, 5000, 'the server answered the late copy');
  await sleep(100);

  await publish('last');
  await until(() => checker.deliveries >= 2 * 3, 5000, 'both members have first, landed and last');
  return { checker, outcomes };
}

describe('publishTimeout: a definite answer for a publish written and never answered (issue #22)', { timeout: 60_000 }, () => {
  it('one server: the landed one resolves with its place, the one in flight rejects with timeout and its late copy is refused', async () => {
    const plaza = await startPlaza({ rateLimit: 0 });
    open.push(plaza);
    const { checker, outcomes } = await play({ port: plaza.port, memberUrl: wsUrl(plaza) });
    checker.assertClean(0);
    assert.deepEqual(outcomes, { first: 'ack', landed: 'duplicate', held: 'timeout', last: 'ack' });
  });

  describe('two cluster nodes on Redis', { skip: skipWithoutRedis() }, () => {
    it('the withdraw on one node, the late copy on the other: still refused', async () => {
      const nodes: Node[] = [await startNode(REDIS_URL), await startNode(REDIS_URL)];
      const portOf = (node: Node) => Number(new URL(node.http).port);
      try {
        const { checker, outcomes } = await play({
          port: portOf(nodes[0]!),
          memberUrl: nodes[1]!.ws,
          move: (proxy) => (proxy.targetPort = proxy.targetPort === portOf(nodes[0]!) ? portOf(nodes[1]!) : portOf(nodes[0]!)),
        });
        checker.assertClean(0);
        assert.deepEqual(outcomes, { first: 'ack', landed: 'duplicate', held: 'timeout', last: 'ack' });
      } finally {
        await Promise.all(nodes.map((node) => stopNode(node)));
      }
    });

    it('plaza.v1: a withdraw on one node, then the same publishId on the other, is refused with withdrawn', async () => {
      const nodes: Node[] = [await startNode(REDIS_URL), await startNode(REDIS_URL)];
      try {
        const room = `withdraw-${Math.random().toString(36).slice(2, 10)}`;
        const [a, b] = [await V1Client.open(nodes[0]!.ws), await V1Client.open(nodes[1]!.ws)];
        open.push(a, b);
        await a.request({ type: 'join', room });
        await b.request({ type: 'join', room });
        assert.equal((await a.request({ type: 'withdraw', room, publishId: 'x.1' })).type, 'withdrawn');
        const refused = await b.request({ type: 'publish', room, data: 'late', publishId: 'x.1' });
        assert.equal(refused.code, 'withdrawn');
        const published = await b.request({ type: 'publish', room, data: 'kept', publishId: 'x.2' });
        const settled = await a.request({ type: 'withdraw', room, publishId: 'x.2' });
        assert.deepEqual([settled.type, settled.offset, settled.epoch, settled.duplicate], ['ack', published.offset, published.epoch, true]);
        assert.deepEqual(b.messages(room).map((m) => m.data), ['kept']);
      } finally {
        await Promise.all(nodes.map((node) => stopNode(node)));
      }
    });
  });
});

describe('withdraw in plaza.v1 on one server', () => {
  it('answers the first ack of a published id, withdraws an unknown one, and refuses its later publish', async () => {
    const plaza = await startPlaza({});
    open.push(plaza);
    const client = await V1Client.open(wsUrl(plaza));
    open.push(client);
    const room = 'r';
    assert.equal((await client.request({ type: 'withdraw', room, publishId: 'a.1' })).code, 'not_joined');
    await client.request({ type: 'join', room });
    const ack = await client.request({ type: 'publish', room, data: 'x', publishId: 'a.1' });
    const again = await client.request({ type: 'withdraw', room, publishId: 'a.1' });
    assert.deepEqual([again.type, again.offset, again.epoch, again.duplicate], ['ack', ack.offset, ack.epoch, true]);
    const gone = await client.request({ type: 'withdraw', room, publishId: 'a.2' });
    assert.deepEqual([gone.type, gone.room, gone.publishId], ['withdrawn', room, 'a.2']);
    assert.equal((await client.request({ type: 'withdraw', room, publishId: 'a.2' })).type, 'withdrawn', 'settled the same way twice');
    assert.equal((await client.request({ type: 'publish', room, data: 'late', publishId: 'a.2' })).code, 'withdrawn');
    assert.equal((await client.request({ type: 'withdraw', room })).code, 'bad_request');
    assert.deepEqual(client.messages(room).map((m) => m.data), ['x']);
  });

  it('with --publish-id-window 0 nothing can be withdrawn: bad_request, never a false "withdrawn"', async () => {
    const plaza = await startPlaza({ publishIdWindow: 0 });
    open.push(plaza);
    const client = await V1Client.open(wsUrl(plaza));
    open.push(client);
    await client.request({ type: 'join', room: 'r' });
    const answer = await client.request({ type: 'withdraw', room: 'r', publishId: 'a.1' });
    assert.equal(answer.code, 'bad_request');
  });
});
