/**
 * The authenticate hook at the door, through real upgrades: Plaza's own client for what a
 * client sees (its identity, 4003 and the `unauthorized` error), raw ws upgrades for the HTTP
 * answers a plain client gets, and --auth-secret beside the hook.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { PlazaError } from '../src/client/index.js';
import { signToken } from '../src/server/access/tokens.js';
import type { ClientInfo } from '../src/server/hooks/types.js';
import { refuse, type Identity } from '../src/server/hooks/types.js';
import { assertHealthy, wsUrl } from './helpers/plaza.js';
import { joined, listening, rejection, roomsClient } from './helpers/library.js';
import { until } from './helpers/wait.mjs';
import { metric } from './helpers/metrics.mjs';

const SECRET = 'authenticate-test-secret-0123456789abcdef';
const open: Array<{ close(): unknown }> = [];
function track<T extends { close(): unknown }>(thing: T): T {
  open.push(thing);
  return thing;
}
after(async () => {
  for (const thing of open.reverse()) await thing.close();
});

/** The cookie named `session` of an upgrade, as an app's session middleware would read it. */
function sessionOf(request: { headers: { cookie?: string | undefined } }): string | undefined {
  return /(?:^|;\s*)session=([^;]+)/.exec(request.headers.cookie ?? '')?.[1];
}

/** A ws class that sends a cookie, as a browser does for its own origin. */
function withCookie(cookie: string): typeof WebSocket {
  return class extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols, { headers: { cookie } });
    }
  } as typeof WebSocket;
}

/** What a raw upgrade gets: the HTTP status and body of a refusal, or 101. */
function upgrade(url: string, protocols: string[] = [], headers: Record<string, string> = {}): Promise<{ status: number; body: string; retryAfter?: string | undefined; close?: { code: number; reason: string } }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers });
    ws.on('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, retryAfter: response.headers['retry-after'] }));
    });
    ws.on('open', () => ws.once('close', (code, reason) => resolve({ status: 101, body: '', close: { code, reason: reason.toString() } })));
    ws.on('error', (error) => {
      if (!/Unexpected server response/.test(error.message)) reject(error);
    });
    setTimeout(() => ws.readyState === WebSocket.OPEN && ws.close(), 500);
  });
}

const USERS = new Map<string, Identity>([
  ['s-ada', { id: 'u1', name: 'Ada', data: { plan: 'pro' } }],
  ['s-bob', { id: 'u2', name: 'Bob', grants: { join: ['team-*'], publish: ['team-a'] } }],
]);

