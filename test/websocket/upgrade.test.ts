/**
 * The checks at a WebSocket upgrade (src/server/websocket/upgrade.ts, through the door every side
 * shares, sessions/door.ts), on a real http server on port 0 with the real ws server, connection
 * caps and failure limiter, and real WebSocket clients: the path, shutting down, origins, caps,
 * keys and tokens (401 for plain clients, 4003 for plaza.v1), the failure limiter's 429, and what
 * each accepted connection is admitted with.
 */
import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { once } from 'node:events';
import type { Server } from 'node:http';
import { describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { createClientAddress } from '../../src/server/access/client-address.js';
import { AuthFailureLimiter } from '../../src/server/access/failure-limiter.js';
import { createHttpServer } from '../../src/server/access/http-server.js';
import { AUTH_FAILURE_BURST, MAX_REQUEST_HEADERS } from '../../src/server/bounds.js';
import { signToken } from '../../src/server/access/tokens.js';
import { createTokenVerifier } from '../../src/server/access/token-verifier.js';
import { resolveOptions, type PlazaOptions } from '../../src/server/config.js';
import { ConnectionLimits } from '../../src/server/sessions/connection-limits.js';
import type { Admission } from '../../src/server/sessions/context.js';
import { createUpgradeHandler, REFUSED_GRACE_MS } from '../../src/server/websocket/upgrade.js';
import { createWebSocketServer } from '../../src/server/websocket/ws-server.js';
import { Metrics } from '../../src/server/engine/metrics.js';
import { createLogger } from '../../src/server/logger.js';

import { sendRaw } from '../helpers/raw-http.js';
import { openRaw } from '../helpers/raw-ws.js';
import { until } from '../helpers/wait.mjs';

const SECRET = 'an-auth-secret-of-at-least-32-chars-0123';
const KEY = 'operator-key-0123456789abcdef';
const token = (claims: Record<string, unknown> = {}) => signToken({ sub: 'ada', exp: Math.floor(Date.now() / 1000) + 600, rooms: '*', ...claims } as never, SECRET);

/** The upgrade handler behind a real http server; every accepted socket is recorded and closed by close(). */
async function door(options: Partial<PlazaOptions> = {}) {
  const config = resolveOptions({ logLevel: 'silent', ...options });
  const metrics = new Metrics();
  const limits = new ConnectionLimits(config);
  const authFailures = new AuthFailureLimiter();
  const admitted: Admission[] = [];
  /** The raw socket under each admitted connection, in the same order. */
  const sockets: Duplex[] = [];
  const accepted = new Set<WebSocket>();
  const state = { accepting: true, readsAddressLater: false };
  const wss = createWebSocketServer(config);
  const logger = createLogger({ level: 'silent', format: 'json' });
  const tokens = createTokenVerifier(config, logger);
  const server: Server = createHttpServer(config, undefined, (_req, res) => res.writeHead(404).end());
  server.on(
    'upgrade',
    createUpgradeHandler({
      wss,
      options: config,
      logger,
      metrics,
      limits,
      authFailures,
      clientAddress: createClientAddress(config.trustProxy, config.trustProxyHeader),
      isAccepting: () => state.accepting,
      readsAddressLater: () => state.readsAddressLater,
      onConnection: (ws, socket, admission) => {
        admitted.push(admission);
        sockets.push(socket);
        accepted.add(ws);
        ws.on('error', () => {});
      },
      ...(tokens && { tokens }),
    }),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    port,
    metrics,
    limits,
    authFailures,
    admitted,
    sockets,
    state,
    async close() {
      for (const ws of accepted) ws.terminate();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

interface Outcome {
  status: number;
  retryAfter?: string | undefined;
  body?: string;
  /** For a socket that opened: how it was closed (4003 refusals), if it was. */
  closed?: Promise<{ code: number; reason: string }>;
}

/**
 * One WebSocket upgrade with a real client: the HTTP status of a refusal, or 101 and the close
 * to come (sockets that stay open are closed by the door's close()).
 */
function upgrade(port: number, path = '/', { protocol, origin, localAddress }: { protocol?: string; origin?: string; localAddress?: string } = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, protocol, { origin, localAddress });
    ws.on('error', () => {});
    const closed = new Promise<{ code: number; reason: string }>((done) => ws.once('close', (code, reason) => done({ code, reason: reason.toString() })));
    ws.once('open', () => resolve({ status: 101, closed }));
    ws.once('unexpected-response', (request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk));
      response.on('end', () => {
        resolve({ status: response.statusCode!, retryAfter: response.headers['retry-after'], body });
        request.destroy();
      });
    });
    setTimeout(() => reject(new Error('no answer to the upgrade')), 5000).unref();
  });
}

