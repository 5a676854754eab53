/**
 * One bounded GET of an identity provider's key set (JWKS), and how long its answer may be kept.
 *
 * - The URL is https, or http only to this machine (127.0.0.0/8, ::1, localhost): keys fetched in
 *   the clear from elsewhere could be swapped by anyone on the path, and with them every identity.
 * - The whole request, body included, has a deadline, the body a byte bound (checked against
 *   Content-Length first, then as it arrives), and redirects are not followed: a provider that
 *   moved its keys is configured with the new URL, not trusted to say where they went.
 * - A new connection per request (agent: false): a key set is fetched every few minutes at most,
 *   and no idle socket is left to keep the process up.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';

export interface FetchBounds {
  /** ms for the whole request, body included. */
  timeout: number;
  /** Largest body, in bytes. */
  maxBytes: number;
}

export interface Fetched {
  body: Buffer;
  headers: IncomingHttpHeaders;
}

/** A key set that could not be fetched or read; the message names what happened, for logs and /readyz. */
export class KeyFetchError extends Error {
  override readonly name = 'KeyFetchError';
}

/** Why `text` cannot be --auth-jwks-url, or undefined when it can. */
export function jwksUrlProblem(text: string): string | undefined {
  if (!URL.canParse(text)) return 'expected a URL, e.g. https://example.auth0.com/.well-known/jwks.json';
  const url = new URL(text);
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:') {
    return isLoopback(url.hostname) ? undefined : 'must be https: keys fetched over plain http could be swapped on the way (http is allowed only to 127.0.0.1, ::1 or localhost)';
  }
  return `expected an https:// URL, got ${url.protocol}`;
}

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/**
 * GETs `url` within the bounds.
 * @throws KeyFetchError on a network error, a status other than 200, a redirect, a timeout or
 *   a body over maxBytes.
 */
export function fetchBounded(url: string, bounds: FetchBounds, signal?: AbortSignal): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith('https:') ? httpsRequest : httpRequest;
    let settled = false;
    const finish = (error: Error | undefined, result?: Fetched) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (error) {
        request.destroy();
        reject(error);
      } else resolve(result!);
    };
    const onAbort = () => finish(new KeyFetchError('the request was cancelled (the server is closing)'));
    const timer = setTimeout(() => finish(new KeyFetchError(`no complete answer within ${bounds.timeout} ms`)), bounds.timeout);
    const request = get(url, { agent: false, headers: { accept: 'application/json' } }, (response) => {
      const status = response.statusCode ?? 0;
      if (status !== 200) {
        response.resume();
        const moved = status >= 300 && status < 400 ? ` (a redirect to ${response.headers.location ?? 'nowhere'}: configure the final URL)` : '';
        return finish(new KeyFetchError(`answered HTTP ${status}${moved}`));
      }
      const length = Number(response.headers['content-length']);
      if (length > bounds.maxBytes) return finish(new KeyFetchError(`the key set is ${length} bytes, more than the bound of ${bounds.maxBytes}`));
      const chunks: Buffer[] = [];
      let bytes = 0;
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > bounds.maxBytes) return finish(new KeyFetchError(`the key set is more than the bound of ${bounds.maxBytes} bytes`));
        chunks.push(chunk);
      });
      response.on('end', () => finish(undefined, { body: Buffer.concat(chunks), headers: response.headers }));
      response.on('error', (error) => finish(new KeyFetchError(error.message)));
    });
    request.on('error', (error) => finish(new KeyFetchError(error.message)));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort);
    request.end();
  });
}

/**
 * How long (ms) an answer may be kept, from its cache headers (RFC 9111): `max-age` less `Age`,
 * else `Expires` less `Date`; `no-store`, `no-cache` and an Expires that is no date mean 0.
 * Undefined when they say nothing.
 */
export function freshnessOf(headers: IncomingHttpHeaders): number | undefined {
  const cacheControl = String(headers['cache-control'] ?? '').toLowerCase();
  if (/(?:^|,)\s*(?:no-store|no-cache)\b/.test(cacheControl)) return 0;
  const maxAge = /(?:^|,)\s*max-age\s*=\s*"?(\d+)"?/.exec(cacheControl);
  if (maxAge) {
    const age = Number(headers.age);
    return Math.max(0, (Number(maxAge[1]) - (Number.isFinite(age) && age > 0 ? age : 0)) * 1000);
  }
  if (headers.expires === undefined) return undefined;
  // RFC 9111 §5.3: an Expires that is not a date (such as "0") means already expired.
  const expires = Date.parse(headers.expires);
  if (Number.isNaN(expires)) return 0;
  const date = Date.parse(String(headers.date ?? ''));
  return Math.max(0, expires - (Number.isNaN(date) ? Date.now() : date));
}
