/** /metrics: the exposition format itself, and numbers that move as real traffic flows. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import type { Plaza } from '../src/server/plaza.js';
import { escapeLabelValue, Exposition, formatValue } from '../src/server/http/prometheus.js';
import { connect, startPlaza, wsUrl, type TestClient } from './helpers/plaza.js';
import { V1Client } from './helpers/v1.js';
import { until } from './helpers/wait.mjs';

/** `name{labels}` → value; throws on any line that is not a comment or a well-formed sample. */
function parse(text: string): Map<string, number> {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a line feed');
  const samples = new Map<string, number>();
  const typed = new Set<string>();
  for (const line of text.slice(0, -1).split('\n')) {
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$/.exec(line);
    if (type) {
      assert.ok(!typed.has(type[1]!), `${type[1]} is typed once`);
      typed.add(type[1]!);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* \S/.test(line)) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (\S+)$/.exec(line);
    assert.ok(sample, `not a valid exposition line: ${JSON.stringify(line)}`);
    assert.ok(typed.has(sample[1]!), `${sample[1]} has a TYPE line before its samples`);
    const value = Number(sample[3]);
    assert.ok(!Number.isNaN(value), `value of ${line}`);
    samples.set(`${sample[1]}${sample[2] ?? ''}`, value);
  }
  return samples;
}

async function scrape(plaza: Plaza, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const response = await fetch(`${plaza.url}/metrics`, { headers });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  return parse(await response.text());
}

function value(samples: Map<string, number>, key: string): number {
  const found = samples.get(key);
  assert.notEqual(found, undefined, `${key} is exposed`);
  return found!;
}

/** Sends `text` and resolves with the first envelope of `type` that follows. */
async function send(client: V1Client, text: string, type: string): Promise<number> {
  const from = client.client.received.length;
  client.send(text);
  await client.waitFor((e) => e.type === type, 5000, from);
  return Buffer.byteLength(text);
}

describe('Prometheus exposition', () => {
  it('escapes backslashes, quotes and line feeds in label values', () => {
    assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
    const text = new Exposition().counter('x_total', 'help with \\ and\nnewline', [{ labels: { code: 'we"ird\n' }, value: 3 }]).text();
    assert.equal(text, '# HELP x_total help with \\\\ and\\nnewline\n# TYPE x_total counter\nx_total{code="we\\"ird\\n"} 3\n');
    parse(text);
  });

  it('writes special values the way Prometheus reads them', () => {
    assert.deepEqual([NaN, Infinity, -Infinity, 0.25, 12].map(formatValue), ['NaN', '+Inf', '-Inf', '0.25', '12']);
  });

  it('writes HELP and TYPE even for a family without samples', () => {
    assert.equal(new Exposition().gauge('g', 'none yet', []).text(), '# HELP g none yet\n# TYPE g gauge\n');
  });
});

