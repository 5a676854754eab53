/**
 * The client's server-sent-events transport (src/client/sse.ts) through the real path: Plaza's
 * built client against a real Plaza, over `transports: ['sse']`. What a WebSocket gives the
 * client for free must hold here too: a stream that goes silent while it looks open is given up
 * after 2.5 heartbeats and resumed; a stream the server ends carries its close code (4004: the
 * token expired; 4003 for a token refused up front, as a 401); and requests written together are
 * POSTed in bodies no larger than the server's maxPayload, so a burst is never refused as
 * too large.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { signToken } from '../../src/server/access/tokens.js';
import type { Plaza } from '../../src/server/plaza.js';
import { startPlaza } from '../helpers/plaza.js';
import { until } from '../helpers/wait.mjs';
import { clientPool, type Client } from '../helpers/plaza-client.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { firstJoin } from '../helpers/workload.js';

const SECRET = 'sse-transport-test-secret-0123456789abcdef';

describe('the SSE transport of Plaza\'s client', { timeout: 30_000 }, () => {
  const pool = clientPool({ minDelay: 20, maxDelay: 200, transports: ['sse'] });
  const servers: Plaza[] = [];
  const proxies: TcpProxy[] = [];
  after(async () => {
    pool.closeAll();
    await Promise.all(proxies.map((p) => p.close()));
    await Promise.all(servers.map((s) => s.close()));
  });
  const start = async (options: Parameters<typeof startPlaza>[0]) => {
    const plaza = await startPlaza({ rateLimit: 0, ...options });
    servers.push(plaza);
    return plaza;
  };

  it('gives up a stream that goes silent while it looks open (2.5 heartbeats), then resumes what it missed', async () => {
    const plaza = await start({ heartbeatMs: 200 });
    const proxy = await TcpProxy.start(plaza.port);
    proxies.push(proxy);
    // connectTimeout bounds the wait for a new stream, or a POST's answer, on a pooled
    // keep-alive connection that froze with the rest.
    const client = await pool.connect(proxy.url, { name: 'frozen', connectTimeout: 1000 });
    const closes: Client.CloseInfo[] = [];
    client.on('close', (info) => closes.push(info));
    const room = client.join('quiet');
    const seen: string[] = [];
    room.on('message', (data) => seen.push(String(data)));
    await firstJoin(room);
    const publisher = await pool.connect(`ws://127.0.0.1:${plaza.port}/`, { transports: ['websocket'] });
    const other = publisher.join('quiet');
    await firstJoin(other);
    await other.publish('before');
    await until(() => seen.length === 1, 5000, 'the first message');
    // The link stays open and carries nothing: no error, no end of stream, only silence.
    proxy.freeze();
    await other.publish('while frozen');
    await until(() => closes.some((c) => c.reason === 'heartbeat timeout'), 5000, 'the watchdog to give the stream up');
    await until(() => client.status === 'open' && seen.length === 2, 10_000, 'the resume');
    assert.deepEqual(seen, ['before', 'while frozen']);
    assert.equal(client.transport, 'sse');
  });

  it('stops with token_expired when the server ends the stream with 4004, and with unauthorized when it refuses the token (401)', async () => {
    const plaza = await start({ authSecret: SECRET });
    const url = `ws://127.0.0.1:${plaza.port}/`;
    const token = (exp: number) => signToken({ sub: 'ada', name: 'Ada', rooms: '*', exp: Math.floor(Date.now() / 1000) + exp } as never, SECRET);

    const expiring = await pool.connect(url, { token: token(2) });
    const expired = new Promise<Client.PlazaError>((resolve) => expiring.on('error', resolve));
    const closes: Client.CloseInfo[] = [];
    expiring.on('close', (info) => closes.push(info));
    await firstJoin(expiring.join('r'));
    assert.equal(expiring.transport, 'sse');
    assert.equal((await expired).code, 'token_expired');
    assert.equal(closes.at(-1)?.code, 4004);
    assert.equal(expiring.status, 'closed');

    const refused = await pool.connect(url, { token: token(-5) });
    const error = await new Promise<Client.PlazaError>((resolve) => refused.on('error', resolve));
    assert.equal(error.code, 'unauthorized');
    assert.equal(refused.status, 'closed');
  });

  it('POSTs a burst in bodies within the server\'s maxPayload: every publish acked, no link refused', async () => {
    const plaza = await start({ maxPayload: 2048 });
    const client = await pool.connect(`ws://127.0.0.1:${plaza.port}/`);
    const closes: Client.CloseInfo[] = [];
    client.on('close', (info) => closes.push(info));
    const room = client.join('burst');
    const seen: string[] = [];
    room.on('message', (data) => seen.push(String(data)));
    await firstJoin(room);
    // 200 publishes of ~300 bytes written at once: ~60 KiB, thirty times the server's limit.
    const texts = Array.from({ length: 200 }, (_, i) => `${i}:${'x'.repeat(300)}`);
    const acks = await Promise.all(texts.map((text) => room.publish(text)));
    assert.deepEqual(acks.map((a) => a.offset), texts.map((_, i) => i + 1), 'acked in order, once each');
    await until(() => seen.length === texts.length, 5000, 'every message back');
    assert.deepEqual(seen, texts);
    assert.deepEqual(closes, [], 'no POST was refused, so the link never dropped');
  });
});
