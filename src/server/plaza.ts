/**
 * `createPlaza()`: the library's entry point (src/server/index.ts re-exports it; docs/server.md is
 * its reference), composed of a node (node/node.ts: rooms, history, publishing, no sockets), its
 * sides (websocket/side.ts), the HTTP routes and one lifecycle. Nothing runs until `listen()`
 * binds a port of its own or `attach(server)` joins an application's http(s) server.
 */
import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { resolve } from 'node:path';
import { ErrorCode } from '../shared/protocol.js';
import { createClientAddress } from './access/client-address.js';
import { AuthFailureLimiter } from './access/failure-limiter.js';
import { createHttpServer } from './access/http-server.js';
import { loadTlsFiles } from './access/tls-files.js';
import { createTokenVerifier } from './access/token-verifier.js';
import { ConfigError, resolveOptions } from './config.js';
import { createAuthenticator } from './hooks/authenticate.js';
import { RoomHooks } from './hooks/room-hooks.js';
import { HookRunner, resolveHookBounds } from './hooks/runner.js';
import { splitConfig, type PlazaConfig } from './hooks/split-config.js';
import { ownServerSteps, portOf, urlOf } from './http/listen.js';
import { createReadiness, type NotReady } from './http/readiness.js';
import { createRequestHandler } from './http/router.js';
import { loadStaticFiles, type StaticFiles } from './http/static.js';
import { createStatusFeed } from './http/status-feed.js';
import { createLogger } from './logger.js';
import { Lifecycle } from './node/lifecycle.js';
import { createNode, type PublishResult } from './node/node.js';
import { PublishError } from './rooms/publish-check.js';
import { ConnectionLimits } from './sessions/connection-limits.js';
import { createDoor } from './sessions/door.js';
import { SessionIds } from './sessions/session-ids.js';
import type { Side } from './sessions/side.js';
import { createWebSocketSide } from './websocket/side.js';
import { createStreamSide } from './streams/side.js';
import type { Stream } from './streams/stream.js';
import type { Member } from './engine/hub.js';
import type { Connection } from './websocket/connection.js';
import type { Plaza, PlazaDependencies, PlazaState, RequestHandler } from './plaza/types.js';

export type { PlazaConfig } from './hooks/split-config.js';
export type { PublishResult } from './node/node.js';
export type { Plaza, PlazaDependencies, PlazaState, RequestHandler } from './plaza/types.js';

