/**
 * Several Plaza servers as one hub through Redis (--redis): the Backplane contract (../types.ts)
 * kept across nodes, wired from parts with one job each:
 * - link.ts, the wire to Redis (connections, a room's scripts, presence and control);
 * - in-flight.ts, this node's publishes on their way to Redis and back (batched per room);
 * - mirrors.ts, the rooms followed here, their logs and their re-reads;
 * - directory.ts, presence and the HTTP API's cluster-wide views.
 *
 * Order: every room message is sequenced by one Lua script in Redis (scripts.ts), and every
 * node, the publishing one included, delivers it when the room's channel brings it back, so all
 * nodes see one order.
 *
 * Outages: while Redis is away, rooms with members here go on as islands (in-flight.ts), and
 * this node answers presence, rooms and disconnects for itself alone (a LocalBackplane, through
 * the Backplane interface only). When Redis returns every mirror is re-read (mirrors.ts).
 *
 * Failovers (Sentinel, Redis Cluster): a promoted replica may lack messages its old master gave
 * out; the scripts give the room a new epoch when another master first serves it (scripts.ts,
 * Lineage), and every node re-reads it then, so members get a reset, never a reused offset. On
 * a cluster a single shard failing over makes only its rooms unavailable for a moment; the
 * node stays up (no islands) and re-reads each room whose channel lapsed (onLapse).
 */
import { randomBytes } from 'node:crypto';
import type { Member, Room } from '../../../engine/hub.js';
import type { Logger } from '../../../logger.js';
import { redactRedisUrl } from '../../../redis-target.js';
import type { HistoryStore, RoomLog } from '../../history.js';
import type { PublishWindow } from '../../publish-window.js';
import { LocalBackplane, localMembers } from '../local.js';
import type {
  Backplane,
  BackplaneStats,
  BackplaneStatus,
  DisconnectSelector,
  Draft,
  HistoryPage,
  LocalNode,
  MemberList,
  NodeMail,
  PublishIdCounts,
  Published,
  RoomSummary,
} from '../types.js';
import { ClusterDirectory } from './directory.js';
import { InFlightPublishes } from './in-flight.js';
import { RedisLink } from './link.js';
import { RoomMirrors } from './mirrors.js';
import { unavailable } from './pending.js';

export interface RedisBackplaneOptions {
  url: string;
  historySize: number;
  historyTtl: number;
  /** A node's members vanish from cluster presence this long (ms) after it stops refreshing them. */
  presenceTtl: number;
  /** Publishes on their way to Redis and back, at most. */
  maxInflight: number;
  /** Bytes of those publishes, at most. */
  maxInflightBytes: number;
  /** Channel messages held for one room while it is re-read; past it the room is read again. @default 10000 */
  maxSyncBuffer?: number;
  /** Publish ids remembered per room in Redis (issue #22). @default 0 (none) */
  publishIdWindow?: number;
  /** How long (ms). @default 120000 */
  publishIdTtl?: number;
  /**
   * This node's own memory of publish ids: what it published through Redis and on islands. A
   * retry is answered from it instead of being published again, on the island or, for an
   * island publish (never in the window in Redis), in Redis once it is back.
   * @default none (island publishes are never deduplicated)
   */
  localIds?: PublishWindow;
}

/** How often the watchdog looks for rooms to re-read. */
const WATCHDOG_MS = 250;

export class RedisBackplane implements Backplane {
  readonly nodeId = randomBytes(6).toString('base64url');
  readonly link: RedisLink;
  /** Answers for this node alone while Redis is away, through the Backplane interface only. */
  private readonly local: Backplane;
  private readonly publishes: InFlightPublishes;
  private readonly mirrors: RoomMirrors;
  private readonly directory: ClusterDirectory;
  private presenceTimer: NodeJS.Timeout | undefined;
  private watchdogTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private mailListener: ((text: string) => void) | undefined;
  readonly mail: NodeMail = {
    nodeId: this.nodeId,
    send: (to, text) => this.link.presence.mail(to, text),
    receive: (listener) => {
      this.mailListener = listener;
    },
  };

  constructor(
    private readonly options: RedisBackplaneOptions,
    private readonly node: LocalNode,
    store: HistoryStore,
    private readonly logger: Logger,
  ) {
    this.local = new LocalBackplane(node, store);
    this.link = new RedisLink(
      {
        url: options.url, nodeId: this.nodeId, historySize: options.historySize, historyTtl: options.historyTtl,
        ...(options.publishIdWindow !== undefined && { publishIdWindow: options.publishIdWindow }),
        ...(options.publishIdTtl !== undefined && { publishIdTtl: options.publishIdTtl }),
      },
      {
        onReady: () => this.onReady(),
        onDown: (reason) => this.onDown(reason),
        onChannel: (message) => this.mirrors.onChannel(message),
        onControl: (request) => this.directory.onControl(request),
        onReply: (id, count) => this.directory.onReply(id, count),
        onMail: (text) => this.mailListener?.(text),
        onLapse: (room) => this.mirrors.onLapse(room),
      },
    );
    this.publishes = new InFlightPublishes(
      {
        nodeId: this.nodeId, maxInflight: options.maxInflight, maxInflightBytes: options.maxInflightBytes,
        ...(options.publishIdWindow !== undefined && { publishIdWindow: options.publishIdWindow }),
        ...(options.localIds !== undefined && { localIds: options.localIds }),
      },
      this.link, node, store, logger, (room) => this.mirrors.get(room),
    );
    this.mirrors = new RoomMirrors(
      { nodeId: this.nodeId, ...(options.maxSyncBuffer !== undefined && { maxSyncBuffer: options.maxSyncBuffer }) },
      this.link, node, store, logger, this.publishes,
    );
    this.directory = new ClusterDirectory(this.link, node, this.nodeId, options.presenceTtl, logger);
  }

