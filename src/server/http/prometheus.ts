/**
 * /metrics in the Prometheus text exposition format, version 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format).
 *
 * Written by hand rather than with prom-client: the format is a few lines of escaping, Plaza's
 * counters are already plain fields that the hot paths bump (metrics.ts), and prom-client would
 * add a dependency, a registry with label maps on those paths, and tens of kilobytes to the
 * single-file server, for features (histograms with buckets, push gateways) Plaza does not use.
 * Everything here runs only when someone scrapes.
 */
import type { WireProtocol } from '../engine/hub.js';
import type { Metrics } from '../engine/metrics.js';
import type { HookStats } from '../hooks/runner.js';
import type { BackplaneStats } from '../rooms/backplane/types.js';
import type { WebhookStats } from '../webhooks/sender.js';

export type Labels = Readonly<Record<string, string | number>>;

export interface Sample {
  readonly labels?: Labels;
  readonly value: number;
}

/** Label values may hold anything; `\`, `"` and line feeds must be escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escapes only `\` and line feeds. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function formatLabels(labels: Labels | undefined): string {
  if (!labels) return '';
  const pairs = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabelValue(String(value))}"`);
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
}

/** Collects metric families and renders them; one instance per scrape. */
export class Exposition {
  private readonly lines: string[] = [];

  counter(name: string, help: string, samples: number | readonly Sample[]): this {
    return this.family(name, 'counter', help, samples);
  }

  gauge(name: string, help: string, samples: number | readonly Sample[]): this {
    return this.family(name, 'gauge', help, samples);
  }

  /** Counts kept in a Map become one sample per key, labelled `label`. */
  static fromMap<K extends string | number>(label: string, map: ReadonlyMap<K, number>): Sample[] {
    return [...map].map(([key, value]) => ({ labels: { [label]: key }, value }));
  }

  text(): string {
    return this.lines.join('\n') + '\n';
  }

  private family(name: string, type: 'counter' | 'gauge', help: string, samples: number | readonly Sample[]): this {
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    const list = typeof samples === 'number' ? [{ value: samples }] : samples;
    for (const sample of list) this.lines.push(`${name}${formatLabels(sample.labels)} ${formatValue(sample.value)}`);
    return this;
  }
}

/** Event-loop delay in seconds. */
export interface EventLoopDelay {
  p50: number;
  p99: number;
  max: number;
}

