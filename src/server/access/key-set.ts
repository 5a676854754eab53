/**
 * Public keys for tokens, as Plaza holds them: each key imported once per algorithm it may
 * check (a WebCrypto key is bound to one algorithm), so a token's check is a lookup and a verify.
 * The keys come from a JWKS (remote-key-set.ts) or a PEM file (public-key-file.ts); which key a
 * token names is chosen here, the same way for both.
 */
import { keyTypeOf, type AsymmetricAlgorithm } from './token-algorithms.js';
import { TokenError } from './token-claims.js';
import { MAX_KID } from '../bounds.js';

/** Imports one public JWK for one algorithm (jose's importJWK, loaded only when keys are used). */
export type ImportKey = (jwk: JsonWebKeyLike, alg: AsymmetricAlgorithm) => Promise<CryptoKey>;

/** A JWK as it arrives: an object with string members Plaza looks at and others it passes on. */
export interface JsonWebKeyLike {
  kty?: unknown;
  crv?: unknown;
  kid?: unknown;
  alg?: unknown;
  use?: unknown;
  [member: string]: unknown;
}

export interface KeyEntry {
  /** The JWK's `kid`; undefined for a key without one (a PEM file). */
  readonly kid: string | undefined;
  /** The key, imported for each allowed algorithm it fits. */
  readonly byAlg: ReadonlyMap<AsymmetricAlgorithm, CryptoKey>;
}


/**
 * A token cannot be checked right now: no keys yet (the identity provider has not answered since
 * start-up), or too many checks already on their way. The client is not at fault: HTTP 503 with
 * Retry-After, not counted as a failed attempt.
 */
export class TokenCheckUnavailableError extends Error {
  override readonly name = 'TokenCheckUnavailableError';
}

/**
 * Imports `jwk` for every algorithm of `algorithms` it fits: its type and curve, its `alg` if
 * it names one, its `use` if it says one. Undefined (with the reason) when it fits none.
 */
export async function importEntry(jwk: JsonWebKeyLike, algorithms: readonly AsymmetricAlgorithm[], importKey: ImportKey): Promise<KeyEntry | string> {
  if (jwk.use !== undefined && jwk.use !== 'sig') return `its "use" is ${JSON.stringify(jwk.use)}, not "sig"`;
  if (jwk.d !== undefined || jwk.priv !== undefined) return 'it is a private key: a key set publishes public keys only';
  if (jwk.kid !== undefined && (typeof jwk.kid !== 'string' || jwk.kid.length > MAX_KID)) return `its "kid" is not a string of at most ${MAX_KID} characters`;
  const fits = algorithms.filter((alg) => {
    const { kty, crv } = keyTypeOf(alg);
    return jwk.kty === kty && (crv === undefined || jwk.crv === crv) && (jwk.alg === undefined || jwk.alg === alg);
  });
  if (fits.length === 0) {
    const what = [jwk.kty, jwk.crv, jwk.alg].filter((part) => typeof part === 'string').join(' ');
    return `no allowed algorithm (${algorithms.join(', ')}) checks signatures with its type (${what || 'none given'})`;
  }
  // RFC 7518 §3.3 asks for 2048 bits at least; jose would refuse shorter ones at every check instead.
  if (jwk.kty === 'RSA' && typeof jwk.n === 'string' && Buffer.byteLength(jwk.n, 'base64url') < 256) {
    return 'it is an RSA key shorter than 2048 bits';
  }
  const byAlg = new Map<AsymmetricAlgorithm, CryptoKey>();
  for (const alg of fits) {
    try {
      byAlg.set(alg, await importKey(jwk, alg));
    } catch (error) {
      return `it cannot be imported for ${alg}: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  return { kid: jwk.kid as string | undefined, byAlg };
}

export type Pick = { key: CryptoKey } | { unknownKid: true } | { problem: string };

/**
 * The key a token's header names: by `kid` when it has one, else the only key for its algorithm.
 * `unknownKid` when no key has that kid (the provider may have rotated: fetch again).
 */
export function pickKey(entries: readonly KeyEntry[], alg: AsymmetricAlgorithm, kid: unknown): Pick {
  if (kid !== undefined) {
    if (typeof kid !== 'string') return { problem: 'token "kid" (key id) must be a string' };
    let named = false;
    for (const entry of entries) {
      if (entry.kid !== kid) continue;
      named = true;
      const key = entry.byAlg.get(alg);
      if (key) return { key };
    }
    return named ? { problem: `token key (kid) does not check ${alg} signatures` } : { unknownKid: true };
  }
  const candidates = entries.filter((entry) => entry.byAlg.has(alg));
  if (candidates.length === 1) return { key: candidates[0]!.byAlg.get(alg)! };
  if (candidates.length === 0) return { problem: `no key checks ${alg} signatures here` };
  return { problem: 'token has no key id (kid), and several keys could have signed it' };
}

/** A Pick that is not a key, as the error the door answers with. */
export function pickError(pick: Exclude<Pick, { key: CryptoKey }>): TokenError {
  return new TokenError('problem' in pick ? pick.problem : "token key id (kid) is not in the identity provider's key set");
}
