/**
 * SSE streams as operators see them: the log's open and close lines say the transport, the
 * status feed and /metrics count streams apart from WebSockets, the application's connect and
 * disconnect events fire, and POST /api/disconnect ends a stream (close event 4001).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StatusSnapshot } from '../../src/shared/status-snapshot.js';
import { createLogger } from '../../src/server/logger.js';
import { createPlaza } from '../../src/server/plaza.js';
import { metric } from '../helpers/metrics.mjs';
import { connect, wsUrl } from '../helpers/plaza.js';
import { until as eventually } from '../helpers/wait.mjs';
import { SseClient } from '../helpers/sse-client.js';

const API_KEY = 'observability-key-0123456789';

describe('SSE streams in logs, metrics, the status feed and events', () => {
  it('counts them by transport everywhere an operator looks', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', format: 'json', write: (line) => lines.push(line) });
    const plaza = createPlaza({ port: 0, host: '127.0.0.1', apiKey: API_KEY, status: true }, { logger });
    const events: string[] = [];
    plaza.on('connect', ({ client }) => events.push(`connect ${client.session}`));
    plaza.on('disconnect', ({ client }) => events.push(`disconnect ${client.session}`));
    await plaza.start();
    try {
      const ws = await connect(wsUrl(plaza), 'plaza.v1');
      const watcher = await SseClient.open(`${plaza.url}/sse?room=plaza:status`);
      const snapshot = (await watcher.next((e) => e.type === 'message', 5000)).data as StatusSnapshot;
      assert.deepEqual([snapshot.connections.total, snapshot.connections.v1, snapshot.connections.sse], [2, 1, 1]);
      assert.equal(await metric(plaza, 'plaza_connections_by_transport{transport="sse"}', { Authorization: `Bearer ${API_KEY}` }), 1);
      assert.equal(await metric(plaza, 'plaza_connects_total{protocol="sse"}', { Authorization: `Bearer ${API_KEY}` }), 1);
      const { session } = await watcher.welcome();
      const answer = await fetch(`${plaza.url}/api/disconnect`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ session, reason: 'maintenance' }),
      });
      assert.equal(answer.status, 200);
      const last = await watcher.next((e) => e.type === 'close');
      assert.deepEqual([last.code, last.reason], [4001, 'maintenance']);
      await eventually(() => events.includes(`disconnect ${session}`));
      assert.ok(events.includes(`connect ${session}`));
      await ws.close();
      await eventually(() => plaza.connectionCount === 0);
    } finally {
      await plaza.close();
    }
    const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const opens = logged.filter((l) => l.msg === 'connection open');
    const closes = logged.filter((l) => l.msg === 'connection closed');
    assert.deepEqual(opens.map((l) => l.transport).sort(), ['sse', 'websocket']);
    assert.deepEqual(closes.map((l) => l.transport).sort(), ['sse', 'websocket']);
    assert.equal(closes.find((l) => l.transport === 'sse')!.code, 4001);
  });
});
