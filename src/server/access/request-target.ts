/**
 * How the server reads the path of an upgrade's request target, and what an option naming such
 * a path (--path) must therefore be: WHATWG URL parsing resolves dot segments (`.`, `..`,
 * `%2e%2e`), reads `\` as `/` and percent-encodes non-ASCII, so a path is compared in that form.
 */

/** Request targets are parsed against this base: only their path and query are used. */
const BASE = 'http://plaza.invalid';

/** The URL nearly every upgrade asks for, parsed once (it is only read). */
const BARE_ROOT = new URL('/', BASE);

/** The request target `url` as a URL (path normalized as above), or undefined when it is none. */
export function parseTarget(url: string | undefined): URL | undefined {
  if (url === '/' || url === undefined) return BARE_ROOT;
  try {
    return new URL(url, BASE);
  } catch {
    return undefined;
  }
}

/**
 * `path` the way a request for it is read, when that is only another spelling of it (non-ASCII
 * percent-encoded); otherwise why no request could ever match it, as a sentence.
 */
export function reachablePath(path: string): { path: string } | { problem: string } {
  const read = parseTarget(path)?.pathname;
  if (read === path) return { path };
  let spelled: string | undefined;
  try {
    spelled = read === undefined ? undefined : decodeURIComponent(read);
  } catch {
    spelled = undefined;
  }
  if (read !== undefined && spelled === path) return { path: read };
  return { problem: `a request for ${JSON.stringify(path)} is read as ${JSON.stringify(read ?? 'nothing')} (dot segments and \\ are resolved first), so none would ever match; write ${read ?? 'a plain path'} instead` };
}
