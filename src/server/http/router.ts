/**
 * Routes plain HTTP requests: health, metrics, the status page, the HTTP API, then static files.
 *
 * | path              | who                                                  |
 * | ----------------- | ---------------------------------------------------- |
 * | /healthz, /readyz | anyone; /readyz details only with the API key        |
 * | /metrics          | anyone, or only with the API key once one is set     |
 * | /status           | anyone with --status, else only with the API key     |
 * | /api/…            | only with the API key; 404 when no key is configured |
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { createApi } from './api.js';
import type { AuthFailureLimiter } from '../access/failure-limiter.js';
import type { Broker } from '../rooms/broker.js';
import type { PlazaOptions } from '../config.js';
import type { Connection } from '../connections/connection.js';
import { hasTooManyHeaders, MAX_REQUEST_HEADERS } from './http-server.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../engine/metrics.js';
import { CONTENT_TYPE as METRICS_CONTENT_TYPE, renderMetrics } from './prometheus.js';
import type { Readiness } from './readiness.js';
import type { StaticFiles } from './static.js';
import type { StatusFeed } from './status-feed.js';
import { sameSecret } from '../connections/upgrade.js';

export interface HttpContext {
  /** Built chat page and client; absent when the server runs as a bare hub. */
  readonly staticFiles: StaticFiles | undefined;
  readonly options: Readonly<PlazaOptions>;
  readonly broker: Broker;
  readonly connections: ReadonlySet<Connection>;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Listening, not shutting down, persistence and the backplane healthy. */
  readiness(): Readiness;
  /** The one limiter for wrong keys and tokens, shared with the WebSocket upgrade. */
  readonly authFailures: AuthFailureLimiter;
  /** The client's address: the TCP peer, or what a --trust-proxy proxy reports. */
  clientAddress(req: IncomingMessage): string;
  /** The status page's feed; /metrics reads its event-loop delay. */
  readonly statusFeed: StatusFeed;
  /**
   * Writes history appended so far to disk. The API calls it before a reply reveals an offset,
   * the same write-ahead rule as for frames (the outbox's beforeFlush).
   */
  flushHistory(): void;
}

/** An error answer: JSON `{error: {code, message}}` for the API, plain text elsewhere. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: OutgoingHttpHeaders = {},
  ) {
    super(message);
  }
}

const NO_STORE = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' };

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

function sendText(res: ServerResponse, status: number, text: string, headers: OutgoingHttpHeaders = {}): void {
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

/** The token of `Authorization: Bearer <token>` (RFC 6750 §2.1), if present. */
function bearerToken(req: IncomingMessage): string | undefined {
  const match = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '');
  return match?.[1];
}

/** `?key=`: browsers can send no header when they navigate (the status page). */
function queryKey(url: string | undefined): string | undefined {
  const query = url?.indexOf('?') ?? -1;
  if (url === undefined || query === -1) return undefined;
  return new URLSearchParams(url.slice(query + 1)).get('key') ?? undefined;
}

/** The decoded path of a request target, as static.ts reads it; undefined when undecodable. */
function pathOf(url: string | undefined): string | undefined {
  let target = url ?? '/';
  // Absolute form from a proxy (RFC 9112 §3.2.2): only the path matters.
  const origin = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(target);
  if (origin) target = target.slice(origin[0].length) || '/';
  const query = target.indexOf('?');
  try {
    return decodeURIComponent(query === -1 ? target : target.slice(0, query));
  } catch {
    return undefined;
  }
}

/** What asks for the key; the status page alone also takes it from `?key=`. */
export type Surface = 'api' | 'metrics' | 'status' | 'readyz';

export type Authorizer = (req: IncomingMessage, surface: Surface) => void;

