/**
 * A real identity provider for tests: key pairs generated at test time (RSA 2048, EC P-256,
 * Ed25519), their public halves served as a JWKS by a node:http server on 127.0.0.1, port 0, and
 * tokens signed with node:crypto (not jose, which Plaza checks them with: two implementations
 * must agree). Every request is counted; the provider can rotate keys, change its cache headers,
 * go down (connections reset), stall, or answer with a body of any size.
 */
import { createHmac, generateKeyPairSync, randomBytes, sign, constants, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export type Algorithm = 'RS256' | 'PS256' | 'ES256' | 'EdDSA';

export interface SigningKey {
  kid: string;
  alg: Algorithm;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** A fresh key pair for `alg`, named `kid`. */
export function generateSigningKey(alg: Algorithm, kid = `${alg.toLowerCase()}-${randomBytes(4).toString('hex')}`): SigningKey {
  const pair =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'EdDSA'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, alg, ...pair };
}

/** The public JWK of `key`, as a provider publishes it. */
export function publicJwk(key: SigningKey, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...key.publicKey.export({ format: 'jwk' }), kid: key.kid, use: 'sig', alg: key.alg, ...extra };
}

/**
 * A compact JWT signed with `key`. `header` overrides the header (e.g. another kid, no kid);
 * `claims` are taken as they are.
 */
export function signJwt(key: SigningKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}): string {
  const input = `${b64({ alg: key.alg, typ: 'JWT', kid: key.kid, ...header })}.${b64(claims)}`;
  let signature: Buffer;
  switch (key.alg) {
    case 'RS256':
      signature = sign('sha256', Buffer.from(input), key.privateKey);
      break;
    case 'PS256':
      signature = sign('sha256', Buffer.from(input), { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
      break;
    case 'ES256':
      // JWS wants r||s (RFC 7518 §3.4), not DER.
      signature = sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
      break;
    case 'EdDSA':
      signature = sign(null, Buffer.from(input), key.privateKey);
      break;
  }
  return `${input}.${signature.toString('base64url')}`;
}

/**
 * The algorithm-confusion forgery: a token with `alg: HS256` whose HMAC secret is `key`'s public
 * key in PEM, which anyone can download. A verifier that lets the token pick the algorithm for
 * the key accepts it.
 */
export function forgeWithPublicKey(key: SigningKey, claims: Record<string, unknown>, alg = 'HS256'): string {
  const secret = key.publicKey.export({ type: 'spki', format: 'pem' });
  const input = `${b64({ alg, typ: 'JWT', kid: key.kid })}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** Claims for `sub` valid for 10 minutes, with every room. */
export function claimsFor(sub: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { sub, exp: Math.floor(Date.now() / 1000) + 600, rooms: '*', ...extra };
}

export type ProviderMode = 'up' | 'down' | 'stall';

export class IdentityProvider {
  /** Keys published in the JWKS, in order. */
  keys: SigningKey[];
  /** Requests for the key set, and connections reset while down. */
  requests = 0;
  /** Cache-Control of the answer ('' sends none). */
  cacheControl = 'public, max-age=300';
  mode: ProviderMode = 'up';
  /** When set, the body sent instead of the JWKS (e.g. one over the size bound). */
  body: string | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly stalled = new Set<ServerResponse>();

  private constructor(
    private readonly server: Server,
    keys: SigningKey[],
  ) {
    this.keys = keys;
  }

  /** Starts a provider publishing `keys` (by default one key of each kind). */
  static async start(keys: SigningKey[] = [generateSigningKey('RS256'), generateSigningKey('ES256'), generateSigningKey('EdDSA')]): Promise<IdentityProvider> {
    let provider: IdentityProvider | undefined;
    const server = createServer((req, res) => provider!.answer(req.url ?? '', res));
    provider = new IdentityProvider(server, keys);
    server.on('connection', (socket) => {
      provider!.sockets.add(socket);
      socket.on('close', () => provider!.sockets.delete(socket));
      // "Down": every connection is reset before a byte is answered (and counted as a try).
      if (provider!.mode === 'down') {
        provider!.requests++;
        socket.destroy();
      }
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return provider;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}/.well-known/jwks.json`;
  }

  /** The first published key for `alg`. */
  key(alg: Algorithm): SigningKey {
    const key = this.keys.find((k) => k.alg === alg);
    if (!key) throw new Error(`no ${alg} key published`);
    return key;
  }

  private answer(url: string, res: ServerResponse): void {
    if (!url.startsWith('/.well-known/jwks.json')) {
      res.writeHead(404).end();
      return;
    }
    this.requests++;
    if (this.mode === 'stall') {
      this.stalled.add(res);
      return;
    }
    const body = this.body ?? JSON.stringify({ keys: this.keys.map((key) => publicJwk(key)) });
    res.writeHead(200, { 'content-type': 'application/json', ...(this.cacheControl && { 'cache-control': this.cacheControl }) });
    res.end(body);
  }

  /** Resolves once `count` requests have arrived in all; rejects after `ms`. */
  async waitForRequests(count: number, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.requests < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} requests for the key set, got ${this.requests}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async close(): Promise<void> {
    for (const res of this.stalled) res.destroy();
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
    await once(this.server, 'close');
  }
}
