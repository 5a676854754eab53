/**
 * What a verified token's claims grant, the same for every kind of token (HS256 with
 * --auth-secret, RS256/ES256/EdDSA from an identity provider):
 *
 *   sub      user id (required)
 *   name     display name (default: sub)
 *   rooms    rooms the bearer may join: a list (or comma string) of names, `prefix-*` patterns or
 *            `*`; read from --auth-rooms-claim (default `rooms`, see claim-path.ts)
 *   publish  rooms the bearer may publish to; from --auth-publish-claim; default: same as rooms
 *   exp/nbf  seconds since the Unix epoch (exp required)
 *   iss/aud  checked when --auth-issuer / --auth-audience are set
 *
 * `exp` is checked by this server's clock without leeway, at the door and on open connections
 * alike (a connection is closed with 4004 when it passes), so a token the door accepts is never
 * one an open connection would already be cut off for. `nbf` gets LEEWAY, so a token minted by
 * a backend whose clock runs a little ahead works at once.
 */
import { readClaim, type ClaimPath } from './claim-path.js';
import { DisplayNameError, normalizeDisplayName } from './display-name.js';

export interface Grant {
  userId: string;
  name: string;
  mayJoin(room: string): boolean;
  mayPublish(room: string): boolean;
  /** When the token stops being valid (its `exp`), in ms since the Unix epoch; absent: never. */
  expiresAt?: number;
}

/** A refused token; the message is safe to show the client (it never contains the token). */
export class TokenError extends Error {
  override readonly name = 'TokenError';
}

/** Where the grants are and what else a token must say; the defaults read today's claims. */
export interface ClaimRules {
  rooms: ClaimPath;
  publish: ClaimPath;
  /** The `iss` a token must carry; '' checks none. */
  issuer: string;
  /** A value the token's `aud` (a string or a list) must hold; '' checks none. */
  audience: string;
}

export const DEFAULT_CLAIM_RULES: Readonly<ClaimRules> = Object.freeze({ rooms: ['rooms'], publish: ['publish'], issuer: '', audience: '' });

/** Clock skew tolerated on nbf, in seconds (see the file comment for why not on exp). */
export const LEEWAY = 30;

/**
 * `team-*` matches any room starting with `team-`; `*` matches every room; others match exactly.
 * Also how an authenticate hook's grants are read (hooks/authenticate.ts).
 */
export function roomMatcher(list: readonly string[]): (room: string) => boolean {
  const exact = new Set(list.filter((p) => !p.endsWith('*')));
  const prefixes = list.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  return (room) => exact.has(room) || prefixes.some((prefix) => room.startsWith(prefix));
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
 * Checks the times, the user id, the issuer and audience when asked, and reads the grants.
 * The signature must have been checked already.
 * @throws TokenError saying what is wrong.
 */
export function grantFromClaims(claims: Readonly<Record<string, unknown>>, now: number, rules: Readonly<ClaimRules> = DEFAULT_CLAIM_RULES): Grant {
  const seconds = now / 1000;
  if (typeof claims.exp !== 'number') throw new TokenError('token has no "exp" claim; tokens must expire');
  if (seconds >= claims.exp) throw new TokenError('token has expired');
  if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || seconds + LEEWAY < claims.nbf)) {
    throw new TokenError('token is not valid yet (nbf)');
  }
  if (rules.issuer && claims.iss !== rules.issuer) throw new TokenError('token issuer (iss) is not the one this server accepts');
  if (rules.audience && !(claims.aud === rules.audience || (Array.isArray(claims.aud) && claims.aud.includes(rules.audience)))) {
    throw new TokenError('token audience (aud) does not name this server');
  }
  if (typeof claims.sub !== 'string' || claims.sub.length === 0 || claims.sub.length > 256) {
    throw new TokenError('token "sub" must be the user id');
  }
  const roomsClaim = readClaim(claims, rules.rooms);
  const publishClaim = readClaim(claims, rules.publish);
  const rooms = patterns(roomsClaim, rules.rooms.join('.'));
  const publish = publishClaim === undefined ? rooms : patterns(publishClaim, rules.publish.join('.'));
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