describe('authenticate', () => {
  it('an identity names the connection: user, name and data in hooks and events, its name in presence', async () => {
    const seen: ClientInfo[] = [];
    const plaza = track(await listening({
      authenticate: (request) => USERS.get(sessionOf(request) ?? '') ?? refuse(401, 'log in first'),
      onPublish: ({ client }) => void seen.push(client),
    }));
    plaza.on('connect', ({ client }) => seen.push(client));
    const ada = track(roomsClient(wsUrl(plaza), { WebSocket: withCookie('session=s-ada'), name: 'Someone Else' }));
    const room = ada.join('team', { presence: true });
    await joined(room);
    assert.deepEqual(room.members.map((m) => m.name), ['Ada'], 'the identity\'s name, not the one the client asked for');
    await room.publish('hi');
    assert.equal(seen.length, 2);
    for (const client of seen) {
      assert.equal(client.user, 'u1');
      assert.equal(client.name, 'Ada');
      assert.deepEqual(client.data, { plan: 'pro' });
    }
  });

  it('grants limit the rooms like a token does: forbidden outside them, before onJoin is asked', async () => {
    const asked: string[] = [];
    const plaza = track(await listening({ authenticate: (request) => USERS.get(sessionOf(request) ?? ''), onJoin: ({ room }) => void asked.push(room) }));
    const bob = track(roomsClient(wsUrl(plaza), { WebSocket: withCookie('session=s-bob') }));
    await assert.rejects(joined(bob.join('general')), (error: PlazaError) => error.code === 'forbidden');
    const a = bob.join('team-a');
    const b = bob.join('team-b');
    await Promise.all([joined(a), joined(b)]);
    assert.equal((await a.publish('ok')).offset, 1);
    assert.equal(await rejection(b.publish('no')), 'forbidden');
    assert.deepEqual(asked.sort(), ['team-a', 'team-b']);
    const plain = await upgrade(wsUrl(plaza), [], { cookie: 'session=s-bob' });
    assert.equal(plain.status, 403, 'a plain client whose grants leave out the default room');
  });

  it('runs only for upgrades that passed the path, origin and connection checks', async () => {
    let calls = 0;
    const plaza = track(await listening({ allowedOrigins: ['https://app.example'], authenticate: () => void calls++ }));
    assert.equal((await upgrade(wsUrl(plaza, '/elsewhere'))).status, 404);
    assert.equal((await upgrade(wsUrl(plaza), [], { origin: 'https://evil.example' })).status, 403);
    assert.equal(calls, 0);
    assert.equal((await upgrade(wsUrl(plaza), [], { origin: 'https://app.example' })).status, 101);
    assert.equal(calls, 1);
  });

  it('refuse() without arguments is 401 "not allowed to connect"', async () => {
    const plaza = track(await listening({ authenticate: () => refuse() }));
    const answer = await upgrade(wsUrl(plaza));
    assert.equal(answer.status, 401);
    assert.match(answer.body, /not allowed to connect/);
  });

  it('refuse(401|403): a plain client gets the HTTP status and reason; Plaza\'s client is closed with 4003 and stops with `unauthorized`', async () => {
    const plaza = track(await listening({ authenticate: () => refuse(403, 'members only: sign in at /login') }));
    const plain = await upgrade(wsUrl(plaza));
    assert.equal(plain.status, 403);
    assert.match(plain.body, /members only: sign in at \/login/);
    const refused = track(roomsClient(wsUrl(plaza)));
    const error = await new Promise<PlazaError>((resolve) => refused.on('error', resolve));
    assert.equal(error.code, 'unauthorized');
    assert.match(error.message, /members only/);
    assert.equal(refused.status, 'closed');
    assert.equal(await metric(plaza, 'plaza_hook_refusals_total{hook="authenticate"}'), 2);
    assert.equal(await metric(plaza, 'plaza_auth_failures_total'), 2);
  });

  it('refuse() with another status is that HTTP answer for every client', async () => {
    const plaza = track(await listening({ authenticate: () => refuse(429, 'too many tabs open') }));
    for (const protocols of [[], ['plaza.v1']]) {
      const answer = await upgrade(wsUrl(plaza), protocols);
      assert.equal(answer.status, 429);
      assert.match(answer.body, /too many tabs open/);
    }
  });

  it('returning nothing leaves the decision to the built-in rules: anonymous without --auth-secret', async () => {
    const plaza = track(await listening({ authenticate: () => undefined }));
    const anon = track(roomsClient(wsUrl(plaza), { name: 'Guest' }));
    const room = anon.join('team', { presence: true });
    await joined(room);
    assert.deepEqual(room.members.map((m) => m.name), ['Guest']);
  });

  it('beside --auth-secret: an identity needs no token, nothing means the token decides', async () => {
    const plaza = track(await listening({ authSecret: SECRET, authenticate: (request) => USERS.get(sessionOf(request) ?? '') }));
    const ada = track(roomsClient(wsUrl(plaza), { WebSocket: withCookie('session=s-ada') }));
    await joined(ada.join('team'));
    const token = signToken({ sub: 'carol', name: 'Carol', rooms: '*', exp: Math.floor(Date.now() / 1000) + 600 }, SECRET);
    const carol = track(roomsClient(wsUrl(plaza), { token }));
    const room = carol.join('team', { presence: true });
    await joined(room);
    assert.deepEqual(room.members.map((m) => m.name).sort(), ['Ada', 'Carol']);
    const nobody = await upgrade(wsUrl(plaza), ['plaza.v1']);
    assert.equal(nobody.close?.code, 4003);
    assert.match(nobody.close?.reason ?? '', /token is required/);
  });

  it('a hook that throws, hangs or returns nonsense answers 503 with hook_failed or hook_timeout, and the server goes on', async () => {
    const plaza = track(await listening({
      hookTimeout: 100,
      authenticate: (request) => {
        const mode = new URL(request.url ?? '/', 'http://x').searchParams.get('mode');
        if (mode === 'throw') throw new Error('session store down');
        if (mode === 'hang') return new Promise<undefined>(() => {});
        if (mode === 'nonsense') return { id: '' };
        if (mode === 'badname') return { id: 'u1', name: '\u200b' };
        return undefined;
      },
    }));
    for (const [mode, code] of [['throw', 'hook_failed'], ['hang', 'hook_timeout'], ['nonsense', 'hook_failed'], ['badname', 'hook_failed']] as const) {
      for (const protocols of [[], ['plaza.v1']]) {
        const answer = await upgrade(wsUrl(plaza, `/?mode=${mode}`), protocols);
        assert.equal(answer.status, 503, mode);
        assert.equal(answer.retryAfter, '5');
        assert.match(answer.body, new RegExp(`^${code}: `), mode);
        assert.doesNotMatch(answer.body, /session store/);
      }
    }
    await assertHealthy(plaza);
  });

  it('an answer that throws when read (a getter, a Proxy, a throwing then) is 503 hook_failed with Retry-After too', async () => {
    const boom = () => {
      throw new Error('getter exploded at 10.0.0.7');
    };
    const answers: Record<string, () => unknown> = {
      id: () => ({ get id() {
        return boom();
      } }),
      grants: () => ({ id: 'u1', grants: { get join() {
        return boom();
      } } }),
      list: () => ({ id: 'u1', grants: { join: new Proxy(['lobby'], { get: boom }) } }),
      verdict: () => ({ get verdict() {
        return boom();
      } }),
      proxy: () => new Proxy({}, { get: boom }),
      then: () => ({ get then() {
        return boom();
      } }),
    };
    const plaza = track(await listening({
      authenticate: (request) => answers[new URL(request.url ?? '/', 'http://x').searchParams.get('answer') ?? '']?.() as undefined,
    }));
    for (const answer of Object.keys(answers)) {
      for (const protocols of [[], ['plaza.v1']]) {
        const reply = await upgrade(wsUrl(plaza, `/?answer=${answer}`), protocols);
        assert.equal(reply.status, 503, answer);
        assert.equal(reply.retryAfter, '5', answer);
        assert.match(reply.body, /^hook_failed: /, answer);
        assert.doesNotMatch(reply.body, /10\.0\.0\.7|exploded/);
      }
    }
    assert.equal(await metric(plaza, 'plaza_hook_failures_total{hook="authenticate",code="hook_failed"}'), Object.keys(answers).length * 2);
    await assertHealthy(plaza);
  });

  it('a client that gives up while the hook runs costs nothing, and one the hook admits after close() began gets 503', async () => {
    let release!: () => void;
    const plaza = track(await listening({ authenticate: () => new Promise<Identity>((resolve) => (release = () => resolve({ id: 'late' }))) }));
    const quitter = new WebSocket(wsUrl(plaza));
    quitter.on('error', () => {});
    await until(() => release !== undefined, 3000, 'the hook to be called');
    quitter.terminate();
    await new Promise((resolve) => setTimeout(resolve, 50));
    release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(plaza.connectionCount, 0);
    const pending = upgrade(wsUrl(plaza));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closing = plaza.close();
    release();
    assert.equal((await pending).status, 503);
    await closing;
  });
});
