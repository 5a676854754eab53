/**
 * The status feed's snapshot: what the server publishes to `plaza:status` once a second and the
 * status page draws. Shared so the page and the server cannot disagree on its shape.
 */

/** One snapshot, as the page receives it in `data`. Rates are per second over the last interval. */
export interface StatusSnapshot {
  /** Shape version, bumped on an incompatible change. */
  v: 1;
  /** Server time, ms since the Unix epoch. */
  time: number;
  uptime: number;
  connections: { total: number; plain: number; v1: number; sse: number };
  /** Rooms with members; `plaza:status` itself is left out. */
  rooms: number;
  /** Per second; the snapshots themselves are not counted. */
  rates: { published: number; deliveries: number; messagesIn: number; bytesIn: number };
  /** Rooms with the most members, most first; `plaza:status` itself is left out. */
  busiest: Array<{ room: string; members: number }>;
  /** Event-loop delay over the last interval, in ms. */
  eventLoop: { p50: number; p99: number; max: number };
  memory: { rss: number; heapUsed: number };
  history: { rooms: number; entries: number; bytes: number };
  totals: { published: number; deliveries: number; slowConsumerDrops: number };
}
