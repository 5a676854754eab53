/**
 * Sign-in from identity providers, the way users go: a real JWKS server in this process (keys
 * generated here: RSA, EC P-256, Ed25519), a real Plaza with --auth-jwks-url, and Plaza's own
 * client with `token: '…'` or `token: () => fetchToken()`. Tokens of each kind on one node, with
 * --data-dir and in a Redis cluster; refusals as the client sees them; expiry on open
 * connections (4004); a rotated key picked up without restart; a flood of made-up kids costing
 * the provider one request; the provider down and back with /readyz; the failure limiter counting
 * these refusals as it counts HS256 ones; the authenticate hook beside it; --auth-public-key; and
 * the CLI's start-up errors (exit 2) from a bare copy of dist/ (jose bundled in).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, afterEach, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { connect, PlazaError, type ClientOptions, type CloseInfo, type PlazaClient } from '../src/client/index.js';
import { AUTH_FAILURE_BURST } from '../src/server/bounds.js';
import { signToken } from '../src/server/access/tokens.js';
import { createLogger } from '../src/server/logger.js';
import { createPlaza, type Plaza, type PlazaConfig } from '../src/server/plaza.js';
import { REDIS_URL, skipWithoutRedis } from './helpers/cluster.js';
import { claimsFor, forgeWithPublicKey, generateSigningKey, IdentityProvider, signJwt, type Algorithm } from './helpers/identity-provider.js';
import { ROOT, wsUrl } from './helpers/plaza.js';
import { until } from './helpers/wait.mjs';
import { untilReady } from './helpers/processes.mjs';
import { metric } from './helpers/metrics.mjs';

const KEY = 'operator-key-0123456789abcdef';
const SECRET = 'an-hs256-secret-of-at-least-32-characters';
const KINDS: Algorithm[] = ['RS256', 'ES256', 'EdDSA'];
const now = () => Math.floor(Date.now() / 1000);

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A plain upgrade with `token` from `localAddress`: 101 once open, else the refusal's status and body. */
function upgrade(port: number, token: string, localAddress?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/?token=${token}`, { localAddress });
    ws.on('open', () => {
      resolve({ status: 101, headers: {}, body: '' });
      ws.terminate();
    });
    ws.on('unexpected-response', (request, response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body });
        request.destroy();
      });
    });
    ws.on('error', reject);
  });
}

/** The first `event` an emitter of Plaza's client emits, as a promise. */
function next<T>(emitter: { on(event: string, fn: (value: T) => void): () => void }, event: string): Promise<T> {
  return new Promise((resolve) => {
    const off = emitter.on(event, (value) => {
      off();
      resolve(value);
    });
  });
}

/** ws with a cookie on every upgrade: a logged-in browser, as far as the authenticate hook can tell. */
function withCookie(cookie: string): typeof WebSocket {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { headers: { cookie } });
    }
  } as typeof WebSocket;
}

describe('sign-in from identity providers', () => {
  let idp: IdentityProvider;
  const cleanups: Array<() => unknown> = [];
  const clients: PlazaClient[] = [];

  before(async () => {
    idp = await IdentityProvider.start();
  });
  after(() => idp.close());
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    idp.mode = 'up';
    idp.cacheControl = 'public, max-age=300';
    idp.body = undefined;
  });

  async function start(config: PlazaConfig = {}, provider = idp): Promise<Plaza> {
    const plaza = createPlaza({ port: 0, host: '127.0.0.1', logLevel: 'silent', authJwksUrl: provider.url, authJwksCooldown: 200, ...config });
    cleanups.push(() => plaza.close());
    await plaza.start();
    return plaza;
  }

  function client(plaza: Plaza, options: ClientOptions): PlazaClient {
    const c = connect(wsUrl(plaza), { WebSocket, minDelay: 20, maxDelay: 200, ...options });
    clients.push(c);
    return c;
  }

  /** Where a client ended: its closes and errors once it stopped, or once it opened. */
  function record(c: PlazaClient) {
    const seen = { closes: [] as CloseInfo[], errors: [] as PlazaError[], opens: 0 };
    c.on('close', (info) => seen.closes.push(info));
    c.on('error', (error) => seen.errors.push(error));
    c.on('open', () => seen.opens++);
    return seen;
  }

  describe('tokens of each kind, through Plaza\'s own client', () => {
    const modes: Array<[string, () => Promise<PlazaConfig & { cleanup?: () => Promise<void> }>, string | false]> = [
      ['one node', async () => ({}), false],
      [
        'with --data-dir',
        async () => {
          const dir = await mkdtemp(join(tmpdir(), 'plaza-idp-data-'));
          return { dataDir: dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
        },
        false,
      ],
      ['in a Redis cluster', async () => ({ redis: REDIS_URL }), skipWithoutRedis()],
    ];
    for (const [mode, configure, skip] of modes) {
      it(`${mode}: RS256, ES256 and EdDSA tokens join, publish and carry their name`, { skip }, async () => {
        const { cleanup, ...config } = await configure();
        if (cleanup) cleanups.push(cleanup);
        // A cluster's two nodes each fetch the same key set; one node otherwise.
        const nodes = config.redis ? [await start(config), await start(config)] : [await start(config)];
        // A node serves as an island until Redis answers it: wait until every one is in.
        for (const node of nodes) {
          const deadline = Date.now() + 5000;
          while ((await fetch(`${node.url}/readyz`)).status !== 200 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
        }
        const room = `idp-${randomBytes(4).toString('hex')}`;
        const listener = client(nodes.at(-1)!, { rooms: true, token: signJwt(idp.key('EdDSA'), claimsFor('listener')) });
        const heard: unknown[] = [];
        const listening = listener.join(room);
        listening.on('message', (data) => heard.push(data));
        await next(listening as never, 'joined');
        for (const alg of KINDS) {
          const speaker = client(nodes[0]!, { rooms: true, token: signJwt(idp.key(alg), claimsFor(`user-${alg}`, { name: `Ada ${alg}`, rooms: [room] })) });
          const welcome = await next<{ name: string }>(speaker as never, 'welcome');
          assert.equal(welcome.name, `Ada ${alg}`, 'the name claim');
          const ack = await speaker.join(room).publish(`hello from ${alg}`);
          assert.equal(ack.room, room);
          speaker.close();
        }
        await until(() => heard.length === 3, 3000, 'three messages');
        assert.deepEqual(heard, KINDS.map((alg) => `hello from ${alg}`));
      });
    }

    it('a plain client with a token: admitted when its grant allows the default room, 403 otherwise', async () => {
      const plaza = await start();
      const plain = client(plaza, { token: signJwt(idp.key('ES256'), claimsFor('ada', { rooms: ['lobby'] })) });
      await until(() => plain.status === 'open', 3000, 'open');
      const refused = await upgrade(plaza.port, signJwt(idp.key('ES256'), claimsFor('bob', { rooms: ['elsewhere'] })));
      assert.equal(refused.status, 403);
    });

    it('takes tokens up to 8 KiB (providers put roles and permissions in them), and refuses longer ones', async () => {
      const plaza = await start();
      const roles = (count: number) => Array.from({ length: count }, (_, i) => `role-${String(i).padStart(4, '0')}`);
      const big = signJwt(idp.key('RS256'), claimsFor('ada', { roles: roles(420) }));
      assert.ok(big.length > 7000 && big.length <= 8192, `${big.length} characters`);
      const c = client(plaza, { rooms: true, token: big });
      await until(() => c.status === 'open', 3000, 'open with a 7 KB token');
      const huge = signJwt(idp.key('RS256'), claimsFor('ada', { roles: roles(520) }));
      assert.ok(huge.length > 8192);
      const refused = client(plaza, { rooms: true, token: huge });
      const seen = record(refused);
      await until(() => refused.status === 'closed', 3000, 'closed');
      assert.match(seen.errors[0]!.message, /token is too long/);
    });

    it('reads the grants from an Auth0-style namespaced claim', async () => {
      const plaza = await start({ authRoomsClaim: '"https://example.com/rooms"' });
      const c = client(plaza, { rooms: true, token: signJwt(idp.key('RS256'), claimsFor('auth0|7', { rooms: undefined, 'https://example.com/rooms': ['team-*'] })) });
      const ok = await c.join('team-7').publish('in');
      assert.equal(ok.room, 'team-7');
      const refused = await next<PlazaError>(c.join('other') as never, 'error');
      assert.equal(refused.code, 'forbidden');
    });
  });

  describe('refusals, as the client sees them', () => {
    it('wrong issuer, wrong audience, algorithm confusion, expired: 4003 with the reason, no retry; each counted', async () => {
      const plaza = await start({ authIssuer: 'https://idp.example/', authAudience: 'plaza' });
      const right = { iss: 'https://idp.example/', aud: 'plaza' };
      const rs = idp.key('RS256');
      const cases: Array<[string, RegExp]> = [
        [signJwt(rs, claimsFor('ada', { ...right, iss: 'https://evil.example/' })), /issuer \(iss\)/],
        [signJwt(rs, claimsFor('ada', { ...right, aud: 'someone-else' })), /audience \(aud\)/],
        [forgeWithPublicKey(rs, claimsFor('ada', right)), /must be signed with RS256, ES256 or EdDSA/],
        [signJwt(generateSigningKey('PS256'), claimsFor('ada', right)), /must be signed with RS256, ES256 or EdDSA/],
        [signJwt(rs, claimsFor('ada', { ...right, exp: now() - 1 })), /has expired/],
      ];
      const before = await metric(plaza, 'plaza_auth_failures_total');
      for (const [token, reason] of cases) {
        const c = client(plaza, { rooms: true, token });
        const seen = record(c);
        await until(() => c.status === 'closed', 3000, 'closed');
        assert.deepEqual(seen.closes.map(({ code, willReconnect }) => ({ code, willReconnect })), [{ code: 4003, willReconnect: false }]);
        assert.equal(seen.errors[0]?.code, 'unauthorized');
        assert.match(seen.errors[0]!.message, reason);
      }
      assert.equal(await metric(plaza, 'plaza_auth_failures_total'), before + cases.length);
      const good = client(plaza, { rooms: true, token: signJwt(rs, claimsFor('ada', right)) });
      await until(() => good.status === 'open', 3000, 'the right token opens');
    });

    it('expiry on open connections: 4004 at exp; a token function gets a fresh token and reconnects', async () => {
      const plaza = await start();
      // Two seconds (a second, at a whole-second boundary, can pass before a busy machine connects).
      const once = client(plaza, { rooms: true, token: signJwt(idp.key('ES256'), claimsFor('ada', { exp: now() + 2 })) });
      const onceSeen = record(once);
      const issued: number[] = [];
      const refreshing = client(plaza, {
        rooms: true,
        token: async () => {
          issued.push(Date.now());
          return signJwt(idp.key('EdDSA'), claimsFor('bob', { exp: now() + (issued.length === 1 ? 2 : 600) }));
        },
      });
      const refreshingSeen = record(refreshing);
      const room = refreshing.join('lobby');
      await until(() => once.status === 'closed' && refreshingSeen.opens === 2, 6000, 'the expiry');
      assert.deepEqual(onceSeen.closes.map((c) => c.code), [4004]);
      assert.deepEqual(onceSeen.errors.map((e) => e.code), ['token_expired']);
      assert.deepEqual(refreshingSeen.closes.map(({ code, willReconnect }) => ({ code, willReconnect })), [{ code: 4004, willReconnect: true }]);
      assert.equal(issued.length, 2);
      assert.equal((await room.publish('after the fresh token')).room, 'lobby');
    });
  });

  it('picks up a rotated key without a restart, with one request to the provider', async () => {
    const plaza = await start();
    const requests = idp.requests;
    const rotated = generateSigningKey('RS256');
    const previous = idp.keys;
    idp.keys = [rotated, ...previous.filter((key) => key.alg !== 'RS256')];
    cleanups.push(() => (idp.keys = previous));
    await new Promise((resolve) => setTimeout(resolve, 250));
    const c = client(plaza, { rooms: true, token: signJwt(rotated, claimsFor('ada')) });
    await until(() => c.status === 'open', 3000, 'open with the new key');
    assert.equal(idp.requests, requests + 1);
    assert.equal((await c.join('lobby').publish('rotated')).room, 'lobby');
  });

  it('answers a flood of made-up kids with one request to the provider, and counts every refusal', async () => {
    // The cooldown counts from the fetch at start: wait it out, then the whole flood falls within the next one.
    const plaza = await start({ authJwksCooldown: 2000 });
    await new Promise((resolve) => setTimeout(resolve, 2050));
    const requests = idp.requests;
    const before = await metric(plaza, 'plaza_auth_failures_total');
    // Ten addresses, each within its failure allowance, so the limiter does not hide the bound.
    const forged = Array.from({ length: 10 }, (_, a) =>
      Array.from({ length: AUTH_FAILURE_BURST }, () => upgrade(plaza.port, signJwt(idp.key('RS256'), claimsFor('mallory'), { kid: randomBytes(8).toString('hex') }), `127.0.0.${a + 2}`)),
    ).flat();
    const answers = await Promise.all(forged);
    assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([401]));
    assert.match(answers[0]!.body, /key id \(kid\) is not in the identity provider's key set/);
    assert.equal(idp.requests, requests + 1, `${forged.length} unknown kids, one fetch`);
    assert.equal(await metric(plaza, 'plaza_auth_failures_total'), before + forged.length);
  });

  it('counts refused provider tokens and refused HS256 tokens in the one limiter: the 11th try gets 429', async () => {
    const plaza = await start({ authSecret: SECRET });
    const bad = [
      ...Array.from({ length: 5 }, () => signToken({ sub: 'x', exp: now() + 60 }, 'another-secret-that-is-also-long-enough!!')),
      ...Array.from({ length: 5 }, () => signJwt(generateSigningKey('ES256', idp.key('ES256').kid), claimsFor('x'))),
    ];
    for (const token of bad) assert.equal((await upgrade(plaza.port, token, '127.0.1.1')).status, 401);
    const limited = await upgrade(plaza.port, signJwt(idp.key('RS256'), claimsFor('ada')), '127.0.1.1');
    assert.equal(limited.status, 429, 'refused before checking, even a valid token');
    assert.ok(Number(limited.headers['retry-after']) > 0);
    // Both kinds still work from another address.
    assert.equal((await upgrade(plaza.port, signToken({ sub: 'x', rooms: '*', exp: now() + 60 }, SECRET), '127.0.1.2')).status, 101);
    assert.equal((await upgrade(plaza.port, signJwt(idp.key('RS256'), claimsFor('ada')), '127.0.1.2')).status, 101);
  });

  it('keeps accepting cached keys while the provider is down, reports it on /readyz once they expire, and recovers', async () => {
    idp.cacheControl = 'max-age=1';
    const plaza = await start({ apiKey: KEY });
    idp.mode = 'down';
    assert.equal((await fetch(`${plaza.url}/readyz`)).status, 200, 'fresh keys: ready');
    await new Promise((resolve) => setTimeout(resolve, 1300));
    const anonymous = await fetch(`${plaza.url}/readyz`);
    assert.equal(anonymous.status, 503);
    assert.deepEqual(await anonymous.json(), { status: 'not ready', reasons: ['auth_keys_unavailable'] });
    const operator = (await (await fetch(`${plaza.url}/readyz`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { details: string[] };
    assert.match(operator.details[0]!, /expired at .* and fetching them again failed .*; tokens signed with them are still accepted/);
    for (const alg of KINDS) {
      const c = client(plaza, { rooms: true, token: signJwt(idp.key(alg), claimsFor(`ada-${alg}`)) });
      await until(() => c.status === 'open', 3000, `${alg} with the cached key`);
    }
    idp.mode = 'up';
    await untilReady(plaza.url, 200, 3000); // ready again once the provider answers
  });

  it('starts while the provider is down: not ready, upgrades 503 (not counted), and serves once it answers', async () => {
    const down = await IdentityProvider.start();
    cleanups.push(() => down.close());
    down.mode = 'down';
    const plaza = await start({ authJwksTimeout: 300 }, down);
    const readyz = await fetch(`${plaza.url}/readyz`);
    assert.equal(readyz.status, 503);
    assert.deepEqual(await readyz.json(), { status: 'not ready', reasons: ['auth_keys_unavailable'] });
    const refused = await upgrade(plaza.port, signJwt(down.key('RS256'), claimsFor('ada')));
    assert.equal(refused.status, 503);
    assert.equal(refused.headers['retry-after'], '5');
    assert.equal(await metric(plaza, 'plaza_auth_failures_total'), 0, 'the provider\'s outage is not the client\'s failure');
    down.mode = 'up';
    const c = client(plaza, { rooms: true, token: () => signJwt(down.key('RS256'), claimsFor('ada')) });
    await until(() => c.status === 'open', 5000, 'open once the provider answers');
    assert.equal((await fetch(`${plaza.url}/readyz`)).status, 200);
  });

  it('never logs a provider\'s token, valid or refused', async () => {
    const lines: string[] = [];
    const plaza = createPlaza(
      { port: 0, host: '127.0.0.1', logLevel: 'debug', logFormat: 'json', authJwksUrl: idp.url, authJwksCooldown: 200 },
      { logger: createLogger({ level: 'debug', format: 'json', write: (line) => lines.push(line) }) },
    );
    cleanups.push(() => plaza.close());
    await plaza.start();
    const valid = signJwt(idp.key('ES256'), claimsFor('ada'));
    const forged = signJwt(generateSigningKey('ES256', idp.key('ES256').kid), claimsFor('mallory'));
    const c = client(plaza, { rooms: true, token: valid });
    await until(() => c.status === 'open', 3000, 'open');
    assert.equal((await upgrade(plaza.port, forged)).status, 401);
    c.close();
    await until(() => lines.some((line) => line.includes('connection closed')), 3000, 'the close line');
    const log = lines.join('');
    assert.match(log, /refused an upgrade without a valid key or token/);
    for (const token of [valid, forged]) {
      for (const part of token.split('.')) assert.ok(!log.includes(part), 'no part of a token is logged');
    }
  });

  it('lets the authenticate hook decide first; when it passes, the provider\'s token decides', async () => {
    const plaza = await start({
      authenticate: (request) => (request.headers.cookie === 'session=staff' ? { id: 'staff-1', name: 'Staff' } : undefined),
    });
    const staff = client(plaza, { rooms: true, WebSocket: withCookie('session=staff') });
    const user = client(plaza, { rooms: true, token: signJwt(idp.key('RS256'), claimsFor('ada', { name: 'Ada' })) });
    const [staffWelcome, userWelcome] = await Promise.all([staff, user].map((c) => next<{ name: string }>(c as never, 'welcome')));
    assert.equal(staffWelcome!.name, 'Staff');
    assert.equal(userWelcome!.name, 'Ada');
    assert.equal((await upgrade(plaza.port, 'not-a-jwt')).status, 401, 'neither: refused');
  });

  it('checks tokens with --auth-public-key (a PEM file), and refuses a private key at start', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plaza-idp-pem-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const key = generateSigningKey('ES256');
    await writeFile(join(dir, 'public.pem'), key.publicKey.export({ type: 'spki', format: 'pem' }));
    await writeFile(join(dir, 'private.pem'), key.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const plaza = await start({ authJwksUrl: '', authPublicKey: join(dir, 'public.pem') });
    const c = client(plaza, { rooms: true, token: signJwt(key, claimsFor('ada')) });
    await until(() => c.status === 'open', 3000, 'open');
    const refused = createPlaza({ port: 0, host: '127.0.0.1', logLevel: 'silent', authPublicKey: join(dir, 'private.pem') });
    await assert.rejects(refused.start(), { name: 'ConfigError', option: 'authPublicKey', message: /holds a private key/ });
    assert.equal(refused.state, 'closed');
  });

  it('refuses bad combinations when the library is created, with a ConfigError naming the option', () => {
    const cases: Array<[PlazaConfig, string, RegExp]> = [
      [{ authJwksUrl: 'http://idp.example.com/jwks' }, 'authJwksUrl', /must be https/],
      [{ authJwksUrl: 'ftp://idp.example.com/jwks' }, 'authJwksUrl', /expected an https:\/\/ URL/],
      [{ authJwksUrl: idp.url, authAlgorithms: ['HS256'] }, 'authAlgorithms', /algorithm confusion/],
      [{ authJwksUrl: idp.url, authAlgorithms: ['none'] }, 'authAlgorithms', /"none" would accept unsigned tokens/],
      [{ authJwksUrl: idp.url, authAlgorithms: [] }, 'authAlgorithms', /list at least one algorithm/],
      [{ authJwksUrl: idp.url, authPublicKey: '/etc/idp.pem' }, 'authPublicKey', /not both/],
      [{ authAudience: 'plaza' }, 'authAudience', /no token is required/],
      [{ authSecret: SECRET, authPublishClaim: 'plaza..publish' }, 'authPublishClaim', /single dots/],
      [{ authJwksUrl: idp.url, authJwksMaxBytes: 10 }, 'authJwksMaxBytes', /expected a size in bytes from 1024/],
    ];
    for (const [config, option, message] of cases) {
      assert.throws(() => createPlaza({ logLevel: 'silent', ...config }), (error: unknown) => {
        assert.ok(error instanceof Error && error.name === 'ConfigError', String(error));
        assert.equal((error as { code?: string }).code, 'PLAZA_ERR_CONFIG');
        assert.equal((error as { option?: string }).option, option);
        assert.match(error.message, message);
        return true;
      });
    }
  });

  describe('the command line, from a bare copy of dist/', () => {
    let copy: string;
    before(async () => {
      copy = await mkdtemp(join(tmpdir(), 'plaza-idp-dist-'));
      await cp(join(ROOT, 'dist'), copy, { recursive: true });
    });
    after(() => rm(copy, { recursive: true, force: true }));

    const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      spawnSync(process.execPath, [join(copy, 'server.js'), '--port', '0', '--host', '127.0.0.1', ...args], { cwd: copy, env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL' });

    it('exits 2 with one line naming the option for every bad combination', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'plaza-idp-cli-'));
      try {
        await writeFile(join(dir, 'private.pem'), generateSigningKey('EdDSA').privateKey.export({ type: 'pkcs8', format: 'pem' }));
        const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
          [['--auth-jwks-url', 'http://idp.example.com/jwks'], {}, /^plaza: --auth-jwks-url: must be https: keys fetched over plain http could be swapped/],
          [['--auth-jwks-url', idp.url, '--auth-algorithms', 'RS256,HS256'], {}, /^plaza: --auth-algorithms: HS256 is an HMAC algorithm: with a public key anyone could sign tokens \(algorithm confusion\)/],
          [['--auth-jwks-url', idp.url], { AUTH_ALGORITHMS: 'none' }, /^plaza: --auth-algorithms: "none" would accept unsigned tokens/],
          [['--auth-jwks-url', idp.url, '--auth-algorithms', 'RS257'], {}, /^plaza: --auth-algorithms: "RS257" is not an algorithm Plaza checks; use RS256, RS384/],
          [['--auth-jwks-url', idp.url, '--auth-public-key', join(dir, 'private.pem')], {}, /^plaza: --auth-public-key: use either --auth-jwks-url .* or --auth-public-key .*, not both/],
          [['--auth-issuer', 'https://idp.example/'], {}, /^plaza: --auth-issuer: checks tokens, and no token is required: add --auth-secret, --auth-jwks-url or --auth-public-key/],
          [['--auth-jwks-url', idp.url, '--auth-rooms-claim', 'https://example.com/rooms'], {}, /^plaza: --auth-rooms-claim: a claim name that is a URL holds dots: put it in double quotes/],
          [['--auth-jwks-url', idp.url, '--auth-jwks-cooldown', '10'], {}, /^plaza: --auth-jwks-cooldown: expected an integer from 100 to 3600000/],
          [['--auth-public-key', join(dir, 'private.pem')], {}, /^plaza: --auth-public-key: \S+private\.pem holds a private key; give Plaza only the public key/],
          [['--auth-public-key', join(dir, 'missing.pem')], {}, /^plaza: --auth-public-key: cannot read \S+missing\.pem \(ENOENT\)/],
        ];
        for (const [args, env, expected] of cases) {
          const result = run(args, env);
          assert.equal(result.status, 2, `${args.join(' ')}: exit ${result.status} ${result.stderr}`);
          assert.match(result.stderr, expected);
          assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('serves provider tokens from the copy: jose is bundled into dist/server.js', async () => {
      const child = spawn(process.execPath, [join(copy, 'server.js'), '--port', '0', '--host', '127.0.0.1', '--log-format', 'json', '--auth-jwks-url', idp.url], { cwd: copy, env: { PATH: process.env.PATH } });
      cleanups.push(() => child.kill('SIGKILL'));
      const url = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).on('line', (line) => {
          const entry = JSON.parse(line) as { msg: string; url?: string };
          if (entry.msg === 'Plaza is serving' && entry.url) resolve(entry.url);
        });
        child.on('exit', (code) => reject(new Error(`exited with ${code}`)));
      });
      const port = Number(new URL(url).port);
      assert.equal((await upgrade(port, signJwt(idp.key('EdDSA'), claimsFor('ada')))).status, 101);
      assert.equal((await upgrade(port, forgeWithPublicKey(idp.key('RS256'), claimsFor('ada')))).status, 401);
    });

    it('lists the new options in --help', () => {
      const help = run(['--help']).stdout;
      for (const flag of ['--auth-jwks-url <url>', '--auth-public-key <file>', '--auth-algorithms <alg,…>', '--auth-issuer <iss>', '--auth-audience <aud>', '--auth-rooms-claim <path>', '--auth-publish-claim <path>', '--auth-jwks-cooldown <ms>', '--auth-jwks-timeout <ms>', '--auth-jwks-max-bytes <size>']) {
        assert.ok(help.includes(flag), `--help lacks ${flag}`);
      }
      assert.match(help, /\[default: RS256,ES256,EdDSA\]/);
    });
  });
});
