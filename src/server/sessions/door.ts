/**
 * The checks at the door every transport shares (a WebSocket upgrade, an SSE stream, a POST to
 * one): the page's origin, the connection caps, the API key, the application's authenticate hook
 * and the token, with every wrong secret counted under the one failure limiter; and, when none of
 * them needs the client's address, letting it in without reading it (late-address.ts). The door
 * decides; the transport answers in its own way (an HTTP status, or a WebSocket closed with 4003
 * where a browser could not read the status) and keeps its own checks before it (a WebSocket's
 * path and header count) and after it (a plain WebSocket's default room).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AuthFailureLimiter } from '../access/failure-limiter.js';
import { sameSecret } from '../access/secret.js';
import { TokenCheckUnavailableError, type TokenVerifier } from '../access/token-verifier.js';
import { TokenError, type Grant } from '../access/tokens.js';
import type { PlazaOptions } from '../config.js';
import type { Authentication, Authenticator } from '../hooks/authenticate.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../engine/metrics.js';
import { STATUS_ROOM } from '../../shared/room-name.js';
import type { Admission } from './context.js';
import type { ConnectionLimits } from './connection-limits.js';
import { LateAddress } from './late-address.js';

export interface DoorContext {
  readonly options: Readonly<PlazaOptions>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly limits: ConnectionLimits;
  /** The one limiter for wrong keys and tokens, shared with the HTTP routes. */
  readonly authFailures: AuthFailureLimiter;
  /** The client's address: the TCP peer, or what a --trust-proxy proxy reports. */
  clientAddress(request: IncomingMessage): string;
  /** False while the server starts or shuts down: newcomers get 503. */
  isAccepting(): boolean;
  /**
   * True while something may read a client's address after its connection closed (info log
   * lines, the application's hooks or client events): the door then reads it at once.
   */
  readsAddressLater(): boolean;
  /** The application's authenticate hook, when it set one. */
  readonly authenticate?: Authenticator;
  /** The token check, when tokens are required (--auth-secret, --auth-jwks-url, --auth-public-key). */
  readonly tokens?: TokenVerifier;
}

/** What the door decided. */
export type Verdict =
  | { admit: Admission }
  | {
      status: number;
      message: string;
      headers?: Record<string, string>;
      /**
       * A wrong or missing key or token, or the authenticate hook's 401/403: already counted and
       * logged, from `ip`. A WebSocket that offered plaza.v1 is accepted and closed with 4003
       * instead, counting against that address's caps meanwhile.
       */
      credential?: { ip: string };
    };

/** What the transport read off the request before the door. */
export interface Knock {
  /** The token the request carries (`?token=`, or a `Authorization: Bearer` header), or null. */
  token: string | null;
  /** The API key (`?key=`), or null. */
  key: string | null;
  /** Said when a token is required and missing: how this transport passes one. */
  missingToken: string;
  /** Leave the connection caps alone (a POST to an open stream is no new connection). */
  uncapped?: boolean;
  /**
   * The client's socket, when the side may let it in without reading its address while nothing
   * needs it (late-address.ts): only a side that pins its sessions' addresses once something
   * starts to read them later (Side.keepAddresses) gives one.
   */
  peer?: Duplex;
}

/** How a door names who knocks, in its log lines: `an upgrade`, `a client`. */
export interface DoorNaming {
  readonly client: string;
}

/** What the API key allows where tokens are required: watching the status feed only (both sides' doors). */
export const OPERATOR_GRANT: Grant = {
  userId: 'operator',
  name: 'operator',
  mayJoin: (room) => room === STATUS_ROOM,
  mayPublish: () => false,
};

const SHUTTING_DOWN: Verdict = { status: 503, message: 'server is shutting down; retry shortly', headers: { 'Retry-After': '5' } };
const FULL: Verdict = { status: 503, message: 'the server is at its connection limit; retry later', headers: { 'Retry-After': '10' } };
const TOO_MANY_FROM_ADDRESS: Verdict = { status: 429, message: 'too many connections from your address; close some first', headers: { 'Retry-After': '10' } };

export type Door = (request: IncomingMessage, knock: Knock) => Verdict | Promise<Verdict>;

