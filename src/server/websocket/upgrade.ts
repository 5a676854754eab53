/**
 * The WebSocket side's 'upgrade' listener: what only an upgrade has to check (Plaza's path, the
 * number of header fields), then the door every side shares (sessions/door.ts: origin, caps, key,
 * authenticate hook, token, or in at once without reading the address), then ws completes the
 * handshake. A refusal is a real HTTP answer, except a wrong credential of a plaza.v1 client,
 * which is accepted and closed with 4003 so a browser can read why.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { hasTooManyHeaders } from '../access/http-server.js';
import { MAX_REQUEST_HEADERS } from '../bounds.js';
import { parseTarget } from '../access/request-target.js';
import type { Admission } from '../sessions/context.js';
import { createDoor, type DoorContext, type Verdict } from '../sessions/door.js';
import { CloseCode, SUBPROTOCOL } from '../../shared/protocol.js';

/**
 * How long a socket accepted only to be closed with 4003 may take to answer the close frame
 * before it is cut off (ws would wait 30 s): such a peer has no business holding a socket.
 */
export const REFUSED_GRACE_MS = 1000;

/** A close reason must fit a control frame: 125 bytes minus the 2-byte code (RFC 6455 §5.5). */
const MAX_REASON_BYTES = 123;

/** The door's parts (sessions/door.ts) and what a WebSocket upgrade needs besides. */
export interface UpgradeContext extends DoorContext {
  readonly wss: WebSocketServer;
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
 * connection before issue 24. An upgrade handed to ws in the same step needs none: ws's
 * handleUpgrade puts its own listener on first, and keeps one for the socket's life.
 */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

function guard(socket: Duplex): void {
  if (!socket.listeners('error').includes(destroyOnError)) socket.on('error', destroyOnError);
}

/** The client offered plaza.v1: read only when a refusal or a grant depends on it. */
function offersV1(request: IncomingMessage): boolean {
  return (request.headers['sec-websocket-protocol'] ?? '').split(',').some((p) => p.trim() === SUBPROTOCOL);
}

/** Returns the server's 'upgrade' listener: checks, then hands the socket to ws. */
export function createUpgradeHandler(context: UpgradeContext) {
  const { options, metrics } = context;
  const door = createDoor(context, { client: 'an upgrade' });

  function refuse(socket: Duplex, status: number, message: string, headers?: Record<string, string>): void {
    guard(socket);
    metrics.countIn(metrics.upgradeRejections, status);
    rejectUpgrade(socket, status, message, headers);
  }

  /**
   * Closes a plaza.v1 socket at once with 4003 and `message`: a browser cannot read the status
   * of a refused upgrade, and would only see 1006 (and retry for ever). The socket never becomes
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

  /**
   * The door's verdict, answered the WebSocket way. A wrong or missing key or token (already
   * counted by the door): HTTP 401 for a plain client, 4003 for a plaza.v1 one.
   */
  function decide(request: IncomingMessage, socket: Duplex, head: Buffer, verdict: Verdict): void {
    if ('admit' in verdict) return admit(request, socket, head, verdict.admit);
    if (verdict.credential && offersV1(request)) return closeUnauthorized(request, socket, head, verdict.credential.ip, verdict.message);
    refuse(socket, verdict.status, verdict.message, verdict.headers);
  }

  function admit(request: IncomingMessage, socket: Duplex, head: Buffer, admission: Admission): void {
    const grant = admission.grant;
    if (grant && !grant.mayJoin(options.defaultRoom) && !offersV1(request)) {
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
    if (hasTooManyHeaders(request)) return refuse(socket, 431, `more than ${MAX_REQUEST_HEADERS} header fields; send fewer`);
    if (!context.isAccepting()) return refuse(socket, 503, 'server is shutting down; retry shortly', { 'Retry-After': '5' });
    if (!target || !ours) return refuse(socket, 404, `no WebSocket endpoint here; connect to ${options.path}`);
    const verdict = door(request, {
      token: target.searchParams.get('token'),
      key: target.searchParams.get('key'),
      missingToken: 'a token is required: connect to /?token=<signed token>',
      // This side pins its connections' addresses when something starts to read them later (side.ts keepAddresses).
      peer: socket,
    });
    if (!(verdict instanceof Promise)) return decide(request, socket, head, verdict);
    // The door waits (a token checked with a public key, the authenticate hook): a reset meanwhile must not throw.
    guard(socket);
    verdict.then(
      (decided) => {
        // The client may have given up while the door waited (the authenticate hook, a remote key set).
        if (!socket.destroyed) decide(request, socket, head, decided);
      },
      (error: unknown) => {
        context.logger.error('upgrade failed after the authenticate hook', { error: error instanceof Error ? error.stack : String(error) });
        socket.destroy();
      },
    );
  };
}
