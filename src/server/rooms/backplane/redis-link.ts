/**
 * The wire to Redis for a Plaza cluster: two connections (commands, and a subscriber for the
 * room channels), the Lua scripts that sequence room messages, and the commands for presence,
 * node summaries and control requests. It knows keys and formats, nothing of members or logs.
 *
 * Sequencing: one script takes a room's next offset, appends the message to the room's stream
 * (under the stream ID `<offset>-1`, so history pages by offset) and publishes it on the room's
 * channel, atomically, so channel order is offset order. The script stores and sends the parts
 * of a message (time, sender, data); the envelope is built in TypeScript on each node.
 *
 * Keys share the room as a hash tag (`plaza:{room}:…`), so one room's keys and channel live in
 * one Redis Cluster slot; room names cannot contain braces.
 *
 * ioredis is loaded on first use, so a server without --redis never evaluates it.
 */
import type { Redis as RedisClient } from 'ioredis';
import type { PlainKind } from '../../engine/publication.js';

export interface RedisLinkOptions {
  url: string;
  /** This node's id: its control reply channel and summary key. */
  nodeId: string;
  /** Stream length kept per room (history size). */
  historySize: number;
  /** Room keys expire this long (ms) after their last message. */
  historyTtl: number;
}

/** A stored room message as read back from a stream. */
export interface StreamEntry {
  offset: number;
  time: number;
  fromJson: string;
  dataJson: string;
  plain: PlainKind;
  /** The session that must not receive it (excludeSelf), or ''. */
  except: string;
  /** The publishing node's token for this publish ('' when unknown). */
  token: string;
}

export interface RoomState {
  epoch: string;
  lastOffset: number;
  /** The newest `historySize` entries, oldest first. */
  entries: StreamEntry[];
}

/** What travels on a room's channel. */
export type ChannelMessage =
  | ({ kind: 'message'; room: string; epoch: string } & StreamEntry)
  | { kind: 'presence'; room: string; subject: string; json: string };

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
}

const CONTROL_CHANNEL = 'plaza:control';
const NODES_KEY = 'plaza:nodes';

const PUBLISH_SCRIPT = `
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
  redis.call('DEL', KEYS[2], KEYS[3])
end
local offset = redis.call('INCR', KEYS[2])
local function append()
  return redis.pcall('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], offset .. '-1', 't', ARGV[2], 'f', ARGV[3], 'd', ARGV[4], 'k', ARGV[5], 'x', ARGV[6], 'n', ARGV[7])
end
local added = append()
if type(added) == 'table' and added.err then
  -- A stream this script did not write (an older Plaza's): the room starts a new epoch over it.
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
  redis.call('DEL', KEYS[2], KEYS[3])
  offset = redis.call('INCR', KEYS[2])
  added = append()
  if type(added) == 'table' and added.err then return redis.error_reply(added.err) end
end
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[9]) end
redis.call('PUBLISH', ARGV[10], 'm ' .. offset .. ' ' .. epoch .. ' ' .. ARGV[2] .. ' ' .. ARGV[5] .. ' ' .. ARGV[6] .. ' ' .. ARGV[7] .. '\\n' .. ARGV[3] .. '\\n' .. ARGV[4])
return {offset, epoch}
`;

/** The room's epoch (created, with an empty history, when missing), last offset and newest entries. */
const FETCH_SCRIPT = `
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch, 'PX', ARGV[2])
  redis.call('DEL', KEYS[2], KEYS[3])
end
local offset = redis.call('GET', KEYS[2]) or '0'
local entries = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', ARGV[3])
return {epoch, offset, entries}
`;

