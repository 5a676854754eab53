/**
 * --trust-proxy: X-Forwarded-For / Forwarded name the client only when the TCP peer is a listed
 * proxy, and then only the rightmost hop that is not itself a trusted proxy. 127.0.0.1 and
 * 127.0.0.2 are both this machine, so one test plays the proxy and a direct client.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { AUTH_FAILURE_BURST } from '../../src/server/bounds.js';
import { clientAddressOf, parseTrustedProxies } from '../../src/server/access/client-address.js';
import { resolveOptions } from '../../src/server/config.js';
import { createLogger } from '../../src/server/logger.js';
import { createPlaza, type Plaza } from '../../src/server/plaza.js';
import type { PlazaOptions } from '../../src/server/config.js';
import { TestClient } from '../helpers/plaza.js';

const PROXY = '127.0.0.2';
const DIRECT = '127.0.0.1';
const KEY = 'operator-key-0123456789abcdef';

async function withLoggedPlaza(options: Partial<PlazaOptions>, body: (plaza: Plaza, log: () => Array<Record<string, unknown>>) => Promise<void>) {
  const lines: string[] = [];
  const plaza = createPlaza(
    { port: 0, host: '127.0.0.1', ...options },
    { logger: createLogger({ level: 'info', format: 'json', write: (line) => lines.push(line) }) },
  );
  await plaza.start();
  try {
    await body(plaza, () => lines.map((line) => JSON.parse(line) as Record<string, unknown>));
  } finally {
    await plaza.close();
  }
}

/** A WebSocket from `localAddress` with extra headers; resolves open, or rejects with the status. */
async function open(plaza: Plaza, localAddress: string, headers: Record<string, string>): Promise<TestClient> {
  const ws = new WebSocket(`ws://127.0.0.1:${plaza.port}/`, { localAddress, headers });
  const client = new TestClient(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      reject(new Error(String(res.statusCode)));
    });
  });
  return client;
}

