/**
 * What every connection shares (the server's broker, outbox, options, log and limits) and what
 * the checks at the door learned about one: the types the connection, its request handlers and
 * the upgrade agree on, in a file of their own so none of them imports another for them.
 */
import type { Grant } from '../access/tokens.js';
import type { PlazaOptions } from '../config.js';
import type { Metrics } from '../engine/metrics.js';
import type { Outbox } from '../engine/outbox.js';
import type { Logger } from '../logger.js';
import type { Broker } from '../rooms/broker.js';
import type { ExpiryQueue } from './expiry-queue.js';
import type { ConnectionLimits } from './connection-limits.js';
import type { SessionIds } from './session-ids.js';

/** What the checks at the door learned about a new connection. */
export interface Admission {
  ip: string;
  /** Present when auth is on: who the token names and what it allows. */
  grant: Grant | undefined;
  /** The upgrade URL carried the API key (`?key=`): may watch the status feed. */
  isOperator: boolean;
  /** What the application's authenticate hook attached (`client.data` in hooks and events). */
  data?: unknown;
}

/** What every connection shares. `C` is the connection type (the set holds the live ones). */
export interface ConnectionContext<C = unknown> {
  readonly broker: Broker;
  readonly outbox: Outbox;
  readonly logger: Logger;
  readonly options: PlazaOptions;
  readonly metrics: Metrics;
  readonly limits: ConnectionLimits;
  /** Where new connections get their session ids. */
  readonly sessionIds: SessionIds;
  /** The server's live connections; a connection removes itself when it closes. */
  readonly connections: Set<C>;
  /** Connections whose token expires (closed with 4004 then); a connection removes itself when it closes. */
  readonly expiries?: ExpiryQueue<C>;
  /** Told once when a connection has closed (for the application's `disconnect` event). */
  readonly onClosed?: (connection: C, code: number) => void;
}
