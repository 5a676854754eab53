/**
 * The live status page's data: once a second, a snapshot of the server is published to the
 * reserved room `plaza:status` through the broker, like any room message, so the page needs
 * nothing but the hub's own WebSocket. Nothing is computed while nobody is in that room.
 *
 * It also measures event-loop delay for /metrics. Node cannot merge an event-loop histogram into
 * another, so there are two monitors: one that /metrics reads and resets at each scrape (as
 * prom-client does), and one for the page's per-second numbers, enabled only while it is watched.
 * A reset also makes Node forget when it last sampled, so a stall that begins within one sampling
 * interval (10 ms) after a reset goes unseen: a small blind spot, accepted.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Broker, Publisher } from '../rooms/broker.js';
import type { WireProtocol } from '../engine/hub.js';
import type { Metrics } from '../engine/metrics.js';
import type { EventLoopDelay } from './prometheus.js';
import type { StatusSnapshot } from '../../shared/status-snapshot.js';
import { STATUS_ROOM } from '../../shared/room-name.js';

export type { StatusSnapshot };
/** The reserved room the snapshots go to (who may join it: shared/room-name.ts). */
export { STATUS_ROOM };

/** The sender of every snapshot, so the page can ignore anything else said in the room. */
const STATUS_SENDER = { session: 'plaza', name: 'status' } as const;

export interface StatusFeedOptions {
  readonly broker: Broker;
  readonly metrics: Metrics;
  readonly connections: Iterable<{ readonly protocol: WireProtocol }>;
  /** ms between snapshots. @default 1000 */
  readonly interval?: number;
  /** Busiest rooms listed in a snapshot. @default 5 */
  readonly busiestRooms?: number;
}


export interface StatusFeed {
  /** Starts the one-second timer and the event-loop monitor. */
  start(): void;
  /** Undoes start(). Idempotent. */
  stop(): void;
  /** Event-loop delay since the previous call, in seconds (zeros before start()). */
  takeEventLoopDelay(): EventLoopDelay;
}

const DEFAULTS = { interval: 1000, busiestRooms: 5 };

/** How often the monitors sample, in ms. */
const RESOLUTION = 10;

/**
 * Nanoseconds to `unit` (1e9 for seconds, 1e6 for ms); an empty histogram reads as 0. Node
 * records the whole time between samples, so an idle loop reads as RESOLUTION ms: that part is
 * taken off, leaving how late each sample was.
 */
function delayOf(histogram: IntervalHistogram, unit: number): EventLoopDelay {
  if (histogram.count === 0) return { p50: 0, p99: 0, max: 0 };
  const late = (ns: number) => Math.max(0, ns - RESOLUTION * 1e6) / unit;
  return { p50: late(histogram.percentile(50)), p99: late(histogram.percentile(99)), max: late(histogram.max) };
}

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

