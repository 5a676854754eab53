/**
 * Claim paths (src/server/access/claim-path.ts): how --auth-rooms-claim finds the grants in an
 * Auth0-style namespaced claim and a Keycloak-style nested one, and how a path is refused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseClaimPath, readClaim } from '../../src/server/access/claim-path.js';

describe('claim paths', () => {
  it('read a top-level claim, a nested one (Keycloak) and a quoted URL claim (Auth0)', () => {
    const claims = {
      rooms: ['lobby'],
      plaza: { rooms: ['team-*'], publish: ['team-7'] },
      realm_access: { roles: ['ops'] },
      'https://example.com/rooms': ['auth0-room'],
      'https://example.com/plaza': { rooms: 'a,b' },
      'custom:rooms': 'cognito',
    };
    const read = (text: string) => readClaim(claims, parseClaimPath(text));
    assert.deepEqual(read('rooms'), ['lobby']);
    assert.deepEqual(read('plaza.rooms'), ['team-*']);
    assert.deepEqual(read('.plaza.publish'), ['team-7'], 'a leading dot, as in jq');
    assert.deepEqual(read('realm_access.roles'), ['ops']);
    assert.deepEqual(read('"https://example.com/rooms"'), ['auth0-room']);
    assert.equal(read('"https://example.com/plaza".rooms'), 'a,b');
    assert.equal(read('custom:rooms'), 'cognito');
  });

  it('read nothing where a step is missing, not an object, or inherited', () => {
    const claims = { plaza: { rooms: ['x'] }, list: [['x']], text: 'abc' };
    for (const path of ['missing', 'plaza.missing', 'plaza.rooms.length', 'list.0', 'text.length', 'constructor', 'plaza.__proto__', 'plaza.toString']) {
      assert.equal(readClaim(claims, parseClaimPath(path)), undefined, path);
    }
  });

  it('refuse an unquoted URL, empty names and stray quotes, saying how to write them', () => {
    assert.throws(() => parseClaimPath('https://example.com/rooms'), /put it in double quotes, e.g. "https:\/\/example.com\/rooms"/);
    for (const bad of ['', '.', 'a..b', 'a.', '"a', '""', 'a"b"', 'a b']) {
      assert.throws(() => parseClaimPath(bad), Error, JSON.stringify(bad));
    }
  });

  it('keep quoted names whole, with JSON escapes', () => {
    assert.deepEqual(parseClaimPath('"a.b".c'), ['a.b', 'c']);
    assert.deepEqual(parseClaimPath('"say \\"hi\\""'), ['say "hi"']);
  });
});