/** Returns the door: checks in order, answering as soon as one fails. */
export function createDoor(context: DoorContext, naming: DoorNaming = { client: 'a client' }): Door {
  const { options, metrics } = context;
  const allowedOrigins = new Set(options.allowedOrigins);
  /** A check reads the address (the per-address cap), only the request has it (--trust-proxy), or something reads it after the close. */
  const needsAddress = (): boolean => context.limits.countsAddresses || options.trustProxy.length > 0 || context.readsAddressLater();

  /** A wrong or missing secret counts against the address (the one limiter every secret check shares). */
  function credential(ip: string, message: string): Verdict {
    context.authFailures.fail(ip);
    metrics.authFailures++;
    context.logger.warn(`refused ${naming.client} without a valid key or token`, { remote: ip });
    return { status: 401, message, credential: { ip } };
  }

  function afterAuthenticate(ip: string, isOperator: boolean, knock: Knock, result: Authentication): Verdict | Promise<Verdict> {
    if (!context.isAccepting()) return SHUTTING_DOWN;
    switch (result.kind) {
      case 'identity':
        return admit(ip, isOperator, result.grant, result.data);
      case 'pass':
        return checkToken(ip, isOperator, knock);
      case 'failed':
        return { status: 503, message: `${result.code}: ${result.message}`, headers: { 'Retry-After': '5' } };
      case 'refused':
        context.logger.info(`the authenticate hook refused ${naming.client}`, { remote: ip, status: result.status });
        if (result.status !== 401 && result.status !== 403) return { status: result.status, message: result.reason };
        metrics.authFailures++;
        return { status: result.status, message: result.reason, credential: { ip } };
    }
  }

  /**
   * The token rule: a valid token is required (the status page may come with the API key
   * instead). An HS256 token is checked at once; one checked with a public key answers later.
   */
  function checkToken(ip: string, isOperator: boolean, knock: Knock): Verdict | Promise<Verdict> {
    const tokens = context.tokens;
    if (!tokens) return admit(ip, isOperator, undefined, undefined);
    const token = knock.token;
    // The status page carries the API key, not a token: it may watch, never talk.
    if (!token && isOperator) return admit(ip, isOperator, OPERATOR_GRANT, undefined);
    if (!token) return credential(ip, knock.missingToken);
    let verified: Grant | Promise<Grant>;
    try {
      verified = tokens.verify(token);
    } catch (error) {
      return refuseToken(ip, error);
    }
    if (!(verified instanceof Promise)) return admit(ip, isOperator, verified, undefined);
    return verified.then(
      (grant) => (context.isAccepting() ? admit(ip, isOperator, grant, undefined) : SHUTTING_DOWN),
      (error: unknown) => {
        try {
          return refuseToken(ip, error);
        } catch (bug) {
          context.logger.error('token check failed', { error: bug instanceof Error ? bug.stack : String(bug) });
          return { status: 500, message: 'the token could not be checked' };
        }
      },
    );
  }

  /** A refused token counts against the address; no keys yet is the provider's fault, not the client's. */
  function refuseToken(ip: string, error: unknown): Verdict {
    if (error instanceof TokenCheckUnavailableError) return { status: 503, message: error.message, headers: { 'Retry-After': '5' } };
    if (!(error instanceof TokenError)) throw error;
    return credential(ip, error.message);
  }

  function admit(ip: string, isOperator: boolean, grant: Grant | undefined, data: unknown): Verdict {
    return { admit: data === undefined ? { ip, grant, isOperator } : { ip, grant, isOperator, data } };
  }

  return (request, knock) => {
    if (!context.isAccepting()) return SHUTTING_DOWN;
    // Browsers always send Origin; other clients may omit it and could forge it anyway, so the
    // allow-list is about stopping other web pages from using a visitor's browser.
    const origin = request.headers.origin;
    if (allowedOrigins.size > 0 && origin !== undefined && !allowedOrigins.has(origin)) {
      return { status: 403, message: 'this origin may not connect; ask the operator to add it to --allowed-origins' };
    }
    const key = options.apiKey === '' ? null : knock.key;
    if (knock.peer && key === null && !context.tokens && !context.authenticate && !needsAddress()) {
      // Nothing to check that needs the address, and nobody to read it after the close: it is
      // read from the socket if something asks while the connection lives.
      if (!knock.uncapped && context.limits.refusal(undefined) === 503) return FULL;
      return { admit: new LateAddress(knock.peer) };
    }
    const ip = context.clientAddress(request);
    const limited = knock.uncapped ? 0 : context.limits.refusal(ip);
    if (limited === 503) return FULL;
    if (limited === 429) return TOO_MANY_FROM_ADDRESS;
    // Every secret is checked under the same limiter as the HTTP API's key, and an address past
    // it is refused before any comparison: no guess is ever answered for free.
    if (key !== null || context.tokens) {
      const wait = context.authFailures.retryAfter(ip);
      if (wait > 0) return { status: 429, message: `too many attempts with a wrong key or token; retry in ${wait} s`, headers: { 'Retry-After': String(wait) } };
    }
    if (key !== null && !sameSecret(key, options.apiKey)) return credential(ip, 'wrong API key in ?key=; leave it out or use the right one');
    const isOperator = key !== null;
    const authenticate = context.authenticate;
    if (!authenticate) return checkToken(ip, isOperator, knock);
    return authenticate(request).then((result) => afterAuthenticate(ip, isOperator, knock, result));
  };
}
