/**
 * The one check every `?token=` goes through, whichever kind it is:
 *
 * - `alg: HS256` with --auth-secret: the hand-written HMAC check (tokens.ts), synchronous.
 * - an algorithm of --auth-algorithms with --auth-jwks-url or --auth-public-key: the signature
 *   through jose (with the key the token's `kid` names, from remote-key-set.ts or
 *   public-key-file.ts), then the same claims (token-claims.ts). WebCrypto checks signatures off
 *   the main thread, so this answers with a promise.
 * - anything else (`none`, HS256 without a secret, an algorithm not allowed): refused before any
 *   key is looked at. Which check runs is decided by the header's `alg` against what the operator
 *   configured, never by the key: an RS256 public key can never be used as an HMAC secret.
 *
 * jose is loaded on start() only when public keys are configured, like ioredis for --redis.
 */
import type { PlazaOptions } from '../config.js';
import type { Logger } from '../logger.js';
import { parseClaimPath } from './claim-path.js';
import { TokenCheckUnavailableError, pickError, pickKey, type ImportKey, type JsonWebKeyLike, type KeyEntry } from './key-set.js';
import { loadPublicKeyFile } from './public-key-file.js';
import { RemoteKeySet } from './remote-key-set.js';
import { isAsymmetricAlgorithm, type AsymmetricAlgorithm } from './token-algorithms.js';
import { grantFromClaims, TokenError, type ClaimRules, type Grant } from './token-claims.js';
import { decodeJson, splitToken, verifyHs256 } from './tokens.js';
import { MAX_PENDING_CHECKS } from '../bounds.js';

export { TokenCheckUnavailableError } from './key-set.js';

export type TokenOptions = Pick<
  PlazaOptions,
  | 'authSecret' | 'authJwksUrl' | 'authPublicKey' | 'authAlgorithms' | 'authIssuer' | 'authAudience'
  | 'authRoomsClaim' | 'authPublishClaim' | 'authJwksCooldown' | 'authJwksTimeout' | 'authJwksMaxBytes'
>;

export interface TokenVerifier {
  /** Loads the public keys (reads the PEM file, or fetches the JWKS once). @throws ConfigError for a bad PEM file */
  start(): Promise<void>;
  /**
   * What the token grants: at once for HS256, a promise for a token checked with a public key.
   * @throws (or rejects with) TokenError, safe to show the client; TokenCheckUnavailableError when no
   *   key could be fetched yet (not the client's fault).
   */
  verify(token: string, now?: number): Grant | Promise<Grant>;
  /** Why tokens may be refused for want of keys, for /readyz (with the URL: for operators only). */
  problem(): string | undefined;
  /** Stops fetching keys. Idempotent. */
  close(): void;
}

type Jose = typeof import('jose');


/** "A", "A or B", "A, B or C". */
function alternatives(list: readonly string[]): string {
  return list.length < 2 ? (list[0] ?? '') : `${list.slice(0, -1).join(', ')} or ${list[list.length - 1]}`;
}

/** Returns the door's token check, or undefined when no token is required (no secret, no keys). */
export function createTokenVerifier(options: TokenOptions, logger: Logger): TokenVerifier | undefined {
  const secret = options.authSecret;
  const withKeys = Boolean(options.authJwksUrl || options.authPublicKey);
  if (!secret && !withKeys) return undefined;
  const algorithms = withKeys ? (options.authAlgorithms as AsymmetricAlgorithm[]) : [];
  const allowed = new Set<string>(algorithms);
  const rules: ClaimRules = {
    rooms: parseClaimPath(options.authRoomsClaim),
    publish: parseClaimPath(options.authPublishClaim),
    issuer: options.authIssuer,
    audience: options.authAudience,
  };
  const accepted = `token must be signed with ${alternatives([...(secret ? ['HS256'] : []), ...algorithms])}`;

  let jose: Jose | undefined;
  let remote: RemoteKeySet | undefined;
  let fileKey: KeyEntry | undefined;
  let closed = false;
  let pending = 0;

  function keyFor(alg: AsymmetricAlgorithm, kid: unknown): CryptoKey | Promise<CryptoKey> {
    if (remote) return remote.keyFor(alg, kid);
    if (!fileKey) throw new TokenCheckUnavailableError('the public key is not loaded yet; retry shortly');
    // The file's one key, whatever kid the token names.
    const pick = pickKey([fileKey], alg, undefined);
    if ('key' in pick) return pick.key;
    throw pickError(pick);
  }

  async function verifySigned(token: string, now: number): Promise<Grant> {
    if (!jose) throw new TokenCheckUnavailableError('the public keys are not loaded yet; retry shortly');
    let payload: Uint8Array;
    try {
      ({ payload } = await jose.compactVerify(token, (header) => keyFor(header.alg as AsymmetricAlgorithm, header.kid), { algorithms }));
    } catch (error) {
      throw asTokenError(error);
    }
    let claims: unknown;
    try {
      claims = JSON.parse(Buffer.from(payload).toString('utf8'));
    } catch {
      throw new TokenError('token payload is not base64url JSON');
    }
    if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) throw new TokenError('token payload is not base64url JSON');
    return grantFromClaims(claims as Record<string, unknown>, now, rules);
  }

  /** jose's refusals in the words the door uses; anything else is a bug and goes up as it is. */
  function asTokenError(error: unknown): unknown {
    if (error instanceof TokenError || error instanceof TokenCheckUnavailableError) return error;
    const code = (error as { code?: unknown } | null)?.code;
    switch (code) {
      case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
        return new TokenError('token signature is invalid');
      case 'ERR_JOSE_ALG_NOT_ALLOWED':
        return new TokenError(accepted);
      // The algorithm was checked before: what is left is a header asking for more (`crit`, `b64`) or a malformed part.
      case 'ERR_JOSE_NOT_SUPPORTED':
      case 'ERR_JWS_INVALID':
        return new TokenError('token is not a JWT signed the way this server checks (header or signature malformed)');
    }
    // jose's TypeErrors are about the key (too short an RSA modulus, a JWK whose alg or use does not fit).
    if (error instanceof TypeError) return new TokenError('token signature cannot be checked with the key it names');
    return error;
  }

  return {
    async start() {
      if (!withKeys || closed) return;
      jose = await import('jose');
      const importKey: ImportKey = (jwk: JsonWebKeyLike, alg) => jose!.importJWK(jwk as Parameters<Jose['importJWK']>[0], alg) as Promise<CryptoKey>;
      if (options.authPublicKey) {
        fileKey = await loadPublicKeyFile(options.authPublicKey, algorithms, importKey);
        return;
      }
      remote = new RemoteKeySet(
        { url: options.authJwksUrl, algorithms, cooldown: options.authJwksCooldown, timeout: options.authJwksTimeout, maxBytes: options.authJwksMaxBytes },
        importKey,
        logger,
      );
      if (closed) return;
      await remote.start();
    },
    verify(token, now = Date.now()) {
      const [headerPart, payloadPart, signaturePart] = splitToken(token);
      const header = decodeJson(headerPart, 'header');
      const alg = header.alg;
      if (alg === 'HS256' && secret) return verifyHs256(headerPart, payloadPart, signaturePart, secret, now, rules);
      if (isAsymmetricAlgorithm(alg) && allowed.has(alg)) {
        if (pending >= MAX_PENDING_CHECKS) throw new TokenCheckUnavailableError('too many tokens are being checked; retry shortly');
        pending++;
        return verifySigned(token, now).finally(() => pending--);
      }
      throw new TokenError(accepted);
    },
    problem: () => remote?.problem(),
    close() {
      closed = true;
      remote?.close();
    },
  };
}
