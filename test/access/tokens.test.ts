/**
 * Signed tokens (src/server/access/tokens.ts): HS256 JWTs signed and verified with node:crypto.
 * What a token grants, every way one is refused (with a message that never repeats the token),
 * and the clock rules: no leeway on exp, LEEWAY (30 s) on nbf. Times are passed in, not waited for.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { parseDuration, signToken, TokenError, verifyToken, type TokenClaims } from '../../src/server/access/tokens.js';

const SECRET = 'a-secret-of-at-least-32-characters-0123';
const NOW = 1_700_000_000_000;
const SECONDS = NOW / 1000;

const token = (claims: Record<string, unknown> = {}, secret = SECRET) =>
  signToken({ sub: 'ada', exp: SECONDS + 60, ...claims } as TokenClaims, secret);

/** A token with any header and payload, signed (correctly) with SECRET. */
function forge(header: unknown, payload: unknown, secret = SECRET): string {
  const head = Buffer.from(JSON.stringify(header)).toString('base64url');
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  return `${head}.${body}.${createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url')}`;
}

/** verifyToken's refusal message; fails the test if it accepts, or if the message leaks the token. */
function refusal(candidate: string, now = NOW): string {
  try {
    verifyToken(candidate, SECRET, now);
  } catch (error) {
    assert.ok(error instanceof TokenError, String(error));
    assert.equal(error.name, 'TokenError');
    for (const part of candidate.split('.')) if (part.length > 8) assert.ok(!error.message.includes(part), 'the message never repeats the token');
    return error.message;
  }
  throw new Error('expected the token to be refused');
}

