/**
 * The connections to Redis for a Plaza cluster, in the three kinds config.ts knows
 * (parseRedisTarget), and what arrives on them:
 * - one Redis (`redis://`): a command connection and a subscriber for every channel;
 * - the master a Sentinel set names (`redis+sentinel://`): the same two connections, which
 *   follow the master through a failover (ioredis asks the Sentinels, and drops both
 *   connections when they announce a new master);
 * - a Redis Cluster (`redis+cluster://`): an ioredis Cluster for commands and for the control
 *   channels (classic pub/sub, which the cluster bus carries to every shard: rare requests), and
 *   room channels on sharded pub/sub (shards.ts), so a room's traffic touches one shard.
 *
 * It says when the link is ready (every connection up and the channels subscribed) and when it
 * went down, keeps the room channels wanted across reconnects, and hands each channel's texts
 * to their reader. What the commands mean is room-commands.ts's and presence-control.ts's.
 *
 * ioredis is loaded on first use, so a server without --redis never evaluates it.
 */
import type { Cluster as ClusterClient, Redis as RedisClient, RedisOptions } from 'ioredis';
import { parseRedisTarget, redactRedisUrl, type RedisTarget } from '../../../redis-target.js';
import { parseChannelText, type ChannelMessage } from './codec.js';
import { CONTROL_CHANNEL, mailChannel, replyChannel, roomKeys, roomOfChannel } from './keys.js';
import { SCRIPTS, type Scripts } from './scripts.js';
import { ShardedChannels } from './shards.js';

/** A request on the control channel, seen by every node. */
export interface ControlRequest {
  id: string;
  /** The node that waits for the replies. */
  from: string;
  op: 'disconnect';
  session?: string;
  user?: string;
  reason: string;
}

export interface RedisLinkEvents {
  /** Connected (again) and subscriptions restored: rooms must be re-read. */
  onReady(): void;
  /** Lost a connection; commands fail until onReady. */
  onDown(reason: string): void;
  onChannel(message: ChannelMessage): void;
  onControl(request: ControlRequest): void;
  onReply(id: string, count: number): void;
  /** A text another node sent this one (NodeMail). */
  onMail(text: string): void;
  /** A Redis Cluster: the room's channel subscription ended (its master went away or its slot moved). */
  onLapse(room: string): void;
}

/** Commands go to one Redis or to a cluster; on a cluster a multi or pipeline holds keys of one slot (see `many`). */
export type Commands = (RedisClient | ClusterClient) & Scripts;

/** Reconnect forever with a capped backoff: a Redis restart or failover must heal by itself. */
const retryStrategy = (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 5), 2000);

export class RedisConnections {
  private readonly target: RedisTarget;
  private command: Commands | undefined;
  private cluster: ClusterClient | undefined;
  /** One Redis or Sentinel: the subscriber for every channel. */
  private subscriber: RedisClient | undefined;
  /** A Redis Cluster: room channels, sharded. */
  private shards: ShardedChannels | undefined;
  /** Room channels wanted; restored after every reconnect. */
  private readonly subscribed = new Set<string>();
  private closed = false;
  ready = false;
  lastError: string | undefined;

  constructor(
    private readonly options: { url: string; nodeId: string },
    private readonly events: RedisLinkEvents,
  ) {
    this.target = parseRedisTarget(options.url);
  }

  /** Room channels wanted right now. */
  get channelCount(): number {
    return this.subscribed.size;
  }

  /** A Redis Cluster (sharded room channels; multi-key commands only within one slot). */
  get isCluster(): boolean {
    return this.target.kind === 'cluster';
  }

  /** Only where a failover can hand a room to another master (scripts.ts, Lineage); one Redis keeps its epochs across a restart. */
  get checkLineage(): '1' | '0' {
    return this.target.kind === 'single' ? '0' : '1';
  }