/** What a scrape reads; gauges are computed now, counters come from `metrics`. */
export interface MetricsSource {
  readonly metrics: Metrics;
  readonly connections: Iterable<{ readonly protocol: WireProtocol }>;
  /** Rooms with members on this server. */
  readonly rooms: number;
  readonly history: { readonly roomCount: number; readonly totalEntries: number; readonly totalBytes: number; readonly evicted: number };
  readonly ready: boolean;
  readonly eventLoopDelay: EventLoopDelay;
  /** Present in a cluster (--redis). */
  readonly backplane?: { readonly up: boolean } & BackplaneStats;
  /** The publish-id window (issue #22): ids remembered in memory here, and repeats answered. */
  readonly publishIds?: { readonly entries: number; readonly duplicates: number };
  /** Members of a room whose connection is already closing or closed (should stay 0). */
  readonly orphans: number;
  /** The application's hooks (library use); absent or all zero without them. */
  readonly hooks?: HookStats | undefined;
  /** Present with --webhook-url. */
  readonly webhooks?: WebhookStats | undefined;
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Renders every Plaza metric (names listed in docs/operations.md). */
export function renderMetrics(source: MetricsSource): string {
  const m = source.metrics;
  const open: Record<WireProtocol, number> = { plain: 0, v1: 0, sse: 0 };
  for (const connection of source.connections) open[connection.protocol]++;
  const byProtocol = (counts: Record<WireProtocol, number>): Sample[] =>
    (Object.keys(counts) as WireProtocol[]).map((protocol) => ({ labels: { protocol }, value: counts[protocol] }));
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  const backplane = source.backplane;
  const cluster = (value: (b: NonNullable<typeof backplane>) => number): Sample[] => (backplane ? [{ value: value(backplane) }] : []);
  const hooks = source.hooks;
  const hookFailures: Sample[] = [...(hooks?.failures ?? [])].map(([key, value]) => {
    const [hook, code] = key.split(' ') as [string, string];
    return { labels: { hook, code }, value };
  });
  const webhooks = source.webhooks;
  const webhook = (value: (w: NonNullable<typeof webhooks>) => number): Sample[] => (webhooks ? [{ value: value(webhooks) }] : []);

  return new Exposition()
    .gauge('plaza_connections', 'Open client connections by wire protocol (plain and v1 WebSockets, sse streams).', byProtocol(open))
    .gauge('plaza_connections_by_transport', 'Open client connections by transport.', [
      { labels: { transport: 'websocket' }, value: open.plain + open.v1 },
      { labels: { transport: 'sse' }, value: open.sse },
    ])
    .counter('plaza_connects_total', 'Client connections accepted (WebSocket upgrades, SSE streams), by wire protocol.', byProtocol(m.connects))
    .counter('plaza_disconnects_total', 'Client connections closed, by close code.', Exposition.fromMap('code', m.disconnects))
    .counter('plaza_messages_in_total', 'Client messages received (WebSocket frames, lines of SSE POSTs).', m.messagesIn)
    .counter('plaza_bytes_in_total', 'Payload bytes of client messages received.', m.bytesIn)
    .counter('plaza_messages_published_total', 'Room messages published (each once, however many receive it).', m.published)
    .counter('plaza_ephemeral_published_total', 'Ephemeral publishes (typing indicators and the like): sent to the members of the moment, never stored.', m.ephemeral)
    .counter('plaza_deliveries_total', 'Room messages queued to one client (a publish to N members is N).', m.deliveries)
    .counter('plaza_bytes_out_total', 'Bytes written to client sockets.', m.bytesOut)
    .counter('plaza_socket_writes_total', 'Socket writes (frames of one event-loop turn are coalesced).', m.writes)
    .counter('plaza_slow_consumer_drops_total', 'Clients closed with 1013 because too many bytes waited for them.', m.slowConsumerDrops)
    .counter('plaza_rate_limited_total', 'Client messages refused for exceeding the rate limit.', m.rateLimited)
    .counter('plaza_auth_failures_total', 'Requests and upgrades refused for a missing or wrong key or token.', m.authFailures)
    .counter('plaza_upgrade_rejections_total', 'WebSocket upgrades refused before a connection existed, by HTTP status.', Exposition.fromMap('status', m.upgradeRejections))
    .counter('plaza_sse_rejections_total', 'SSE requests refused (streams not opened, POSTs not taken), by HTTP status.', Exposition.fromMap('status', m.streamRejections))
    .counter('plaza_sse_relayed_posts_total', 'POSTs for SSE streams carried to the node that holds them (cluster).', m.relayedPosts)
    .counter('plaza_sse_relay_failures_total', 'Carried POSTs answered 503: no answer within --sse-relay-timeout, past --sse-max-relays, or Redis unreachable.', m.relayFailures)
    .counter('plaza_protocol_errors_total', 'plaza.v1 error replies sent, by error code.', Exposition.fromMap('code', m.protocolErrors))
    .counter('plaza_api_requests_total', 'HTTP API requests answered, by status.', Exposition.fromMap('status', m.apiRequests))
    .gauge('plaza_rooms', 'Rooms with at least one member on this server.', source.rooms)
    .gauge('plaza_publish_ids', 'Publish ids remembered in this server\'s memory so a retry is not published twice (a cluster keeps its own in Redis).', source.publishIds?.entries ?? 0)
    .counter('plaza_publish_duplicates_total', 'Repeated publish ids answered with their first ack instead of being published again.', source.publishIds?.duplicates ?? 0)
    .gauge('plaza_history_rooms', 'Rooms tracked by history (with members or kept messages).', source.history.roomCount)
    .gauge('plaza_history_entries', 'Messages kept in history across rooms.', source.history.totalEntries)
    .gauge('plaza_history_bytes', 'Bytes of message envelopes kept in history across rooms.', source.history.totalBytes)
    .counter('plaza_history_rooms_evicted_total', 'Rooms without members forgotten (history and epoch) to make way at --max-rooms.', source.history.evicted)
    .gauge('plaza_ready', '1 when /readyz answers 200, else 0.', source.ready ? 1 : 0)
    .counter('plaza_plain_messages_dropped_total', 'Plain clients\' messages dropped because the backplane refused them.', m.plainDropped)
    .gauge('plaza_members_without_connection', 'Room members whose connection is closing or closed (a leak if it stays above 0).', source.orphans)
    .gauge('plaza_backplane_up', '1 while the Redis backplane is reachable and answering (cluster mode only; absent otherwise).', cluster((b) => (b.up ? 1 : 0)))
    .gauge('plaza_backplane_publish_latency_seconds', 'Round trip of the last publish through Redis (cluster mode only).', cluster((b) => b.publishLatencyMs / 1000))
    .gauge('plaza_backplane_rooms', 'Rooms this node follows for the cluster (it has members or joins in progress there).', cluster((b) => b.rooms))
    .gauge('plaza_backplane_channels', 'Room channels this node is subscribed to in Redis.', cluster((b) => b.channels))
    .gauge('plaza_backplane_inflight', 'Publishes on their way through Redis and not yet delivered here.', cluster((b) => b.inflight))
    .gauge('plaza_backplane_inflight_bytes', 'Bytes of the publishes on their way through Redis.', cluster((b) => b.inflightBytes))
    .counter('plaza_backplane_rejected_total', 'Publishes refused at once because too many were on their way through Redis.', cluster((b) => b.rejected))
    .counter('plaza_backplane_resyncs_total', 'Rooms re-read from Redis (after joining, a gap, an outage or a lost message).', cluster((b) => b.resyncs))
    .counter('plaza_backplane_resets_total', 'Rooms whose members were told their view had a gap (recovered: false).', cluster((b) => b.resets))
    .counter('plaza_hook_calls_total', 'Calls of the application\'s hooks, by hook.', Exposition.fromMap('hook', hooks?.calls ?? new Map()))
    .counter('plaza_hook_failures_total', 'Hook calls that ended without a verdict (hook_failed, hook_timeout, hook_busy), by hook and code.', hookFailures)
    .counter('plaza_hook_refusals_total', 'Hook verdicts that said no (refuse, reject), by hook.', Exposition.fromMap('hook', hooks?.refusals ?? new Map()))
    .gauge('plaza_hook_calls_active', 'Hook calls running now (timed-out ones until they settle).', hooks?.active ?? 0)
    .counter('plaza_webhook_events_delivered_total', 'Webhook events the receiver acknowledged with a 2xx (with --webhook-url).', webhook((w) => w.delivered))
    .counter('plaza_webhook_events_dropped_total', 'Webhook events given up on, by reason: queue_full, failed (retries spent), shutdown.', webhooks ? Exposition.fromMap('reason', webhooks.dropped) : [])
    .counter('plaza_webhook_requests_failed_total', 'Webhook POSTs that got no 2xx in time (each retry counts).', webhook((w) => w.failedRequests))
    .gauge('plaza_webhook_queue_events', 'Webhook events waiting to be delivered.', webhook((w) => w.queuedEvents))
    .gauge('plaza_webhook_queue_bytes', 'Bytes of webhook events waiting to be delivered (bounded by --webhook-max-queue).', webhook((w) => w.queuedBytes))
    // prom-client's names, so Node.js dashboards find them; unlike prom-client the 10 ms sampling
    // interval is taken off, so an idle loop reads 0 rather than 0.01.
    .gauge('nodejs_eventloop_lag_p50_seconds', 'Median event-loop delay since the previous scrape.', source.eventLoopDelay.p50)
    .gauge('nodejs_eventloop_lag_p99_seconds', '99th percentile event-loop delay since the previous scrape.', source.eventLoopDelay.p99)
    .gauge('nodejs_eventloop_lag_max_seconds', 'Longest event-loop delay since the previous scrape.', source.eventLoopDelay.max)
    .gauge('process_resident_memory_bytes', 'Resident set size of the process.', memory.rss)
    .gauge('nodejs_heap_used_bytes', 'V8 heap in use.', memory.heapUsed)
    .counter('process_cpu_seconds_total', 'User and system CPU time spent by the process.', (cpu.user + cpu.system) / 1e6)
    .gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch.', Math.round(performance.timeOrigin / 1000))
    .text();
}
