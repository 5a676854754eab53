/**
 * SSE in a cluster without sticky sessions: two nodes joined through the real Redis, behind a
 * real HTTP proxy that refuses WebSocket upgrades and spreads every request at random over both
 * (test/helpers/http-proxy.ts). POSTs that land on the node without the stream are carried to the
 * one that holds it and answered there, in order.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { Plaza } from '../../src/server/plaza.js';
import { REDIS_URL, skipWithoutRedis } from '../helpers/cluster.js';
import { HttpProxy } from '../helpers/http-proxy.js';
import { metric } from '../helpers/metrics.mjs';
import { startPlaza } from '../helpers/plaza.js';
import { httpSend, SseClient } from '../helpers/sse-client.js';

describe('SSE in a cluster behind a load balancer without sticky sessions', { skip: skipWithoutRedis() }, () => {
  let nodes: Plaza[];
  let proxy: HttpProxy;
  const room = `sse-cluster-${Date.now().toString(36)}`;
  const clients: SseClient[] = [];
  const open = async (query = '', headers: Record<string, string> = {}) => {
    const client = await SseClient.open(`${proxy.origin}/sse${query}`, headers);
    clients.push(client);
    return client;
  };

  before(async () => {
    nodes = [await startPlaza({ redis: REDIS_URL, sseRelayTimeout: 500, sseMaxRelays: 2 }), await startPlaza({ redis: REDIS_URL, sseRelayTimeout: 500, sseMaxRelays: 2 })];
    proxy = await HttpProxy.start({ targets: nodes.map((node) => node.port), upgrades: 'refuse', seed: 7 });
  });
  after(async () => {
    for (const client of clients) client.close();
    await proxy.close();
    await Promise.all(nodes.map((node) => node.close()));
  });

  it('takes every POST in order whichever node it lands on, and delivers on both nodes', async () => {
    const writer = await open(`?room=${room}`);
    const reader = await open(`?room=${room}`);
    await writer.next((e) => e.type === 'joined');
    await reader.next((e) => e.type === 'joined');
    const count = 30;
    for (let n = 1; n <= count; n++) {
      const answer = await writer.post([{ type: 'publish', id: n, room, data: n }]);
      assert.equal(answer.status, 204, JSON.stringify(answer.json));
    }
    await writer.next((e) => e.type === 'ack' && e.id === count, 10_000);
    const acks = writer.envelopes().filter((e) => e.type === 'ack');
    assert.deepEqual(acks.map((e) => e.id), Array.from({ length: count }, (_, i) => i + 1));
    const offsets = acks.map((e) => e.offset as number);
    assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b));
    await reader.until(() => reader.envelopes().filter((e) => e.type === 'message').length === count, 10_000, 'every message');
    assert.deepEqual(reader.envelopes().filter((e) => e.type === 'message').map((e) => e.data), Array.from({ length: count }, (_, i) => i + 1));
    // Both nodes took requests, and POSTs were carried between them.
    for (const node of nodes) assert.ok((proxy.sent.get(node.port) ?? 0) > 0);
    const relayed = (await metric(nodes[0]!, 'plaza_sse_relayed_posts_total')) + (await metric(nodes[1]!, 'plaza_sse_relayed_posts_total'));
    assert.ok(relayed > 0, 'some POSTs were carried to the other node');
  });

  it('keeps Plaza-Seq order across nodes: a POST ahead of its turn is 409 wherever it lands, a repeat is a duplicate', async () => {
    const client = await open();
    const url = await client.postUrl();
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await httpSend(url, { method: 'POST', headers: { 'Plaza-Seq': '2' }, body: '{"type":"hello"}' }));
    assert.ok(answers.every((a) => a.status === 409 && a.headers['plaza-seq-expected'] === '1'));
    for (let i = 0; i < 6; i++) {
      const answer = await httpSend(url, { method: 'POST', headers: { 'Plaza-Seq': '1' }, body: '{"type":"hello","id":"once"}' });
      assert.equal(answer.status, 204);
      assert.equal(answer.headers['plaza-seq-duplicate'], i === 0 ? undefined : 'true');
    }
    await client.next((e) => e.type === 'welcome' && e.id === 'once');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(client.envelopes().filter((e) => e.type === 'welcome' && e.id === 'once').length, 1);
  });

  it('answers 404 for a stream of a node that is gone, and 503 when its node does not answer in time or too many wait', async () => {
    const gone = await httpSend(`${proxy.origin}/sse/nodeGone1.AAAAAAAAAAAAAAAAAAAAAA`, { method: 'POST', body: '{"type":"hello"}' });
    assert.deepEqual([gone.status, gone.json?.error?.code], [404, 'unknown_stream']);
    // Something listens on a node's channel and never answers: the relay's timeout and bound.
    const silent = new Redis(REDIS_URL);
    try {
      await silent.subscribe('plaza:sse:silentNode');
      const post = () => httpSend(`http://127.0.0.1:${nodes[0]!.port}/sse/silentNode.AAAAAAAAAAAAAAAAAAAAAA`, { method: 'POST', body: '{"type":"hello"}' });
      const started = Date.now();
      const waiting = [post(), post()];
      await new Promise((resolve) => setTimeout(resolve, 100));
      const third = await post();
      assert.deepEqual([third.status, third.json?.error?.code], [503, 'unavailable'], 'past --sse-max-relays at once');
      assert.ok(Date.now() - started < 450, 'refused without waiting');
      for (const answer of await Promise.all(waiting)) {
        assert.deepEqual([answer.status, answer.json?.error?.code, answer.headers['retry-after']], [503, 'unavailable', '1']);
      }
      assert.ok(Date.now() - started >= 450, 'waited --sse-relay-timeout');
      assert.ok((await metric(nodes[0]!, 'plaza_sse_relay_failures_total')) >= 3);
    } finally {
      silent.disconnect();
    }
  });

  it('resumes a bare EventSource reconnect on either node from Last-Event-ID', async () => {
    const resumeRoom = `${room}-resume`;
    const first = await open(`?room=${resumeRoom}`);
    await first.next((e) => e.type === 'joined');
    await first.post([1, 2].map((n) => ({ type: 'publish', id: n, room: resumeRoom, data: n })));
    await first.next((e) => e.type === 'ack' && e.id === 2);
    await first.until(() => first.envelopes().filter((e) => e.type === 'message').length === 2, 5000, 'two messages');
    const cursor = first.lastEventId;
    first.close();
    const writer = await open(`?room=${resumeRoom}`);
    await writer.post([3, 4].map((n) => ({ type: 'publish', id: n, room: resumeRoom, data: n })));
    await writer.next((e) => e.type === 'ack' && e.id === 4);
    for (const node of nodes) {
      const again = await SseClient.open(`http://127.0.0.1:${node.port}/sse?room=${resumeRoom}`, { 'Last-Event-ID': cursor });
      clients.push(again);
      const joined = await again.next((e) => e.type === 'joined');
      assert.equal(joined.recovered, true);
      assert.deepEqual((joined.messages as Array<{ data: number }>).map((m) => m.data), [3, 4]);
    }
  });
});