  async connect(): Promise<void> {
    const ioredis = await import('ioredis');
    const name = (role: string) => `plaza-${this.options.nodeId}-${role}`;
    const common = {
      // Commands fail at once while Redis is away instead of piling up in memory.
      enableOfflineQueue: false,
      // A command whose connection dropped fails at once and is never sent again: it may have
      // run (a publish would then take two offsets). Its publish is answered `unavailable`.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      lazyConnect: true,
    } satisfies RedisOptions;
    const target = this.target;
    if (target.kind === 'cluster') {
      const credentials = { ...(target.username !== undefined && { username: target.username }), ...(target.password !== undefined && { password: target.password }) };
      const cluster = new ioredis.Cluster(target.nodes, {
        enableOfflineQueue: false,
        // Batches the per-room commands of a refresh into one write per master.
        enableAutoPipelining: true,
        // A command lost with its connection is not retried (it may have run): as above.
        retryDelayOnFailover: 0,
        clusterRetryStrategy: retryStrategy,
        // New masters are found this often even when no command is refused with MOVED.
        slotsRefreshInterval: 2000,
        lazyConnect: true,
        redisOptions: { ...credentials, connectionName: name('command'), maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false },
      });
      this.cluster = cluster;
      this.command = cluster as ClusterClient & Scripts;
      this.shards = new ShardedChannels(cluster, ioredis.Redis, { ...credentials, connectionName: name('shard') }, {
        onMessage: (channel, text) => this.onMessage(channel, text),
        onLapse: (channel) => {
          const room = roomOfChannel(channel);
          if (room !== undefined && this.subscribed.has(room)) this.events.onLapse(room);
        },
      });
      cluster.on('error', (error: Error) => {
        this.lastError = error.message;
      });
      cluster.on('node error', (error: Error) => {
        this.lastError = error.message;
      });
      for (const status of ['ready', 'close', 'end', 'reconnecting']) cluster.on(status, () => this.updateReady());
      // Control requests and replies: classic pub/sub, on one connection to any node.
      cluster.on('message', (channel: string, text: string) => this.onMessage(channel, text));
    } else {
      const where: RedisOptions =
        target.kind === 'sentinel'
          ? {
              sentinels: target.sentinels,
              name: target.name,
              db: target.db,
              ...(target.username !== undefined && { username: target.username }),
              ...(target.password !== undefined && { password: target.password }),
              ...(target.sentinelPassword !== undefined && { sentinelPassword: target.sentinelPassword }),
              // Drop both connections when the Sentinels announce a new master, even if the old
              // one still answers (as a replica now).
              failoverDetector: true,
              sentinelRetryStrategy: retryStrategy,
              // A master demoted under us refuses writes: reconnect (the Sentinels name the new one).
              reconnectOnError: (error: Error) => error.message.startsWith('READONLY'),
            }
          : {};
      const connect = (role: string, extra: RedisOptions) => {
        const options = { ...common, ...where, ...extra, retryStrategy, connectionName: name(role) };
        return target.kind === 'single' ? new ioredis.Redis(target.url, options) : new ioredis.Redis(options);
      };
      this.command = connect('command', {}) as Commands;
      // Subscriptions are restored by hand on 'ready' (they may have been asked for while offline).
      this.subscriber = connect('subscriber', { autoResubscribe: false });
      for (const client of [this.command, this.subscriber]) {
        client.on('error', (error: Error) => {
          this.lastError = error.message;
        });
        client.on('ready', () => this.updateReady());
        client.on('close', () => this.updateReady());
      }
      this.subscriber.on('message', (channel: string, text: string) => this.onMessage(channel, text));
    }
    const command = this.command;
    for (const [script, definition] of Object.entries(SCRIPTS)) command.defineCommand(script, definition);
    // Not awaited to completion: a server must start (and say "not ready") while Redis is away.
    command.connect().catch(() => undefined);
    this.subscriber?.connect().catch(() => undefined);
  }

  private onMessage(channel: string, text: string): void {
    const room = roomOfChannel(channel);
    if (room !== undefined) {
      const message = parseChannelText(room, text);
      if (message) this.events.onChannel(message);
      return;
    }
    try {
      if (channel === mailChannel(this.options.nodeId)) return this.events.onMail(text);
      if (channel === CONTROL_CHANNEL) this.events.onControl(JSON.parse(text) as ControlRequest);
      else if (channel === replyChannel(this.options.nodeId)) {
        const { id, count } = JSON.parse(text) as { id: string; count: number };
        this.events.onReply(String(id), Number(count) || 0);
      }
    } catch {
      // Not from a Plaza node: ignored.
    }
  }

  private updateReady(): void {
    const ready = this.cluster ? this.cluster.status === 'ready' : this.command?.status === 'ready' && this.subscriber?.status === 'ready';
    if (ready === this.ready || this.closed) return;
    this.ready = ready;
    if (!ready) {
      this.events.onDown(this.lastError ?? 'connection to Redis lost');
      return;
    }
    this.lastError = undefined;
    const control = [CONTROL_CHANNEL, replyChannel(this.options.nodeId), mailChannel(this.options.nodeId)];
    // On a cluster the room channels are subscribed room by room as the backplane re-reads them.
    const subscribed = this.cluster
      ? this.cluster.subscribe(...control)
      : this.subscriber!.subscribe(...control, ...[...this.subscribed].map((room) => roomKeys(room).channel));
    subscribed.then(
      () => {
        if (this.ready) this.events.onReady();
      },
      (error: Error) => {
        this.lastError = error.message;
      },
    );
  }

  /** The command client, or an error naming the Redis (its password redacted) while it is not ready. */
  get redis(): Commands {
    if (!this.command || !this.ready) throw new Error(`Redis is not reachable at ${redactRedisUrl(this.options.url)}: ${this.lastError ?? 'connecting'}`);
    return this.command;
  }

  /**
   * Commands whose keys may lie in different slots: one pipeline on one Redis; on a cluster each
   * goes to its slot's master (auto-pipelined, one write per master). Resolves with the replies.
   */
  async many(commands: Array<[string, ...Array<string | number>]>): Promise<unknown[]> {
    if (commands.length === 0) return [];
    if (this.cluster) return Promise.all(commands.map(([name, ...args]) => this.cluster!.call(name, ...args)));
    const replies = (await this.redis.pipeline(commands).exec()) ?? [];
    return replies.map(([error, reply]) => {
      if (error) throw error;
      return reply;
    });
  }

  /** Subscribes the room's channel; once this resolves, everything published to the room arrives. */
  async subscribe(room: string): Promise<void> {
    this.subscribed.add(room);
    const channel = roomKeys(room).channel;
    if (this.shards) await this.shards.subscribe(channel);
    else if (this.subscriber?.status === 'ready') await this.subscriber.subscribe(channel);
  }

  async unsubscribe(room: string): Promise<void> {
    this.subscribed.delete(room);
    const channel = roomKeys(room).channel;
    if (this.shards) await this.shards.unsubscribe(channel);
    else if (this.subscriber?.status === 'ready') await this.subscriber.unsubscribe(channel);
  }

  /** Sends a text on the room's channel (sharded on a cluster), outside the publish script. */
  async tellRoom(room: string, text: string): Promise<void> {
    const channel = roomKeys(room).channel;
    await (this.cluster ? this.redis.spublish(channel, text) : this.redis.publish(channel, text));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.ready = false;
    this.shards?.close();
    const clients: Array<RedisClient | ClusterClient | undefined> = [this.command, this.subscriber];
    await Promise.all(clients.map((client) => client?.quit().catch(() => client.disconnect())));
  }
}