describe('tokens', () => {
  describe('signToken and verifyToken', () => {
    it('sign a JWT with HS256 that verifies back to the user, the name and the expiry', () => {
      const signed = token({ name: 'Ada Lovelace', rooms: ['lobby'] });
      const [header, payload, signature] = signed.split('.');
      assert.deepEqual(JSON.parse(Buffer.from(header!, 'base64url').toString()), { alg: 'HS256', typ: 'JWT' });
      assert.equal(JSON.parse(Buffer.from(payload!, 'base64url').toString()).sub, 'ada');
      assert.equal(signature, createHmac('sha256', SECRET).update(`${header}.${payload}`).digest('base64url'));
      const grant = verifyToken(signed, SECRET, NOW);
      assert.equal(grant.userId, 'ada');
      assert.equal(grant.name, 'Ada Lovelace');
      assert.equal(grant.expiresAt, (SECONDS + 60) * 1000);
    });

    it('names the user after sub when the token has no name, and normalizes a name like hello does', () => {
      assert.equal(verifyToken(token(), SECRET, NOW).name, 'ada');
      assert.equal(verifyToken(token({ name: '  Ada\u202e\u0007 ' }), SECRET, NOW).name, 'Ada');
      assert.match(refusal(token({ name: 'x'.repeat(65) })), /token "name" must have 1 to 64 visible characters/);
      assert.match(refusal(token({ name: 7 })), /"name" must be a string/);
    });
  });

  describe('grants', () => {
    it('allows exact rooms, prefix-* patterns and *, as a list or a comma string', () => {
      const grant = verifyToken(token({ rooms: ['lobby', 'team-*'] }), SECRET, NOW);
      assert.deepEqual(['lobby', 'team-7', 'team-', 'lobby2', 'team', 'other'].map(grant.mayJoin), [true, true, true, false, false, false]);
      const comma = verifyToken(token({ rooms: ' lobby , team-* ,' }), SECRET, NOW);
      assert.deepEqual(['lobby', 'team-1', ''].map(comma.mayJoin), [true, true, false]);
      const everything = verifyToken(token({ rooms: '*' }), SECRET, NOW);
      assert.equal(everything.mayJoin('anything at all'), true);
    });

    it('lets the bearer publish where it may join, unless publish says otherwise', () => {
      const same = verifyToken(token({ rooms: ['a', 'b'] }), SECRET, NOW);
      assert.deepEqual(['a', 'b', 'c'].map(same.mayPublish), [true, true, false]);
      const readOnly = verifyToken(token({ rooms: ['a', 'b'], publish: ['a'] }), SECRET, NOW);
      assert.deepEqual(['a', 'b'].map(readOnly.mayPublish), [true, false]);
      const none = verifyToken(token({ rooms: ['a'], publish: [] }), SECRET, NOW);
      assert.equal(none.mayPublish('a'), false);
    });

    it('allows nothing without a rooms claim', () => {
      const grant = verifyToken(token(), SECRET, NOW);
      assert.equal(grant.mayJoin('lobby'), false);
      assert.equal(grant.mayPublish('lobby'), false);
    });

    it('refuses rooms or publish that are not lists of names', () => {
      assert.match(refusal(token({ rooms: [1, 2] })), /claim "rooms" must be a list/);
      assert.match(refusal(token({ rooms: { lobby: true } })), /claim "rooms"/);
      assert.match(refusal(token({ rooms: ['a'], publish: 5 })), /claim "publish"/);
    });
  });

  describe('refusals', () => {
    it('refuses a token signed with another secret, or changed after signing', () => {
      assert.match(refusal(token({}, 'another-secret-of-at-least-32-characters')), /signature is invalid/);
      const [header, , signature] = token().split('.');
      const tampered = Buffer.from(JSON.stringify({ sub: 'root', exp: SECONDS + 60, rooms: '*' })).toString('base64url');
      assert.match(refusal(`${header}.${tampered}.${signature}`), /signature is invalid/);
      assert.match(refusal(`${token()}x`), /signature is invalid/);
    });

    it('refuses alg none and any algorithm but HS256, even correctly signed', () => {
      const claims = { sub: 'ada', exp: SECONDS + 60 };
      const unsigned = forge({ alg: 'none', typ: 'JWT' }, claims).split('.').slice(0, 2).join('.') + '.';
      assert.match(refusal(unsigned), /must be signed with HS256/);
      for (const alg of ['HS512', 'RS256', 'hs256', undefined]) assert.match(refusal(forge({ alg, typ: 'JWT' }, claims)), /must be signed with HS256/, String(alg));
    });

    it('refuses what is not a JWT: wrong part count, not base64url JSON, a JSON array, too long', () => {
      assert.match(refusal('only.two'), /not a JWT/);
      assert.match(refusal('a.b.c.d'), /not a JWT/);
      assert.match(refusal('!!!.e30.sig'), /header is not base64url JSON/);
      assert.match(refusal(forge([1, 2], {})), /header is not base64url JSON/);
      const header = Buffer.from('{"alg":"HS256"}').toString('base64url');
      const body = Buffer.from('not json').toString('base64url');
      assert.match(refusal(`${header}.${body}.${createHmac('sha256', SECRET).update(`${header}.${body}`).digest('base64url')}`), /payload is not base64url JSON/);
      assert.match(refusal(token({ name: 'x'.repeat(7000) })), /too long/);
    });

    it('requires sub to be a user id of 1 to 256 characters', () => {
      assert.match(refusal(forge({ alg: 'HS256' }, { exp: SECONDS + 60 })), /"sub" must be the user id/);
      assert.match(refusal(token({ sub: '' })), /"sub"/);
      assert.match(refusal(token({ sub: 42 })), /"sub"/);
      assert.match(refusal(token({ sub: 'x'.repeat(257) })), /"sub"/);
      assert.equal(verifyToken(token({ sub: 'x'.repeat(256) }), SECRET, NOW).userId.length, 256);
    });
  });

  describe('times', () => {
    it('requires exp, and refuses a token from the second it expires, without leeway', () => {
      assert.match(refusal(forge({ alg: 'HS256' }, { sub: 'ada' })), /no "exp" claim/);
      assert.match(refusal(forge({ alg: 'HS256' }, { sub: 'ada', exp: String(SECONDS + 60) })), /no "exp" claim/);
      const exp = SECONDS + 10;
      assert.equal(verifyToken(token({ exp }), SECRET, exp * 1000 - 1).userId, 'ada');
      assert.match(refusal(token({ exp }), exp * 1000), /has expired/);
    });

    it('accepts a token whose nbf is up to 30 s ahead of this clock, and not one further', () => {
      assert.equal(verifyToken(token({ nbf: SECONDS + 30 }), SECRET, NOW).userId, 'ada');
      assert.match(refusal(token({ nbf: SECONDS + 31 })), /not valid yet/);
      assert.equal(verifyToken(token({ nbf: SECONDS - 3600 }), SECRET, NOW).userId, 'ada');
      assert.match(refusal(token({ nbf: 'soon' })), /not valid yet/);
    });
  });

  describe('parseDuration', () => {
    it('reads seconds, minutes, hours and days, and nothing else', () => {
      assert.deepEqual(['45', '45s', '30m', '1h', '2d', ' 5 m '].map(parseDuration), [45, 45, 1800, 3600, 172_800, 300]);
      for (const bad of ['', 'h', '1w', '-1', '1.5h', '1h30m', '1 hour']) assert.equal(parseDuration(bad), undefined, bad);
    });
  });
});