/** Compare-and-set of a room's epoch; the new epoch starts with no offsets and no history. */
const RETIRE_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[2], KEYS[3])
return 1
`;

export function roomKeys(room: string) {
  const tag = `plaza:{${room}}`;
  return { epoch: `${tag}:epoch`, offset: `${tag}:offset`, stream: `${tag}:stream`, presence: `${tag}:presence`, channel: `${tag}:ch` };
}

function roomOfChannel(channel: string): string | undefined {
  return channel.startsWith('plaza:{') && channel.endsWith('}:ch') ? channel.slice(7, -4) : undefined;
}

const nodeRoomsKey = (nodeId: string) => `plaza:node:${nodeId}:rooms`;
const replyChannel = (nodeId: string) => `plaza:reply:${nodeId}`;

/** Parses a room channel's text: `m <offset> <epoch> <time> <plain> <except> <token>\n<from>\n<data>` or `p <subject>\n<json>`. */
export function parseChannelText(room: string, text: string): ChannelMessage | undefined {
  const first = text.indexOf('\n');
  if (first === -1) return undefined;
  const head = text.slice(0, first).split(' ');
  if (head[0] === 'p' && head.length === 2) return { kind: 'presence', room, subject: head[1]!, json: text.slice(first + 1) };
  const second = text.indexOf('\n', first + 1);
  if (head[0] !== 'm' || head.length !== 7 || second === -1) return undefined;
  const [, offset, epoch, time, plain, except, token] = head as [string, string, string, string, string, string, string];
  if (plain !== 't' && plain !== 'b' && plain !== 'j') return undefined;
  return {
    kind: 'message',
    room,
    offset: Number(offset),
    epoch,
    time: Number(time),
    plain,
    except: except === '-' ? '' : except,
    token: token === '-' ? '' : token,
    fromJson: text.slice(first + 1, second),
    dataJson: text.slice(second + 1),
  };
}

function parseStreamEntry(id: string, fields: string[]): StreamEntry {
  const field = (name: string) => {
    for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1] ?? '';
    return '';
  };
  const plain = field('k');
  return {
    offset: Number.parseInt(id, 10),
    time: Number(field('t')),
    fromJson: field('f'),
    dataJson: field('d'),
    plain: plain === 'b' || plain === 'j' ? plain : 't',
    except: field('x') === '-' ? '' : field('x'),
    token: field('n') === '-' ? '' : field('n'),
  };
}

type ScriptClient = RedisClient & {
  plazaRetire(...args: Array<string | number>): Promise<number>;
  plazaPublish(...args: Array<string | number>): Promise<[number, string]>;
  plazaFetch(...args: Array<string | number>): Promise<[string, string, Array<[string, string[]]>]>;
};

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

export class RedisLink {
  private command: ScriptClient | undefined;
  private subscriber: RedisClient | undefined;
  /** Room channels wanted; restored after every reconnect. */
  private readonly subscribed = new Set<string>();
  private closed = false;
  ready = false;
  lastError: string | undefined;
  /** Round trip of the last publish, in ms (for metrics). */
  lastLatency = 0;

  constructor(
    private readonly options: RedisLinkOptions,
    private readonly events: RedisLinkEvents,
  ) {}

  /** Room channels wanted right now. */
  get channelCount(): number {
    return this.subscribed.size;
  }

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
    // Named, so an operator can tell the nodes' connections apart in CLIENT LIST.
    const command = new Redis(this.options.url, { ...common, connectionName: `plaza-${this.options.nodeId}-command` }) as ScriptClient;
    // Subscriptions are restored by hand on 'ready' (they may have been asked for while offline).
    const subscriber = new Redis(this.options.url, { ...common, autoResubscribe: false, connectionName: `plaza-${this.options.nodeId}-subscriber` });
    this.command = command;
    this.subscriber = subscriber;
    command.defineCommand('plazaPublish', { numberOfKeys: 3, lua: PUBLISH_SCRIPT });
    command.defineCommand('plazaFetch', { numberOfKeys: 3, lua: FETCH_SCRIPT });
    command.defineCommand('plazaRetire', { numberOfKeys: 3, lua: RETIRE_SCRIPT });
    for (const client of [command, subscriber]) {
      client.on('error', (error: Error) => {
        this.lastError = error.message;
      });
      client.on('ready', () => this.updateReady());
      client.on('close', () => this.updateReady());
    }
    subscriber.on('message', (channel: string, text: string) => this.onMessage(channel, text));
    // Not awaited to completion: a server must start (and say "not ready") while Redis is away.
    command.connect().catch(() => undefined);
    subscriber.connect().catch(() => undefined);
  }

  private onMessage(channel: string, text: string): void {
    const room = roomOfChannel(channel);
    if (room !== undefined) {
      const message = parseChannelText(room, text);
      if (message) this.events.onChannel(message);
      return;
    }
    try {
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
    const ready = this.command?.status === 'ready' && this.subscriber?.status === 'ready';
    if (ready === this.ready || this.closed) return;
    this.ready = ready;
    if (!ready) {
      this.events.onDown(this.lastError ?? 'connection to Redis lost');
      return;
    }
    this.lastError = undefined;
    const channels = [CONTROL_CHANNEL, replyChannel(this.options.nodeId), ...[...this.subscribed].map((room) => roomKeys(room).channel)];
    this.subscriber!.subscribe(...channels).then(
      () => {
        if (this.ready) this.events.onReady();
      },
      (error: Error) => {
        this.lastError = error.message;
      },
    );
  }

  private get redis(): ScriptClient {
    if (!this.command || !this.ready) throw new Error(`Redis is not reachable at ${redactUrl(this.options.url)}: ${this.lastError ?? 'connecting'}`);
    return this.command;
  }

  async subscribe(room: string): Promise<void> {
    this.subscribed.add(room);
    if (this.subscriber?.status === 'ready') await this.subscriber.subscribe(roomKeys(room).channel);
  }

  async unsubscribe(room: string): Promise<void> {
    this.subscribed.delete(room);
    if (this.subscriber?.status === 'ready') await this.subscriber.unsubscribe(roomKeys(room).channel);
  }

  /** The room's epoch (created when missing), last offset and kept history. */
  async fetch(room: string, newEpoch: string): Promise<RoomState> {
    const k = roomKeys(room);
    const [epoch, offset, entries] = await this.redis.plazaFetch(k.epoch, k.offset, k.stream, newEpoch, this.options.historyTtl, this.options.historySize);
    const lastOffset = Number(offset);
    // Only entries this format wrote (ID `<offset>-1`, within the offsets given out) are history.
    const parsed = entries
      .filter(([id]) => /^\d+-1$/.test(id))
      .map(([id, fields]) => parseStreamEntry(id, fields))
      .filter((entry) => entry.offset <= lastOffset)
      .reverse();
    return { epoch, lastOffset, entries: parsed };
  }

  /** Up to `limit` entries after offset `since`, with the room's position; undefined when the room has none. */
  async page(room: string, since: number, limit: number): Promise<{ epoch: string; lastOffset: number; entries: StreamEntry[]; first: number } | undefined> {
    const k = roomKeys(room);
    const [[, epoch], [, offset], [, entries], [, oldest]] = (await this.redis
      .multi()
      .get(k.epoch)
      .get(k.offset)
      .xrange(k.stream, `${since + 1}-0`, '+', 'COUNT', limit)
      .xrange(k.stream, '-', '+', 'COUNT', 1)
      .exec()) as [[unknown, string | null], [unknown, string | null], [unknown, Array<[string, string[]]>], [unknown, Array<[string, string[]]>]];
    if (epoch === null) return undefined;
    const lastOffset = Number(offset ?? 0);
    const first = oldest.length > 0 ? Number.parseInt(oldest[0]![0], 10) : lastOffset + 1;
    return { epoch, lastOffset, entries: entries.map(([id, fields]) => parseStreamEntry(id, fields)), first };
  }

  async publish(
    room: string,
    parts: { time: number; fromJson: string; dataJson: string; plain: PlainKind; except: string; token: string; newEpoch: string },
  ): Promise<{ offset: number; epoch: string }> {
    const k = roomKeys(room);
    const started = performance.now();
    const [offset, epoch] = await this.redis.plazaPublish(
      k.epoch, k.offset, k.stream,
      parts.newEpoch, parts.time, parts.fromJson, parts.dataJson, parts.plain, parts.except || '-', parts.token || '-',
      this.options.historySize, this.options.historyTtl, k.channel,
    );
    this.lastLatency = performance.now() - started;
    return { offset: Number(offset), epoch };
  }

  /**
   * Records a member in the room's presence hash and this node's room summary, and tells every
   * node (`delta` gets the new count). Both keys expire unless refreshed (refreshPresence).
   */
  async presenceJoin(room: string, session: string, stored: string, localCount: number, presenceTtl: number, delta: (count: number) => string): Promise<void> {
    const k = roomKeys(room);
    const nodeKey = nodeRoomsKey(this.options.nodeId);
    const results = await this.redis
      .multi()
      .hset(k.presence, session, stored)
      .pexpire(k.presence, presenceTtl * 2)
      .hlen(k.presence)
      .hset(nodeKey, room, localCount)
      .pexpire(nodeKey, presenceTtl * 2)
      .exec();
    const count = Number(results?.[2]?.[1] ?? 0);
    await this.redis.publish(k.channel, `p ${session}\n${delta(count)}`);
  }

  /** Removes a member; tells every node only when this call removed it (one leave per member). */
  async presenceLeave(room: string, session: string, localCount: number | undefined, delta: (count: number) => string): Promise<boolean> {
    const k = roomKeys(room);
    const pipeline = this.redis.multi().hdel(k.presence, session).hlen(k.presence);
    if (localCount !== undefined) {
      const nodeKey = nodeRoomsKey(this.options.nodeId);
      if (localCount > 0) pipeline.hset(nodeKey, room, localCount);
      else pipeline.hdel(nodeKey, room);
    }
    const results = await pipeline.exec();
    const removed = Number(results?.[0]?.[1] ?? 0) === 1;
    if (removed) await this.redis.publish(k.channel, `p ${session}\n${delta(Number(results?.[1]?.[1] ?? 0))}`);
    return removed;
  }

  /** Every member of the room across nodes: session → stored JSON. */
  async presence(room: string): Promise<Record<string, string>> {
    return this.redis.hgetall(roomKeys(room).presence);
  }

  /** presence() of several rooms in one pipeline. */
  async presences(rooms: string[]): Promise<Array<Record<string, string>>> {
    if (rooms.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const room of rooms) pipeline.hgetall(roomKeys(room).presence);
    return ((await pipeline.exec()) ?? []).map(([, value]) => (value ?? {}) as Record<string, string>);
  }

  /**
   * Replaces the room's epoch with `next` (and empties its offsets and history) if it still is
   * `current`: used when Redis lost messages of `current` that nodes had already delivered.
   */
  async retireEpoch(room: string, current: string, next: string): Promise<void> {
    const k = roomKeys(room);
    await this.redis.plazaRetire(k.epoch, k.offset, k.stream, current, next, this.options.historyTtl);
  }

  /**
   * This node's heartbeat: its members (with fresh timestamps), its room summary and its entry
   * in the node set, all given a new expiry, in one pipeline.
   */
  async refresh(
    rooms: Array<{ room: string; members: Array<{ session: string; stored: string }> }>,
    presenceTtl: number,
    now: number,
  ): Promise<void> {
    const nodeKey = nodeRoomsKey(this.options.nodeId);
    const pipeline = this.redis.pipeline();
    pipeline.del(nodeKey);
    for (const { room, members } of rooms) {
      const key = roomKeys(room).presence;
      for (const member of members) pipeline.hset(key, member.session, member.stored);
      if (members.length > 0) {
        pipeline.pexpire(key, presenceTtl * 2);
        pipeline.hset(nodeKey, room, members.length);
      }
    }
    pipeline.pexpire(nodeKey, presenceTtl * 2);
    pipeline.zadd(NODES_KEY, now, this.options.nodeId);
    pipeline.zremrangebyscore(NODES_KEY, '-inf', now - presenceTtl * 2);
    pipeline.pexpire(NODES_KEY, presenceTtl * 4);
    await pipeline.exec();
  }

  /** Room → members summed over the nodes seen within `presenceTtl`. */
  async roomCounts(presenceTtl: number, now: number): Promise<Map<string, number>> {
    const nodes = await this.redis.zrangebyscore(NODES_KEY, now - presenceTtl, '+inf');
    if (!nodes.includes(this.options.nodeId)) nodes.push(this.options.nodeId);
    const pipeline = this.redis.pipeline();
    for (const node of nodes) pipeline.hgetall(nodeRoomsKey(node));
    const totals = new Map<string, number>();
    for (const [, summary] of (await pipeline.exec()) ?? []) {
      for (const [room, count] of Object.entries((summary ?? {}) as Record<string, string>)) {
        totals.set(room, (totals.get(room) ?? 0) + (Number(count) || 0));
      }
    }
    return totals;
  }

  /** Epoch and last offset of each room, in one pipeline. */
  async positions(rooms: string[]): Promise<Array<{ epoch: string | null; lastOffset: number }>> {
    const pipeline = this.redis.pipeline();
    for (const room of rooms) pipeline.get(roomKeys(room).epoch).get(roomKeys(room).offset);
    const results = (await pipeline.exec()) ?? [];
    return rooms.map((_, i) => ({
      epoch: (results[i * 2]?.[1] as string | null) ?? null,
      lastOffset: Number(results[i * 2 + 1]?.[1] ?? 0),
    }));
  }

  /** Sends a control request to every node; resolves with how many nodes received it. */
  async control(request: ControlRequest): Promise<number> {
    return this.redis.publish(CONTROL_CHANNEL, JSON.stringify(request));
  }

  async reply(to: string, id: string, count: number): Promise<void> {
    await this.redis.publish(replyChannel(to), JSON.stringify({ id, count }));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.ready = false;
    await Promise.all([this.command, this.subscriber].map((client) => client?.quit().catch(() => client.disconnect())));
  }
}
