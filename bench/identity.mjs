/**
 * The bench's identity provider, for the connect-auth scenario: one key pair per algorithm
 * (RSA 2048, EC P-256, Ed25519) generated on first use, their public halves served as a JWKS by a
 * node:http server on 127.0.0.1 in the harness process (off the server's core), and tokens signed
 * with node:crypto. Plaza fetches the key set once at start (max-age=3600) and then checks every
 * token with cached keys, which is what the scenario measures; HS256 tokens use the secret.
 *
 * Every client of one measurement carries the same token: Plaza keeps no cache of checked tokens,
 * so each upgrade pays the whole check, as with distinct tokens.
 */
import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import http from 'node:http';

/** The kinds the scenario compares, HS256 (the hand-written fast path) first. */
export const TOKEN_KINDS = ['HS256', 'RS256', 'ES256', 'EdDSA'];

const SECRET = 'bench-auth-secret-0123456789abcdef0123456789';
const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');

let started;

/** Starts the provider once per harness; resolves with { args, token(kind) }. */
export function benchIdentity() {
  return (started ??= start());
}

async function start() {
  const keys = {
    RS256: generateKeyPairSync('rsa', { modulusLength: 2048 }),
    ES256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
    EdDSA: generateKeyPairSync('ed25519'),
  };
  const jwks = JSON.stringify({
    keys: Object.entries(keys).map(([alg, { publicKey }]) => ({ ...publicKey.export({ format: 'jwk' }), kid: `bench-${alg}`, alg, use: 'sig' })),
  });
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600' }).end(jwks));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  const url = `http://127.0.0.1:${server.address().port}/jwks.json`;
  const claims = { sub: 'bench', rooms: '*', exp: Math.floor(Date.now() / 1000) + 4 * 3600 };
  const tokens = {};
  for (const kind of TOKEN_KINDS) {
    const input = `${b64({ alg: kind, typ: 'JWT', ...(kind !== 'HS256' && { kid: `bench-${kind}` }) })}.${b64(claims)}`;
    const signature =
      kind === 'HS256'
        ? createHmac('sha256', SECRET).update(input).digest()
        : kind === 'ES256'
          ? sign('sha256', Buffer.from(input), { key: keys.ES256.privateKey, dsaEncoding: 'ieee-p1363' })
          : sign(kind === 'EdDSA' ? null : 'sha256', Buffer.from(input), keys[kind].privateKey);
    tokens[kind] = `${input}.${signature.toString('base64url')}`;
  }
  return {
    /** Plaza's flags: HS256 with the secret, and the three others from the key set. */
    args: ['--auth-secret', SECRET, '--auth-jwks-url', url, '--auth-algorithms', 'RS256,ES256,EdDSA'],
    token: (kind) => tokens[kind],
  };
}