export function createStatusFeed(feed: StatusFeedOptions): StatusFeed {
  const interval = feed.interval ?? DEFAULTS.interval;
  const busiestCount = feed.busiestRooms ?? DEFAULTS.busiestRooms;
  if (!Number.isSafeInteger(interval) || interval < 10) throw new TypeError(`interval: expected ms ≥ 10, got ${interval}`);
  if (!Number.isSafeInteger(busiestCount) || busiestCount < 0) throw new TypeError(`busiestRooms: expected an integer ≥ 0, got ${busiestCount}`);
  const { broker, metrics } = feed;
  const publisher: Publisher = { fromJson: JSON.stringify(STATUS_SENDER) };
  const startedAt = Date.now();

  let timer: NodeJS.Timeout | undefined;
  let scrapeMonitor: IntervalHistogram | undefined;
  let pageMonitor: IntervalHistogram | undefined;
  // Counters at the previous tick, taken after that tick's own snapshot went out, so the page's
  // rates leave its own traffic out.
  let last = { at: Date.now(), published: 0, deliveries: 0, messagesIn: 0, bytesIn: 0 };

  function counters() {
    return { at: Date.now(), published: metrics.published, deliveries: metrics.deliveries, messagesIn: metrics.messagesIn, bytesIn: metrics.bytesIn };
  }

  function busiest(): StatusSnapshot['busiest'] {
    // A bounded insertion into the top few: O(rooms) per snapshot, no sort of every room.
    const top: StatusSnapshot['busiest'] = [];
    if (busiestCount === 0) return top;
    // Most members first; ties by name, so the list does not shuffle between snapshots.
    const ahead = (a: { room: string; members: number }, b: { room: string; members: number }) =>
      a.members > b.members || (a.members === b.members && a.room < b.room);
    for (const room of broker.hub.rooms()) {
      if (room.name === STATUS_ROOM) continue;
      const entry = { room: room.name, members: room.members.size };
      if (top.length === busiestCount && !ahead(entry, top[top.length - 1]!)) continue;
      let i = top.length;
      while (i > 0 && ahead(entry, top[i - 1]!)) i--;
      top.splice(i, 0, entry);
      if (top.length > busiestCount) top.pop();
    }
    return top;
  }

  function snapshot(now: ReturnType<typeof counters>, monitor: IntervalHistogram): StatusSnapshot {
    const seconds = Math.max(0.001, (now.at - last.at) / 1000);
    const rate = (key: 'published' | 'deliveries' | 'messagesIn' | 'bytesIn') => round((now[key] - last[key]) / seconds, 1);
    const connections = { total: 0, plain: 0, v1: 0, sse: 0 };
    for (const connection of feed.connections) {
      connections.total++;
      connections[connection.protocol]++;
    }
    const delay = delayOf(monitor, 1e6);
    const memory = process.memoryUsage();
    return {
      v: 1,
      time: now.at,
      uptime: Math.round((now.at - startedAt) / 1000),
      connections,
      // The status room itself is the page's own doing, not a room of the server's users.
      rooms: broker.hub.roomCount - (broker.hub.room(STATUS_ROOM) === undefined ? 0 : 1),
      rates: { published: rate('published'), deliveries: rate('deliveries'), messagesIn: rate('messagesIn'), bytesIn: rate('bytesIn') },
      busiest: busiest(),
      eventLoop: { p50: round(delay.p50), p99: round(delay.p99), max: round(delay.max) },
      memory: { rss: memory.rss, heapUsed: memory.heapUsed },
      history: { rooms: broker.history.roomCount, entries: broker.history.totalEntries, bytes: broker.history.totalBytes },
      totals: { published: metrics.published, deliveries: metrics.deliveries, slowConsumerDrops: metrics.slowConsumerDrops },
    };
  }

  function tick(): void {
    const room = broker.hub.room(STATUS_ROOM);
    if (room !== undefined && room.members.size > 0) {
      if (!pageMonitor) {
        // Measuring starts with the first watcher: that first snapshot shows no delay yet.
        pageMonitor = monitorEventLoopDelay({ resolution: RESOLUTION });
        pageMonitor.enable();
      }
      // Kept on this node and ephemeral (rooms/reserved-rooms.ts): never refused by a backplane,
      // never kept in history. The counters are taken once it is counted, so the next rates
      // leave this snapshot out.
      const settled = () => {
        last = counters();
      };
      broker.publish(STATUS_ROOM, { kind: 'json', data: snapshot(counters(), pageMonitor) }, publisher).then(settled, settled);
      pageMonitor.reset();
      return;
    } else if (pageMonitor) {
      pageMonitor.disable();
      pageMonitor = undefined;
    }
    last = counters();
  }

  return {
    start() {
      if (timer) return;
      last = counters();
      scrapeMonitor = monitorEventLoopDelay({ resolution: RESOLUTION });
      scrapeMonitor.enable();
      timer = setInterval(tick, interval);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
      scrapeMonitor?.disable();
      scrapeMonitor = undefined;
      pageMonitor?.disable();
      pageMonitor = undefined;
    },
    takeEventLoopDelay() {
      if (!scrapeMonitor) return { p50: 0, p99: 0, max: 0 };
      const delay = delayOf(scrapeMonitor, 1e9);
      scrapeMonitor.reset();
      return delay;
    },
  };
}
