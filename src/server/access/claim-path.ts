/**
 * Where in a token's claims the room grants are (--auth-rooms-claim, --auth-publish-claim).
 * Identity providers rarely let an app add a top-level `rooms` claim: Auth0 wants custom claims
 * namespaced by a URL (`"https://example.com/rooms": [...]`), Keycloak's mappers nest them
 * (`"plaza": {"rooms": [...]}`, `"realm_access": {"roles": [...]}`).
 *
 * The path is jq's: names separated by dots, each one level deeper (`plaza.rooms`,
 * `resource_access.plaza.roles`); a name that holds dots or slashes, such as Auth0's URL, goes in
 * double quotes (`"https://example.com/rooms"`, or `"https://example.com/plaza".rooms`). A leading
 * dot is allowed, as in jq. Parsed once at start-up; reading a claim is a few property lookups.
 */

/** Longest claim path, in characters. */
export const MAX_CLAIM_PATH = 256;

export type ClaimPath = readonly string[];

/**
 * Splits `text` into claim names.
 * @throws Error saying what is wrong with the path and how to write it.
 */
export function parseClaimPath(text: string): ClaimPath {
  const names: string[] = [];
  let rest = text.startsWith('.') ? text.slice(1) : text;
  if (rest === '') throw new Error('expected a claim name, e.g. rooms, plaza.rooms or "https://example.com/rooms"');
  for (;;) {
    if (rest.startsWith('"')) {
      // A JSON string: the quotes, and \" or \\ inside, mean what they mean in JSON.
      const match = /^"(?:[^"\\]|\\.)*"/.exec(rest);
      if (!match) throw new Error('a quoted claim name needs its closing double quote');
      const name = JSON.parse(match[0]) as string;
      if (name === '') throw new Error('a claim name cannot be empty');
      names.push(name);
      rest = rest.slice(match[0].length);
    } else {
      const match = /^[^."\s]+/.exec(rest);
      if (!match) throw new Error('a claim name cannot be empty; write names separated by single dots, e.g. plaza.rooms');
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(rest)) {
        throw new Error(`a claim name that is a URL holds dots: put it in double quotes, e.g. "${rest}"`);
      }
      names.push(match[0]);
      rest = rest.slice(match[0].length);
    }
    if (rest === '') return names;
    if (!rest.startsWith('.') || rest.length === 1) {
      throw new Error('separate claim names with single dots and quote names with spaces, dots or quotes, e.g. "https://example.com/plaza".rooms');
    }
    rest = rest.slice(1);
  }
}

/** The claim at `path` in `claims`; undefined when any step is missing or not an object. */
export function readClaim(claims: Readonly<Record<string, unknown>>, path: ClaimPath): unknown {
  let value: unknown = claims;
  for (const name of path) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, name)) return undefined;
    value = (value as Record<string, unknown>)[name];
  }
  return value;
}
