/**
 * `createPlaza()`: composes every part into one server, and is the library's entry point
 * (src/server/index.ts re-exports it; docs/server.md is its reference). Nothing runs until
 * `listen()` binds a port of its own or `attach(server)` joins an application's http(s) server.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { CloseCode, ErrorCode, SUBPROTOCOL } from '../shared/protocol.js';
import { ConfigError, resolveOptions, type PlazaOptions } from './config.js';
import { createAppEvents } from './app-events.js';
import { createAuthenticator } from './hooks/authenticate.js';
import type { Listener, PlazaEventName } from './hooks/events.js';
import { RoomHooks } from './hooks/room-hooks.js';
import { HookRunner, resolveHookBounds } from './hooks/runner.js';
import type { PlazaHooks } from './hooks/types.js';
import { BackplaneError } from './rooms/backplane/types.js';
import type { Publisher } from './rooms/broker.js';
import { publishProblem, PublishError } from './rooms/publish-check.js';
import { WebhookSender } from './webhooks/sender.js';
import { AuthFailureLimiter } from './access/failure-limiter.js';
import { createTokenVerifier } from './access/token-verifier.js';
import { LocalBackplane } from './rooms/backplane/local.js';
import { RedisBackplane } from './rooms/backplane/redis.js';
import type { Backplane } from './rooms/backplane/types.js';
import { withReservedRooms } from './rooms/reserved-rooms.js';
import { Broker } from './rooms/broker.js';
import { createClientAddress } from './access/client-address.js';
import { createLocalNode } from './rooms/local-node.js';
import { Connection } from './connections/connection.js';
import type { Admission, ConnectionContext } from './connections/context.js';
import { HistoryStore } from './rooms/history.js';
import { Journal } from './rooms/journal.js';
import { PublishWindow } from './rooms/publish-window.js';
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

/** `listening`: serving, on a port of its own or attached to an application's server. */
export type PlazaState = 'new' | 'starting' | 'listening' | 'closing' | 'closed';

/** Options and hooks in one object: `createPlaza({ port: 0, onPublish, … })`. */
export interface PlazaConfig extends Partial<PlazaOptions>, PlazaHooks {}

/** What `plaza.publish()` resolves with. */
export interface PublishResult {
  room: string;
  offset: number;
  epoch: string;
  /** Members of this server that were handed the message. */
  delivered: number;
}

/** Connect-style: Express, polka and plain node:http callers alike. */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void;

export interface Plaza {
  /** Binds `port` on `host` with a server of its own and serves. Rejects with a clear message if the port is taken. */
  listen(): Promise<void>;
  /** The same as listen(). */
  start(): Promise<void>;
  /**
   * Joins an existing node:http or node:https server: takes WebSocket upgrades on `path` and
   * leaves every other request and upgrade to the application. Resolves once Plaza serves.
   */
  attach(server: Server | HttpsServer): Promise<void>;
  /**
   * Plaza's HTTP routes (/healthz, /readyz, /metrics, /status, /api/…, static files) as a
   * middleware to mount where you like; anything else goes to `next` (404 without one).
   */
  readonly handleRequest: RequestHandler;
  /** Publishes `data` (any JSON value) to `room` as the server; rejects with a PublishError. */
  publish(room: string, data: unknown): Promise<PublishResult>;
  /** Listens to an event; returns its own unsubscribe. */
  on<E extends PlazaEventName>(event: E, listener: Listener<E>): () => void;
  /**
   * Stops accepting, closes every client with 1001, waits up to shutdownTimeout for them and
   * again for queued webhooks. An attached Plaza leaves the application's server open. Idempotent.
   */
  close(): Promise<void>;
  readonly state: PlazaState;
  /** The bound port (useful with port 0). */
  readonly port: number;
  /** http(s)://host:port of the running server. */
  readonly url: string;
  /** Open WebSocket connections. */
  readonly connectionCount: number;
  readonly options: Readonly<PlazaOptions>;
}

/** The keys of a PlazaConfig that are hooks (or their bounds), not options. */
const HOOK_KEYS = ['authenticate', 'onJoin', 'onLeave', 'onPublish', 'hookTimeout', 'maxHookCalls'] as const;
const HOOK_FUNCTIONS = new Set<string>(['authenticate', 'onJoin', 'onLeave', 'onPublish']);

