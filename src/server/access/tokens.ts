/**
 * access/ — checks at the door that the HTTP surface and the WebSocket upgrade share: signed
 * tokens (this file: HS256; token-verifier.ts picks the check for each token and holds the
 * identity provider's keys), comparing keys, the one failure limiter for wrong keys and tokens,
 * the client's address behind a trusted proxy, display-name rules, and the HTTP server with its
 * bounds (TLS handshake, headers). It may import src/shared, config and logger only.
 *
 * HS256 tokens (RFC 7519, RFC 7515) with --auth-secret, checked with node:crypto only: one HMAC
 * and a constant-time comparison, synchronous, the cheapest check there is (kept hand-written
 * rather than through jose, which would make every connect wait for a promise).
 * A browser cannot set headers on a WebSocket, so the token travels as `?token=` on the URL;
 * it is never logged. What the claims grant is token-claims.ts, the same for every kind of token.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { MAX_TOKEN_LENGTH } from '../bounds.js';
import { DEFAULT_CLAIM_RULES, grantFromClaims, TokenError, type ClaimRules, type Grant } from './token-claims.js';

export { roomMatcher, TokenError, type Grant } from './token-claims.js';

export interface TokenClaims {
  sub: string;
  name?: string;
  rooms?: string[] | string;
  publish?: string[] | string;
  exp: number;
  nbf?: number;
  iat?: number;
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

function sign(input: string, secret: string): Buffer {
  return createHmac('sha256', secret).update(input).digest();
}

export function signToken(claims: TokenClaims, secret: string): string {
  const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = base64url(JSON.stringify(claims));
  return `${header}.${payload}.${base64url(sign(`${header}.${payload}`, secret))}`;
}

/** The JSON object in one part of a JWT. @throws TokenError when it is not one. */
export function decodeJson(part: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through to the error below
  }
  throw new TokenError(`token ${what} is not base64url JSON`);
}

/** The three parts of a compact JWT, with the length bound. @throws TokenError */
export function splitToken(token: string): [string, string, string] {
  if (token.length > MAX_TOKEN_LENGTH) throw new TokenError('token is too long');
  const parts = token.split('.');
  if (parts.length !== 3) throw new TokenError('token is not a JWT (header.payload.signature)');
  return parts as [string, string, string];
}

/**
 * Verifies signature (constant time), algorithm and times, and returns what the bearer may do.
 * @throws TokenError saying what is wrong, safe to show the client (it never contains the token).
 */
export function verifyToken(token: string, secret: string, now = Date.now(), rules: Readonly<ClaimRules> = DEFAULT_CLAIM_RULES): Grant {
  const [headerPart, payloadPart, signaturePart] = splitToken(token);
  const header = decodeJson(headerPart, 'header');
  // Pinning the algorithm stops "alg":"none" and algorithm-confusion tokens.
  if (header.alg !== 'HS256') throw new TokenError('token must be signed with HS256');
  return verifyHs256(headerPart, payloadPart, signaturePart, secret, now, rules);
}

/** The HS256 check once the header said HS256: the signature, then the claims. */
export function verifyHs256(headerPart: string, payloadPart: string, signaturePart: string, secret: string, now: number, rules: Readonly<ClaimRules>): Grant {
  const expected = sign(`${headerPart}.${payloadPart}`, secret);
  const actual = Buffer.from(signaturePart, 'base64url');
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) throw new TokenError('token signature is invalid');
  return grantFromClaims(decodeJson(payloadPart, 'payload'), now, rules);
}

/** Parses `1h`, `30m`, `45s`, `2d` or plain seconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+)\s*(s|m|h|d)?$/.exec(text.trim());
  if (!match) return undefined;
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(match[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}
