/**
 * What every HTTP handler gets from the server, and the one authorizer they share: the types
 * the router and the API agree on, in a file of their own so neither imports the other.
 */
import type { IncomingMessage } from 'node:http';
import type { AuthFailureLimiter } from '../access/failure-limiter.js';
import type { PlazaOptions } from '../config.js';
import type { WireProtocol } from '../engine/hub.js';
import type { Metrics } from '../engine/metrics.js';
import type { Logger } from '../logger.js';
import type { HookStats } from '../hooks/runner.js';
import type { Broker } from '../rooms/broker.js';
import type { WebhookStats } from '../webhooks/sender.js';
import type { Readiness } from './readiness.js';
import type { StaticFiles } from './static.js';
import type { StatusFeed } from './status-feed.js';

export interface HttpContext {
  /** Built chat page and client; absent when the server runs as a bare hub. */
  readonly staticFiles: StaticFiles | undefined;
  readonly options: Readonly<PlazaOptions>;
  readonly broker: Broker;
  /** Open connections, counted by protocol for /metrics. */
  readonly connections: Iterable<{ readonly protocol: WireProtocol }>;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Listening, not shutting down, persistence and the backplane healthy. */
  readiness(): Readiness;
  /** The one limiter for wrong keys and tokens, shared with the WebSocket upgrade. */
  readonly authFailures: AuthFailureLimiter;
  /** The client's address: the TCP peer, or what a --trust-proxy proxy reports. */
  clientAddress(req: IncomingMessage): string;
  /** The status page's feed; /metrics reads its event-loop delay. */
  readonly statusFeed: StatusFeed;
  /**
   * Writes history appended so far to disk. The API calls it before a reply reveals an offset,
   * the same write-ahead rule as for frames (the outbox's beforeFlush).
   */
  flushHistory(): void;
  /** The application's hook calls, for /metrics; absent when no hook is set. */
  readonly hooks?: HookStats;
  /** Webhook deliveries, for /metrics; absent without --webhook-url. */
  readonly webhooks?: WebhookStats | undefined;
}

/** What asks for the key; the status page alone also takes it from `?key=`. */
export type Surface = 'api' | 'metrics' | 'status' | 'readyz';

export type Authorizer = (req: IncomingMessage, surface: Surface) => void;

