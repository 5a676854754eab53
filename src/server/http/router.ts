/**
 * http/ — the plain HTTP surface: this router, static files mapped at start-up, the HTTP API,
 * the Prometheus exposition, readiness and the status feed. It may import rooms/, the engine,
 * access/, src/shared, config and logger; never a side (websocket/) or node/.
 *
 * Routes plain HTTP requests: health, metrics, the status page, the HTTP API, then static files.
 *
 * | path              | who                                                  |
 * | ----------------- | ---------------------------------------------------- |
 * | /healthz, /readyz | anyone; /readyz details only with the API key        |
 * | /metrics          | anyone, or only with the API key once one is set     |
 * | /status           | anyone with --status, else only with the API key     |
 * | /api/…            | only with the API key; 404 when no key is configured |
 *
 * Mounted in an application as middleware (`plaza.handleRequest`), a path that is none of these
 * and no static file goes on to the application's `next`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createApi } from './api.js';
import type { Authorizer, HttpContext } from './context.js';
import { hasTooManyHeaders } from '../access/http-server.js';
import { MAX_REQUEST_HEADERS } from '../bounds.js';
import { CONTENT_TYPE as METRICS_CONTENT_TYPE, renderMetrics } from './prometheus.js';
import { allowMethods, HttpError, NO_STORE, requestPath, sendError, sendJson, sendText } from './respond.js';
import { sameSecret } from '../access/secret.js';
import type { BackplaneOperations } from '../rooms/backplane/types.js';

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
      backplane: clusterGauges(context.broker.backplane),
      orphans: context.broker.hub.orphans(),
      publishIds: context.broker.backplane.publishIdCounts,
      hooks: context.hooks,
      webhooks: context.webhooks,
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

  return (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void => {
    const path = requestPath(req.url);
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
      if (next && !context.staticFiles?.has(req.url)) return next();
      if (context.staticFiles) return context.staticFiles.handle(req, res);
      sendText(res, 404, 'Not found: this Plaza serves no static files\n');
    } catch (error) {
      fail(error);
    }
  };
}

/** The cluster's gauges for /metrics, when the backplane is a cluster. */
function clusterGauges(backplane: BackplaneOperations) {
  const stats = backplane.stats;
  return stats && { up: backplane.status.up, ...stats };
}
