/**
 * access/ — checks at the door that the HTTP surface and the WebSocket upgrade share: signed
 * tokens (this file), comparing keys, the one failure limiter for wrong keys and tokens, the
 * client's address behind a trusted proxy, display-name rules, and the HTTP server with its
 * bounds (TLS handshake, headers). It may import src/shared, config and logger only.
 *
 * Signed tokens: JWT with HS256 (RFC 7519, RFC 7515), checked with node:crypto only.
 * A browser cannot set headers on a WebSocket, so the token travels as `?token=` on the URL;
 * it is never logged.
 *
 * Claims Plaza reads:
 *   sub      user id (required)
 *   name     display name (default: sub)
 *   rooms    rooms the bearer may join: a list (or comma string) of names, `prefix-*` patterns or `*`
 *   publish  rooms the bearer may publish to; default: same as rooms
 *   exp/nbf  seconds since the Unix epoch (exp required)
 *
 * `exp` is checked by this server's clock without leeway, at the door and on open connections
 * alike (a connection is closed with 4004 when it passes), so a token the door accepts is never
 * one an open connection would already be cut off for. `nbf` gets LEEWAY, so a token minted by
 * a backend whose clock runs a little ahead works at once.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { DisplayNameError, normalizeDisplayName } from './display-name.js';

export interface Grant {
  userId: string;
  name: string;
  mayJoin(room: string): boolean;
  mayPublish(room: string): boolean;
  /** When the token stops being valid (its `exp`), in ms since the Unix epoch; absent: never. */
  expiresAt?: number;
}

export interface TokenClaims {
  sub: string;
  name?: string;
  rooms?: string[] | string;
  publish?: string[] | string;
  exp: number;
  nbf?: number;
  iat?: number;
}

export class TokenError extends Error {
  override readonly name = 'TokenError';
}

/** Clock skew tolerated on nbf, in seconds (see the file comment for why not on exp). */
const LEEWAY = 30;
const MAX_TOKEN_LENGTH = 4096;

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

function decodeJson(part: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through to the error below
  }
  throw new TokenError(`token ${what} is not base64url JSON`);
}

function patterns(claim: unknown, what: string): string[] {
  if (claim === undefined) return [];
  const list = typeof claim === 'string' ? claim.split(',') : claim;
  if (!Array.isArray(list) || !list.every((p) => typeof p === 'string')) {
    throw new TokenError(`token claim "${what}" must be a list of room names or patterns`);
  }
  return list.map((p) => p.trim()).filter(Boolean);
}

/**
 * `team-*` matches any room starting with `team-`; `*` matches every room; others match exactly.
 * Also how an authenticate hook's grants are read (hooks/authenticate.ts).
 */
export function roomMatcher(list: readonly string[]): (room: string) => boolean {
  const exact = new Set(list.filter((p) => !p.endsWith('*')));
  const prefixes = list.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  return (room) => exact.has(room) || prefixes.some((prefix) => room.startsWith(prefix));
}

/**
 * Verifies signature (constant time), algorithm and times, and returns what the bearer may do.
 * @throws TokenError saying what is wrong, safe to show the client (it never contains the token).
 */
export function verifyToken(token: string, secret: string, now = Date.now()): Grant {
  if (token.length > MAX_TOKEN_LENGTH) throw new TokenError('token is too long');
  const parts = token.split('.');
  if (parts.length !== 3) throw new TokenError('token is not a JWT (header.payload.signature)');
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const header = decodeJson(headerPart, 'header');
  // Pinning the algorithm stops "alg":"none" and algorithm-confusion tokens.
  if (header.alg !== 'HS256') throw new TokenError('token must be signed with HS256');
  const expected = sign(`${headerPart}.${payloadPart}`, secret);
  const actual = Buffer.from(signaturePart, 'base64url');
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) throw new TokenError('token signature is invalid');
  const claims = decodeJson(payloadPart, 'payload');
  const seconds = now / 1000;
  if (typeof claims.exp !== 'number') throw new TokenError('token has no "exp" claim; tokens must expire');
  if (seconds >= claims.exp) throw new TokenError('token has expired');
  if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || seconds + LEEWAY < claims.nbf)) {
    throw new TokenError('token is not valid yet (nbf)');
  }
  if (typeof claims.sub !== 'string' || claims.sub.length === 0 || claims.sub.length > 256) {
    throw new TokenError('token "sub" must be the user id');
  }
  const rooms = patterns(claims.rooms, 'rooms');
  const publish = claims.publish === undefined ? rooms : patterns(claims.publish, 'publish');
  return {
    userId: claims.sub,
    name: tokenName(claims.name) ?? claims.sub,
    mayJoin: roomMatcher(rooms),
    mayPublish: roomMatcher(publish),
    expiresAt: claims.exp * 1000,
  };
}

/** The `name` claim under the same rules as a name sent in `hello`: it is shown to others the same way. */
function tokenName(claim: unknown): string | undefined {
  if (claim === undefined) return undefined;
  if (typeof claim !== 'string') throw new TokenError('token "name" must be a string');
  try {
    return normalizeDisplayName(claim);
  } catch (error) {
    if (error instanceof DisplayNameError) throw new TokenError(`token ${error.message}`);
    throw error;
  }
}

/** Parses `1h`, `30m`, `45s`, `2d` or plain seconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+)\s*(s|m|h|d)?$/.exec(text.trim());
  if (!match) return undefined;
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(match[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}
