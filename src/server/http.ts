import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StaticFiles } from './static.js';

export interface HttpContext {
  /** Built chat page and client; absent when the server runs as a bare hub. */
  readonly staticFiles: StaticFiles | undefined;
  /** True once listening and not shutting down. */
  isReady(): boolean;
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
      return context.isReady()
        ? sendJson(res, 200, { status: 'ready' })
        : sendJson(res, 503, { status: 'not ready', reason: 'not listening or shutting down' });
    }
    if (context.staticFiles) return context.staticFiles.handle(req, res);
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
    res.end('Not found: this Plaza serves no static files\n');
  };
}
