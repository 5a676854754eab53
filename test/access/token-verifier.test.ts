/**
 * The door's token check (src/server/access/token-verifier.ts) with real keys generated here and
 * a real JWKS server: tokens of each kind accepted, and every way one is refused — issuer and
 * audience, algorithm confusion (the RS256 public key as an HS256 secret), `none`, an algorithm
 * not allowed, expired, tampered, the wrong key — with messages safe to show the client. Also
 * --auth-public-key (a PEM key or certificate; a private key refused), the claim paths, and the
 * bound on checks in flight.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { resolveOptions, type PlazaOptions } from '../../src/server/config.js';
import { createTokenVerifier, TokenCheckUnavailableError, type TokenVerifier } from '../../src/server/access/token-verifier.js';
import { MAX_PENDING_CHECKS } from '../../src/server/bounds.js';
import { TokenError, type Grant } from '../../src/server/access/token-claims.js';
import { signToken } from '../../src/server/access/tokens.js';
import { createLogger } from '../../src/server/logger.js';
import { claimsFor, forgeWithPublicKey, generateSigningKey, IdentityProvider, signJwt, type SigningKey } from '../helpers/identity-provider.js';

const SECRET = 'a-secret-of-at-least-32-characters-0123';
const silent = createLogger({ level: 'silent', format: 'json' });

async function verifierFor(options: Partial<PlazaOptions>): Promise<TokenVerifier> {
  const verifier = createTokenVerifier(resolveOptions(options), silent)!;
  await verifier.start();
  return verifier;
}

/** The refusal's message; fails if the token is accepted or the message repeats the token. */
async function refusal(verifier: TokenVerifier, token: string): Promise<string> {
  try {
    await verifier.verify(token);
  } catch (error) {
    assert.ok(error instanceof TokenError, String(error));
    for (const part of token.split('.')) if (part.length > 8) assert.ok(!error.message.includes(part), 'the message never repeats the token');
    return error.message;
  }
  throw new Error('expected the token to be refused');
}

