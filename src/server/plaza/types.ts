/**
 * What `createPlaza()` returns and takes besides its options: the library's public types, apart
 * from the composition in plaza.ts.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { PlazaOptions } from '../config.js';
import type { Listener, PlazaEventName } from '../hooks/events.js';
import type { Logger } from '../logger.js';
import type { BackplaneFactory } from '../node/backplanes.js';
import type { EphemeralResult, PublishResult, ServerPublishOptions } from '../node/node.js';

export interface PlazaDependencies {
  /** Where log lines go; by default a logger on stdout built from the options. */
  logger?: Logger;
  /**
   * The built chat page and client (dist/public beside dist/server.js), served under
   * `publicDir`: a file there of the same path wins. The CLI passes it; by default only
   * `publicDir` is served.
   */
  builtinPublicDir?: string;
  /** Builds the rooms' backplane; by default Redis when `redis` is set, else local (node/backplanes.ts). */
  backplane?: BackplaneFactory;
}

/** `listening`: serving, on a port of its own or attached to an application's server. */
export type PlazaState = 'new' | 'starting' | 'listening' | 'closing' | 'closed';

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
  /**
   * Publishes `data` (any JSON value) to `room` as the server; rejects with a PublishError.
   * With `{ ephemeral: true }` it goes to the members there now only: no offset, no history.
   */
  publish(room: string, data: unknown, options: ServerPublishOptions & { ephemeral: true }): Promise<EphemeralResult>;
  publish(room: string, data: unknown, options?: ServerPublishOptions & { ephemeral?: false }): Promise<PublishResult>;
  publish(room: string, data: unknown, options?: ServerPublishOptions): Promise<PublishResult | EphemeralResult>;
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
  /** Open client connections: WebSockets and SSE streams. */
  readonly connectionCount: number;
  readonly options: Readonly<PlazaOptions>;
}
