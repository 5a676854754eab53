/**
 * One limiter for every place a secret is checked: wrong `?key=` and `?token=` upgrades count
 * with wrong API keys, and past the limit every check from that address is refused with 429
 * before any comparison — no surface stays a free yes/no oracle.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuthFailureLimiter } from '../src/server/access/failure-limiter.js';
import { AUTH_FAILURE_BURST, AUTH_FAILURE_REMOTES } from '../src/server/bounds.js';
import { signToken, type TokenClaims } from '../src/server/access/tokens.js';
import { assertHealthy, PUBLIC_DIR, withPlaza } from './helpers/plaza.js';
import { sendRaw, type RawResponse } from './helpers/raw-http.js';
import { V1Client } from './helpers/v1.js';

const KEY = 'operator-key-0123456789abcdef';
const SECRET = 'a-test-secret-that-is-long-enough-0123456789';
const token = (claims: Partial<TokenClaims> = {}, secret = SECRET) =>
  signToken({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60, rooms: '*', ...claims } as TokenClaims, secret);

/**
 * A plain WebSocket upgrade to `target` as raw bytes from `localAddress`; only for answers that
 * are not 101. (A plaza.v1 upgrade with a bad secret is accepted and closed with 4003 instead.)
 */
function upgrade(port: number, target: string, localAddress?: string): Promise<RawResponse> {
  const request = [
    `GET ${target} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Version: 13',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    '',
    '',
  ].join('\r\n');
  return sendRaw(port, request, 5000, localAddress);
}

describe('auth failure limiter', () => {
  it('answers the next ?key= guess with 429 and Retry-After once an address has failed 10 times, and so does every HTTP surface', async () => {
    await withPlaza({ apiKey: KEY, publicDir: PUBLIC_DIR }, async (plaza) => {
      for (let i = 0; i < AUTH_FAILURE_BURST; i++) {
        assert.equal((await upgrade(plaza.port, `/?key=guess${i}`)).status, 401, `guess ${i}`);
      }
      const limited = await upgrade(plaza.port, `/?key=${KEY}`);
      assert.equal(limited.status, 429, 'refused before comparing, even the right key');
      assert.ok(Number(limited.headers['retry-after']) > 0, 'Retry-After says when to come back');
      const api = await fetch(`${plaza.url}/api/rooms`, { headers: { authorization: `Bearer ${KEY}` } });
      assert.equal(api.status, 429, 'one limiter: the HTTP API refuses that address too');
      assert.ok(Number(api.headers.get('retry-after')) > 0);
      for (const path of ['/metrics', '/readyz']) {
        assert.equal((await fetch(`${plaza.url}${path}`, { headers: { authorization: `Bearer ${KEY}` } })).status, 429, path);
      }
      assert.equal((await fetch(`${plaza.url}/status?key=${KEY}`)).status, 429, '/status');
      // Another address has its own allowance.
      const other = await upgrade(plaza.port, '/?key=guess', '127.0.0.2');
      assert.equal(other.status, 401);
      await assertHealthy(plaza);
    });
  });

  it('counts HTTP failures against WebSocket guesses from the same address', async () => {
    await withPlaza({ apiKey: KEY }, async (plaza) => {
      for (let i = 0; i < AUTH_FAILURE_BURST; i++) {
        assert.equal((await fetch(`${plaza.url}/api/rooms`, { headers: { authorization: `Bearer guess${i}` } })).status, 401);
      }
      assert.equal((await upgrade(plaza.port, `/?key=${KEY}`)).status, 429);
    });
  });

  it('no longer answers join plaza:status for a wrong key: 401, or 4003 before any request for plaza.v1', async () => {
    await withPlaza({ apiKey: KEY }, async (plaza) => {
      assert.equal((await upgrade(plaza.port, '/?key=wrong')).status, 401);
      const guesser = await V1Client.open(`ws://127.0.0.1:${plaza.port}/?key=wrong`);
      guesser.send({ type: 'join', id: 1, room: 'plaza:status' });
      assert.equal(await guesser.client.closed, 4003);
      assert.deepEqual(guesser.envelopes, [], 'nothing is answered to a wrong key');
      const operator = await V1Client.open(`ws://127.0.0.1:${plaza.port}/?key=${KEY}`);
      try {
        assert.equal((await operator.request({ type: 'join', room: 'plaza:status' })).type, 'joined');
      } finally {
        await operator.close();
      }
    });
  });

  it('counts bad and missing ?token= upgrades the same way', async () => {
    await withPlaza({ authSecret: SECRET }, async (plaza) => {
      assert.equal((await upgrade(plaza.port, '/')).status, 401, 'missing token');
      for (let i = 1; i < AUTH_FAILURE_BURST; i++) {
        const forged = token({ sub: `mallory${i}` }, 'another-secret-that-is-also-long-enough!!');
        assert.equal((await upgrade(plaza.port, `/?token=${forged}`)).status, 401, `forged token ${i}`);
      }
      const limited = await upgrade(plaza.port, `/?token=${token()}`);
      assert.equal(limited.status, 429, 'refused before verifying, even a valid token');
      assert.ok(Number(limited.headers['retry-after']) > 0);
      const elsewhere = await V1Client.open(`ws://127.0.0.1:${plaza.port}/?token=${token()}`).catch((error: Error) => error);
      assert.ok(elsewhere instanceof Error && /429/.test(elsewhere.message), 'a real client from that address is refused too');
    });
  });

  it('keeps its table bounded: past AUTH_FAILURE_REMOTES the address that failed longest ago is forgotten', () => {
    const limiter = new AuthFailureLimiter();
    const now = 1_000_000;
    for (let i = 0; i < AUTH_FAILURE_BURST; i++) limiter.fail('first', now);
    assert.ok(limiter.retryAfter('first', now) > 0);
    for (let i = 0; i < AUTH_FAILURE_REMOTES; i++) limiter.fail(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, now);
    assert.equal(limiter.size, AUTH_FAILURE_REMOTES);
    assert.equal(limiter.retryAfter('first', now), 0, 'the oldest address was dropped to make room');
  });

  it('forgets an address once its allowance has refilled', () => {
    const limiter = new AuthFailureLimiter();
    for (let i = 0; i < AUTH_FAILURE_BURST; i++) limiter.fail('a', 0);
    assert.equal(limiter.retryAfter('a', 0), 6, 'one attempt comes back every 6 s');
    assert.equal(limiter.retryAfter('a', 60_000), 0);
    assert.equal(limiter.size, 0);
  });
});