/** The status of GET `path` sent from `localAddress`. */
function get(plaza: Plaza, path: string, localAddress: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: plaza.port, path, localAddress, headers, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

const remotesOf = (log: Array<Record<string, unknown>>) => log.filter((l) => l.msg === 'connection open').map((l) => l.remote);

describe('client address', () => {
  it('ignores X-Forwarded-For by default: the TCP peer is the client', async () => {
    await withLoggedPlaza({ maxConnectionsPerIp: 1 }, async (plaza, log) => {
      const first = await open(plaza, PROXY, { 'X-Forwarded-For': '203.0.113.1' });
      await assert.rejects(open(plaza, PROXY, { 'X-Forwarded-For': '203.0.113.2' }), /429/, 'a forged header does not make a new client');
      assert.deepEqual(remotesOf(log()), [PROXY]);
      await first.close();
    });
  });

  it('takes the client from a trusted proxy, and per-IP limits count clients, not the proxy', async () => {
    await withLoggedPlaza({ trustProxy: [PROXY], maxConnectionsPerIp: 1 }, async (plaza, log) => {
      const a = await open(plaza, PROXY, { 'X-Forwarded-For': '203.0.113.1' });
      const b = await open(plaza, PROXY, { 'X-Forwarded-For': '203.0.113.2' });
      await assert.rejects(open(plaza, PROXY, { 'X-Forwarded-For': '203.0.113.1' }), /429/, 'the same client through the proxy is limited');
      // The client wrote the left part; the proxy appended the address it saw: that one counts.
      const c = await open(plaza, PROXY, { 'X-Forwarded-For': '203.0.113.2, 198.51.100.7' });
      assert.deepEqual(remotesOf(log()), ['203.0.113.1', '203.0.113.2', '198.51.100.7']);
      await Promise.all([a.close(), b.close(), c.close()]);
    });
  });

  it('never believes a forged header from a peer that is not a trusted proxy', async () => {
    await withLoggedPlaza({ trustProxy: [PROXY], maxConnectionsPerIp: 1 }, async (plaza, log) => {
      const direct = await open(plaza, DIRECT, { 'X-Forwarded-For': '203.0.113.9' });
      await assert.rejects(open(plaza, DIRECT, { 'X-Forwarded-For': '203.0.113.10' }), /429/);
      assert.deepEqual(remotesOf(log()), [DIRECT]);
      await direct.close();
    });
  });

  it('keeps the wrong-key limiter per client behind the proxy, and per peer for everyone else', async () => {
    await withLoggedPlaza({ trustProxy: [PROXY], apiKey: KEY }, async (plaza, log) => {
      for (let i = 0; i < AUTH_FAILURE_BURST; i++) {
        // A direct client rotating forged addresses still spends one allowance: its own.
        assert.equal(await get(plaza, '/api/rooms', DIRECT, { authorization: `Bearer guess${i}`, 'x-forwarded-for': `192.0.2.${i}` }), 401);
        assert.equal(await get(plaza, '/api/rooms', PROXY, { authorization: `Bearer guess${i}`, 'x-forwarded-for': '203.0.113.5' }), 401);
      }
      assert.equal(await get(plaza, '/api/rooms', DIRECT, { authorization: `Bearer ${KEY}`, 'x-forwarded-for': '192.0.2.200' }), 429);
      assert.equal(await get(plaza, '/api/rooms', PROXY, { authorization: `Bearer ${KEY}`, 'x-forwarded-for': '203.0.113.5' }), 429);
      assert.equal(await get(plaza, '/api/rooms', PROXY, { authorization: `Bearer ${KEY}`, 'x-forwarded-for': '203.0.113.6' }), 200, 'other clients of the proxy are not locked out');
      const refused = log().filter((l) => l.msg === 'refused a request without the right key').map((l) => l.remote);
      assert.deepEqual(new Set(refused), new Set([DIRECT, '203.0.113.5']));
    });
  });

  it('reads Forwarded (RFC 7239) instead when told to, IPv6 included, and then ignores X-Forwarded-For', async () => {
    await withLoggedPlaza({ trustProxy: ['127.0.0.0/30'], trustProxyHeader: 'forwarded' }, async (plaza, log) => {
      const a = await open(plaza, PROXY, { Forwarded: 'for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711"' });
      const b = await open(plaza, PROXY, { 'X-Forwarded-For': '198.51.100.1' });
      assert.deepEqual(remotesOf(log()), ['2001:db8:cafe::17', PROXY]);
      await Promise.all([a.close(), b.close()]);
    });
  });

  describe('rightmost untrusted hop', () => {
    const trusted = parseTrustedProxies(['10.0.0.0/8', '2001:db8::/32', '::1']);
    const xff = (peer: string, header: string | undefined) => clientAddressOf(peer, header, 'x-forwarded-for', trusted);
    const fwd = (peer: string, header: string) => clientAddressOf(peer, header, 'forwarded', trusted);

    it('skips every trusted proxy, IPv4 and IPv6, from the right', () => {
      assert.equal(xff('10.0.0.1', '6.6.6.6, 203.0.113.4, 10.1.2.3'), '203.0.113.4');
      assert.equal(xff('::1', '203.0.113.4, 2001:db8::9'), '203.0.113.4');
      assert.equal(xff('::ffff:10.0.0.1', '[2001:DB9::5]:443, 2001:db8::9'), '2001:db9::5', 'mapped peers and [v6]:port hops');
      assert.equal(xff('10.0.0.1', '203.0.113.4:5555'), '203.0.113.4');
      assert.equal(fwd('10.0.0.1', 'for=203.0.113.4, for="[2001:db8::2]";by=x, for=10.9.9.9'), '203.0.113.4');
      assert.equal(fwd('10.0.0.1', 'For="203.0.113.4:80"'), '203.0.113.4');
    });
    it('stops at a hop that is not an address, keeping the last proxy it could vouch for', () => {
      assert.equal(xff('10.0.0.1', '203.0.113.4, unknown, 10.2.2.2'), '10.2.2.2');
      assert.equal(fwd('10.0.0.1', 'for=_hidden'), '10.0.0.1');
      assert.equal(fwd('10.0.0.1', 'proto=https'), '10.0.0.1');
    });
    it('uses the peer when it is not trusted or sends no header', () => {
      assert.equal(xff('192.0.2.1', '10.0.0.1'), '192.0.2.1');
      assert.equal(xff('10.0.0.1', undefined), '10.0.0.1');
    });
  });

  it('validates --trust-proxy once, naming the bad entry', () => {
    assert.deepEqual(resolveOptions({ trustProxy: ['10.0.0.0/8', 'fd00::/8', '192.0.2.1', '::1'] }).trustProxy, ['10.0.0.0/8', 'fd00::/8', '192.0.2.1', '::1']);
    for (const bad of ['10.0.0.0/33', 'fd00::/129', 'proxy.example', '10.0.0.0/x', '']) {
      assert.throws(() => resolveOptions({ trustProxy: [bad] }), { code: 'PLAZA_ERR_CONFIG', message: new RegExp(`^trustProxy: ${JSON.stringify(bad).replace(/[./]/g, '\\$&')}`) }, bad);
    }
    assert.throws(() => resolveOptions({ trustProxyHeader: 'x-real-ip' as never }), /trustProxyHeader: expected one of x-forwarded-for, forwarded/);
  });
});
