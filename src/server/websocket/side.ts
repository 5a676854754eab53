/**
 * The WebSocket side of a node: the ws server, the upgrade checks, the connections with their
 * heartbeat, token deadlines and --welcome, mounted on an HTTP server and taken off it again.
 * The node gives it the broker and outbox; what a client asks is sessions/' business.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { CloseCode, SUBPROTOCOL } from '../../shared/protocol.js';
import { encodeTextFrame } from '../engine/frame.js';
import type { Admission, ConnectionContext } from '../sessions/context.js';
import { ExpiryQueue } from '../sessions/expiry-queue.js';
import type { Side } from '../sessions/side.js';
import type { SideParts } from '../sessions/side-parts.js';
import { Connection } from './connection.js';
import { startHeartbeat } from './heartbeat.js';
import { createUpgradeHandler } from './upgrade.js';
import { createWebSocketServer, takesSharedDeflate, type PlazaWebSocket } from './ws-server.js';
import { SHUTDOWN_CLOSE_BATCH } from '../bounds.js';

/** How long peers that never answered the closing handshake get once they are cut off. */
const TERMINATE_WAIT_MS = 1000;

/** Resolves once `done()` holds or `ms` have passed; shutdown is rare, so polling is fine. */
async function until(done: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

export function createWebSocketSide(parts: SideParts): Side {
  const { options } = parts;
  const connections = parts.group<Connection>();
  // One timer for all token deadlines; holds only open connections with a token.
  const expiries = new ExpiryQueue<Connection>((connection) =>
    connection.close(CloseCode.TokenExpired, 'token expired: reconnect with a fresh token'),
  );
  // --welcome, framed once for everyone: text for plain clients, a notice envelope for plaza.v1.
  const welcomeFrames = options.welcome
    ? { plain: encodeTextFrame(options.welcome), v1: encodeTextFrame(JSON.stringify({ type: 'notice', text: options.welcome })) }
    : undefined;
  const context: ConnectionContext<Connection> = {
    broker: parts.broker, outbox: parts.outbox, logger: parts.logger, options, connections, metrics: parts.metrics,
    limits: parts.limits, expiries, sessionIds: parts.sessionIds,
    onClosed: (connection, code) => parts.disconnected(connection, code),
  };
  let wss: WebSocketServer | undefined;
  let server: Server | HttpsServer | undefined;
  let upgradeListener: ((request: IncomingMessage, socket: Duplex, head: Buffer) => void) | undefined;
  let heartbeat: { stop(): void } | undefined;
  let detaching: Promise<void> | undefined;

  function onConnection(ws: WebSocket, socket: Duplex, admission: Admission): void {
    // createWebSocketServer has ws make every socket a PlazaWebSocket.
    const connection = new Connection(context, ws as PlazaWebSocket, socket, ws.protocol === SUBPROTOCOL ? 'v1' : 'plain', admission, takesSharedDeflate(ws));
    const expiresAt = admission.grant?.expiresAt;
    if (expiresAt !== undefined) expiries.add(connection, expiresAt);
    if (welcomeFrames) connection.deliver(welcomeFrames[connection.protocol]);
    parts.connected(connection);
    connection.start();
  }

  function attach(target: Server | HttpsServer, othersListen: () => boolean): void {
    if (server) throw new Error('the WebSocket side is already attached to a server');
    server = target;
    wss = createWebSocketServer(options);
    heartbeat = startHeartbeat(connections, options.heartbeatMs);
    upgradeListener = createUpgradeHandler({
      wss, options, logger: parts.logger, metrics: parts.metrics, limits: parts.limits, authFailures: parts.authFailures,
      clientAddress: parts.clientAddress, readsAddressLater: parts.readsAddressLater, isAccepting: parts.isAccepting, onConnection, othersListen,
      ...(parts.authenticate && { authenticate: parts.authenticate }),
      ...(parts.tokens && { tokens: parts.tokens }),
    });
    target.on('upgrade', upgradeListener);
  }

  async function closeAll(graceMs: number): Promise<void> {
    heartbeat?.stop();
    expiries.clear();
    let batch = 0;
    for (const connection of [...connections]) {
      connection.close(CloseCode.GoingAway, 'server shutting down');
      if (++batch % SHUTDOWN_CLOSE_BATCH === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await until(() => connections.size === 0, graceMs);
    // Peers that never finished the closing handshake are cut off so shutdown stays bounded.
    for (const connection of connections) connection.ws.terminate();
    await until(() => connections.size === 0, TERMINATE_WAIT_MS);
    // Upgrades on Plaza's path meanwhile got 503 from the listener, removed last.
    if (upgradeListener) server?.off('upgrade', upgradeListener);
  }

  return {
    name: 'websocket',
    get size() {
      return connections.size;
    },
    attach,
    detach: (graceMs) => (detaching ??= closeAll(graceMs)),
    keepAddresses() {
      for (const connection of connections) void connection.remoteAddress;
    },
  };
}
