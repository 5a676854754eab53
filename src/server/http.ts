import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Broker } from './broker.js';
import type { PlazaOptions } from './config.js';
import type { Connection } from './connection.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { StaticFiles } from './static.js';

/** Why the server is or is not ready; each failing part adds a reason. */
export interface Readiness {
  ready: boolean;
  reasons: string[];
}

export interface HttpContext {
  /** Built chat page and client; absent when the server runs as a bare hub. */
  readonly staticFiles: StaticFiles | undefined;
  readonly options: Readonly<PlazaOptions>;
  readonly broker: Broker;
  readonly connections: ReadonlySet<Connection>;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Listening, not shutting down, persistence (and later the backplane) healthy. */
  readiness(): Readiness;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(text);
}

/** Routes plain HTTP requests: health endpoints first, then the static files. */
export function createRequestHandler(context: HttpContext) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      const { ready, reasons } = context.readiness();
      return ready ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { status: 'not ready', reasons });
    }
    if (context.staticFiles) return context.staticFiles.handle(req, res);
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
    res.end('Not found: this Plaza serves no static files\n');
  };
}
