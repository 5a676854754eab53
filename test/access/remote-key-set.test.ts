/**
 * An identity provider's key set (src/server/access/remote-key-set.ts) against a real JWKS server
 * on port 0 (test/helpers/identity-provider.ts), with keys generated here and imported by jose as
 * Plaza imports them: the cache follows the provider's headers, an unknown kid fetches once and
 * at most once per cooldown however many tokens ask, an outage keeps the keys and is reported
 * once they are past their time, and every bad answer leaves the keys in hand untouched.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { importJWK } from 'jose';
import { TokenCheckUnavailableError, type ImportKey } from '../../src/server/access/key-set.js';
import { MAX_KEYS } from '../../src/server/bounds.js';
import { DEFAULT_FRESH_MS, keepFor, MAX_FRESH_MS, RemoteKeySet, type RemoteKeySetOptions } from '../../src/server/access/remote-key-set.js';
import { TokenError } from '../../src/server/access/token-claims.js';
import { createLogger } from '../../src/server/logger.js';
import { generateSigningKey, IdentityProvider, publicJwk } from '../helpers/identity-provider.js';
import { sleep } from '../helpers/wait.mjs';

const importKey: ImportKey = (jwk, alg) => importJWK(jwk as never, alg) as Promise<CryptoKey>;

describe('RemoteKeySet', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setUp(options: Partial<RemoteKeySetOptions> = {}, provider?: IdentityProvider) {
    const idp = provider ?? (await IdentityProvider.start());
    if (!provider) cleanups.push(() => idp.close());
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', format: 'json', write: (line) => lines.push(line) });
    const keys = new RemoteKeySet({ url: idp.url, algorithms: ['RS256', 'ES256', 'EdDSA'], cooldown: 200, timeout: 500, maxBytes: 64 * 1024, ...options }, importKey, logger);
    cleanups.push(() => keys.close());
    await keys.start();
    /** The text of every log line, as a person reads it (fields unescaped). */
    const log = () => lines.map((line) => Object.values(JSON.parse(line) as Record<string, unknown>).join(' ')).join('\n');
    return { idp, keys, log };
  }

  it('fetches the keys once at start and answers from them without asking again', async () => {
    const { idp, keys } = await setUp();
    assert.equal(idp.requests, 1);
    for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
      const key = keys.keyFor(alg, idp.key(alg).kid);
      assert.ok(!(key instanceof Promise), 'a known kid is a lookup, no promise');
      assert.equal((key as CryptoKey).type, 'public');
    }
    await sleep(400);
    assert.equal(idp.requests, 1, 'max-age=300: nothing fetched within it');
    assert.equal(keys.problem(), undefined);
  });

  it('fetches again in the background when max-age runs out', async () => {
    const idp = await IdentityProvider.start();
    cleanups.push(() => idp.close());
    idp.cacheControl = 'public, max-age=1';
    await setUp({ cooldown: 100 }, idp);
    await sleep(700);
    assert.equal(idp.requests, 1, 'still fresh');
    await idp.waitForRequests(2, 2000);
  });

  it('keeps keys for max-age, 5 minutes without cache headers, never less than the cooldown nor more than a day', async () => {
    assert.equal(keepFor({ 'cache-control': 'max-age=600' }, 30_000), 600_000);
    assert.equal(keepFor({}, 30_000), DEFAULT_FRESH_MS);
    assert.equal(DEFAULT_FRESH_MS, 5 * 60_000);
    assert.equal(keepFor({ 'cache-control': 'max-age=5' }, 30_000), 30_000);
    assert.equal(keepFor({ 'cache-control': 'max-age=31536000' }, 30_000), MAX_FRESH_MS);
    assert.equal(MAX_FRESH_MS, 24 * 3600_000);
    // Against a real answer with no cache headers: nothing fetched after several cooldowns.
    const idp = await IdentityProvider.start();
    cleanups.push(() => idp.close());
    idp.cacheControl = '';
    await setUp({ cooldown: 100 }, idp);
    await sleep(500);
    assert.equal(idp.requests, 1);
  });

  it('takes no-store as "fetch again after the cooldown", not "fetch all the time"', async () => {
    const idp = await IdentityProvider.start();
    cleanups.push(() => idp.close());
    idp.cacheControl = 'no-store';
    await setUp({ cooldown: 500 }, idp);
    await sleep(300);
    assert.equal(idp.requests, 1);
    await sleep(1000);
    assert.ok(idp.requests >= 2 && idp.requests <= 3, `one fetch per 500 ms at most: ${idp.requests} in 1.3 s`);
  });

  it('fetches once for a token with an unknown kid: a rotated key is picked up', async () => {
    const { idp, keys } = await setUp();
    const rotated = generateSigningKey('ES256');
    idp.keys = [rotated, ...idp.keys.filter((key) => key.alg !== 'ES256')];
    await sleep(250);
    const key = await keys.keyFor('ES256', rotated.kid);
    assert.equal(key.type, 'public');
    assert.equal(idp.requests, 2);
    // The old key left the set with the fetch.
    assert.throws(() => keys.keyFor('ES256', 'es256-gone'), TokenError);
  });

  it('turns a flood of made-up kids into one fetch per cooldown, refusing the rest at once', async () => {
    const { idp, keys } = await setUp({ cooldown: 500 });
    await sleep(550);
    const flood = () =>
      Array.from({ length: 300 }, () => {
        try {
          return Promise.resolve(keys.keyFor('RS256', randomBytes(8).toString('hex'))).then(() => 'accepted', (error: unknown) => (error instanceof TokenError ? 'refused' : String(error)));
        } catch (error) {
          return Promise.resolve(error instanceof TokenError ? 'refused at once' : String(error));
        }
      });
    const first = await Promise.all(flood());
    assert.equal(idp.requests, 2, 'the first unknown kid fetched; the other 299 waited for that same fetch');
    assert.deepEqual(new Set(first), new Set(['refused']));
    const second = await Promise.all(flood());
    assert.equal(idp.requests, 2, 'within the cooldown: no fetch at all');
    assert.deepEqual(new Set(second), new Set(['refused at once']));
    await sleep(550);
    await Promise.all(flood());
    assert.equal(idp.requests, 3, 'after the cooldown: one more');
  });

  it('keeps the keys while the provider is down, reports it once they expire, and recovers', async () => {
    const idp = await IdentityProvider.start();
    cleanups.push(() => idp.close());
    idp.cacheControl = 'max-age=1';
    const { keys, log } = await setUp({ cooldown: 200 }, idp);
    idp.mode = 'down';
    assert.equal(keys.problem(), undefined);
    await idp.waitForRequests(2, 3000);
    await sleep(100);
    const problem = keys.problem();
    assert.match(problem ?? '', new RegExp(`^the keys fetched from ${idp.url.replace(/[.]/g, '\\.')} expired at .* and fetching them again failed \\(.*\\); tokens signed with them are still accepted$`));
    assert.equal((keys.keyFor('RS256', idp.key('RS256').kid) as CryptoKey).type, 'public', 'the cached key still works');
    await idp.waitForRequests(4, 3000);
    assert.match(log(), /could not fetch the identity provider's keys/);
    idp.mode = 'up';
    const deadline = Date.now() + 3000;
    while (keys.problem() !== undefined && Date.now() < deadline) await sleep(20);
    assert.equal(keys.problem(), undefined);
    assert.match(log(), /the identity provider's keys can be fetched again/);
  });

  it('answers "not yet" while no key was ever fetched, without blaming the token', async () => {
    const idp = await IdentityProvider.start();
    cleanups.push(() => idp.close());
    idp.mode = 'down';
    const { keys } = await setUp({ cooldown: 200 }, idp);
    assert.match(keys.problem()!, /^no keys fetched from .*jwks\.json yet: /);
    await assert.rejects(Promise.resolve().then(() => keys.keyFor('RS256', idp.key('RS256').kid)), TokenCheckUnavailableError);
    idp.mode = 'up';
    await sleep(250);
    assert.equal((await keys.keyFor('RS256', idp.key('RS256').kid)).type, 'public', 'fetched by the retry a cooldown later');
  });

  it('keeps the keys in hand when an answer is not a usable key set', async () => {
    const { idp, keys, log } = await setUp({ cooldown: 100, maxBytes: 4096 });
    const rs = idp.key('RS256').kid;
    const bad: Array<[string, RegExp]> = [
      ['not json', /the answer is not JSON/],
      ['{"nokeys":[]}', /has no "keys" list/],
      [JSON.stringify({ keys: Array.from({ length: MAX_KEYS + 1 }, () => ({})) }), new RegExp(`${MAX_KEYS + 1} keys, more than ${MAX_KEYS}`)],
      [JSON.stringify({ keys: [], padding: 'x'.repeat(5000) }), /more than the bound of 4096/],
      [JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }), /holds no key for RS256, ES256, EdDSA/],
    ];
    for (const [body, reason] of bad) {
      idp.body = body;
      await sleep(120);
      await assert.rejects(Promise.resolve().then(() => keys.keyFor('RS256', `unknown-${reason.source.length}`)), TokenError);
      assert.match(log(), reason);
      assert.equal((keys.keyFor('RS256', rs) as CryptoKey).type, 'public', `after ${reason}`);
    }
  });

  it('skips keys it must not use, with the reason, and keeps the others', async () => {
    const { idp, keys, log } = await setUp({ cooldown: 100 });
    const good = generateSigningKey('RS256');
    const privateJwk = generateSigningKey('ES256');
    idp.body = JSON.stringify({
      keys: [
        publicJwk(good),
        { ...(privateJwk.privateKey.export({ format: 'jwk' }) as object), kid: 'private' },
        publicJwk(generateSigningKey('ES256'), { kid: 'for-encryption', use: 'enc' }),
        publicJwk(generateSigningKey('RS256'), { kid: 'ps-only', alg: 'PS256' }),
        { kty: 'RSA', kid: 'short', n: Buffer.alloc(128, 1).toString('base64url'), e: 'AQAB' },
        'not an object',
      ],
    });
    await sleep(120);
    assert.equal((await keys.keyFor('RS256', good.kid)).type, 'public');
    const skipped = log();
    assert.match(skipped, /"private": it is a private key/);
    assert.match(skipped, /"for-encryption": its "use" is "enc", not "sig"/);
    assert.match(skipped, /"ps-only": no allowed algorithm \(RS256, ES256, EdDSA\) checks signatures with its type \(RSA PS256\)/);
    assert.match(skipped, /"short": it is an RSA key shorter than 2048 bits/);
    assert.match(skipped, /key 5 is not an object/);
  });

  it('picks the only key for a token without kid, and refuses when several could have signed it', async () => {
    const { idp, keys } = await setUp({ algorithms: ['RS256', 'ES256'] });
    assert.equal((keys.keyFor('ES256', undefined) as CryptoKey).algorithm.name, 'ECDSA');
    idp.keys.push(generateSigningKey('ES256'));
    await sleep(250);
    await keys.keyFor('ES256', idp.keys.at(-1)!.kid);
    assert.throws(() => keys.keyFor('ES256', undefined), { name: 'TokenError', message: /no key id \(kid\), and several keys could have signed it/ });
    assert.throws(() => keys.keyFor('RS256', idp.key('ES256').kid), { message: /token key \(kid\) does not check RS256 signatures/ });
    assert.throws(() => keys.keyFor('RS256', 42), { message: /"kid" \(key id\) must be a string/ });
  });

  it('stops fetching on close(), and close() may be called twice', async () => {
    const idp = await IdentityProvider.start();
    cleanups.push(() => idp.close());
    idp.cacheControl = 'no-store';
    const { keys } = await setUp({ cooldown: 100 }, idp);
    keys.close();
    keys.close();
    const seen = idp.requests;
    await sleep(300);
    assert.equal(idp.requests, seen);
  });
});
