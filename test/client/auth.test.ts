/**
 * The client against a Plaza with --auth-secret: `token` as a string or a function, what 4003
 * (refused) and 4004 (expired) do to it, and that it never hammers a server that refuses it.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { connect, PlazaError, type ClientOptions, type CloseInfo, type PlazaClient } from '../../src/client/index.js';
import { signToken, type TokenClaims } from '../../src/server/access/tokens.js';
import type { Plaza } from '../../src/server/plaza.js';
import { startPlaza, wsUrl } from '../helpers/plaza.js';
import { until } from '../helpers/wait.mjs';

const SECRET = 'client-auth-test-secret-0123456789abcdef';
const now = () => Math.floor(Date.now() / 1000);
const token = (claims: Partial<TokenClaims> = {}, secret = SECRET) =>
  signToken({ sub: 'ada', name: 'Ada', rooms: '*', exp: now() + 600, ...claims } as TokenClaims, secret);

interface Probe {
  client: PlazaClient;
  closes: CloseInfo[];
  errors: PlazaError[];
  opens: number;
}

describe('client tokens', () => {
  let plaza: Plaza;
  let url: string;
  const clients: PlazaClient[] = [];

  // A fresh server per test: refused tokens count against 127.0.0.1 in the server's one
  // failure limiter (10, then HTTP 429), and one test's refusals must not spend the next one's.
  beforeEach(async () => {
    plaza = await startPlaza({ authSecret: SECRET });
    url = wsUrl(plaza);
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await plaza.close();
  });

  function probe(options: ClientOptions): Probe {
    const client = connect(url, { WebSocket, minDelay: 20, maxDelay: 200, ...options });
    clients.push(client);
    const p: Probe = { client, closes: [], errors: [], opens: 0 };
    client.on('close', (info) => p.closes.push(info));
    client.on('error', (error) => p.errors.push(error));
    client.on('open', () => p.opens++);
    return p;
  }

  async function authFailures(): Promise<number> {
    const text = await (await fetch(`${plaza.url}/metrics`)).text();
    return Number(/^plaza_auth_failures_total (\d+)$/m.exec(text)![1]);
  }

  it('sends a string token as ?token= and keeps it out of client.url', async () => {
    const p = probe({ token: token() });
    await until(() => p.client.status === 'open', 3000, 'open');
    assert.equal(p.client.url, url);
    const rooms = probe({ rooms: true, token: token({ name: 'Ada L.' }) });
    const welcome = await new Promise<{ name: string }>((resolve) => rooms.client.on('welcome', resolve));
    assert.equal(welcome.name, 'Ada L.', 'the server read the token');
  });

  it('without a token: 4003 ends the client with an unauthorized error, and it does not retry', async () => {
    const before = await authFailures();
    const p = probe({ rooms: true });
    await until(() => p.client.status === 'closed', 3000, 'closed');
    assert.deepEqual(p.closes.map(({ code, willReconnect }) => ({ code, willReconnect })), [{ code: 4003, willReconnect: false }]);
    assert.equal(p.errors.length, 1);
    assert.ok(p.errors[0] instanceof PlazaError);
    assert.equal(p.errors[0]!.code, 'unauthorized');
    assert.match(p.errors[0]!.message, /the server refused the token \(a token is required/);
    // Time enough for several reconnects at minDelay 20 ms, had it retried.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await authFailures(), before + 1);
  });

  it('with a refused string token: unauthorized, with the server’s reason', async () => {
    const p = probe({ rooms: true, token: token({}, 'some-other-secret-0123456789abcdefgh') });
    await until(() => p.errors.length === 1, 3000, 'the error');
    assert.equal(p.errors[0]!.code, 'unauthorized');
    assert.match(p.errors[0]!.message, /token signature is invalid/);
    assert.equal(p.client.status, 'closed');
  });

  it('with a string token that expires while connected: 4004 ends it with token_expired', async () => {
    for (const rooms of [true, false]) {
      const p = probe({ rooms, token: token({ exp: now() + 1 }) });
      await until(() => p.client.status === 'closed', 4000, 'closed');
      assert.equal(p.opens, 1);
      assert.deepEqual(p.closes.map(({ code, willReconnect }) => ({ code, willReconnect })), [{ code: 4004, willReconnect: false }]);
      assert.deepEqual(p.errors.map((e) => e.code), ['token_expired']);
    }
  });

  it('with a token function: calls it before every attempt and reconnects with a fresh token after 4004', async () => {
    const issued: number[] = [];
    const p = probe({
      rooms: true,
      // The first token expires in a second; later ones last.
      token: async () => {
        issued.push(Date.now());
        return token({ exp: now() + (issued.length === 1 ? 1 : 600) });
      },
    });
    const room = p.client.join('lobby');
    await until(() => p.opens === 2, 5000, 'a second connection');
    assert.equal(issued.length, 2);
    assert.deepEqual(p.closes.map(({ code, willReconnect }) => ({ code, willReconnect })), [{ code: 4004, willReconnect: true }]);
    assert.deepEqual(p.errors, []);
    const ack = await room.publish('after the fresh token');
    assert.equal(ack.room, 'lobby');
  });

  it('with a token function whose tokens are refused: backs off, never a tight loop', async () => {
    let calls = 0;
    const p = probe({
      rooms: true,
      minDelay: 50,
      maxDelay: 400,
      token: () => {
        calls++;
        return token({}, 'a-secret-the-server-does-not-know-0123456789');
      },
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    p.client.close();
    // 4003 for each refused token, until the server's failure limiter answers the address with
    // HTTP 429 before reading any token (a browser, and so the client, sees that as 1006).
    const refused = p.closes.filter((c) => c.code === 4003 || c.code === 1006);
    assert.ok(p.closes.filter((c) => c.code === 4003).length >= 2, `it retries (${refused.length} attempts)`);
    // With waits drawn below 50, 100, 200, 400, 400 … ms, 1.5 s holds about ten attempts; a loop
    // without backoff would make hundreds.
    assert.ok(refused.length < 30, `${refused.length} attempts in 1.5 s`);
    assert.ok(refused.every((c) => c.willReconnect));
    // One token per attempt (one more when close() came during an attempt).
    assert.ok(calls === refused.length || calls === refused.length + 1, `${calls} tokens for ${refused.length} attempts`);
    assert.deepEqual(p.errors, []);
  });

  it('counts a token function that throws or returns nothing as a failed attempt, retried', async () => {
    let calls = 0;
    const p = probe({
      token: () => {
        calls++;
        if (calls === 1) throw new Error('backend down');
        if (calls === 2) return '' as string;
        return token();
      },
    });
    await until(() => p.client.status === 'open', 5000, 'open on the third token');
    assert.deepEqual(
      p.closes.map(({ code, reason }) => ({ code, reason })),
      [
        { code: 1006, reason: 'options.token() failed: Error: backend down' },
        { code: 1006, reason: 'options.token() gave no token' },
      ],
    );
  });

  it('in plain mode a refused upgrade (401) is retried, each time with a fresh token from the function', async () => {
    let calls = 0;
    const p = probe({ token: () => (++calls < 3 ? 'not-a-jwt' : token()) });
    await until(() => p.client.status === 'open', 5000, 'open');
    assert.equal(calls, 3);
    assert.deepEqual(p.closes.map((c) => c.code), [1006, 1006]);
  });

  it('stops fetching tokens after close()', async () => {
    let calls = 0;
    let release: (value: string) => void = () => {};
    const p = probe({ token: () => new Promise<string>((resolve) => ((calls++, (release = resolve)))) });
    p.client.close();
    release(token());
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(calls, 1);
    assert.equal(p.opens, 0);
    assert.equal(p.client.status, 'closed');
  });
});
