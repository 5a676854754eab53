import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { CloseCode, SUBPROTOCOL } from '../shared/protocol.js';
import { resolveOptions, type PlazaOptions } from './config.js';
import { AuthFailureLimiter } from './access/failure-limiter.js';
import { LocalBackplane } from './rooms/backplane/local.js';
import { RedisBackplane } from './rooms/backplane/redis.js';
import type { Backplane } from './rooms/backplane/types.js';
import { Broker } from './rooms/broker.js';
import { createClientAddress } from './access/client-address.js';
import { createLocalNode } from './rooms/local-node.js';
import { Connection } from './connections/connection.js';
import type { Admission, ConnectionContext } from './connections/context.js';
import { HistoryStore } from './rooms/history.js';
import { Journal } from './rooms/journal.js';
import { createRequestHandler } from './http/router.js';
import { createHttpServer } from './access/http-server.js';
import { Hub } from './engine/hub.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics } from './engine/metrics.js';
import { Outbox } from './engine/outbox.js';
import { ReadinessLog, type NotReady, type Readiness } from './http/readiness.js';
import { loadStaticFiles, type StaticFiles } from './http/static.js';
import { ConnectionLimits } from './connections/connection-limits.js';
import { createUpgradeHandler } from './connections/upgrade.js';
import { startHeartbeat } from './connections/heartbeat.js';
import { createStatusFeed } from './http/status-feed.js';
import { ExpiryQueue } from './connections/expiry-queue.js';
import { SessionIds } from './connections/session-ids.js';
import { encodeTextFrame } from './engine/frame.js';
import { loadTlsFiles } from './access/tls-files.js';
import { createWebSocketServer, takesSharedDeflate } from './connections/ws-server.js';

export interface PlazaDependencies {
  /** Where log lines go; by default a logger on stdout built from the options. */
  logger?: Logger;
  /**
   * The built chat page and client (dist/public beside dist/server.js), served under
   * `publicDir`: a file there of the same path wins. The CLI passes it; by default only
   * `publicDir` is served.
   */
  builtinPublicDir?: string;
}

export type PlazaState = 'new' | 'starting' | 'listening' | 'closing' | 'closed';

export interface Plaza {
  /** Binds the port and serves. Rejects with a clear message if the port is taken. */
  start(): Promise<void>;
  /** Stops accepting, closes every client with 1001, waits up to shutdownTimeout. Idempotent. */
  close(): Promise<void>;
  readonly state: PlazaState;
  /** The bound port (useful with port 0). */
  readonly port: number;
  /** http://host:port of the running server. */
  readonly url: string;
  /** Open WebSocket connections. */
  readonly connectionCount: number;
  readonly options: Readonly<PlazaOptions>;
}

/** How often expired history is dropped and idle rooms forgotten: one timer per server. */
const SWEEP_INTERVAL = 5_000;

/** Fewer bytes than this per write are worth copying together; more go out as writev. */
const MAX_WRITE_BYTES = 256 * 1024;

/** Connections sent their close frame per event-loop turn on shutdown, so a big server stays responsive. */
const CLOSE_BATCH = 500;

