/**
 * The HTTP (or HTTPS) server under everything, with the bounds that protect it from clients
 * that are slow or bloated on purpose, before any of Plaza's own code runs.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { MAX_REQUEST_HEADERS } from '../bounds.js';
import type { TlsFiles } from './tls-files.js';

/**
 * Node keeps at most `maxHeadersCount` headers and silently drops the rest, so the server keeps
 * one more than the limit: a request that has it sent too many. The request handler and the
 * upgrade handler both ask this first and answer 431.
 */
export function hasTooManyHeaders(req: IncomingMessage): boolean {
  return req.rawHeaders.length / 2 > MAX_REQUEST_HEADERS;
}

export function createHttpServer(options: { headersTimeout: number }, tls: TlsFiles | undefined, handler: RequestListener): Server {
  // Slowloris: a client gets headersTimeout for its headers and three times that for a whole
  // request; Node checks every second instead of its default 30 s so the bound really holds.
  const serverOptions = {
    headersTimeout: options.headersTimeout,
    requestTimeout: options.headersTimeout * 3,
    keepAliveTimeout: 5_000,
    connectionsCheckingInterval: 1_000,
  };
  if (!tls) {
    const server = createServer(serverOptions, handler);
    server.maxHeadersCount = MAX_REQUEST_HEADERS + 1;
    return server;
  }
  // Node's HTTP timeouts start once TLS is up; before that only the handshake timeout guards a
  // connection, 120 s by default. A peer that sends nothing or half a ClientHello gets the same
  // time as one that dawdles over its headers.
  const server = createHttpsServer({ ...serverOptions, ...tls, handshakeTimeout: options.headersTimeout }, handler);
  server.maxHeadersCount = MAX_REQUEST_HEADERS + 1;
  // Node destroys the socket after a handshake error or timeout today but does not document it;
  // destroying it here keeps the bound from depending on that.
  server.on('tlsClientError', (_error: Error, socket: Socket) => socket.destroy());
  return server;
}
