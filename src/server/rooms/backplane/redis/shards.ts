/**
 * Room channels on a Redis Cluster: sharded pub/sub (Redis 7: SSUBSCRIBE, SPUBLISH). A room's
 * channel, `plaza:{room}:ch`, hashes to the room's slot, so its messages pass only through the
 * master that owns that slot (and its replicas) instead of being broadcast over the cluster bus
 * to every shard, as classic PUBLISH is.
 *
 * This keeps one subscriber connection per master that serves a followed room, SSUBSCRIBEs each
 * channel at its slot's master, and says which channels lapsed: their master went away, or
 * their slot moved to another master (Redis then sends an unsolicited SUNSUBSCRIBE). A lapse
 * loses nothing for good: the backplane re-subscribes and re-reads the room from its stream.
 *
 * ioredis has sharded subscribers of its own (ClusterOptions.shardedSubscribers); they are not
 * used because they re-subscribe after a topology change without saying which channels were
 * down meanwhile, and a room's copy may call itself in sync only after its channel is
 * subscribed again and the room read after that.
 */
import type { Cluster, Redis, RedisOptions } from 'ioredis';

export interface ShardedChannelsEvents {
  onMessage(channel: string, text: string): void;
  /** The channel is no longer subscribed (its master went away, or its slot moved): subscribe again and re-read. */
  onLapse(channel: string): void;
}

/** Redis Cluster's hash slot of a key or shard channel: CRC16 (XMODEM) of its hash tag, mod 16384. */
export function slotOf(key: string): number {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(key)) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

export class ShardedChannels {
  /** Channels wanted → the master (`host:port`) that confirmed its SSUBSCRIBE, or undefined until one has. */
  private readonly wanted = new Map<string, string | undefined>();
  /** Subscriber connections by master. */
  private readonly connections = new Map<string, Redis>();
  private closed = false;
  private readonly onRefresh = () => this.check();

  constructor(
    private readonly cluster: Cluster,
    private readonly RedisClass: typeof Redis,
    /** Credentials and the connection name for the subscriber connections. */
    private readonly options: RedisOptions,
    private readonly events: ShardedChannelsEvents,
  ) {
    // ioredis refreshes its map of slots periodically and after MOVED replies.
    cluster.on('refresh', this.onRefresh);
  }

  /** Channels wanted right now. */
  get size(): number {
    return this.wanted.size;
  }

  /**
   * Subscribes `channel` at the master that owns its slot now. Called again for a channel that
   * is subscribed already, it asks again (idempotent in Redis), so a caller that resolves knows
   * the subscription holds from now on.
   */
  async subscribe(channel: string): Promise<void> {
    if (this.closed) throw new Error('the cluster link is closed');
    const owner = this.ownerOf(channel);
    if (!this.wanted.has(channel)) this.wanted.set(channel, undefined);
    const connection = this.connection(owner);
    try {
      await connection.ssubscribe(channel);
    } catch (error) {
      // MOVED (our map of slots is behind the cluster's) or the master is gone: ask for a fresh
      // map; the caller tries again later.
      this.refresh();
      throw error;
    }
    if (!this.wanted.has(channel)) {
      // Unsubscribed while this waited.
      connection.sunsubscribe(channel).catch(() => undefined);
      return;
    }
    if (this.connections.get(owner) !== connection || connection.status !== 'ready') {
      throw new Error(`the subscriber connection to ${owner} closed`);
    }
    const previous = this.wanted.get(channel);
    this.wanted.set(channel, owner);
    if (previous !== undefined && previous !== owner) this.connections.get(previous)?.sunsubscribe(channel).catch(() => undefined);
  }

  async unsubscribe(channel: string): Promise<void> {
    const owner = this.wanted.get(channel);
    this.wanted.delete(channel);
    const connection = owner === undefined ? undefined : this.connections.get(owner);
    if (connection?.status === 'ready') await connection.sunsubscribe(channel);
  }

  close(): void {
    this.closed = true;
    this.cluster.off('refresh', this.onRefresh);
    for (const connection of this.connections.values()) connection.disconnect();
    this.connections.clear();
  }

  private ownerOf(channel: string): string {
    const owner = this.cluster.slots[slotOf(channel)]?.[0];
    if (!owner) throw new Error('the cluster has not said yet which master serves this room');
    return owner;
  }

  private connection(owner: string): Redis {
    const existing = this.connections.get(owner);
    if (existing) return existing;
    const colon = owner.lastIndexOf(':');
    const connection = new this.RedisClass({
      ...this.options,
      host: owner.slice(0, colon),
      port: Number(owner.slice(colon + 1)),
      // SSUBSCRIBE waits for the connection; when it cannot be made the command fails and the
      // room is tried again at whatever master the cluster names by then.
      enableOfflineQueue: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
    });
    this.connections.set(owner, connection);
    connection.on('smessage', (channel: string, text: string) => this.events.onMessage(channel, text));
    connection.on('error', () => undefined); // 'close' follows and says what matters
    connection.on('close', () => this.drop(owner, connection));
    // Unsolicited SUNSUBSCRIBE: a slot this master served moved away with its channels.
    connection.on('moved', () => this.unsubscribedBy(owner, connection));
    return connection;
  }

  /** A subscriber connection closed: every channel it carried lapses. */
  private drop(owner: string, connection: Redis): void {
    if (this.connections.get(owner) !== connection) return;
    this.connections.delete(owner);
    connection.disconnect();
    this.lapse((_channel, at) => at === owner);
    if (!this.closed) this.refresh();
  }

  private unsubscribedBy(owner: string, connection: Redis): void {
    if (this.connections.get(owner) !== connection) return;
    const still = new Set(connection.condition?.subscriber ? connection.condition.subscriber.channels('ssubscribe') : []);
    this.lapse((channel, at) => at === owner && !still.has(channel));
    this.refresh();
  }

  /** After a new map of slots: channels whose slot has another master now lapse; connections to former masters close. */
  private check(): void {
    if (this.closed) return;
    this.lapse((channel, at) => at !== undefined && this.cluster.slots[slotOf(channel)]?.[0] !== at);
    const masters = new Set(this.cluster.slots.map((nodes) => nodes?.[0]));
    for (const [owner, connection] of this.connections) if (!masters.has(owner)) connection.disconnect();
  }

  private lapse(which: (channel: string, owner: string | undefined) => boolean): void {
    const lapsed: string[] = [];
    for (const [channel, owner] of this.wanted) {
      if (!which(channel, owner)) continue;
      this.wanted.set(channel, undefined);
      lapsed.push(channel);
    }
    for (const channel of lapsed) this.events.onLapse(channel);
  }

  private refresh(): void {
    this.cluster.refreshSlotsCache();
  }
}