describe('upgrade', () => {
  describe('path and state', () => {
    it('accepts / (with a query) and refuses every other path with 404', async () => {
      const d = await door();
      try {
        assert.equal((await upgrade(d.port, '/')).status, 101);
        assert.equal((await upgrade(d.port, '/?room=ignored')).status, 101);
        for (const path of ['/ws', '/socket.io/', '/index.html', '/%2F']) {
          const refused = await upgrade(d.port, path);
          assert.equal(refused.status, 404, path);
          assert.equal(refused.body, 'no WebSocket endpoint here; connect to /\n');
        }
        assert.equal(d.metrics.upgradeRejections.get(404), 4);
        assert.equal(d.admitted.length, 2);
      } finally {
        await d.close();
      }
    });

    it('answers 503 with Retry-After: 5 while shutting down, before looking at anything else', async () => {
      const d = await door({ authSecret: SECRET });
      try {
        d.state.accepting = false;
        for (const path of ['/', '/nowhere']) {
          const refused = await upgrade(d.port, path);
          assert.deepEqual([refused.status, refused.retryAfter], [503, '5']);
        }
        assert.equal(d.authFailures.size, 0, 'no token was asked for');
      } finally {
        await d.close();
      }
    });

    it(`answers 431 to more than ${MAX_REQUEST_HEADERS} header fields`, async () => {
      const d = await door();
      try {
        const headers = Array.from({ length: MAX_REQUEST_HEADERS }, (_, i) => `X-Filler-${i}: x`);
        const request = ['GET / HTTP/1.1', 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', ...headers, '', ''].join('\r\n');
        assert.equal((await sendRaw(d.port, request)).status, 431);
      } finally {
        await d.close();
      }
    });
  });

  describe('origins', () => {
    it('refuses a browser origin not on --allowed-origins with 403, compared exactly; clients without Origin pass', async () => {
      const d = await door({ allowedOrigins: ['https://chat.example'] });
      try {
        assert.equal((await upgrade(d.port, '/', { origin: 'https://chat.example' })).status, 101);
        for (const origin of ['https://evil.example', 'https://chat.example.evil', 'http://chat.example', 'HTTPS://CHAT.EXAMPLE', 'null']) {
          assert.equal((await upgrade(d.port, '/', { origin })).status, 403, origin);
        }
        assert.equal((await upgrade(d.port, '/')).status, 101, 'no Origin: not a browser');
        assert.equal(d.metrics.upgradeRejections.get(403), 5);
      } finally {
        await d.close();
      }
    });

    it('lets every origin in without --allowed-origins', async () => {
      const d = await door();
      try {
        assert.equal((await upgrade(d.port, '/', { origin: 'https://anywhere.example' })).status, 101);
      } finally {
        await d.close();
      }
    });
  });

  describe('caps', () => {
    it('answers 503 at --max-connections and 429 at --max-connections-per-ip, both with Retry-After: 10', async () => {
      const d = await door({ maxConnections: 3, maxConnectionsPerIp: 2 });
      try {
        d.limits.add('127.0.0.1');
        d.limits.add('127.0.0.1');
        const perIp = await upgrade(d.port);
        assert.deepEqual([perIp.status, perIp.retryAfter], [429, '10']);
        assert.equal((await upgrade(d.port, '/', { localAddress: '127.0.0.2' })).status, 101, 'another address is not limited');
        d.limits.add('127.0.0.3');
        const total = await upgrade(d.port, '/', { localAddress: '127.0.0.4' });
        assert.deepEqual([total.status, total.retryAfter], [503, '10']);
        assert.deepEqual([d.metrics.upgradeRejections.get(429), d.metrics.upgradeRejections.get(503)], [1, 1]);
      } finally {
        await d.close();
      }
    });

    it('answers 503 at --max-connections without a per-address cap too, where the door does not read the address', async () => {
      const d = await door({ maxConnections: 2 });
      try {
        assert.equal((await upgrade(d.port)).status, 101);
        assert.equal((await upgrade(d.port)).status, 101);
        for (const admission of d.admitted) d.limits.add(admission.ip);
        const total = await upgrade(d.port);
        assert.deepEqual([total.status, total.retryAfter], [503, '10']);
        assert.equal(d.limits.trackedAddresses, 0, 'nothing counted per address without a cap');
      } finally {
        await d.close();
      }
    });
  });

  describe('the client address', () => {
    /** Node keeps the peer address here once read (getpeername(2)); undefined until then. */
    const peerRead = (socket: Duplex) => (socket as unknown as { _peername?: { address: string } })._peername?.address;

    it('lets a plain client in without reading its address when nothing needs it, and reads the right one on first use', async () => {
      const d = await door();
      try {
        assert.equal((await upgrade(d.port, '/', { localAddress: '127.0.0.2' })).status, 101);
        assert.equal(peerRead(d.sockets[0]!), undefined, 'no getpeername(2) at the door');
        assert.equal(d.admitted[0]!.ip, '127.0.0.2');
        assert.equal(d.admitted[0]!.ip, '127.0.0.2', 'read once, then kept');
        assert.deepEqual([d.admitted[0]!.grant, d.admitted[0]!.isOperator], [undefined, false]);
      } finally {
        await d.close();
      }
    });

    it('reads it at the door when something may read it after the close, or a check needs it', async () => {
      const cases: Array<[string, Partial<PlazaOptions>, boolean]> = [
        ['readers after the close', {}, true],
        ['--max-connections-per-ip', { maxConnectionsPerIp: 5 }, false],
        ['--trust-proxy', { trustProxy: ['10.0.0.1'] }, false],
        ['--api-key with ?key=', { apiKey: KEY }, false],
      ];
      for (const [what, options, readsLater] of cases) {
        const d = await door(options);
        d.state.readsAddressLater = readsLater;
        try {
          const path = options.apiKey ? `/?key=${KEY}` : '/';
          assert.equal((await upgrade(d.port, path, { localAddress: '127.0.0.2' })).status, 101, what);
          assert.equal(peerRead(d.sockets[0]!), '127.0.0.2', `${what}: read at the door`);
          assert.equal(d.admitted[0]!.ip, '127.0.0.2', what);
        } finally {
          await d.close();
        }
      }
    });
  });

  describe('tokens', () => {
    it('refuses a plain upgrade without a valid token with 401 and a plaza.v1 one by closing it with 4003 and the reason', async () => {
      const d = await door({ authSecret: SECRET });
      try {
        const plain = await upgrade(d.port);
        assert.equal(plain.status, 401);
        assert.equal(plain.body, 'a token is required: connect to /?token=<signed token>\n');
        const v1 = await upgrade(d.port, '/', { protocol: 'plaza.v1' });
        assert.equal(v1.status, 101, 'accepted only to say why: a browser cannot read a refused status');
        assert.deepEqual(await v1.closed, { code: 4003, reason: 'a token is required: connect to /?token=<signed token>' });
        const expired = await upgrade(d.port, `/?token=${token({ exp: 1 })}`, { protocol: 'plaza.v1' });
        assert.deepEqual(await expired.closed, { code: 4003, reason: 'token has expired' });
        assert.equal(d.admitted.length, 0, 'none of them became a connection');
        assert.equal(d.metrics.authFailures, 3);
      } finally {
        await d.close();
      }
    });

    it('admits a valid token with what it grants', async () => {
      const d = await door({ authSecret: SECRET });
      try {
        assert.equal((await upgrade(d.port, `/?token=${token({ name: 'Ada', rooms: 'team-*' })}`, { protocol: 'plaza.v1' })).status, 101);
        const [admission] = d.admitted;
        assert.equal(admission!.ip, '127.0.0.1');
        assert.equal(admission!.isOperator, false);
        assert.equal(admission!.grant?.userId, 'ada');
        assert.equal(admission!.grant?.name, 'Ada');
        assert.deepEqual(['team-1', 'lobby'].map(admission!.grant!.mayJoin), [true, false]);
      } finally {
        await d.close();
      }
    });

    it('refuses with 403 a plain client whose token does not allow the room plain clients use', async () => {
      const d = await door({ authSecret: SECRET, defaultRoom: 'lobby' });
      try {
        const narrow = token({ rooms: ['team'] });
        const plain = await upgrade(d.port, `/?token=${narrow}`);
        assert.equal(plain.status, 403);
        assert.match(plain.body!, /\(lobby\)/);
        assert.equal((await upgrade(d.port, `/?token=${narrow}`, { protocol: 'plaza.v1' })).status, 101, 'plaza.v1 clients choose their rooms');
      } finally {
        await d.close();
      }
    });

    it("cuts off a 4003 socket that never answers the close within REFUSED_GRACE_MS, counting it against the caps meanwhile", async () => {
      const d = await door({ authSecret: SECRET, maxConnectionsPerIp: 1 });
      try {
        // A peer that reads nothing: it neither sees nor answers the close frame.
        const silent = await openRaw(d.port, { headers: { 'Sec-WebSocket-Protocol': 'plaza.v1' } });
        silent.socket.pause();
        assert.equal(d.limits.refusal('127.0.0.1'), 429, 'the refused socket counts while it exists');
        assert.equal((await upgrade(d.port, `/?token=${token()}`, { protocol: 'plaza.v1' })).status, 429);
        const started = Date.now();
        await silent.closed;
        assert.ok(Date.now() - started <= REFUSED_GRACE_MS + 1000);
        await until(() => d.limits.refusal('127.0.0.1') === 0, 3000, 'the slot given back');
        assert.equal((await upgrade(d.port, `/?token=${token()}`, { protocol: 'plaza.v1' })).status, 101);
      } finally {
        await d.close();
      }
    });
  });

  describe('the API key on the URL', () => {
    it('admits the right ?key= as an operator, refuses a wrong one (401 or 4003), and ignores ?key= without --api-key', async () => {
      const d = await door({ apiKey: KEY });
      try {
        assert.equal((await upgrade(d.port, `/?key=${KEY}`)).status, 101);
        assert.equal(d.admitted[0]!.isOperator, true);
        assert.equal(d.admitted[0]!.grant, undefined);
        assert.equal((await upgrade(d.port, '/?key=guess')).status, 401);
        assert.deepEqual(await (await upgrade(d.port, '/?key=guess', { protocol: 'plaza.v1' })).closed, {
          code: 4003,
          reason: 'wrong API key in ?key=; leave it out or use the right one',
        });
        assert.equal((await upgrade(d.port, '/')).status, 101, 'no key: an ordinary client');
        assert.equal(d.admitted[1]!.isOperator, false);
      } finally {
        await d.close();
      }
      const open = await door();
      try {
        assert.equal((await upgrade(open.port, '/?key=anything')).status, 101);
        assert.equal(open.admitted[0]!.isOperator, false);
        assert.equal(open.authFailures.size, 0);
      } finally {
        await open.close();
      }
    });

    it('lets the key stand in for a token on node rooms only, to watch and never to publish', async () => {
      const d = await door({ apiKey: KEY, authSecret: SECRET });
      try {
        assert.equal((await upgrade(d.port, `/?key=${KEY}`, { protocol: 'plaza.v1' })).status, 101);
        const grant = d.admitted[0]!.grant!;
        assert.equal(grant.userId, 'operator');
        assert.deepEqual(['plaza:status', 'lobby'].map(grant.mayJoin), [true, false]);
        assert.equal(grant.mayPublish('plaza:status'), false);
        assert.equal((await upgrade(d.port, `/?key=${KEY}`)).status, 403, 'a plain client lives in the default room, which the key does not open');
      } finally {
        await d.close();
      }
    });
  });

  describe('the failure limiter', () => {
    it(`answers 429 with Retry-After to an address after ${AUTH_FAILURE_BURST} wrong secrets, before comparing, even the right one`, async () => {
      const d = await door({ authSecret: SECRET, apiKey: KEY });
      try {
        for (let i = 0; i < AUTH_FAILURE_BURST; i++) assert.equal((await upgrade(d.port, `/?token=wrong-${i}`)).status, 401);
        const limited = await upgrade(d.port, `/?token=${token()}`);
        assert.equal(limited.status, 429);
        assert.ok(Number(limited.retryAfter) >= 1, `Retry-After: ${limited.retryAfter}`);
        assert.match(limited.body!, /too many attempts with a wrong key or token; retry in \d+ s/);
        assert.equal((await upgrade(d.port, `/?key=${KEY}`, { protocol: 'plaza.v1' })).status, 429, 'keys are refused too');
        assert.equal(d.metrics.authFailures, AUTH_FAILURE_BURST, 'refusals by the limiter are not failures of their own');
        assert.equal((await upgrade(d.port, `/?token=${token()}`, { localAddress: '127.0.0.2' })).status, 101, 'another address still gets in');
      } finally {
        await d.close();
      }
    });

    it('is not consulted by a server without secrets', async () => {
      const d = await door();
      try {
        for (let i = 0; i < AUTH_FAILURE_BURST + 2; i++) d.authFailures.fail('127.0.0.1');
        assert.equal((await upgrade(d.port)).status, 101);
      } finally {
        await d.close();
      }
    });
  });
});
