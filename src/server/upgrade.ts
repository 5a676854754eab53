import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from './logger.js';

/** The paths that accept WebSocket upgrades. Tutorial pages connect to the bare origin. */
const UPGRADE_PATHS = new Set(['/']);

export interface UpgradeContext {
  readonly wss: WebSocketServer;
  readonly logger: Logger;
  /** False while the server shuts down: new upgrades get 503. */
  isAccepting(): boolean;
  onConnection(ws: WebSocket, socket: Duplex, request: IncomingMessage): void;
}

/**
 * Answers a refused upgrade with a real HTTP response so that clients see why
 * (a WebSocket never exists for it), then closes the socket.
 */
export function rejectUpgrade(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = `${message}\n`;
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Connection: close',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.once('finish', () => socket.destroy());
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

function pathOf(url: string | undefined): string {
  const raw = url ?? '/';
  const query = raw.indexOf('?');
  return query === -1 ? raw : raw.slice(0, query);
}

/** Returns the server's 'upgrade' listener: checks, then hands the socket to ws. */
export function createUpgradeHandler(context: UpgradeContext) {
  return (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // A reset during the handshake must not become an uncaught error.
    socket.on('error', () => socket.destroy());
    if (!context.isAccepting()) return rejectUpgrade(socket, 503, 'server is shutting down; retry shortly', { 'Retry-After': '5' });
    if (!UPGRADE_PATHS.has(pathOf(request.url))) return rejectUpgrade(socket, 404, 'no WebSocket endpoint here; connect to /');
    // ws itself answers bad handshakes: 405 for non-GET, 400 for a bad key, version or Upgrade header.
    context.wss.handleUpgrade(request, socket, head, (ws) => context.onConnection(ws, socket, request));
  };
}
