/**
 * The Redis side of a Plaza cluster: one Lua script sequences every room message (next offset,
 * stream append, pub/sub fan-out in one atomic step, so pub/sub order is offset order), streams
 * keep bounded history, and a hash per room holds cluster-wide presence.
 *
 * ioredis is loaded on first use, so a server without --redis never evaluates it.
 * Keys use the room as a hash tag (`plaza:{room}:…`) so one room's keys share a Redis Cluster
 * slot; room names cannot contain braces.
 */
import type { Redis as RedisClient } from 'ioredis';

export interface RedisLinkOptions {
  url: string;
  /** Stream length kept per room (history size). */
  historySize: number;
  /** Room keys expire this long (ms) after their last message. */
  historyTtl: number;
}

export interface StreamEntry {
  offset: number;
  time: number;
  json: string;
}

export interface RoomState {
  epoch: string;
  lastOffset: number;
  /** Oldest first. */
  entries: StreamEntry[];
}

/** What travels on a room's channel. */
export type ChannelMessage =
  | { kind: 'message'; room: string; offset: number; epoch: string; time: number; plain: PlainKind; except: string; json: string }
  | { kind: 'presence'; room: string; json: string };

/** How plain clients get a message: text, binary (data is base64), or the JSON text of data. */
export type PlainKind = 't' | 'b' | 'j';

const CHANNEL_PREFIX = 'plaza:ch:';

const PUBLISH_SCRIPT = `
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
local offset = redis.call('INCR', KEYS[2])
local json = '{"type":"message","room":' .. ARGV[2] .. ',"id":"' .. epoch .. ':' .. offset .. '","offset":' .. offset ..
  ',"epoch":"' .. epoch .. '","time":' .. ARGV[3] .. ',"from":' .. ARGV[4] .. ',"data":' .. ARGV[5] .. ARGV[6] .. '}'
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'o', offset, 't', ARGV[3], 'j', json)
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[8]) end
redis.call('PUBLISH', ARGV[9], 'm ' .. offset .. ' ' .. epoch .. ' ' .. ARGV[3] .. ' ' .. ARGV[10] .. ' ' .. ARGV[11] .. '\\n' .. json)
return {offset, epoch}
`;

function keys(room: string) {
  return { epoch: `plaza:{${room}}:epoch`, offset: `plaza:{${room}}:offset`, stream: `plaza:{${room}}:stream`, presence: `plaza:{${room}}:presence` };
}

export interface RedisLinkEvents {
  /** Connected (again): subscriptions are back, rooms must be re-synced. */
  onReady(): void;
  /** Lost the connection; publishes fail until onReady. */
  onDown(reason: string): void;
  onChannel(message: ChannelMessage): void;
}

/** Parses `m <offset> <epoch> <time> <plain> <except>\n<json>` or `p\n<json>` from a room channel. */
export function parseChannelMessage(room: string, text: string): ChannelMessage | undefined {
  const newline = text.indexOf('\n');
  if (newline === -1) return undefined;
  const head = text.slice(0, newline).split(' ');
  const json = text.slice(newline + 1);
  if (head[0] === 'p') return { kind: 'presence', room, json };
  if (head[0] !== 'm' || head.length !== 6) return undefined;
  const [, offset, epoch, time, plain, except] = head as [string, string, string, string, string, string];
  return { kind: 'message', room, offset: Number(offset), epoch, time: Number(time), plain: plain as PlainKind, except: except === '-' ? '' : except, json };
}

export class RedisLink {
  private command: RedisClient | undefined;
  private subscriber: RedisClient | undefined;
  private readonly subscribed = new Set<string>();
  private closed = false;
  ready = false;
  lastError: string | undefined;
  /** Round-trip of the last publish, in ms (for metrics). */
  lastLatency = 0;

  constructor(
    private readonly options: RedisLinkOptions,
    private readonly events: RedisLinkEvents,
  ) {}

