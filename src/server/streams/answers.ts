/**
 * How the SSE side answers HTTP: the CORS headers `--allowed-origins` grants (the rule the
 * WebSocket door keeps: an empty list lets every origin in), the preflight, and coded JSON
 * errors `{"error":{"code","message"}}` a page of another origin can read.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { SEQ_DUPLICATE_HEADER, SEQ_EXPECTED_HEADER, SEQ_HEADER } from '../../shared/sse.js';

/** Every `code` an SSE answer can carry besides the protocol's (PROTOCOL.md lists them). */
export type StreamErrorCode =
  | 'bad_request' | 'bad_room' | 'too_many_rooms' | 'unauthorized' | 'forbidden' | 'foreign_stream' | 'unknown_stream'
  | 'method_not_allowed' | 'out_of_order' | 'too_large' | 'rate_limited' | 'unavailable' | 'rejected' | 'internal';

const NO_STORE = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' };

/** The code of a door's refusal, by its status (an authenticate hook may choose any 4xx/5xx). */
export function codeOfStatus(status: number): StreamErrorCode {
  switch (status) {
    case 400: return 'bad_request';
    case 401: return 'unauthorized';
    case 403: return 'forbidden';
    case 429: return 'rate_limited';
    case 503: return 'unavailable';
    default: return status >= 500 ? 'internal' : 'rejected';
  }
}

export class Cors {
  private readonly allowed: ReadonlySet<string>;

  constructor(allowedOrigins: readonly string[]) {
    this.allowed = new Set(allowedOrigins);
  }

  /** False when the request's Origin may not use Plaza (a request without one is no page's). */
  allows(request: IncomingMessage): boolean {
    const origin = request.headers.origin;
    return this.allowed.size === 0 || origin === undefined || this.allowed.has(origin);
  }

  /** The headers that let an allowed page read the answer. */
  headersFor(request: IncomingMessage): OutgoingHttpHeaders {
    const origin = request.headers.origin;
    if (origin === undefined || !this.allows(request)) return {};
    return {
      'Access-Control-Allow-Origin': origin,
      'Access-Control-Expose-Headers': `${SEQ_EXPECTED_HEADER}, ${SEQ_DUPLICATE_HEADER}, Retry-After`,
      Vary: 'Origin',
    };
  }

  /** Answers a preflight: 204 with what a page may send, or 403 for an origin not allowed. */
  preflight(request: IncomingMessage, response: ServerResponse): void {
    if (!this.allows(request)) return sendStreamError(response, this, request, 403, 'forbidden', 'this origin may not connect; ask the operator to add it to --allowed-origins');
    response.writeHead(204, {
      ...this.headersFor(request),
      'Access-Control-Allow-Methods': 'GET, POST',
      'Access-Control-Allow-Headers': `Authorization, Content-Type, Last-Event-ID, ${SEQ_HEADER}`,
      'Access-Control-Max-Age': '600',
      ...NO_STORE,
    });
    response.end();
  }
}

export function sendStreamError(
  response: ServerResponse,
  cors: Cors,
  request: IncomingMessage,
  status: number,
  code: StreamErrorCode,
  message: string,
  headers: OutgoingHttpHeaders = {},
): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const body = JSON.stringify({ error: { code, message } });
  response.writeHead(status, {
    ...headers,
    ...cors.headersFor(request),
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    ...NO_STORE,
  });
  response.end(body);
}

/** A POST taken: 204, with the duplicate header when that `Plaza-Seq` was taken before. */
export function sendTaken(response: ServerResponse, cors: Cors, request: IncomingMessage, duplicate: boolean): void {
  response.writeHead(204, { ...cors.headersFor(request), ...(duplicate && { [SEQ_DUPLICATE_HEADER]: 'true' }), ...NO_STORE });
  response.end();
}
