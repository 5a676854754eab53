/**
 * A side: one transport by which clients reach a node (WebSocket today; an SSE stream with
 * POSTed requests is the next). plaza.ts makes every side from the same SideParts and mounts it
 * on the HTTP server beside the node's routes; the node never knows which sides there are. A
 * side turns its frames into the requests of this folder (requests.ts, commands.ts) and adds its
 * sessions to the node's registry.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AuthFailureLimiter } from '../access/failure-limiter.js';
import type { TokenVerifier } from '../access/token-verifier.js';
import type { PlazaOptions } from '../config.js';
import type { Member, WireProtocol } from '../engine/hub.js';
import type { Metrics } from '../engine/metrics.js';
import type { Outbox } from '../engine/outbox.js';
import type { Authenticator } from '../hooks/authenticate.js';
import type { Logger } from '../logger.js';
import type { Broker } from '../rooms/broker.js';
import type { Disconnectable } from '../rooms/local-node.js';
import type { ConnectionLimits } from './connection-limits.js';
import type { SessionIds } from './session-ids.js';

export interface Side {
  /** For logs: `websocket`, `sse`. */
  readonly name: string;
  /** Its open sessions. */
  readonly size: number;
  /**
   * Starts taking clients on `server`. `othersListen` is true while something besides Plaza
   * also listens there (Plaza attached to an application's server): what is not this side's is
   * then left to it instead of being answered.
   */
  attach(server: Server | HttpsServer, othersListen: () => boolean): void;
  /**
   * Says goodbye to its clients (a WebSocket gets 1001), waits up to `graceMs` for them to go,
   * cuts off the rest, and stops listening on the server. Idempotent.
   */
  detach(graceMs: number): Promise<void>;
  /** Reads every open session's address now, while its socket can still tell it (late-address.ts). */
  keepAddresses?(): void;
  /** Takes a plain HTTP request that is this side's (an SSE stream, a POSTed request); false if not. */
  handle?(request: IncomingMessage, response: ServerResponse): boolean;
}

/** What the node needs of any session a side adds to its registry. */
export interface SideSession extends Disconnectable {
  readonly protocol: WireProtocol;
}

/** What every side is made from: the node's parts and the checks at the door, shared by all sides. */
export interface SideParts {
  readonly options: Readonly<PlazaOptions>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly broker: Broker;
  readonly outbox: Outbox;
  /** A new set for this side's live sessions, read with every other side's by the node. */
  group<S extends SideSession>(): Set<S>;
  /** Shared by every side: a client's session id is unique whatever way it came. */
  readonly sessionIds: SessionIds;
  /** The caps per address and in total, shared by every side. */
  readonly limits: ConnectionLimits;
  /** The one limiter for wrong keys and tokens, shared with the HTTP routes. */
  readonly authFailures: AuthFailureLimiter;
  clientAddress(request: IncomingMessage): string;
  /** True while something may read a client's address after its session closed (websocket/upgrade.ts). */
  readsAddressLater(): boolean;
  /** False while the server starts or shuts down: new clients get 503. */
  isAccepting(): boolean;
  /** Told when a session opens and closes (the application's connect and disconnect events). */
  connected(member: Member): void;
  disconnected(member: Member, code: number): void;
  readonly authenticate?: Authenticator;
  readonly tokens?: TokenVerifier;
}

/** How plaza.ts makes a side: a new transport is one more of these in its list. */
export type SideFactory = (parts: SideParts) => Side;