/** Separates the hooks from the options, and checks that each hook is a function. */
function splitConfig(config: PlazaConfig): { options: Partial<PlazaOptions>; hooks: PlazaHooks } {
  if (config === null || typeof config !== 'object') throw new ConfigError('options', 'expected an object of Plaza options and hooks');
  const options: Record<string, unknown> = { ...config };
  const hooks: Record<string, unknown> = {};
  for (const key of HOOK_KEYS) {
    if (!(key in options)) continue;
    const value = options[key];
    delete options[key];
    if (value === undefined) continue;
    if (HOOK_FUNCTIONS.has(key) && typeof value !== 'function') throw new ConfigError(key, `expected a function, got ${typeof value}`);
    hooks[key] = value;
  }
  return { options: options as Partial<PlazaOptions>, hooks: hooks as PlazaHooks };
}

/** The sender of messages the application publishes with plaza.publish(), as v1 clients see it in `from`. */
const SERVER_PUBLISHER: Publisher = { fromJson: '{"session":"server","name":"server"}' };

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

export function createPlaza(configuration: PlazaConfig = {}, dependencies: PlazaDependencies = {}): Plaza {
  const { options, hooks } = splitConfig(configuration);
  const config = resolveOptions(options);
  const hookBounds = resolveHookBounds(hooks);
  const logger = dependencies.logger ?? createLogger({ level: config.logLevel, format: config.logFormat });
  const runner = new HookRunner(hookBounds, logger);
  const roomHooks = hooks.onJoin || hooks.onLeave || hooks.onPublish ? new RoomHooks(hooks, runner, config.maxPayload) : undefined;
  const authenticate = createAuthenticator(hooks, runner);
  /** This server among a cluster's nodes, in its webhooks. */
  const nodeId = randomBytes(6).toString('base64url');
  const webhooks = config.webhookUrl
    ? new WebhookSender(
        {
          url: config.webhookUrl,
          secret: config.webhookSecret,
          events: config.webhookEvents,
          maxQueueBytes: config.webhookMaxQueue,
          timeout: config.webhookTimeout,
          retries: config.webhookRetries,
          node: nodeId,
        },
        logger,
      )
    : undefined;
  const app = createAppEvents(logger, webhooks);
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
  // One server's publish ids (a cluster's live in Redis with each room).
  const publishIds = new PublishWindow({ size: config.publishIdWindow, ttl: config.publishIdTtl, maxEntries: config.publishIdMaxEntries });
  const hub = new Hub(outbox);
  const node = createLocalNode(hub, metrics, connections);
  const roomBackplane: Backplane = config.redis
    ? new RedisBackplane(
        {
          url: config.redis,
          historySize: config.historySize,
          historyTtl: config.historyTtl,
          presenceTtl: config.presenceTtl,
          maxInflight: config.redisMaxInflight,
          maxInflightBytes: config.redisMaxInflightBytes,
          publishIdWindow: config.publishIdWindow,
          publishIdTtl: config.publishIdTtl,
          localIds: publishIds,
        },
        node,
        history,
        logger,
      )
    : new LocalBackplane(node, history, undefined, publishIds);
  const backplane = withReservedRooms(roomBackplane, node, history);
  const broker = new Broker(hub, history, backplane, {
    maxRoomsPerConnection: config.maxRoomsPerConnection,
    maxPresence: config.maxPresence,
  }, metrics, { hooks: roomHooks, observer: app.observer });
  const statusFeed = createStatusFeed({ broker, metrics, connections });
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
  // Nothing is read or fetched here: start() loads the keys with the rest in prepare().
  const tokens = createTokenVerifier(config, logger);
  const clientAddress = createClientAddress(config.trustProxy, config.trustProxyHeader);
  const readinessLog = new ReadinessLog(logger);
  const context: ConnectionContext<Connection> = {
    broker, outbox, logger, options: config, connections, metrics, limits, expiries, sessionIds: new SessionIds(),
    onClosed: (connection, code) => app.disconnected(connection, code),
  };
  let sweepTimer: NodeJS.Timeout | undefined;
  let heartbeat: { stop(): void } | undefined;

  let state: PlazaState = 'new';
  let server: Server | undefined;
  /** The server is the application's (attach): close() leaves it open. */
  let attached = false;
  let upgradeListener: ((request: IncomingMessage, socket: Duplex, head: Buffer) => void) | undefined;
  /** Attached to a server that was not listening yet: stops waiting to log its address. */
  let stopAnnouncing: (() => void) | undefined;
  let wss: WebSocketServer | undefined;
  let staticFiles: StaticFiles | undefined;
  let router: RequestHandler | undefined;
  let closing: Promise<void> | undefined;

  function onConnection(ws: WebSocket, socket: Duplex, admission: Admission): void {
    const connection = new Connection(context, ws, socket, ws.protocol === SUBPROTOCOL ? 'v1' : 'plain', admission, takesSharedDeflate(ws));
    const expiresAt = admission.grant?.expiresAt;
    if (expiresAt !== undefined) expiries.add(connection, expiresAt);
    if (welcomeFrames) connection.deliver(welcomeFrames[connection.protocol]);
    app.connected(connection);
  }

  /** Runs `open` from `new` to `listening`; a failure leaves nothing running: no timers, no open files, no socket. */
  async function begin(method: string, open: () => Promise<void>): Promise<void> {
    if (state !== 'new') throw new Error(`${method} called on a Plaza that is ${state}; create a new one instead`);
    state = 'starting';
    try {
      await open();
    } catch (error) {
      clearInterval(sweepTimer);
      tokens?.close();
      void backplane.close();
      void webhooks?.close(0);
      heartbeat?.stop();
      journal?.close();
      if (attached && upgradeListener) server?.off('upgrade', upgradeListener);
      else server?.close();
      state = 'closed';
      throw error;
    }
    state = 'listening';
    statusFeed.start();
  }

  async function listen(method = 'listen()'): Promise<void> {
    await begin(method, async () => {
      // TLS files first: a wrong one is a bad option, reported before anything else is touched.
      const tls = config.tlsCert ? await loadTlsFiles(config.tlsCert, config.tlsKey) : undefined;
      const handler = await prepare();
      const httpServer = createHttpServer(config, tls, (req, res) => handler(req, res));
      server = httpServer;
      upgradeListener = upgradeHandler(() => false);
      httpServer.on('upgrade', upgradeListener);
      await bind(httpServer);
    });
    logger.always('Plaza is serving', { url: plaza.url, static: staticFiles?.size ?? 0 });
  }

  async function attach(target: Server | HttpsServer): Promise<void> {
    await begin('attach()', async () => {
      if (!target || typeof target.on !== 'function' || typeof target.listenerCount !== 'function' || typeof target.address !== 'function') {
        throw new TypeError('attach() takes a node:http or node:https server, e.g. the one app.listen() returns');
      }
      if (config.tlsCert) throw new ConfigError('tlsCert', 'an attached Plaza speaks TLS when the server it is attached to does (node:https); leave tlsCert and tlsKey out');
      attached = true;
      server = target;
      await prepare();
      // Only when someone else also listens are upgrades off Plaza's path left to them.
      upgradeListener = upgradeHandler(() => target.listenerCount('upgrade') > 1);
      target.on('upgrade', upgradeListener);
    });
    // The address exists once the application's server listens, which may come after attach()
    // (app.listen() returns at once): until then there is no URL to tell, only a made-up :0.
    const announce = () => logger.always('Plaza is attached', { url: plaza.url, path: config.path });
    if (target.listening) announce();
    else {
      target.once('listening', announce);
      stopAnnouncing = () => target.off('listening', announce);
    }
  }

  /** Everything listen() and attach() share: static files, history, timers, the backplane, the router. */
  async function prepare(): Promise<RequestHandler> {
    const roots = [dependencies.builtinPublicDir, config.publicDir].filter((dir): dir is string => Boolean(dir)).map((dir) => resolve(dir));
    if (roots.length > 0) staticFiles = await loadStaticFiles({ root: roots, contentSecurityPolicy: config.contentSecurityPolicy });
    // Before the journal, timers and backplane: a bad --auth-public-key is a bad option, like a TLS file.
    await tokens?.start();
    if (config.dataDir) openJournal();
    sweepTimer = setInterval(() => {
      history.sweep(Date.now());
      publishIds.sweep();
      // Looked at on the sweep too, so a failing disk reaches the log even if nobody probes.
      readiness();
    }, SWEEP_INTERVAL);
    sweepTimer.unref();
    heartbeat = startHeartbeat(connections, config.heartbeatMs);
    await backplane.start();
    wss = createWebSocketServer(config);
    router = createRequestHandler({
      staticFiles, options: config, broker, connections, metrics, logger, readiness, statusFeed,
      flushHistory: flushJournal, authFailures, clientAddress, hooks: runner, webhooks,
    });
    return router;
  }

  function upgradeHandler(othersListen: () => boolean) {
    return createUpgradeHandler({
      wss: wss!, options: config, logger, metrics, limits, authFailures, clientAddress,
      isAccepting: () => state === 'listening', onConnection, othersListen,
      ...(authenticate && { authenticate }),
      ...(tokens && { tokens }),
    });
  }

  function bind(httpServer: Server): Promise<void> {
    return new Promise<void>((resolve, reject) => {
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
    const keys = tokens?.problem();
    if (keys) reasons.push({ code: 'auth_keys_unavailable', detail: keys });
    const result = { ready: reasons.length === 0, reasons };
    readinessLog.observe(result);
    return result;
  }

  function openJournal(): void {
    const opened = Journal.open({ dir: resolve(config.dataDir), maxBytes: config.dataMaxBytes, retainMs: config.historyTtl });
    const now = Date.now();
    for (const record of opened.records) {
      history.restore(record, now);
      // The window survives a restart with the journal: a retry after it is still answered once.
      if (record.publishId !== undefined) publishIds.remember(record.room, record.publishId, { offset: record.offset, epoch: record.epoch, time: record.time, fingerprint: record.fingerprint ?? '' });
    }
    journal = opened.journal;
    if (opened.skipped > 0) logger.warn('skipped unreadable history records', { skipped: opened.skipped, dir: config.dataDir });
    logger.info('history restored', { records: opened.records.length, rooms: history.roomCount, dir: config.dataDir });
  }

  async function shutdown(): Promise<void> {
    const previous = state;
    state = 'closing';
    clearInterval(sweepTimer);
    heartbeat?.stop();
    tokens?.close();
    expiries.clear();
    statusFeed.stop();
    if (previous === 'new' || !server) {
      journal?.close();
      await webhooks?.close(0);
      await backplane.close();
      state = 'closed';
      return;
    }
    const httpServer = server;
    // The application's server stays open: only Plaza's own clients go. Upgrades on Plaza's path
    // meanwhile get 503 from its listener, removed last.
    const serverClosed = attached ? Promise.resolve() : new Promise<void>((resolve) => httpServer.close(() => resolve()));
    if (!attached) httpServer.closeIdleConnections();
    let batch = 0;
    for (const connection of [...connections]) {
      connection.close(CloseCode.GoingAway, 'server shutting down');
      if (++batch % CLOSE_BATCH === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await until(() => connections.size === 0, config.shutdownTimeout);
    // Peers that never finished the closing handshake are cut off so shutdown stays bounded.
    for (const connection of connections) connection.ws.terminate();
    await until(() => connections.size === 0, 1000);
    if (attached) {
      httpServer.off('upgrade', upgradeListener!);
      stopAnnouncing?.();
    } else httpServer.closeAllConnections();
    await serverClosed;
    journal?.close();
    // The leaves of the clients just closed are news too: a bounded wait for them to go out.
    await webhooks?.close(config.shutdownTimeout);
    await backplane.close();
    state = 'closed';
    logger.info('closed');
  }

  async function publish(room: string, data: unknown): Promise<PublishResult> {
    if (state !== 'listening') throw new PublishError(ErrorCode.Unavailable, `this Plaza is ${state}: publish() works after listen() or attach() and before close()`);
    const problem = publishProblem(room, data, config);
    if (problem) throw problem;
    try {
      const published = await broker.publish(room, { kind: 'json', data }, SERVER_PUBLISHER);
      // Written ahead: the offset this reveals is on disk first (--data-dir), as for every reply.
      flushJournal();
      return { room, offset: published.offset, epoch: published.epoch, delivered: published.delivered };
    } catch (error) {
      if (error instanceof BackplaneError) throw new PublishError(error.code, error.message);
      throw error;
    }
  }

  const handleRequest: RequestHandler = (req, res, next) => {
    if (router && (state === 'listening' || state === 'closing')) return router(req, res, next);
    if (next) return next();
    res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Retry-After': '5' });
    res.end(`Plaza is ${state}: its routes answer once listen() or attach() has resolved\n`);
  };

  const plaza: Plaza = {
    listen: () => listen(),
    start: () => listen('start()'),
    attach,
    handleRequest,
    publish,
    on: (event, listener) => app.events.on(event, listener),
    close: () => (closing ??= shutdown()),
    get state() {
      return state;
    },
    get port() {
      const address = server?.address() as AddressInfo | null | undefined;
      return address?.port ?? 0;
    },
    get url() {
      const bound = attached ? ((server?.address() as AddressInfo | null | undefined)?.address ?? '') : config.host;
      const host = !bound || bound === '0.0.0.0' || bound === '::' ? 'localhost' : bound;
      const tls = attached ? server !== undefined && 'setSecureContext' in server : Boolean(config.tlsCert);
      return `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${plaza.port}`;
    },
    get connectionCount() {
      return connections.size;
    },
    options: config,
  };
  return plaza;
}