export function createRequestHandler(context: HttpContext) {
  const apiKey = context.options.apiKey;
  const limiter = context.authFailures;

  /** Throws 429 or 401 unless the request carries the operator key. */
  const authorize: Authorizer = (req, surface) => {
    const allowQueryKey = surface === 'status';
    const remote = context.clientAddress(req);
    const wait = limiter.retryAfter(remote);
    if (wait > 0) {
      throw new HttpError(429, 'rate_limited', `too many attempts with a wrong key or token; retry in ${wait} s`, { 'Retry-After': String(wait) });
    }
    const presented = bearerToken(req) ?? (allowQueryKey ? queryKey(req.url) : undefined);
    // Constant time, and hashed first so that not even the key's length shows.
    if (apiKey !== '' && presented !== undefined && sameSecret(presented, apiKey)) return;
    limiter.fail(remote);
    context.metrics.authFailures++;
    context.logger.warn('refused a request without the right key', { surface, remote });
    const challenge = presented === undefined ? 'Bearer realm="plaza"' : 'Bearer realm="plaza", error="invalid_token"';
    const how = allowQueryKey ? 'send Authorization: Bearer <key> or add ?key=<key>' : 'send Authorization: Bearer <key>';
    throw new HttpError(401, 'unauthorized', `${presented === undefined ? 'missing' : 'wrong'} API key: ${how}`, { 'WWW-Authenticate': challenge });
  };

  const api = createApi(context, authorize);

  function metrics(req: IncomingMessage, res: ServerResponse): void {
    allowMethods(req, ['GET']);
    // Open like most exporters, until an API key exists: then it guards this too (Prometheus
    // sends it with `authorization: {credentials: <key>}` in the scrape config).
    if (apiKey !== '') authorize(req, 'metrics');
    const text = renderMetrics({
      metrics: context.metrics,
      connections: context.connections,
      rooms: context.broker.hub.roomCount,
      history: context.broker.history,
      ready: context.readiness().ready,
      eventLoopDelay: context.statusFeed.takeEventLoopDelay(),
      backplane: context.broker.backplane.kind === 'redis'
        ? { up: context.broker.backplane.status.up, ...context.broker.backplane.stats }
        : undefined,
      orphans: context.broker.hub.orphans(),
    });
    res.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text), ...NO_STORE });
    res.end(text);
  }

  /**
   * Anyone gets the status and reason codes (a load balancer needs no more); the details name
   * folders and hosts, so they need the key, presented as a Bearer token like for /metrics.
   */
  function readyz(req: IncomingMessage, res: ServerResponse): void {
    allowMethods(req, ['GET']);
    const withDetails = apiKey !== '' && req.headers.authorization !== undefined;
    if (withDetails) authorize(req, 'readyz');
    const { ready, reasons } = context.readiness();
    if (ready) return sendJson(res, 200, { status: 'ready' });
    const codes = reasons.map((reason) => reason.code);
    sendJson(res, 503, withDetails ? { status: 'not ready', reasons: codes, details: reasons.map((reason) => reason.detail) } : { status: 'not ready', reasons: codes });
  }

  function statusPage(req: IncomingMessage, res: ServerResponse): void {
    if (!context.options.status && apiKey === '') throw new HttpError(404, 'not_found', 'the status page is off: start the server with --status or --api-key');
    if (!context.staticFiles) throw new HttpError(404, 'not_found', 'the status page is not built: serve dist/public with --public-dir');
    allowMethods(req, ['GET']);
    // A browser cannot send a header when it navigates, so the page also takes ?key= and hands
    // it on to its WebSocket. The key is then in the browser's history: see docs/operations.md.
    if (!context.options.status) authorize(req, 'status');
    req.url = '/status.html';
    context.staticFiles.handle(req, res);
  }

  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = pathOf(req.url);
    const format = path?.startsWith('/api/') || path === '/api' ? 'json' : 'text';
    const fail = (error: unknown) => {
      if (error instanceof HttpError) {
        if (!res.headersSent) return sendError(res, error, format);
      } else {
        // Details stay in the log; the client learns only that it was not its fault.
        context.logger.error('request handler failed', { path: path?.slice(0, 64), error: error instanceof Error ? error.stack : String(error) });
        if (!res.headersSent) return sendError(res, new HttpError(500, 'internal', 'internal error; see the server log'), format);
      }
      res.destroy();
    };
    try {
      if (hasTooManyHeaders(req)) {
        throw new HttpError(431, 'too_many_headers', `more than ${MAX_REQUEST_HEADERS} header fields; send fewer`, { Connection: 'close' });
      }
      if (format === 'json') return void api(req, res, path!).catch(fail);
      switch (path) {
        case '/healthz':
          allowMethods(req, ['GET']);
          return sendJson(res, 200, { status: 'ok' });
        case '/readyz':
          return readyz(req, res);
        case '/metrics':
          return metrics(req, res);
        case '/status':
        case '/status.html':
          return statusPage(req, res);
      }
      if (context.staticFiles) return context.staticFiles.handle(req, res);
      sendText(res, 404, 'Not found: this Plaza serves no static files\n');
    } catch (error) {
      fail(error);
    }
  };
}
