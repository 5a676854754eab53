import { sameSecret } from '../access/secret.js';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { TokenError, type Grant } from '../access/tokens.js';
import { TokenCheckUnavailableError } from '../access/token-verifier.js';
import { hasTooManyHeaders } from '../access/http-server.js';
import { MAX_REQUEST_HEADERS } from '../bounds.js';
import { parseTarget } from '../access/request-target.js';
import type { Admission } from '../sessions/context.js';
import { OPERATOR_GRANT, type DoorContext } from '../sessions/door.js';
import { CloseCode, SUBPROTOCOL } from '../../shared/protocol.js';
import type { Authentication } from '../hooks/authenticate.js';
import { LateAddress } from './late-address.js';

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
  /**
   * True while something may read a client's address after its connection closed (info log
   * lines, the application's hooks or client events): the door then reads it at once.
   */
  readsAddressLater(): boolean;
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

/** Returns the server's 'upgrade' listener: checks, then hands the socket to ws. */
export function createUpgradeHandler(context: UpgradeContext) {
  const { options, metrics } = context;
  const allowedOrigins = new Set(options.allowedOrigins);
  /** A check at the door reads the address (per-address cap), or only the request has it (--trust-proxy). */
  const needsAddress = (): boolean => context.limits.countsAddresses || options.trustProxy.length > 0 || context.readsAddressLater();

  function refuse(socket: Duplex, status: number, message: string, headers?: Record<string, string>): void {
    guard(socket);
    metrics.countIn(metrics.upgradeRejections, status);
    rejectUpgrade(socket, status, message, headers);
  }

  /**
   * A wrong or missing key or token: counted against the address (the one limiter every secret
   * check shares), then refused. A plain upgrade gets HTTP 401. A plaza.v1 upgrade comes from
   * Plaza's client, often in a browser, which cannot read the status of a refused WebSocket (it
   * only sees 1006 and would retry for ever): it is accepted and closed at once with 4003 and the
   * reason. That socket never becomes a Connection (no rooms, nothing read), counts against the
   * connection caps while it exists, and is cut off if it does not answer within REFUSED_GRACE_MS.
   */
  function refuseCredential(request: IncomingMessage, socket: Duplex, head: Buffer, ip: string, offersV1: boolean, message: string): void {
    context.authFailures.fail(ip);
    metrics.authFailures++;
    context.logger.warn('refused an upgrade without a valid key or token', { remote: ip });
    if (!offersV1) return refuse(socket, 401, message);
    closeUnauthorized(request, socket, head, ip, message);
  }

  /**
   * Closes a plaza.v1 socket at once with 4003 and `message`: a browser cannot read the status
   * of a refused upgrade, and would only see 1006. The socket never becomes a Connection (no
   * rooms, nothing read), counts against the connection caps while it exists, and is cut off if
   * it does not answer within REFUSED_GRACE_MS.
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

  /** Whom the application's authenticate hook said this is, and what follows from it. */
  function afterAuthenticate(request: IncomingMessage, socket: Duplex, head: Buffer, door: Door, result: Authentication): void {
    // The client may have given up, or the server begun to close, while the hook ran.
    if (socket.destroyed) return;
    if (!context.isAccepting()) return refuse(socket, 503, 'server is shutting down; retry shortly', { 'Retry-After': '5' });
    switch (result.kind) {
      case 'identity':
        return admit(request, socket, head, door, result.grant, result.data);
      case 'pass':
        return checkToken(request, socket, head, door);
      case 'failed':
        return refuse(socket, 503, `${result.code}: ${result.message}`, { 'Retry-After': '5' });
      case 'refused':
        context.logger.info('the authenticate hook refused an upgrade', { remote: door.ip, status: result.status });
        if (result.status !== 401 && result.status !== 403) return refuse(socket, result.status, result.reason);
        metrics.authFailures++;
        if (door.offersV1) return closeUnauthorized(request, socket, head, door.ip, result.reason);
        return refuse(socket, result.status, result.reason);
    }
  }

  /**
   * The token rule (--auth-secret, --auth-jwks-url, --auth-public-key): a valid token is required
   * (the status page may come with the API key instead). An HS256 token is checked at once; one
   * checked with a public key answers later, and the door looks again at the socket and the
   * server's state before it admits.
   */
  function checkToken(request: IncomingMessage, socket: Duplex, head: Buffer, door: Door): void {
    const tokens = context.tokens;
    if (!tokens) return admit(request, socket, head, door, undefined, undefined);
    const token = door.target.searchParams.get('token');
    // The status page carries the API key, not a token: it may watch, never talk.
    if (!token && door.isOperator) return admit(request, socket, head, door, OPERATOR_GRANT, undefined);
    if (!token) return refuseCredential(request, socket, head, door.ip, door.offersV1, 'a token is required: connect to /?token=<signed token>');
    let verified: Grant | Promise<Grant>;
    try {
      verified = tokens.verify(token);
    } catch (error) {
      return refuseToken(request, socket, head, door, error);
    }
    if (!(verified instanceof Promise)) return admit(request, socket, head, door, verified, undefined);
    verified.then(
      (grant) => {
        if (socket.destroyed) return;
        if (!context.isAccepting()) return refuse(socket, 503, 'server is shutting down; retry shortly', { 'Retry-After': '5' });
        admit(request, socket, head, door, grant, undefined);
      },
      (error: unknown) => {
        if (socket.destroyed) return;
        try {
          refuseToken(request, socket, head, door, error);
        } catch (bug) {
          context.logger.error('token check failed', { error: bug instanceof Error ? bug.stack : String(bug) });
          refuse(socket, 500, 'the token could not be checked');
        }
      },
    );
  }

  /** A refused token counts against the address; no keys yet is the provider's fault, not the client's. */
  function refuseToken(request: IncomingMessage, socket: Duplex, head: Buffer, door: Door, error: unknown): void {
    if (error instanceof TokenCheckUnavailableError) return refuse(socket, 503, error.message, { 'Retry-After': '5' });
    if (!(error instanceof TokenError)) throw error;
    refuseCredential(request, socket, head, door.ip, door.offersV1, error.message);
  }

  function admit(request: IncomingMessage, socket: Duplex, head: Buffer, door: Door, grant: Grant | undefined, data: unknown): void {
    if (grant && !door.offersV1 && !grant.mayJoin(options.defaultRoom)) {
      return refuse(socket, 403, `you may not use the room plain clients use (${options.defaultRoom})`);
    }
    // ws itself answers bad handshakes: 405 for non-GET, 400 for a bad key, version or Upgrade header.
    context.wss.handleUpgrade(request, socket, head, (ws) =>
      context.onConnection(ws, socket, data === undefined ? { ip: door.ip, grant, isOperator: door.isOperator } : { ip: door.ip, grant, isOperator: door.isOperator, data }),
    );
  }

  return (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const target = parseTarget(request.url);
    const ours = target !== undefined && target.pathname === options.path;
    // Attached to an app's server: its own upgrades are its business, untouched.
    if (!ours && context.othersListen?.()) return;
    if (hasTooManyHeaders(request)) return refuse(socket, 431, `more than ${MAX_REQUEST_HEADERS} header fields; send fewer`);
    if (!context.isAccepting()) return refuse(socket, 503, 'server is shutting down; retry shortly', { 'Retry-After': '5' });
    if (!target || !ours) return refuse(socket, 404, `no WebSocket endpoint here; connect to ${options.path}`);
    // Browsers always send Origin; other clients may omit it and could forge it anyway, so the
    // allow-list is about stopping other web pages from using a visitor's browser.
    const origin = request.headers.origin;
    if (allowedOrigins.size > 0 && origin !== undefined && !allowedOrigins.has(origin)) {
      return refuse(socket, 403, 'this origin may not connect; ask the operator to add it to --allowed-origins');
    }
    // Every secret on the URL is checked under the same limiter as the HTTP API's key.
    const key = options.apiKey === '' ? null : target.searchParams.get('key');
    if (key === null && !context.tokens && !context.authenticate && !needsAddress()) {
      // Nothing to check that needs the address, and nobody to read it after the close: it is
      // read from the socket if something asks while the connection lives (late-address.ts).
      if (context.limits.refusal(undefined) === 503) return refuse(socket, 503, 'the server is at its connection limit; retry later', { 'Retry-After': '10' });
      // ws itself answers bad handshakes: 405 for non-GET, 400 for a bad key, version or Upgrade header.
      return context.wss.handleUpgrade(request, socket, head, (ws) => context.onConnection(ws, socket, new LateAddress(socket)));
    }
    // The checks below may wait (a token checked with a public key, the authenticate hook).
    guard(socket);
    const ip = context.clientAddress(request);
    const limited = context.limits.refusal(ip);
    if (limited === 503) return refuse(socket, 503, 'the server is at its connection limit; retry later', { 'Retry-After': '10' });
    if (limited === 429) return refuse(socket, 429, 'too many connections from your address; close some first', { 'Retry-After': '10' });

    const offersV1 = (request.headers['sec-websocket-protocol'] ?? '').split(',').some((p) => p.trim() === SUBPROTOCOL);
    // An address past the limiter is refused before any comparison: no guess is ever answered for free.
    if (key !== null || context.tokens) {
      const wait = context.authFailures.retryAfter(ip);
      if (wait > 0) {
        return refuse(socket, 429, `too many attempts with a wrong key or token; retry in ${wait} s`, { 'Retry-After': String(wait) });
      }
    }
    if (key !== null && !sameSecret(key, options.apiKey)) {
      return refuseCredential(request, socket, head, ip, offersV1, 'wrong API key in ?key=; leave it out or use the right one');
    }
    const door: Door = { ip, offersV1, isOperator: key !== null, target };
    const authenticate = context.authenticate;
    if (!authenticate) return checkToken(request, socket, head, door);
    authenticate(request).then(
      (result) => afterAuthenticate(request, socket, head, door, result),
      (error: unknown) => {
        context.logger.error('upgrade failed after the authenticate hook', { error: error instanceof Error ? error.stack : String(error) });
        socket.destroy();
      },
    );
  };
}

/** What the checks at the door learned before the credentials. */
interface Door {
  ip: string;
  offersV1: boolean;
  /** The URL carried the right API key. */
  isOperator: boolean;
  target: URL;
}