export function createPlaza(configuration: PlazaConfig = {}, dependencies: PlazaDependencies = {}): Plaza {
  const { options, hooks } = splitConfig(configuration);
  const config = resolveOptions(options);
  const logger = dependencies.logger ?? createLogger({ level: config.logLevel, format: config.logFormat });
  const runner = new HookRunner(resolveHookBounds(hooks), logger);
  const roomHooks = hooks.onJoin || hooks.onLeave || hooks.onPublish ? new RoomHooks(hooks, runner, config.maxPayload) : undefined;
  const node = createNode(config, {
    logger, onSweep: () => readiness(),
    ...(roomHooks && { roomHooks }), ...(dependencies.backplane && { backplane: dependencies.backplane }),
  });
  const statusFeed = createStatusFeed({ broker: node.broker, metrics: node.metrics, connections: node.sessions });
  const authFailures = new AuthFailureLimiter();
  // Nothing is read or fetched here: start() loads the keys with the rest.
  const tokens = createTokenVerifier(config, logger);
  const clientAddress = createClientAddress(config.trustProxy, config.trustProxyHeader);
  const connections = node.sessions.group<Connection>();
  const authenticate = createAuthenticator(hooks, runner);
  const limits = new ConnectionLimits(config);
  const isAccepting = () => state === 'listening';
  const door = createDoor({
    options: config, logger, metrics: node.metrics, limits, authFailures, clientAddress, isAccepting,
    ...(authenticate && { authenticate }), ...(tokens && { tokens }),
  });
  const sessionIds = new SessionIds();
  const connected = (member: Member) => node.app.connected(member);
  const disconnected = (member: Member, code: number) => node.app.disconnected(member, code);
  const websocket = createWebSocketSide({
    options: config, logger, metrics: node.metrics, broker: node.broker, outbox: node.outbox, connections,
    sessionIds, limits, door, clientAddress, isAccepting, connected, disconnected,
  });
  const streams = createStreamSide({
    options: config, logger, metrics: node.metrics, broker: node.broker, outbox: node.outbox, streams: node.sessions.group<Stream>(),
    sessionIds, limits, door, isAccepting, connected, disconnected, mail: node.backplane.mail,
  });
  const sides: Side[] = [websocket, streams];
  const readiness = createReadiness(logger, [
    (): NotReady[] => (state === 'new' || state === 'starting' ? [{ code: 'starting', detail: `server is ${state}` }]
      : state === 'closing' || state === 'closed' ? [{ code: 'shutting_down', detail: `server is ${state}` }] : []),
    () => node.problems(),
    (): NotReady[] => { const keys = tokens?.problem(); return keys ? [{ code: 'auth_keys_unavailable', detail: keys }] : []; },
  ]);
  const lifecycle = new Lifecycle((name, error) => logger.error(`closing ${name} failed`, { error: String(error) }));
  let state: PlazaState = 'new';
  let server: Server | HttpsServer | undefined;
  /** The server is the application's (attach): close() leaves it open. */
  let attached = false;
  let staticFiles: StaticFiles | undefined;
  let router: RequestHandler | undefined;
  let closing: Promise<void> | undefined;
  let stopAnnouncing: (() => void) | undefined;

  /** Registers every resource in start order and starts them; a failure leaves nothing running. */
  async function begin(method: string, target: Server | HttpsServer | undefined): Promise<void> {
    if (state !== 'new') throw new Error(`${method} called on a Plaza that is ${state}; create a new one instead`);
    state = 'starting';
    try {
      // TLS files first: a wrong one is a bad option, reported before anything else is touched.
      const tls = !target && config.tlsCert ? await loadTlsFiles(config.tlsCert, config.tlsKey) : undefined;
      const roots = [dependencies.builtinPublicDir, config.publicDir].filter((dir): dir is string => Boolean(dir)).map((dir) => resolve(dir));
      if (roots.length > 0) staticFiles = await loadStaticFiles({ root: roots, contentSecurityPolicy: config.contentSecurityPolicy });
      router = createRequestHandler({
        staticFiles, options: config, broker: node.broker, connections: node.sessions, metrics: node.metrics, logger, readiness, statusFeed,
        flushHistory: node.flushJournal, authFailures, clientAddress, hooks: runner, webhooks: node.webhooks,
      });
      server = target ?? createHttpServer(config, tls, (req, res) => handleRequest(req, res));
      const own = target ? undefined : ownServerSteps(server as Server, config.port, config.host, logger);
      // In start order; they close in reverse. Before the node: a bad --auth-public-key is a bad option.
      lifecycle.add({ name: 'token keys', start: () => tokens?.start(), close: () => tokens?.close() });
      lifecycle.add({ name: 'node', start: () => node.start(), close: (closing) => node.close(closing) });
      lifecycle.add(own?.drain ?? { name: 'announcement', close: () => stopAnnouncing?.() });
      // Only when someone else also listens are upgrades off Plaza's path left to them.
      const othersListen = () => attached && server!.listenerCount('upgrade') > 1;
      for (const side of sides) lifecycle.add({ name: side.name, start: () => side.attach(server!, othersListen), close: ({ graceMs }) => side.detach(graceMs) });
      if (own) lifecycle.add(own.port);
      lifecycle.add({ name: 'status feed', start: () => statusFeed.start(), close: () => statusFeed.stop() });
      await lifecycle.start();
    } catch (error) {
      state = 'closed';
      throw error;
    }
    // close() during the start: the lifecycle started nothing more and has closed what it had.
    if (state !== 'starting') return;
    state = 'listening';
    if (!target) return logger.always('Plaza is serving', { url: plaza.url, static: staticFiles?.size ?? 0 });
    // The address exists once the application's server listens, which may come after attach()
    // (app.listen() returns at once): until then there is no URL to tell, only a made-up :0.
    const announce = () => logger.always('Plaza is attached', { url: plaza.url, path: config.path });
    if (target.listening) announce();
    else {
      target.once('listening', announce);
      stopAnnouncing = () => target.off('listening', announce);
    }
  }

  async function attach(target: Server | HttpsServer): Promise<void> {
    if (state === 'new') {
      if (!target || typeof target.on !== 'function' || typeof target.listenerCount !== 'function' || typeof target.address !== 'function') {
        state = 'closed';
        throw new TypeError('attach() takes a node:http or node:https server, e.g. the one app.listen() returns');
      }
      if (config.tlsCert) {
        state = 'closed';
        throw new ConfigError('tlsCert', 'an attached Plaza speaks TLS when the server it is attached to does (node:https); leave tlsCert and tlsKey out');
      }
      attached = true;
    }
    await begin('attach()', target);
  }

  async function shutdown(): Promise<void> {
    if (state !== 'closed') state = 'closing';
    await lifecycle.close({ graceMs: config.shutdownTimeout });
    state = 'closed';
    logger.info('closed');
  }

  async function publish(room: string, data: unknown): Promise<PublishResult> {
    if (state !== 'listening') throw new PublishError(ErrorCode.Unavailable, `this Plaza is ${state}: publish() works after listen() or attach() and before close()`);
    return node.publish(room, data);
  }

  const handleRequest: RequestHandler = (req, res, next) => {
    if (router && (state === 'listening' || state === 'closing')) {
      for (const side of sides) if (side.handle?.(req, res)) return;
      return router(req, res, next);
    }
    if (next) return next();
    res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Retry-After': '5' });
    res.end(`Plaza is ${state}: its routes answer once listen() or attach() has resolved\n`);
  };

  const plaza: Plaza = {
    listen: () => begin('listen()', undefined),
    start: () => begin('start()', undefined),
    attach,
    handleRequest,
    publish,
    on: (event, listener) => node.app.events.on(event, listener),
    close: () => (closing ??= shutdown()),
    get state() {
      return state;
    },
    get port() {
      return portOf(server);
    },
    get url() {
      return urlOf(server, attached, config.host, Boolean(config.tlsCert));
    },
    get connectionCount() {
      return node.sessions.size;
    },
    options: config,
  };
  return plaza;
}
