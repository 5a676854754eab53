import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { PlazaOptions } from '../config.js';
import { hasTooManyHeaders, MAX_REQUEST_HEADERS } from '../access/http-server.js';
import { parseTarget } from '../access/request-target.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../engine/metrics.js';
import type { Admission } from '../sessions/context.js';
import type { ConnectionLimits } from '../sessions/connection-limits.js';
import type { Door, Verdict } from '../sessions/door.js';
import { CloseCode, SUBPROTOCOL } from '../../shared/protocol.js';

/**
 * How long a socket accepted only to be closed with 4003 may take to answer the close frame
 * before it is cut off (ws would wait 30 s): such a peer has no business holding a socket.
 */
export const REFUSED_GRACE_MS = 1000;

/** A close reason must fit a control frame: 125 bytes minus the 2-byte code (RFC 6455 §5.5). */
const MAX_REASON_BYTES = 123;

export interface UpgradeContext {
  readonly wss: WebSocketServer;
  readonly options: Readonly<PlazaOptions>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly limits: ConnectionLimits;
  /** The checks every transport shares: origin, caps, key, authenticate hook, token. */
  readonly door: Door;
  /** The client's address: the TCP peer, or what a --trust-proxy proxy reports. */
  clientAddress(request: IncomingMessage): string;
  /** False while the server shuts down: new upgrades get 503. */
  isAccepting(): boolean;
  onConnection(ws: WebSocket, socket: Duplex, admission: Admission): void;
  /**
   * True when something else also listens for upgrades on this server (Plaza attached to an
   * app's server): an upgrade off Plaza's path is then left untouched for it, not answered 404.
   */
  othersListen?(): boolean;
}

/**
 * Answers a refused upgrade with a real HTTP response so that clients see why
 * (a WebSocket never exists for it), then closes the socket.
 */
function rejectUpgrade(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): void {
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


/**
 * The raw socket's 'error' listener while the door decides, and after: a reset during the
 * handshake must not become an uncaught error. One function for every socket, not a closure per
 * upgrade: it stays on the socket for the connection's life, and a closure made in the upgrade
 * listener would keep its scope alive with it — the request, its headers and URL and the `head`
 * buffer (a view of the socket's read buffer): about 2 KiB of heap and 10 KiB of RSS per idle
 * connection before issue 24.
 */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** Returns the server's 'upgrade' listener: checks, then hands the socket to ws. */
export function createUpgradeHandler(context: UpgradeContext) {
  const { options, metrics } = context;

  function refuse(socket: Duplex, status: number, message: string, headers?: Record<string, string>): void {
    metrics.countIn(metrics.upgradeRejections, status);
    rejectUpgrade(socket, status, message, headers);
  }

  /**
   * Closes a plaza.v1 socket at once with 4003 and `message`: a browser cannot read the status
   * of a refused upgrade, and would only see 1006 and retry for ever. The socket never becomes
   * a Connection (no rooms, nothing read), counts against the connection caps while it exists,
   * and is cut off if it does not answer within REFUSED_GRACE_MS.
   */
  function closeUnauthorized(request: IncomingMessage, socket: Duplex, head: Buffer, ip: string, message: string): void {
    context.wss.handleUpgrade(request, socket, head, (ws) => {
      context.limits.add(ip);
      const cutOff = setTimeout(() => ws.terminate(), REFUSED_GRACE_MS);
      cutOff.unref();
      ws.on('error', () => {});
      ws.once('close', () => {
        clearTimeout(cutOff);
        context.limits.remove(ip);
      });
      ws.close(CloseCode.Unauthorized, Buffer.from(message).subarray(0, MAX_REASON_BYTES).toString());
    });
  }

  /** What the door decided, answered on this socket (which may have gone meanwhile). */
  function answer(request: IncomingMessage, socket: Duplex, head: Buffer, offersV1: boolean, verdict: Verdict): void {
    if (socket.destroyed) return;
    if (!('admit' in verdict)) {
      // A wrong or missing credential: plaza.v1 clients (often browsers) get 4003 and the reason.
      if (verdict.credential && offersV1) return closeUnauthorized(request, socket, head, context.clientAddress(request), verdict.message);
      return refuse(socket, verdict.status, verdict.message, verdict.headers);
    }
    if (!context.isAccepting()) return refuse(socket, 503, 'server is shutting down; retry shortly', { 'Retry-After': '5' });
    const admission = verdict.admit;
    if (admission.grant && !offersV1 && !admission.grant.mayJoin(options.defaultRoom)) {
      return refuse(socket, 403, `you may not use the room plain clients use (${options.defaultRoom})`);
    }
    // ws itself answers bad handshakes: 405 for non-GET, 400 for a bad key, version or Upgrade header.
    context.wss.handleUpgrade(request, socket, head, (ws) => context.onConnection(ws, socket, admission));
  }

  return (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const target = parseTarget(request.url);
    const ours = target !== undefined && target.pathname === options.path;
    // Attached to an app's server: its own upgrades are its business, untouched.
    if (!ours && context.othersListen?.()) return;
    socket.on('error', destroyOnError);
    if (hasTooManyHeaders(request)) return refuse(socket, 431, `more than ${MAX_REQUEST_HEADERS} header fields; send fewer`);
    if (!context.isAccepting()) return refuse(socket, 503, 'server is shutting down; retry shortly', { 'Retry-After': '5' });
    if (!target || !ours) return refuse(socket, 404, `no WebSocket endpoint here; connect to ${options.path}`);
    const offersV1 = (request.headers['sec-websocket-protocol'] ?? '').split(',').some((p) => p.trim() === SUBPROTOCOL);
    const verdict = context.door(request, {
      token: target.searchParams.get('token'),
      key: target.searchParams.get('key'),
      missingToken: 'a token is required: connect to /?token=<signed token>',
    });
    if (!(verdict instanceof Promise)) return answer(request, socket, head, offersV1, verdict);
    verdict.then(
      (decided) => answer(request, socket, head, offersV1, decided),
      (error: unknown) => {
        context.logger.error('upgrade failed at the door', { error: error instanceof Error ? error.stack : String(error) });
        socket.destroy();
      },
    );
  };
}
