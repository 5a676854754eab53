/**
 * Writing HTTP answers: JSON and text bodies, coded errors, method checks, and the request
 * path as every route reads it.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { ErrorCode } from '../../shared/protocol.js';

/** Every `code` an HTTP error answer can carry (docs/operations.md lists them). */
export type HttpErrorCode =
  | ErrorCode
  | 'unauthorized'
  | 'not_found'
  | 'method_not_allowed'
  | 'unsupported_media_type'
  | 'too_many_headers'
  | 'idempotency_key_reused';

/** An error answer: JSON `{error: {code, message}}` for the API, plain text elsewhere. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: HttpErrorCode,
    message: string,
    readonly headers: OutgoingHttpHeaders = {},
  ) {
    super(message);
  }
}

export const NO_STORE = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' };

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: OutgoingHttpHeaders = {}): void {
  sendJsonText(res, status, JSON.stringify(body), headers);
}

/** For bodies already encoded (history splices stored envelopes in without parsing them). */
export function sendJsonText(res: ServerResponse, status: number, text: string, headers: OutgoingHttpHeaders = {}): void {
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...NO_STORE,
  });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, headers: OutgoingHttpHeaders = {}): void {
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...NO_STORE,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, error: HttpError, format: 'json' | 'text'): void {
  if (format === 'json') sendJson(res, error.status, { error: { code: error.code, message: error.message } }, error.headers);
  else sendText(res, error.status, `${error.message}\n`, error.headers);
}

/** GET and HEAD only (Node leaves out the body of a HEAD answer by itself). */
export function allowMethods(req: IncomingMessage, allowed: readonly string[]): void {
  const method = req.method ?? '';
  if (allowed.includes(method) || (method === 'HEAD' && allowed.includes('GET'))) return;
  const allow = allowed.includes('GET') ? [...allowed, 'HEAD'] : allowed;
  throw new HttpError(405, 'method_not_allowed', `use ${allowed.join(' or ')} here`, { Allow: allow.join(', ') });
}

/**
 * The path of a request target (RFC 9112 §3.2), from origin form or the absolute form a proxy
 * may send (`GET http://host/x`): undefined for authority form, `*` and anything else.
 */
export function originFormOf(url: string): string | undefined {
  if (url.startsWith('/')) return url;
  const origin = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(url);
  if (origin === null) return undefined;
  const rest = url.slice(origin[0].length);
  return rest.startsWith('/') ? rest : `/${rest}`;
}

/** The decoded path of a request target, without its query; undefined when it cannot be decoded. */
export function requestPath(url: string | undefined): string | undefined {
  const target = originFormOf(url ?? '/') ?? '/';
  const query = target.indexOf('?');
  try {
    return decodeURIComponent(query === -1 ? target : target.slice(0, query));
  } catch {
    return undefined;
  }
}

/** The answer of Plaza's routes while it is not serving (before listen() or attach() resolved, after close()). */
export function sendNotServing(res: ServerResponse, state: string): void {
  res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Retry-After': '5' });
  res.end(`Plaza is ${state}: its routes answer once listen() or attach() has resolved\n`);
}