describe('/metrics', () => {
  describe('without an API key', () => {
    let plaza: Plaza;
    before(async () => {
      plaza = await startPlaza({ historySize: 10 });
    });
    after(() => plaza.close());

    it('exposes every metric, each family once', async () => {
      const samples = await scrape(plaza);
      for (const name of [
        'plaza_connections{protocol="plain"}', 'plaza_connections{protocol="v1"}', 'plaza_connects_total{protocol="plain"}',
        'plaza_connects_total{protocol="v1"}', 'plaza_messages_in_total', 'plaza_bytes_in_total', 'plaza_messages_published_total',
        'plaza_deliveries_total', 'plaza_bytes_out_total', 'plaza_socket_writes_total', 'plaza_slow_consumer_drops_total',
        'plaza_rate_limited_total', 'plaza_auth_failures_total', 'plaza_rooms', 'plaza_history_rooms', 'plaza_history_entries',
        'plaza_history_bytes', 'plaza_ready', 'nodejs_eventloop_lag_p50_seconds', 'nodejs_eventloop_lag_p99_seconds',
        'nodejs_eventloop_lag_max_seconds', 'process_resident_memory_bytes', 'nodejs_heap_used_bytes', 'process_cpu_seconds_total',
        'process_start_time_seconds',
      ]) {
        value(samples, name);
      }
      assert.equal(value(samples, 'plaza_ready'), 1);
      assert.ok(value(samples, 'process_resident_memory_bytes') > 1024 * 1024);
      assert.ok(value(samples, 'nodejs_heap_used_bytes') > 0);
      assert.ok(value(samples, 'process_cpu_seconds_total') > 0);
    });

    it('counts connections, messages, bytes, deliveries and history as traffic flows', async () => {
      const before = await scrape(plaza);
      const delta = (now: Map<string, number>, key: string) => value(now, key) - (before.get(key) ?? 0);
      const a = await V1Client.open(wsUrl(plaza));
      const b = await V1Client.open(wsUrl(plaza));
      const plain = await connect(wsUrl(plaza));
      let bytesIn = 0;
      try {
        bytesIn += await send(a, '{"type":"join","room":"m-room"}', 'joined');
        bytesIn += await send(a, '{"type":"join","room":"lobby"}', 'joined');
        bytesIn += await send(b, '{"type":"join","room":"m-room"}', 'joined');
        for (let n = 0; n < 3; n++) bytesIn += await send(a, `{"type":"publish","id":${n},"room":"m-room","data":${n}}`, 'ack');
        await b.waitForMessages(3, 'm-room');
        plain.send('hello from plain');
        bytesIn += Buffer.byteLength('hello from plain');
        await a.waitForMessages(1, 'lobby');
        await plain.waitFor(1);

        const during = await scrape(plaza);
        assert.equal(value(during, 'plaza_connections{protocol="v1"}'), 2);
        assert.equal(value(during, 'plaza_connections{protocol="plain"}'), 1);
        assert.equal(delta(during, 'plaza_connects_total{protocol="v1"}'), 2);
        assert.equal(delta(during, 'plaza_connects_total{protocol="plain"}'), 1);
        assert.equal(delta(during, 'plaza_messages_in_total'), 7);
        assert.equal(delta(during, 'plaza_bytes_in_total'), bytesIn);
        assert.equal(delta(during, 'plaza_messages_published_total'), 4);
        // 3 publishes × 2 members of m-room, then the plain text to lobby's plain and v1 member.
        assert.equal(delta(during, 'plaza_deliveries_total'), 8);
        assert.ok(delta(during, 'plaza_bytes_out_total') > bytesIn);
        assert.ok(delta(during, 'plaza_socket_writes_total') >= 3);
        assert.equal(value(during, 'plaza_rooms'), 2);
        assert.equal(delta(during, 'plaza_history_entries'), 4);
        assert.equal(value(during, 'plaza_history_rooms'), 2);
        assert.ok(delta(during, 'plaza_history_bytes') > 0);
      } finally {
        await Promise.all([a.close(), b.close(), plain.close()]);
      }
      await until(() => plaza.connectionCount === 0);
      const afterwards = await scrape(plaza);
      assert.equal(value(afterwards, 'plaza_connections{protocol="v1"}'), 0);
      assert.equal(value(afterwards, 'plaza_connections{protocol="plain"}'), 0);
      // ws's close() without a code sends none, which the server reads as 1005.
      assert.equal(delta(afterwards, 'plaza_disconnects_total{code="1005"}'), 3);
      assert.equal(value(afterwards, 'plaza_rooms'), 0);
    });

    it('counts protocol errors by code and refused upgrades by status', async () => {
      const client = await V1Client.open(wsUrl(plaza));
      try {
        await send(client, 'not json', 'error');
        await send(client, '{"type":"publish","room":"nowhere","data":1}', 'error');
        await send(client, '{"type":"publish","room":"nowhere","data":2}', 'error');
      } finally {
        await client.close();
      }
      const refused = new WebSocket(wsUrl(plaza, '/elsewhere'));
      refused.on('error', () => {});
      await new Promise((resolve) => refused.on('unexpected-response', resolve));
      refused.terminate();
      const samples = await scrape(plaza);
      assert.equal(value(samples, 'plaza_protocol_errors_total{code="bad_json"}'), 1);
      assert.equal(value(samples, 'plaza_protocol_errors_total{code="not_joined"}'), 2);
      assert.equal(value(samples, 'plaza_upgrade_rejections_total{status="404"}'), 1);
    });

    it('reports event-loop delay since the previous scrape', async () => {
      await scrape(plaza);
      // Node forgets the previous sample time on reset, so a stall within the first sampling
      // interval (10 ms) after a scrape is not seen; wait that out.
      await new Promise((resolve) => setTimeout(resolve, 30));
      const blockedUntil = Date.now() + 80;
      while (Date.now() < blockedUntil) {
        // The server shares this process: this is its event loop stalling.
      }
      await new Promise((resolve) => setTimeout(resolve, 30));
      const stalled = await scrape(plaza);
      assert.ok(value(stalled, 'nodejs_eventloop_lag_max_seconds') >= 0.06, `max ${stalled.get('nodejs_eventloop_lag_max_seconds')}`);
      // Were the stall remembered, no later scrape could read under it. Scrapes follow until one
      // reads calm: on a busy machine an interval may have a stall of its own, which is no fault.
      const calmReadings: number[] = [];
      for (let deadline = Date.now() + 5000; Date.now() < deadline; ) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        const calm = value(await scrape(plaza), 'nodejs_eventloop_lag_max_seconds');
        calmReadings.push(calm);
        if (calm < 0.06) break;
      }
      assert.ok(calmReadings.at(-1)! < 0.06, `the stall is forgotten after a scrape; read ${calmReadings.join(', ')} s`);
    });

    it('answers 405 to anything but GET and HEAD', async () => {
      const response = await fetch(`${plaza.url}/metrics`, { method: 'POST' });
      assert.equal(response.status, 405);
      assert.equal(response.headers.get('allow'), 'GET, HEAD');
      assert.equal((await fetch(`${plaza.url}/metrics`, { method: 'HEAD' })).status, 200);
    });
  });

  describe('with an API key', () => {
    const key = 'metrics-key-0123456789';
    let plaza: Plaza;
    before(async () => {
      plaza = await startPlaza({ apiKey: key });
    });
    after(() => plaza.close());

    it('asks for the key as a Bearer token', async () => {
      const missing = await fetch(`${plaza.url}/metrics`);
      assert.equal(missing.status, 401);
      assert.equal(missing.headers.get('www-authenticate'), 'Bearer realm="plaza"');
      assert.equal((await fetch(`${plaza.url}/metrics?key=${key}`)).status, 401, 'not in the URL: scrape configs send headers');
      assert.equal((await fetch(`${plaza.url}/metrics`, { headers: { authorization: 'Bearer nope' } })).status, 401);
      const samples = await scrape(plaza, { authorization: `Bearer ${key}` });
      assert.equal(value(samples, 'plaza_auth_failures_total'), 3);
    });

    it('counts API requests by status', async () => {
      const headers = { authorization: `Bearer ${key}` };
      await fetch(`${plaza.url}/api/rooms`, { headers });
      await fetch(`${plaza.url}/api/rooms`, { headers });
      await fetch(`${plaza.url}/api/nope`, { headers });
      const samples = await scrape(plaza, headers);
      assert.equal(value(samples, 'plaza_api_requests_total{status="200"}'), 2);
      assert.equal(value(samples, 'plaza_api_requests_total{status="404"}'), 1);
    });
  });

  describe('clients', () => {
    it('keeps plaza_connections equal to the open sockets through churn', async () => {
      const plaza = await startPlaza();
      const clients: TestClient[] = [];
      try {
        for (let i = 0; i < 5; i++) clients.push(await connect(wsUrl(plaza), i % 2 ? 'plaza.v1' : undefined));
        await clients[0]!.close();
        await clients[1]!.close();
        await until(() => plaza.connectionCount === 3);
        const samples = await scrape(plaza);
        assert.equal(value(samples, 'plaza_connections{protocol="plain"}') + value(samples, 'plaza_connections{protocol="v1"}'), 3);
        assert.equal(value(samples, 'plaza_connections{protocol="v1"}'), 1);
      } finally {
        await Promise.all(clients.map((c) => c.close()));
        await plaza.close();
      }
    });
  });
});
