/**
 * What every side is made from (plaza.ts builds one SideParts and hands it to each side's
 * factory): the node's parts and the checks at the door, shared by all sides. Kept apart from
 * the public `Side` type (side.ts), so the package's types do not reach into these internals.
 */
import type { IncomingMessage } from 'node:http';
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
import type { Side } from './side.js';

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
  /** True while something may read a client's address after its session closed (the door then reads it at once: door.ts). */
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