describe('token verifier', () => {
  let idp: IdentityProvider;
  let jwks: TokenVerifier;
  let both: TokenVerifier;
  before(async () => {
    idp = await IdentityProvider.start([generateSigningKey('RS256'), generateSigningKey('ES256'), generateSigningKey('EdDSA'), generateSigningKey('PS256')]);
    jwks = await verifierFor({ authJwksUrl: idp.url, authIssuer: 'https://idp.example/', authAudience: 'plaza' });
    both = await verifierFor({ authJwksUrl: idp.url, authSecret: SECRET });
  });
  after(async () => {
    jwks.close();
    both.close();
    await idp.close();
  });

  const good = (extra: Record<string, unknown> = {}) => claimsFor('ada', { iss: 'https://idp.example/', aud: 'plaza', name: 'Ada', ...extra });

  it('accepts RS256, ES256 and EdDSA tokens from the key set, with what they grant', async () => {
    for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
      const grant = await jwks.verify(signJwt(idp.key(alg), good({ rooms: ['team-*'], publish: 'team-7' })));
      assert.equal(grant.userId, 'ada', alg);
      assert.equal(grant.name, 'Ada');
      assert.equal(grant.mayJoin('team-9'), true);
      assert.equal(grant.mayPublish('team-9'), false);
      assert.equal(grant.mayPublish('team-7'), true);
      assert.ok(grant.expiresAt! > Date.now());
    }
  });

  it('checks HS256 tokens with the secret at once, beside the key set', async () => {
    const grant = both.verify(signToken({ sub: 'bob', rooms: '*', exp: Math.floor(Date.now() / 1000) + 60 }, SECRET));
    assert.ok(!(grant instanceof Promise), 'the HS256 fast path answers synchronously');
    assert.equal((grant as Grant).userId, 'bob');
    assert.equal((await both.verify(signJwt(idp.key('EdDSA'), claimsFor('carol')))).userId, 'carol');
  });

  it('refuses an RS256 public key used as the HS256 secret (algorithm confusion), with or without --auth-secret', async () => {
    for (const key of [idp.key('RS256'), idp.key('ES256')]) {
      assert.match(await refusal(jwks, forgeWithPublicKey(key, good())), /^token must be signed with RS256, ES256 or EdDSA$/);
      assert.match(await refusal(both, forgeWithPublicKey(key, good())), /^token signature is invalid$/, 'HS256 is checked with the secret, never with a key');
      for (const alg of ['HS384', 'HS512']) assert.match(await refusal(both, forgeWithPublicKey(key, good(), alg)), /must be signed with HS256, RS256, ES256 or EdDSA/);
    }
  });

  it('refuses alg none, an algorithm not allowed, and an algorithm that does not fit the key', async () => {
    const rs = idp.key('RS256');
    const unsigned = `${signJwt(rs, good(), { alg: 'none' }).split('.').slice(0, 2).join('.')}.`;
    assert.match(await refusal(jwks, unsigned), /must be signed with RS256, ES256 or EdDSA/);
    assert.match(await refusal(jwks, signJwt(idp.key('PS256'), good())), /must be signed with RS256, ES256 or EdDSA/, 'PS256 is not in the default allow-list');
    const ps = await verifierFor({ authJwksUrl: idp.url, authAlgorithms: ['PS256'] });
    try {
      assert.equal((await ps.verify(signJwt(idp.key('PS256'), claimsFor('ada')))).userId, 'ada');
      assert.match(await refusal(ps, signJwt(rs, claimsFor('ada'))), /must be signed with PS256/);
    } finally {
      ps.close();
    }
    // An ES256 header over the RSA key's kid: that key checks RS256 only.
    assert.match(await refusal(jwks, signJwt(idp.key('ES256'), good(), { kid: rs.kid })), /token key \(kid\) does not check ES256 signatures/);
  });

  it('refuses a wrong issuer or audience, and accepts the audience in a list', async () => {
    const rs = idp.key('RS256');
    assert.match(await refusal(jwks, signJwt(rs, good({ iss: 'https://evil.example/' }))), /issuer \(iss\) is not the one this server accepts/);
    assert.match(await refusal(jwks, signJwt(rs, good({ iss: undefined }))), /issuer/);
    assert.match(await refusal(jwks, signJwt(rs, good({ aud: 'another-api' }))), /audience \(aud\) does not name this server/);
    assert.match(await refusal(jwks, signJwt(rs, good({ aud: ['a', 'b'] }))), /audience/);
    assert.equal((await jwks.verify(signJwt(rs, good({ aud: ['another-api', 'plaza'] })))).userId, 'ada');
  });

  it('refuses expired, not-yet-valid, tampered and foreign-signed tokens', async () => {
    const es = idp.key('ES256');
    const now = Math.floor(Date.now() / 1000);
    assert.match(await refusal(jwks, signJwt(es, good({ exp: now - 1 }))), /has expired/);
    assert.match(await refusal(jwks, signJwt(es, good({ exp: undefined }))), /no "exp" claim/);
    assert.match(await refusal(jwks, signJwt(es, good({ nbf: now + 120 }))), /not valid yet/);
    const [header, , signature] = signJwt(es, good()).split('.');
    const elevated = Buffer.from(JSON.stringify(good({ sub: 'root' }))).toString('base64url');
    assert.match(await refusal(jwks, `${header}.${elevated}.${signature}`), /^token signature is invalid$/);
    const impostor = generateSigningKey('ES256', es.kid);
    assert.match(await refusal(jwks, signJwt(impostor, good())), /^token signature is invalid$/, 'the same kid, another key');
    assert.match(await refusal(jwks, signJwt(es, good(), { crit: ['exp'] })), /not a JWT signed the way this server checks/);
    assert.match(await refusal(jwks, 'x'.repeat(9000)), /too long/);
  });

  it('reads the grants from an Auth0-style namespaced claim or a Keycloak-style nested one', async () => {
    const auth0 = await verifierFor({ authJwksUrl: idp.url, authRoomsClaim: '"https://example.com/rooms"', authPublishClaim: '"https://example.com/publish"' });
    const keycloak = await verifierFor({ authJwksUrl: idp.url, authRoomsClaim: 'plaza.rooms', authPublishClaim: 'resource_access.plaza.roles' });
    try {
      const fromAuth0 = await auth0.verify(signJwt(idp.key('RS256'), claimsFor('auth0|17', { rooms: undefined, 'https://example.com/rooms': ['team-*'], 'https://example.com/publish': ['team-7'] })));
      assert.deepEqual([fromAuth0.mayJoin('team-1'), fromAuth0.mayPublish('team-1'), fromAuth0.mayPublish('team-7')], [true, false, true]);
      const fromKeycloak = await keycloak.verify(
        signJwt(idp.key('RS256'), claimsFor('f81d4fae', { rooms: undefined, plaza: { rooms: 'lobby,ops-*' }, resource_access: { plaza: { roles: ['ops-1'] } } })),
      );
      assert.deepEqual([fromKeycloak.mayJoin('ops-2'), fromKeycloak.mayJoin('other'), fromKeycloak.mayPublish('ops-1'), fromKeycloak.mayPublish('ops-2')], [true, false, true, false]);
      // A top-level `rooms` is not read once the grants live elsewhere.
      const ignored = await keycloak.verify(signJwt(idp.key('RS256'), claimsFor('x', { rooms: '*' })));
      assert.equal(ignored.mayJoin('lobby'), false);
      assert.match(await refusal(keycloak, signJwt(idp.key('RS256'), claimsFor('x', { plaza: { rooms: 7 } }))), /claim "plaza.rooms" must be a list/);
    } finally {
      auth0.close();
      keycloak.close();
    }
  });

  it('answers "unavailable" (not the token\'s fault) while the key set was never fetched', async () => {
    const down = await IdentityProvider.start();
    down.mode = 'down';
    const verifier = await verifierFor({ authJwksUrl: down.url, authJwksTimeout: 300, authJwksCooldown: 60_000 });
    try {
      await assert.rejects(Promise.resolve().then(() => verifier.verify(signJwt(down.key('RS256'), claimsFor('ada')))), TokenCheckUnavailableError);
      assert.match(verifier.problem()!, /^no keys fetched from http:\/\/127\.0\.0\.1:\d+\/\.well-known\/jwks\.json yet: /);
    } finally {
      verifier.close();
      await down.close();
    }
  });

  it(`keeps at most ${MAX_PENDING_CHECKS} signature checks on their way; past it answers "unavailable" at once`, async () => {
    const token = signJwt(idp.key('RS256'), good());
    const checks: Array<Promise<Grant>> = [];
    for (let i = 0; i < MAX_PENDING_CHECKS; i++) checks.push(jwks.verify(token) as Promise<Grant>);
    assert.throws(() => jwks.verify(token), { name: 'TokenCheckUnavailableError', message: /too many tokens are being checked/ });
    assert.equal((await Promise.all(checks)).length, MAX_PENDING_CHECKS);
    assert.equal((await jwks.verify(token)).userId, 'ada', 'room again once they are done');
  });

  describe('--auth-public-key', () => {
    let dir: string;
    let rsa: SigningKey;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'plaza-public-key-'));
      rsa = generateSigningKey('RS256');
      writeFileSync(join(dir, 'rsa.pem'), rsa.publicKey.export({ type: 'spki', format: 'pem' }));
      writeFileSync(join(dir, 'rsa-pkcs1.pem'), rsa.publicKey.export({ type: 'pkcs1', format: 'pem' }));
      writeFileSync(join(dir, 'private.pem'), rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
      writeFileSync(join(dir, 'garbage.pem'), 'not a key');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'cert-key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=idp'], { stdio: 'ignore' });
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('checks tokens with the key in a PEM file (SPKI or PKCS#1), whatever kid they name', async () => {
      for (const file of ['rsa.pem', 'rsa-pkcs1.pem']) {
        const verifier = await verifierFor({ authPublicKey: join(dir, file) });
        assert.equal((await verifier.verify(signJwt(rsa, claimsFor('ada')))).userId, 'ada', file);
        assert.equal((await verifier.verify(signJwt(rsa, claimsFor('ada'), { kid: 'anything' }))).userId, 'ada');
        assert.equal((await verifier.verify(signJwt(rsa, claimsFor('ada'), { kid: undefined }))).userId, 'ada');
        assert.match(await refusal(verifier, signJwt(generateSigningKey('RS256'), claimsFor('ada'))), /^token signature is invalid$/);
        assert.match(await refusal(verifier, signJwt(generateSigningKey('ES256'), claimsFor('ada'))), /no key checks ES256 signatures here/);
        assert.match(await refusal(verifier, forgeWithPublicKey(rsa, claimsFor('ada'))), /must be signed with RS256, ES256 or EdDSA/);
      }
    });

    it('takes the key of a certificate', async () => {
      const verifier = await verifierFor({ authPublicKey: join(dir, 'cert.pem') });
      const { createPrivateKey, createPublicKey } = await import('node:crypto');
      const { readFileSync } = await import('node:fs');
      const privateKey = createPrivateKey(readFileSync(join(dir, 'cert-key.pem')));
      const key: SigningKey = { kid: 'cert', alg: 'ES256', privateKey, publicKey: createPublicKey(privateKey) };
      assert.equal((await verifier.verify(signJwt(key, claimsFor('ada')))).userId, 'ada');
    });

    it('refuses at start a private key, a file that is no key, a missing file, and a key no allowed algorithm checks', async () => {
      const start = (options: Partial<PlazaOptions>) => createTokenVerifier(resolveOptions(options), silent)!.start();
      await assert.rejects(start({ authPublicKey: join(dir, 'private.pem') }), { name: 'ConfigError', option: 'authPublicKey', message: /private\.pem holds a private key; give Plaza only the public key \(openssl pkey -in .* -pubout/ });
      await assert.rejects(start({ authPublicKey: join(dir, 'garbage.pem') }), { name: 'ConfigError', message: /garbage\.pem is not a PEM public key or certificate/ });
      await assert.rejects(start({ authPublicKey: join(dir, 'missing.pem') }), { name: 'ConfigError', message: /cannot read .*missing\.pem \(ENOENT\)/ });
      await assert.rejects(start({ authPublicKey: join(dir, 'rsa.pem'), authAlgorithms: ['ES256'] }), {
        name: 'ConfigError',
        message: /the key in .*rsa\.pem cannot check tokens: no allowed algorithm \(ES256\) checks signatures with its type \(RSA\); allow one of RS256, RS384, RS512, PS256, PS384, PS512 in --auth-algorithms/,
      });
    });
  });
});
