/**
 * Plain counters the hot paths bump (a property increment, nothing more); gauges are read
 * when /metrics is scraped, so scraping costs the server nothing between scrapes.
 */
import type { WireProtocol } from './hub.js';

export class Metrics {
  /** Connections accepted (WebSocket upgrades, SSE streams), by wire protocol. */
  readonly connects: Record<WireProtocol, number> = { plain: 0, v1: 0, sse: 0 };
  /** Closed connections by close code. */
  readonly disconnects = new Map<number, number>();
  /** Upgrades refused before a WebSocket existed, by HTTP status. */
  readonly upgradeRejections = new Map<number, number>();
  /** SSE requests refused (streams not opened, POSTs not taken), by HTTP status. */
  readonly streamRejections = new Map<number, number>();
  /** POSTs for SSE streams carried to the node that holds them. */
  relayedPosts = 0;
  /** Of those, the ones that got no answer in time (--sse-relay-timeout) or found no room (--sse-max-relays). */
  relayFailures = 0;
  messagesIn = 0;
  bytesIn = 0;
  /** Room messages published (each counted once, however many receive it). */
  published = 0;
  /** Ephemeral publishes (issue #22, item 8): handed to the members of the moment, never stored. */
  ephemeral = 0;
  /** Frames queued to one client: a publish to N members is N deliveries. */
  deliveries = 0;
  /** Bytes handed to sockets. */
  bytesOut = 0;
  /** Socket writes (one per socket per event-loop turn with coalescing). */
  writes = 0;
  slowConsumerDrops = 0;
  /** Plain clients' messages dropped because the backplane refused them (plain clients cannot be told). */
  plainDropped = 0;
  rateLimited = 0;
  authFailures = 0;
  /** Error envelopes sent, by code. */
  readonly protocolErrors = new Map<string, number>();
  /** HTTP API requests answered, by status. */
  readonly apiRequests = new Map<number, number>();

  countIn<K>(map: Map<K, number>, key: K): void {
    map.set(key, (map.get(key) ?? 0) + 1);
  }
}
