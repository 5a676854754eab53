/**
 * The signature algorithms --auth-algorithms may allow for tokens checked with public keys (an
 * identity provider's JWKS or --auth-public-key), and which key each one needs.
 *
 * Only asymmetric ones: `none` would accept unsigned tokens, and an HMAC algorithm (HS256…)
 * with a public key is the classic algorithm-confusion hole — whoever has the public key (everyone)
 * could sign with it as the HMAC secret. HS256 has its own path with --auth-secret.
 */

export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];

/** What most providers sign with: RSA (Auth0, Okta, Keycloak, Cognito, Clerk, Firebase), P-256 (Supabase), Ed25519. */
export const DEFAULT_ALGORITHMS: readonly AsymmetricAlgorithm[] = ['RS256', 'ES256', 'EdDSA'];

/** The JWK key type (and curve) each algorithm verifies with. */
export function keyTypeOf(alg: AsymmetricAlgorithm): { kty: 'RSA' | 'EC' | 'OKP'; crv?: string } {
  if (alg.startsWith('RS') || alg.startsWith('PS')) return { kty: 'RSA' };
  if (alg === 'EdDSA') return { kty: 'OKP', crv: 'Ed25519' };
  return { kty: 'EC', crv: { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' }[alg as 'ES256' | 'ES384' | 'ES512'] };
}

export function isAsymmetricAlgorithm(alg: unknown): alg is AsymmetricAlgorithm {
  return typeof alg === 'string' && (ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg);
}

/** Why `list` cannot be --auth-algorithms, or undefined when it can. */
export function algorithmsProblem(list: readonly string[]): string | undefined {
  if (list.length === 0) return `list at least one algorithm: ${ASYMMETRIC_ALGORITHMS.join(', ')}`;
  for (const alg of list) {
    if (alg.toLowerCase() === 'none') return '"none" would accept unsigned tokens; it is never allowed';
    if (/^HS\d+$/i.test(alg)) {
      return `${alg} is an HMAC algorithm: with a public key anyone could sign tokens (algorithm confusion). For HS256 tokens use --auth-secret`;
    }
    if (!isAsymmetricAlgorithm(alg)) return `${JSON.stringify(alg)} is not an algorithm Plaza checks; use ${ASYMMETRIC_ALGORITHMS.join(', ')}`;
  }
  return undefined;
}
