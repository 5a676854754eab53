/**
 * The bounds of the SSE transport, each through the real path: a slow reader is cut at
 * --max-buffered with a last event naming why, streams count in --max-connections and
 * --max-connections-per-ip with WebSockets, requests are rate-limited like frames, requests
 * waiting behind a slow join are bounded (429), a stream that keeps erring is ended (1008), and
 * the table of streams holds only open ones.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Plaza } from '../../src/server/plaza.js';
import { gate, listening } from '../helpers/library.js';
import { metric } from '../helpers/metrics.mjs';
import { connect, startPlaza, wsUrl } from '../helpers/plaza.js';
import { httpSend, SseClient } from '../helpers/sse-client.js';
import { V1Client } from '../helpers/v1.js';

const sseUrl = (plaza: Plaza, query = '') => `http://127.0.0.1:${plaza.port}/sse${query}`;

async function withServer(plaza: Plaza, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } finally {
    await plaza.close();
  }
}

describe('SSE bounds', () => {
  it('cuts a reader that stops reading at --max-buffered, with a close event 1013 at the end of what it was sent', async () => {
    const plaza = await startPlaza({ maxPayload: 16 * 1024, maxBuffered: 64 * 1024, rateLimit: 0 });
    await withServer(plaza, async () => {
      const slow = await SseClient.open(sseUrl(plaza, '?room=flood'));
      await slow.next((e) => e.type === 'joined');
      slow.pause();
      const writer = await V1Client.open(wsUrl(plaza));
      await writer.request({ type: 'join', room: 'flood' });
      const data = 'x'.repeat(8000);
      for (let i = 0; i < 4000 && (await metric(plaza, 'plaza_slow_consumer_drops_total')) === 0; i += 100) {
        for (let j = 0; j < 100; j++) writer.send({ type: 'publish', room: 'flood', data });
        await writer.request({ type: 'publish', room: 'flood', data: 'mark' });
      }
      assert.equal(await metric(plaza, 'plaza_slow_consumer_drops_total'), 1);
      slow.resume();
      const last = await slow.next((e) => e.type === 'close', 10_000);
      assert.deepEqual([last.code, last.reason], [1013, 'too slow: messages were piling up']);
      await slow.until(() => slow.ended, 5000, 'the end of the response');
      assert.equal(slow.envelopes().at(-1)!.type, 'close');
      for (let tries = 0; (await metric(plaza, 'plaza_connections{protocol="sse"}')) !== 0; tries++) {
        assert.ok(tries < 100, 'the stream is gone from the server');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await writer.close();
    });
  });

  it('counts streams in --max-connections with WebSockets', async () => {
    const plaza = await startPlaza({ maxConnections: 2 });
    await withServer(plaza, async () => {
      const ws = await connect(wsUrl(plaza), 'plaza.v1');
      const stream = await SseClient.open(sseUrl(plaza));
      await stream.welcome();
      const refused = await httpSend(sseUrl(plaza));
      assert.deepEqual([refused.status, refused.json?.error?.code, refused.headers['retry-after']], [503, 'unavailable', '10']);
      await assert.rejects(connect(wsUrl(plaza), 'plaza.v1'));
      assert.equal(plaza.connectionCount, 2);
      assert.equal(await metric(plaza, 'plaza_connections_by_transport{transport="sse"}'), 1);
      assert.equal(await metric(plaza, 'plaza_connections_by_transport{transport="websocket"}'), 1);
      stream.close();
      await ws.close();
    });
  });

  it('counts streams in --max-connections-per-ip', async () => {
    const plaza = await startPlaza({ maxConnectionsPerIp: 1 });
    await withServer(plaza, async () => {
      const stream = await SseClient.open(sseUrl(plaza));
      await stream.welcome();
      const refused = await httpSend(sseUrl(plaza));
      assert.deepEqual([refused.status, refused.json?.error?.code], [429, 'rate_limited']);
      // POSTs to an open stream are no new connection.
      assert.equal((await stream.post([{ type: 'hello' }])).status, 204);
      stream.close();
    });
  });

  it('rate-limits the lines of POSTs like frames, and ends a stream that keeps erring with 1008', async () => {
    const plaza = await startPlaza({ rateLimit: 1, rateBurst: 2 });
    await withServer(plaza, async () => {
      const stream = await SseClient.open(sseUrl(plaza));
      await stream.post([1, 2, 3, 4].map((id) => ({ type: 'hello', id })));
      await stream.next((e) => e.type === 'error' && e.id === 4);
      assert.deepEqual(stream.envelopes().map((e) => [e.type, e.id ?? null]), [['welcome', null], ['welcome', 1], ['welcome', 2], ['error', 3], ['error', 4]]);
      assert.equal(stream.envelopes()[3]!.code, 'rate_limited');
      const erring = await SseClient.open(sseUrl(plaza));
      await erring.post(Array.from({ length: 30 }, () => 'not json').join('\n'));
      const last = await erring.next((e) => e.type === 'close');
      assert.deepEqual([last.code, last.reason], [1008, 'too many bad requests']);
      // Gone from the table: its id finds nothing any more.
      const url = await erring.postUrl();
      await erring.until(() => erring.ended, 3000, 'the end');
      const after = await httpSend(url, { method: 'POST', body: '{"type":"hello"}' });
      assert.deepEqual([after.status, after.json?.error?.code], [404, 'unknown_stream']);
      stream.close();
    });
  });

  it('answers 429 while too many requests wait behind a slow join, and takes them again once it is answered', async () => {
    const slowJoin = gate();
    const plaza = await listening({ onJoin: async () => slowJoin.promise });
    await withServer(plaza, async () => {
      const stream = await SseClient.open(sseUrl(plaza));
      assert.equal((await stream.post([{ type: 'join', id: 'j', room: 'slow' }])).status, 204);
      const lines = Array.from({ length: 100 }, (_, i) => ({ type: 'publish', id: i, room: 'slow', data: i }));
      assert.equal((await stream.post(lines)).status, 204);
      const refused = await stream.post([{ type: 'hello', id: 'later' }], { seq: 3 });
      assert.deepEqual([refused.status, refused.json?.error?.code, refused.headers['retry-after']], [429, 'rate_limited', '1']);
      slowJoin.open();
      await stream.next((e) => e.type === 'ack' && e.id === 99);
      assert.equal((await stream.post([{ type: 'hello', id: 'later' }], { seq: 3 })).status, 204);
      await stream.next((e) => e.type === 'welcome' && e.id === 'later');
      stream.close();
    });
  });
});
