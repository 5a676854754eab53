/**
 * Binding Plaza's own HTTP server, and the URL a running Plaza tells: the two things listen()
 * does with a port that attach() leaves to the application.
 */
import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../config.js';
import type { Logger } from '../logger.js';

/** Listens on `port` and `host`; rejects with a message that says what to change when the port is taken. */
export function bindServer(server: Server, port: number, host: string, logger: Logger): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(`port ${port} is already in use; choose another with --port or PORT (0 picks a free one)`)
          : error,
      );
    };
    server.once('error', onError);
    server.listen(port, host || undefined, () => {
      server.off('error', onError);
      server.on('error', (error) => logger.error('server error', { error: error.message }));
      resolve();
    });
  });
}

/** The bound port, 0 before there is one. */
export function portOf(server: Server | HttpsServer | undefined): number {
  return (server?.address() as AddressInfo | null | undefined)?.port ?? 0;
}

/**
 * http(s)://host:port. Attached, the host and scheme are those of the application's server;
 * otherwise the configured host (any-address shown as localhost) and TLS when Plaza has a cert.
 */
export function urlOf(server: Server | HttpsServer | undefined, attached: boolean, host: string, tlsCert: boolean): string {
  const bound = attached ? ((server?.address() as AddressInfo | null | undefined)?.address ?? '') : host;
  const shown = !bound || bound === '0.0.0.0' || bound === '::' ? 'localhost' : bound;
  const tls = attached ? server !== undefined && 'setSecureContext' in server : tlsCert;
  return `${tls ? 'https' : 'http'}://${shown.includes(':') ? `[${shown}]` : shown}:${portOf(server)}`;
}

/** A step of a server's lifecycle (node/lifecycle.ts registers it). */
interface Step {
  readonly name: string;
  start?(): Promise<void>;
  close(): void | Promise<void>;
}

/**
 * Plaza's own server in two steps around the sides: `port` binds, and at shutdown stops taking
 * connections (idle ones go at once) before the sides say goodbye to their clients; `drain`,
 * registered before the sides so it closes after them, cuts what is left and waits for the close.
 */
export function ownServerSteps(server: Server, port: number, host: string, logger: Logger): { drain: Step; port: Step } {
  let closed: Promise<void> | undefined;
  const stopAccepting = () => (closed ??= new Promise<void>((done) => server.close(() => done())));
  return {
    port: {
      name: 'port',
      start: () => bindServer(server, port, host, logger),
      close() {
        void stopAccepting();
        server.closeIdleConnections();
      },
    },
    drain: {
      name: 'http server',
      async close() {
        server.closeAllConnections();
        await stopAccepting();
      },
    },
  };
}

/** Checks what attach() was given before anything starts: a node:http(s) server, and no TLS files of Plaza's own. */
export function checkAttachTarget(target: Server | HttpsServer, tlsCert: string): void {
  if (!target || typeof target.on !== 'function' || typeof target.listenerCount !== 'function' || typeof target.address !== 'function') {
    throw new TypeError('attach() takes a node:http or node:https server, e.g. the one app.listen() returns');
  }
  if (tlsCert) {
    throw new ConfigError('tlsCert', 'an attached Plaza speaks TLS when the server it is attached to does (node:https); leave tlsCert and tlsKey out');
  }
}

/**
 * Calls `announce` once `server` listens: the address exists only then, which may come after
 * attach() (app.listen() returns at once), and until then there is no URL to tell, only a made-up
 * :0. Returns what stops waiting for it.
 */
export function whenListening(server: Server | HttpsServer, announce: () => void): () => void {
  if (server.listening) {
    announce();
    return () => {};
  }
  server.once('listening', announce);
  return () => server.off('listening', announce);
}
