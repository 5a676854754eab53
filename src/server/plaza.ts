/**
 * `createPlaza()`: the library's entry point (src/server/index.ts re-exports it; docs/server.md is
 * its reference), composed of a node (node/node.ts: rooms, history, publishing, no sockets), its
 * sides (the transports: websocket/side.ts, all made from the same SideParts), the HTTP routes and
 * one lifecycle. Nothing runs until `listen()` binds a port of its own or `attach(server)` joins an
 * application's http(s) server.
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
import { createAuthenticator } from './hooks/authenticate.js';
import { RoomHooks } from './hooks/room-hooks.js';
import { HookRunner } from './hooks/runner.js';
import { resolveConfig, type PlazaConfig } from './hooks/split-config.js';
import { checkAttachTarget, ownServerSteps, portOf, urlOf, whenListening } from './http/listen.js';
import { createReadiness, keyProblems, stateProblems } from './http/readiness.js';
import { sendNotServing } from './http/respond.js';
import { createRequestHandler } from './http/router.js';
import { loadStaticFiles, type StaticFiles } from './http/static.js';
import { createStatusFeed } from './http/status-feed.js';
import { createLogger } from './logger.js';
import { Lifecycle } from './node/lifecycle.js';
import { createNode, type ServerPublishOptions } from './node/node.js';
import { PublishError } from './rooms/publish-check.js';
import { ConnectionLimits } from './sessions/connection-limits.js';
import { SessionIds } from './sessions/session-ids.js';
import type { Side } from './sessions/side.js';
import type { SideParts } from './sessions/side-parts.js';
import { createWebSocketSide } from './websocket/side.js';
import { createStreamSide } from './streams/side.js';
import { addressReaders, CLIENT_EVENTS } from './plaza/address-readers.js';
import type { Plaza, PlazaDependencies, PlazaState, RequestHandler } from './plaza/types.js';

export type { PlazaConfig } from './hooks/split-config.js';
export type { EphemeralResult, PublishResult, ServerPublishOptions } from './node/node.js';
export type { Plaza, PlazaDependencies, PlazaState, RequestHandler } from './plaza/types.js';

export function createPlaza(configuration: PlazaConfig = {}, dependencies: PlazaDependencies = {}): Plaza {
  const { options: config, hooks, hookBounds } = resolveConfig(configuration);
  const logger = dependencies.logger ?? createLogger({ level: config.logLevel, format: config.logFormat });
  const runner = new HookRunner(hookBounds, logger);
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
  const readsAddressLater = addressReaders(logger, roomHooks !== undefined, node.app.events);
  const authenticate = createAuthenticator(hooks, runner);
  const sideParts: SideParts = {
    options: config, logger, metrics: node.metrics, broker: node.broker, outbox: node.outbox, group: () => node.sessions.group(),
    sessionIds: new SessionIds(), limits: new ConnectionLimits(config), authFailures, clientAddress, readsAddressLater, isAccepting: () => state === 'listening',
    connected: (member) => node.app.connected(member), disconnected: (member, code) => node.app.disconnected(member, code),
    ...(authenticate && { authenticate }), ...(tokens && { tokens }),
  };
  const websocket = createWebSocketSide(sideParts);
  const streams = createStreamSide(sideParts, node.backplane.mail);
  /** The transports, mounted in this order, each made from sideParts. */
  const sides: Side[] = [websocket, streams];
  const readiness = createReadiness(logger, [() => stateProblems(state), () => node.problems(), () => keyProblems(tokens)]);
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
  async function begin(method: 'listen()' | 'start()' | 'attach()', target?: Server | HttpsServer): Promise<void> {
    if (state !== 'new') throw new Error(`${method} called on a Plaza that is ${state}; create a new one instead`);
    state = 'starting';
    try {
      if (method === 'attach()') { checkAttachTarget(target!, config.tlsCert); attached = true; }
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
    stopAnnouncing = whenListening(target, () => logger.always('Plaza is attached', { url: plaza.url, path: config.path }));
  }

  async function shutdown(): Promise<void> {
    if (state !== 'closed') state = 'closing';
    await lifecycle.close({ graceMs: config.shutdownTimeout });
    state = 'closed';
    logger.info('closed');
  }

  const handleRequest: RequestHandler = (req, res, next) => {
    if (!router || (state !== 'listening' && state !== 'closing')) return next ? next() : sendNotServing(res, state);
    for (const side of sides) if (side.handle?.(req, res)) return;
    router(req, res, next);
  };

  const plaza: Plaza = {
    listen: () => begin('listen()'),
    start: () => begin('start()'),
    attach: (target) => begin('attach()', target),
    handleRequest,
    publish: (async (room: string, data: unknown, options?: ServerPublishOptions) => {
      if (state !== 'listening') throw new PublishError(ErrorCode.Unavailable, `this Plaza is ${state}: publish() works after listen() or attach() and before close()`);
      return node.publish(room, data, options);
    }) as Plaza['publish'],
    on: (event, listener) => {
      // A listener added now hears of clients already connected: their addresses are read while
      // their sockets can still tell them (late-address.ts).
      if (CLIENT_EVENTS.includes(event)) for (const side of sides) side.keepAddresses?.();
      return node.app.events.on(event, listener);
    },
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
      return websocket.size + streams.size;
    },
    options: config,
  };
  return plaza;
}