  async start(): Promise<void> {
    await this.link.connect();
    this.presenceTimer = setInterval(() => {
      this.directory.refresh(this.mirrors.rooms()).catch((error: Error) => this.logger.debug('presence refresh failed', { error: error.message }));
    }, Math.max(250, Math.floor(this.options.presenceTtl / 3)));
    this.presenceTimer.unref();
    this.watchdogTimer = setInterval(() => this.mirrors.watchdog(Date.now()), WATCHDOG_MS);
    this.watchdogTimer.unref();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.presenceTimer);
    clearInterval(this.watchdogTimer);
    this.publishes.failAll(unavailable('is shutting down'));
    this.directory.close();
    await this.link.close();
  }

  get status(): BackplaneStatus {
    if (!this.link.ready) {
      return { up: false, reason: `Redis at ${redactRedisUrl(this.options.url)} is unreachable (${this.link.lastError ?? 'connecting'}); serving local members only` };
    }
    const stalled = this.publishes.stalledFor(Date.now());
    if (stalled !== undefined) {
      return { up: false, reason: `Redis at ${redactRedisUrl(this.options.url)} has not answered a publish for ${Math.round(stalled / 1000)} s` };
    }
    return { up: true };
  }

  get stats(): BackplaneStats {
    return {
      rooms: this.mirrors.size,
      channels: this.link.connections.channelCount,
      inflight: this.publishes.count,
      inflightBytes: this.publishes.bytes,
      rejected: this.publishes.rejected,
      resyncs: this.mirrors.resyncs,
      resets: this.mirrors.resets,
      publishLatencyMs: this.link.rooms.lastLatency,
    };
  }

  get publishIdCounts(): PublishIdCounts {
    // Repeats answered by Redis, and by this node's own memory while Redis was away.
    return { entries: this.options.localIds?.size ?? 0, duplicates: this.publishes.duplicates + (this.options.localIds?.duplicates ?? 0) };
  }

  /** Resyncs whose buffer overflowed and had to read the room again. */
  get syncOverflows(): number {
    return this.mirrors.syncOverflows;
  }

  // ---- rooms followed here (mirrors.ts) -----------------------------------------------------

  attach(room: string): Promise<RoomLog> {
    return this.mirrors.attach(room);
  }

  detach(room: string): void {
    this.mirrors.detach(room);
  }

  private onReady(): void {
    this.logger.info('cluster backplane ready', { node: this.nodeId, redis: redactRedisUrl(this.options.url), rooms: this.mirrors.size });
    this.mirrors.resyncAll();
  }

  private onDown(reason: string): void {
    this.logger.warn('cluster backplane down; serving local members only', { node: this.nodeId, reason });
    this.mirrors.onDown();
  }

  // ---- publishing (in-flight.ts) -------------------------------------------------------------

  publish(draft: Draft): Promise<Published> {
    return this.publishes.publish(draft);
  }

  publishEphemeral(draft: Draft): Promise<number> {
    return this.publishes.publishEphemeral(draft);
  }

  withdraw(room: string, publishId: string, time: number): Promise<{ offset: number; epoch: string } | undefined> {
    return this.publishes.withdraw(room, publishId, time);
  }

  firstAck(room: string, publishId: string): Promise<{ offset: number; epoch: string; fingerprint: string } | undefined> {
    if (!this.link.ready || !this.options.publishIdWindow) return Promise.resolve(undefined);
    return this.link.rooms.firstAck(room, publishId, Date.now());
  }

  // ---- presence and the HTTP API's cluster-wide views (directory.ts) ------------------------

  announce(room: Room, change: 'joined' | 'left', member: Member): void {
    if (!this.link.ready) return this.local.announce(room, change, member);
    this.directory.announce(room, change, member);
  }

  /** Every node's members: the room here is only this node's part of them. */
  presenceForJoin(room: string, limit: number): Promise<MemberList> {
    return this.members(room, limit);
  }

  members(room: string, limit: number): Promise<MemberList> {
    const here = this.node.hub.room(room);
    if (!this.link.ready) return Promise.resolve(localMembers(here, limit));
    return this.directory.members(room, here, limit);
  }

  rooms(): Promise<RoomSummary[]> {
    // While Redis is away this node can only speak for itself.
    if (!this.link.ready) return this.local.rooms();
    return this.directory.rooms(this.mirrors.rooms());
  }

  history(room: string, since: number, limit: number): Promise<HistoryPage | undefined> {
    if (!this.link.ready) return Promise.reject(unavailable('is unreachable'));
    return this.directory.history(room, since, limit);
  }

  disconnect(selector: DisconnectSelector): Promise<number> {
    if (!this.link.ready) return Promise.resolve(this.node.disconnect(selector));
    return this.directory.disconnect(selector);
  }
}