/** Resolves once `done()` holds or `ms` have passed; shutdown is rare, so polling is fine. */
async function until(done: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

export function createPlaza(options: Partial<PlazaOptions> = {}, dependencies: PlazaDependencies = {}): Plaza {
  const config = resolveOptions(options);
  const logger = dependencies.logger ?? createLogger({ level: config.logLevel, format: config.logFormat });
  const connections = new Set<Connection>();
  const metrics = new Metrics();
  let journal: Journal | undefined;
  const history = new HistoryStore(
    { size: config.historySize, ttl: config.historyTtl, maxBytes: config.historyMaxBytes, maxRooms: config.maxRooms },
    { append: (record) => journal?.append(record) },
  );
  /** Writes the turn's history records; runs before any frame carrying them leaves. */
  function flushJournal(): void {
    if (journal && journal.pendingRecords > 0) journal.flush();
  }
  const outbox = new Outbox({
    maxBuffered: config.maxBuffered,
    maxWriteBytes: MAX_WRITE_BYTES,
    writeDelay: config.writeDelay,
    compressMinBytes: config.compressMinBytes,
    metrics,
    beforeFlush: flushJournal,
  });
  const hub = new Hub(outbox);
  const node = createLocalNode(hub, metrics, connections);
  const backplane: Backplane = config.redis
    ? new RedisBackplane(
        {
          url: config.redis,
          historySize: config.historySize,
          historyTtl: config.historyTtl,
          presenceTtl: config.presenceTtl,
          maxInflight: config.redisMaxInflight,
          maxInflightBytes: config.redisMaxInflightBytes,
        },
        node,
        history,
        logger,
      )
    : new LocalBackplane(node, history);
  const broker = new Broker(hub, history, backplane, {
    maxRoomsPerConnection: config.maxRoomsPerConnection,
    maxPresence: config.maxPresence,
  }, metrics);
  const statusFeed = createStatusFeed({ broker, metrics, connections, options: config });
  const limits = new ConnectionLimits(config);
  // One timer for all token deadlines; holds only open connections with a token.
  const expiries = new ExpiryQueue<Connection>((connection) =>
    connection.close(CloseCode.TokenExpired, 'token expired: reconnect with a fresh token'),
  );
  // --welcome, framed once for everyone: text for plain clients, a notice envelope for plaza.v1.
  const welcomeFrames = config.welcome
    ? { plain: encodeTextFrame(config.welcome), v1: encodeTextFrame(JSON.stringify({ type: 'notice', text: config.welcome })) }
    : undefined;
  const authFailures = new AuthFailureLimiter();
  const clientAddress = createClientAddress(config.trustProxy, config.trustProxyHeader);
  const readinessLog = new ReadinessLog(logger);
  const context: ConnectionContext<Connection> = {
    broker, outbox, logger, options: config, connections, metrics, limits, statusFeed, expiries, sessionIds: new SessionIds(),
  };
  let sweepTimer: NodeJS.Timeout | undefined;
  let heartbeat: { stop(): void } | undefined;

  let state: PlazaState = 'new';
  let server: Server | undefined;
  let wss: WebSocketServer | undefined;
  let staticFiles: StaticFiles | undefined;
  let closing: Promise<void> | undefined;

  function onConnection(ws: WebSocket, socket: Duplex, admission: Admission): void {
    const connection = new Connection(context, ws, socket, ws.protocol === SUBPROTOCOL ? 'v1' : 'plain', admission, takesSharedDeflate(ws));
    const expiresAt = admission.grant?.expiresAt;
    if (expiresAt !== undefined) expiries.add(connection, expiresAt);
    if (welcomeFrames) connection.deliver(welcomeFrames[connection.protocol]);
  }

  async function start(): Promise<void> {
    if (state !== 'new') throw new Error(`start() called on a Plaza that is ${state}; create a new one instead`);
    state = 'starting';
    try {
      await listen();
    } catch (error) {
      // A failed start leaves nothing running: no timers, no open files, no socket.
      clearInterval(sweepTimer);
      void backplane.close();
      heartbeat?.stop();
      journal?.close();
      server?.close();
      state = 'closed';
      throw error;
    }
    state = 'listening';
    statusFeed.start();
    logger.always('Plaza is serving', { url: plaza.url, static: staticFiles?.size ?? 0 });
  }

  async function listen(): Promise<void> {
    // TLS files first: a wrong one is a bad option, reported before anything else is touched.
    const tls = config.tlsCert ? await loadTlsFiles(config.tlsCert, config.tlsKey) : undefined;
    const roots = [dependencies.builtinPublicDir, config.publicDir].filter((dir): dir is string => Boolean(dir)).map((dir) => resolve(dir));
    if (roots.length > 0) staticFiles = await loadStaticFiles({ root: roots, contentSecurityPolicy: config.contentSecurityPolicy });
    if (config.dataDir) openJournal();
    sweepTimer = setInterval(() => {
      history.sweep(Date.now());
      // Looked at on the sweep too, so a failing disk reaches the log even if nobody probes.
      readiness();
    }, SWEEP_INTERVAL);
    sweepTimer.unref();
    heartbeat = startHeartbeat(connections, config.heartbeatMs);
    await backplane.start();
    wss = createWebSocketServer(config);
    const handler = createRequestHandler({
      staticFiles, options: config, broker, connections, metrics, logger, readiness, statusFeed,
      flushHistory: flushJournal, authFailures, clientAddress,
    });
    const httpServer = createHttpServer(config, tls, handler);
    httpServer.on(
      'upgrade',
      createUpgradeHandler({
        wss, options: config, logger, metrics, limits, authFailures, clientAddress,
        isAccepting: () => state === 'listening', onConnection,
      }),
    );
    server = httpServer;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        reject(
          error.code === 'EADDRINUSE'
            ? new Error(`port ${config.port} is already in use; choose another with --port or PORT (0 picks a free one)`)
            : error,
        );
      };
      httpServer.once('error', onError);
      httpServer.listen(config.port, config.host || undefined, () => {
        httpServer.off('error', onError);
        httpServer.on('error', (error) => logger.error('server error', { error: error.message }));
        resolve();
      });
    });
  }

  function readiness(): Readiness {
    const reasons: NotReady[] = [];
    if (state === 'new' || state === 'starting') reasons.push({ code: 'starting', detail: `server is ${state}` });
    if (state === 'closing' || state === 'closed') reasons.push({ code: 'shutting_down', detail: `server is ${state}` });
    if (journal && !journal.healthy) {
      reasons.push({ code: 'data_dir_unwritable', detail: `history files in ${config.dataDir} cannot be written: ${journal.lastError}` });
    }
    const status = backplane.status;
    if (!status.up) reasons.push({ code: 'backplane_down', detail: status.reason ?? 'the cluster backplane is down' });
    const result = { ready: reasons.length === 0, reasons };
    readinessLog.observe(result);
    return result;
  }

  function openJournal(): void {
    const opened = Journal.open({ dir: resolve(config.dataDir), maxBytes: config.dataMaxBytes, retainMs: config.historyTtl });
    const now = Date.now();
    for (const record of opened.records) history.restore(record, now);
    journal = opened.journal;
    if (opened.skipped > 0) logger.warn('skipped unreadable history records', { skipped: opened.skipped, dir: config.dataDir });
    logger.info('history restored', { records: opened.records.length, rooms: history.roomCount, dir: config.dataDir });
  }

  async function shutdown(): Promise<void> {
    const previous = state;
    state = 'closing';
    clearInterval(sweepTimer);
    heartbeat?.stop();
    expiries.clear();
    statusFeed.stop();
    if (previous === 'new' || !server) {
      journal?.close();
      await backplane.close();
      state = 'closed';
      return;
    }
    const httpServer = server;
    const serverClosed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
    httpServer.closeIdleConnections();
    let batch = 0;
    for (const connection of [...connections]) {
      connection.close(CloseCode.GoingAway, 'server shutting down');
      if (++batch % CLOSE_BATCH === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await until(() => connections.size === 0, config.shutdownTimeout);
    // Peers that never finished the closing handshake are cut off so shutdown stays bounded.
    for (const connection of connections) connection.ws.terminate();
    await until(() => connections.size === 0, 1000);
    httpServer.closeAllConnections();
    await serverClosed;
    journal?.close();
    await backplane.close();
    state = 'closed';
    logger.info('closed');
  }

  const plaza: Plaza = {
    start,
    close: () => (closing ??= shutdown()),
    get state() {
      return state;
    },
    get port() {
      const address = server?.address() as AddressInfo | null | undefined;
      return address?.port ?? 0;
    },
    get url() {
      const host = !config.host || config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
      return `${config.tlsCert ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${plaza.port}`;
    },
    get connectionCount() {
      return connections.size;
    },
    options: config,
  };
  return plaza;
}