  async connect(): Promise<void> {
    const { Redis } = await import('ioredis');
    const common = {
      // Commands fail at once while Redis is away instead of piling up in memory.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      // Reconnect forever with a capped backoff: a Redis restart must heal by itself.
      retryStrategy: (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 5), 2000),
      lazyConnect: true,
    };
    const command = new Redis(this.options.url, common);
    // Subscriptions are restored by hand on 'ready' (they may have been asked for while offline).
    const subscriber = new Redis(this.options.url, { ...common, autoResubscribe: false });
    this.command = command;
    this.subscriber = subscriber;
    command.defineCommand('plazaPublish', { numberOfKeys: 3, lua: PUBLISH_SCRIPT });
    for (const client of [command, subscriber]) {
      client.on('error', (error: Error) => {
        this.lastError = error.message;
      });
      client.on('ready', () => this.updateReady());
      client.on('close', () => this.updateReady());
    }
    subscriber.on('message', (channel: string, text: string) => {
      if (!channel.startsWith(CHANNEL_PREFIX)) return;
      const message = parseChannelMessage(channel.slice(CHANNEL_PREFIX.length), text);
      if (message) this.events.onChannel(message);
    });
    // Not awaited to completion: a server must start (and say "not ready") while Redis is away.
    command.connect().catch(() => undefined);
    subscriber.connect().catch(() => undefined);
  }

  private updateReady(): void {
    const ready = this.command?.status === 'ready' && this.subscriber?.status === 'ready';
    if (ready === this.ready || this.closed) return;
    this.ready = ready;
    if (ready) {
      this.lastError = undefined;
      const channels = [...this.subscribed].map((room) => CHANNEL_PREFIX + room);
      const resubscribed = channels.length > 0 ? this.subscriber!.subscribe(...channels) : Promise.resolve();
      resubscribed.then(
        () => this.events.onReady(),
        (error: Error) => {
          this.lastError = error.message;
        },
      );
    } else {
      this.events.onDown(this.lastError ?? 'connection to Redis lost');
    }
  }

  private get redis(): RedisClient {
    if (!this.command || !this.ready) throw new Error(`Redis is not reachable at ${redactUrl(this.options.url)}: ${this.lastError ?? 'connecting'}`);
    return this.command;
  }

  async subscribe(room: string): Promise<void> {
    this.subscribed.add(room);
    if (this.subscriber?.status === 'ready') await this.subscriber.subscribe(CHANNEL_PREFIX + room);
  }

  async unsubscribe(room: string): Promise<void> {
    this.subscribed.delete(room);
    if (this.subscriber?.status === 'ready') await this.subscriber.unsubscribe(CHANNEL_PREFIX + room);
  }

  /** The room's epoch (created when missing), last offset and kept history. */
  async fetch(room: string, newEpoch: string): Promise<RoomState> {
    const k = keys(room);
    const redis = this.redis;
    await redis.set(k.epoch, newEpoch, 'PX', this.options.historyTtl, 'NX');
    const [[, epoch], [, offset], [, entries]] = (await redis
      .multi()
      .get(k.epoch)
      .get(k.offset)
      .xrange(k.stream, '-', '+')
      .exec()) as [[unknown, string], [unknown, string | null], [unknown, Array<[string, string[]]>]];
    const parsed: StreamEntry[] = [];
    for (const [, fields] of entries) {
      const field = (name: string) => fields[fields.indexOf(name) + 1];
      parsed.push({ offset: Number(field('o')), time: Number(field('t')), json: field('j') ?? '' });
    }
    return { epoch, lastOffset: Number(offset ?? 0), entries: parsed.slice(-this.options.historySize) };
  }

  async publish(room: string, parts: { roomJson: string; time: number; fromJson: string; dataJson: string; base64: boolean; plain: PlainKind; except: string; newEpoch: string }): Promise<{ offset: number; epoch: string }> {
    const k = keys(room);
    const started = performance.now();
    const [offset, epoch] = (await (this.redis as unknown as { plazaPublish(...args: (string | number)[]): Promise<[number, string]> }).plazaPublish(
      k.epoch, k.offset, k.stream,
      parts.newEpoch, parts.roomJson, parts.time, parts.fromJson, parts.dataJson, parts.base64 ? ',"encoding":"base64"' : '',
      this.options.historySize, this.options.historyTtl, CHANNEL_PREFIX + room, parts.plain, parts.except || '-',
    ));
    this.lastLatency = performance.now() - started;
    return { offset: Number(offset), epoch };
  }

  /** Records a member in the room's cluster presence and tells every node (delta gets the new count). */
  async presenceJoin(room: string, session: string, member: string, delta: (count: number) => string): Promise<void> {
    const k = keys(room);
    const results = await this.redis.multi().hset(k.presence, session, member).pexpire(k.presence, this.options.historyTtl).hlen(k.presence).exec();
    const count = Number(results?.[2]?.[1] ?? 0);
    await this.redis.publish(CHANNEL_PREFIX + room, `p\n${delta(Number(count))}`);
  }

  /** Removes a member; true when this call removed it (so only one node announces a leave). */
  async presenceLeave(room: string, session: string, delta: (count: number) => string): Promise<boolean> {
    const k = keys(room);
    const removed = await this.redis.hdel(k.presence, session);
    if (removed === 1) await this.redis.publish(CHANNEL_PREFIX + room, `p\n${delta(await this.redis.hlen(k.presence))}`);
    return removed === 1;
  }

  /** Every member of the room across nodes: session → stored JSON. */
  async presence(room: string): Promise<Record<string, string>> {
    return this.redis.hgetall(keys(room).presence);
  }

  /** Refreshes this node's members (their heartbeat timestamps) in one pipeline. */
  async refreshPresence(entries: Array<{ room: string; session: string; member: string }>): Promise<void> {
    if (entries.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const e of entries) pipeline.hset(keys(e.room).presence, e.session, e.member);
    await pipeline.exec();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.ready = false;
    await Promise.all([this.command, this.subscriber].map((client) => client?.quit().catch(() => client.disconnect())));
  }
}

/** The URL without its password, for logs and readiness reasons. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the configured Redis URL';
  }
}
