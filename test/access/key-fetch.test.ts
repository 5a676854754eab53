/**
 * One bounded GET of a key set (src/server/access/key-fetch.ts), against a real node:http server
 * on port 0: which URLs are allowed, the deadline, the byte bound (declared and undeclared), no
 * redirects, and how long an answer's cache headers let it be kept.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fetchBounded, freshnessOf, jwksUrlProblem, KeyFetchError } from '../../src/server/access/key-fetch.js';
import { until } from '../helpers/wait.mjs';

describe('key fetch', () => {
  describe('jwksUrlProblem', () => {
    it('allows https anywhere and http to this machine only', () => {
      for (const ok of ['https://example.auth0.com/.well-known/jwks.json', 'http://127.0.0.1:8080/jwks', 'http://127.1.2.3/jwks', 'http://[::1]:9/jwks', 'http://localhost/jwks']) {
        assert.equal(jwksUrlProblem(ok), undefined, ok);
      }
      assert.match(jwksUrlProblem('http://idp.example.com/jwks')!, /must be https/);
      assert.match(jwksUrlProblem('http://127.evil.example/jwks')!, /must be https/);
      assert.match(jwksUrlProblem('http://10.0.0.1/jwks')!, /must be https/);
      assert.match(jwksUrlProblem('ftp://example.com/jwks')!, /expected an https:\/\/ URL, got ftp:/);
      assert.match(jwksUrlProblem('example.com/jwks')!, /expected a URL/);
    });
  });

  describe('freshnessOf', () => {
    it('reads max-age less Age, then Expires less Date; no-store, no-cache and a bad Expires mean 0', () => {
      assert.equal(freshnessOf({ 'cache-control': 'public, max-age=600' }), 600_000);
      assert.equal(freshnessOf({ 'cache-control': 'max-age=600, must-revalidate', age: '100' }), 500_000);
      assert.equal(freshnessOf({ 'cache-control': 'max-age=60', age: '100' }), 0);
      assert.equal(freshnessOf({ 'cache-control': 'no-store' }), 0);
      assert.equal(freshnessOf({ 'cache-control': 'public, no-cache, max-age=600' }), 0);
      assert.equal(freshnessOf({ expires: 'Wed, 21 Oct 2026 07:28:00 GMT', date: 'Wed, 21 Oct 2026 07:18:00 GMT' }), 600_000);
      assert.equal(freshnessOf({ expires: 'soon', date: 'Wed, 21 Oct 2026 07:18:00 GMT' }), 0, 'an Expires that is no date means expired (RFC 9111 §5.3)');
      assert.equal(freshnessOf({ expires: '0' }), 0);
      assert.equal(freshnessOf({}), undefined);
      assert.equal(freshnessOf({ 'cache-control': 'public' }), undefined);
    });
  });

  describe('fetchBounded', () => {
    let server: Server;
    let base: string;
    const sockets = new Set<Socket>();
    const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
      '/ok': (_req, res) => res.writeHead(200, { 'cache-control': 'max-age=60' }).end('{"keys":[]}'),
      '/declared-large': (_req, res) => res.writeHead(200, { 'content-length': '5000' }).end('x'.repeat(5000)),
      // Chunked, no Content-Length: the bound is found while reading.
      '/undeclared-large': (_req, res) => {
        res.writeHead(200);
        for (let i = 0; i < 10; i++) res.write('x'.repeat(500));
        res.end();
      },
      '/stall': () => {},
      '/moved': (_req, res) => res.writeHead(301, { location: 'https://elsewhere.example/jwks' }).end(),
      '/error': (_req, res) => res.writeHead(500).end('oops'),
    };

    before(async () => {
      server = createServer((req, res) => (routes[req.url ?? ''] ?? ((_q, r) => r.writeHead(404).end()))(req, res));
      server.on('connection', (socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    after(async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    });

    const bounds = { timeout: 300, maxBytes: 4096 };

    it('returns the body and the headers of a 200', async () => {
      const fetched = await fetchBounded(`${base}/ok`, bounds);
      assert.equal(fetched.body.toString(), '{"keys":[]}');
      assert.equal(fetched.headers['cache-control'], 'max-age=60');
    });

    it('refuses a body over the bound, declared or not', async () => {
      await assert.rejects(fetchBounded(`${base}/declared-large`, bounds), { name: 'KeyFetchError', message: /5000 bytes, more than the bound of 4096/ });
      await assert.rejects(fetchBounded(`${base}/undeclared-large`, bounds), { name: 'KeyFetchError', message: /more than the bound of 4096 bytes/ });
      assert.equal((await fetchBounded(`${base}/undeclared-large`, { ...bounds, maxBytes: 5000 })).body.length, 5000);
    });

    it('gives up after the deadline and leaves no socket open', async () => {
      const started = Date.now();
      await assert.rejects(fetchBounded(`${base}/stall`, bounds), { message: /no complete answer within 300 ms/ });
      assert.ok(Date.now() - started < 2000);
      await until(() => sockets.size === 0, 2000, 'the stalled request to be destroyed');
    });

    it('follows no redirect and says where it pointed', async () => {
      await assert.rejects(fetchBounded(`${base}/moved`, bounds), { message: 'answered HTTP 301 (a redirect to https://elsewhere.example/jwks: configure the final URL)' });
      await assert.rejects(fetchBounded(`${base}/error`, bounds), { message: 'answered HTTP 500' });
    });

    it('fails on a refused connection, and at once when cancelled', async () => {
      const closed = createServer().listen(0, '127.0.0.1');
      await once(closed, 'listening');
      const port = (closed.address() as { port: number }).port;
      closed.close();
      await assert.rejects(fetchBounded(`http://127.0.0.1:${port}/jwks`, bounds), (error: unknown) => error instanceof KeyFetchError && /ECONNREFUSED/.test(error.message));
      const abort = new AbortController();
      const pending = fetchBounded(`${base}/stall`, { ...bounds, timeout: 10_000 }, abort.signal);
      abort.abort();
      await assert.rejects(pending, { message: /cancelled/ });
    });
  });
});
