/**
 * The wire to Redis for a Plaza cluster: the connections, the Lua scripts that sequence room
 * messages, and the commands for presence, node summaries and control requests. It knows keys
 * and formats, nothing of members or logs.
 *
 * Three kinds of Redis (config.ts, parseRedisTarget):
 * - one Redis (`redis://`): a command connection and a subscriber for every channel;
 * - the master a Sentinel set names (`redis+sentinel://`): the same two connections, which
 *   follow the master through a failover (ioredis asks the Sentinels, and drops both
 *   connections when they announce a new master);
 * - a Redis Cluster (`redis+cluster://`): an ioredis Cluster for commands and for the control
 *   channels (classic pub/sub, which the cluster bus carries to every shard: rare requests), and
 *   room channels on sharded pub/sub (redis-shards.ts), so a room's traffic touches one shard.
 *
 * Sequencing: one script (redis-scripts.ts) takes a room's next offsets, appends the messages
 * to the room's stream and publishes them on the room's channel, atomically, so channel order
 * is offset order. The envelope is built in TypeScript on each node.
 *
 * Keys share the room as a hash tag (`plaza:{room}:…`), so one room's keys and channel live in
 * one Redis Cluster slot; room names cannot contain braces. The node summaries share the tag
 * `{nodes}`, so one pipeline reads them all.
 *
 * ioredis is loaded on first use, so a server without --redis never evaluates it.
 */
import type { Cluster as ClusterClient, Redis as RedisClient, RedisOptions } from 'ioredis';
import { parseRedisTarget, redactRedisUrl, type RedisTarget } from '../../redis-target.js';
import type { PlainKind } from '../../engine/publication.js';
import { FETCH_SCRIPT, PUBLISH_SCRIPT, RETIRE_SCRIPT, WITHDRAW_SCRIPT } from './redis-scripts.js';
import { ShardedChannels } from './redis-shards.js';

export interface RedisLinkOptions {
  url: string;
  /** This node's id: its control reply channel and summary key. */
  nodeId: string;
  /** Stream length kept per room (history size). */
  historySize: number;
  /** Room keys expire this long (ms) after their last message. */
  historyTtl: number;
  /** Publish ids remembered per room (issue #22). @default 0 (none) */
  publishIdWindow?: number;
  /** How long a publish id is remembered (ms). @default 120000 */
  publishIdTtl?: number;
}

/** One message for the publish script: everything but the offset Redis gives it. */
export interface PublishParts {
  time: number;
  fromJson: string;
  dataJson: string;
  plain: PlainKind;
  /** The session that must not receive it (excludeSelf), or ''. */
  except: string;
  /** The publishing node's token for this publish ('' when unknown). */
  token: string;
}

/** What the publish script is told besides the message: its id in the room's window (issue #22). */
export interface PublishOnce {
  /** '' for none. */
  publishId: string;
  fingerprint: string;
}

/** Where one message of a batch landed: its offset, and whether its publish id had landed before. */
export interface Sequenced {
  offset: number;
  /** Set for a repeated publish id: the first publish's epoch and fingerprint; nothing was published now. */
  first?: { epoch: string; fingerprint: string };
  /** The publish id was withdrawn (issue #22, item 3): nothing was published, and `offset` means nothing. */
  withdrawn?: true;
}

/** A stored room message as read back from a stream: its parts and its offset. */
export interface StreamEntry extends PublishParts {
  offset: number;
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
  | { kind: 'presence'; room: string; subject: string; json: string }
  /** An ephemeral publish (issue #22, item 8): outside the room's order, never in its stream. */
  | ({ kind: 'ephemeral'; room: string; node: string } & Omit<PublishParts, 'token'>);

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

const CONTROL_CHANNEL = 'plaza:control';
const NODES_KEY = 'plaza:{nodes}';

export function roomKeys(room: string) {
  const tag = `plaza:{${room}}`;
  return {
    epoch: `${tag}:epoch`, offset: `${tag}:offset`, stream: `${tag}:stream`, gen: `${tag}:gen`, presence: `${tag}:presence`, channel: `${tag}:ch`,
    ids: `${tag}:ids`, idq: `${tag}:idq`,
  };
}

function roomOfChannel(channel: string): string | undefined {
  return channel.startsWith('plaza:{') && channel.endsWith('}:ch') ? channel.slice(7, -4) : undefined;
}

const nodeRoomsKey = (nodeId: string) => `plaza:{nodes}:${nodeId}:rooms`;
const replyChannel = (nodeId: string) => `plaza:reply:${nodeId}`;
/** A node's mailbox: POSTs for its SSE streams, carried from other nodes, and their answers. */
const mailChannel = (nodeId: string) => `plaza:sse:${nodeId}`;

/**
 * Parses a room channel's text: `m <offset> <epoch> <time> <plain> <except> <token>\n<from>\n<data>`,
 * `p <subject>\n<json>` or `e <node> <time> <plain> <except>\n<from>\n<data>` (ephemeral).
 */
export function parseChannelText(room: string, text: string): ChannelMessage | undefined {
  const first = text.indexOf('\n');
  if (first === -1) return undefined;
  const head = text.slice(0, first).split(' ');
  if (head[0] === 'p' && head.length === 2) return { kind: 'presence', room, subject: head[1]!, json: text.slice(first + 1) };
  const second = text.indexOf('\n', first + 1);
  if (head[0] === 'e' && head.length === 5 && second !== -1) {
    const [, node, time, plain, except] = head as [string, string, string, string, string];
    if (plain !== 't' && plain !== 'b' && plain !== 'j') return undefined;
    return { kind: 'ephemeral', room, node, time: Number(time), plain, except: except === '-' ? '' : except, fromJson: text.slice(first + 1, second), dataJson: text.slice(second + 1) };
  }
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

/** The scripts, as defineCommand adds them to either kind of client. */
interface Scripts {
  plazaRetire(...args: Array<string | number>): Promise<number>;
  plazaPublish(...args: Array<string | number>): Promise<[string, number[], string[]]>;
  plazaFetch(...args: Array<string | number>): Promise<[string, string, Array<[string, string[]]>]>;
  plazaWithdraw(...args: Array<string | number>): Promise<string>;
}
/** Commands go to one Redis or to a cluster; on a cluster a multi or pipeline holds keys of one slot (see `many`). */
type Commands = (RedisClient | ClusterClient) & Scripts;

/** Reconnect forever with a capped backoff: a Redis restart or failover must heal by itself. */
const retryStrategy = (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 5), 2000);

export class RedisLink {
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
  /** Round trip of the last publish, in ms (for metrics). */
  lastLatency = 0;

  constructor(
    private readonly options: RedisLinkOptions,
    private readonly events: RedisLinkEvents,
  ) {
    this.target = parseRedisTarget(options.url);
  }

  /** Room channels wanted right now. */
  get channelCount(): number {
    return this.subscribed.size;
  }

  private get idTtl(): number {
    return this.options.publishIdTtl ?? 120_000;
  }

  /** Where room messages are published: sharded on a cluster. */
  private get publishCommand(): 'PUBLISH' | 'SPUBLISH' {
    return this.target.kind === 'cluster' ? 'SPUBLISH' : 'PUBLISH';
  }

  /** Only where a failover can hand a room to another master (redis-scripts.ts, Lineage); one Redis keeps its epochs across a restart. */
  private get checkLineage(): '1' | '0' {
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
    command.defineCommand('plazaPublish', { numberOfKeys: 7, lua: PUBLISH_SCRIPT });
    command.defineCommand('plazaFetch', { numberOfKeys: 4, lua: FETCH_SCRIPT });
    command.defineCommand('plazaRetire', { numberOfKeys: 4, lua: RETIRE_SCRIPT });
    command.defineCommand('plazaWithdraw', { numberOfKeys: 2, lua: WITHDRAW_SCRIPT });
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

  private get redis(): Commands {
    if (!this.command || !this.ready) throw new Error(`Redis is not reachable at ${redactRedisUrl(this.options.url)}: ${this.lastError ?? 'connecting'}`);
    return this.command;
  }

  /**
   * Commands whose keys may lie in different slots: one pipeline on one Redis; on a cluster each
   * goes to its slot's master (auto-pipelined, one write per master). Resolves with the replies.
   */
  private async many(commands: Array<[string, ...Array<string | number>]>): Promise<unknown[]> {
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

  /** The room's epoch (created when missing, or renewed when another master serves it), last offset and kept history. */
  async fetch(room: string, newEpoch: string): Promise<RoomState> {
    const k = roomKeys(room);
    const [epoch, offset, entries] = await this.redis.plazaFetch(k.epoch, k.offset, k.stream, k.gen, newEpoch, this.options.historyTtl, this.options.historySize, this.checkLineage);
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
    // XADD trims with MAXLEN ~ (whole stream nodes only), so the stream may hold older entries
    // than the newest historySize; the API serves the same window a join does (the contract suite
    // holds both backplanes to it). Reading from the window again costs a round trip only then.
    const windowStart = Math.max(1, lastOffset - this.options.historySize + 1);
    const oldestKept = oldest.length > 0 ? Number.parseInt(oldest[0]![0], 10) : lastOffset + 1;
    const first = Math.max(oldestKept, Math.min(windowStart, lastOffset + 1));
    let kept = entries;
    if (kept.length > 0 && Number.parseInt(kept[0]![0], 10) < windowStart) {
      kept = (await this.redis.xrange(k.stream, `${windowStart}-0`, '+', 'COUNT', limit)) as Array<[string, string[]]>;
    }
    return { epoch, lastOffset, entries: kept.map(([id, fields]) => parseStreamEntry(id, fields)), first };
  }

  /**
   * Sequences `messages` (one room's, in the order given) in one script call; resolves with the
   * first one's offset (the rest follow it) and the epoch. `newEpoch` starts the room if it has
   * none (or another master's lineage).
   */
  async publish(room: string, newEpoch: string, messages: ReadonlyArray<PublishParts & PublishOnce>): Promise<{ epoch: string; sequenced: Sequenced[] }> {
    const k = roomKeys(room);
    const started = performance.now();
    const args: Array<string | number> = [
      k.epoch, k.offset, k.stream, k.gen, k.channel, k.ids, k.idq,
      newEpoch, this.options.historySize, this.options.historyTtl, this.publishCommand, this.checkLineage,
      this.options.publishIdWindow ?? 0, this.idTtl,
    ];
    for (const m of messages) args.push(m.time, m.fromJson, m.dataJson, m.plain, m.except || '-', m.token || '-', m.publishId, m.fingerprint);
    const [epoch, offsets, repeats] = await this.redis.plazaPublish(...args);
    this.lastLatency = performance.now() - started;
    const sequenced = offsets.map((offset, i): Sequenced => {
      const repeat = repeats[i] ?? '';
      if (repeat === '') return { offset: Number(offset) };
      const space = repeat.indexOf(' ');
      // A withdrawn id's entry is '- 0 <time>' (WITHDRAW_SCRIPT): the script reports it as a repeat of epoch '-'.
      if (repeat.slice(1, space) === '-') return { offset: 0, withdrawn: true };
      return { offset: Number(offset), first: { epoch: repeat.slice(1, space), fingerprint: repeat.slice(space + 1) } };
    });
    return { epoch, sequenced };
  }

  /**
   * Settles `publishId` in `room` (WITHDRAW_SCRIPT): its first place if it was published within
   * the window, or else undefined, the id now recorded as withdrawn.
   */
  async withdraw(room: string, publishId: string, now: number): Promise<{ offset: number; epoch: string } | undefined> {
    const k = roomKeys(room);
    const kept = await this.redis.plazaWithdraw(k.ids, k.idq, publishId, now, this.options.publishIdWindow ?? 0, this.idTtl);
    const match = /^(\S+) (\d+) /.exec(kept);
    if (!match || match[1] === '-') return undefined;
    return { epoch: match[1]!, offset: Number(match[2]) };
  }

  /** Where `publishId` landed in `room`, if its window still has it (a plain read; the publish script is the check). */
  async firstAck(room: string, publishId: string, now: number): Promise<{ offset: number; epoch: string; fingerprint: string } | undefined> {
    const kept = await this.redis.hget(roomKeys(room).ids, publishId);
    const match = kept ? /^(\S+) (\d+) (\d+) ?(.*)$/.exec(kept) : null;
    if (!match || Number(match[3]) <= now - this.idTtl) return undefined;
    return { epoch: match[1]!, offset: Number(match[2]), fingerprint: match[4]! };
  }

  /** Sends an ephemeral publish on the room's channel only: no offset, nothing stored (issue #22, item 8). */
  async publishEphemeral(room: string, parts: Omit<PublishParts, 'token'>): Promise<void> {
    await this.tellRoom(room, `e ${this.options.nodeId} ${parts.time} ${parts.plain} ${parts.except || '-'}\n${parts.fromJson}\n${parts.dataJson}`);
  }

  /** Sends a presence delta on the room's channel (after the room's records were written). */
  private async tellRoom(room: string, text: string): Promise<void> {
    const channel = roomKeys(room).channel;
    await (this.cluster ? this.redis.spublish(channel, text) : this.redis.publish(channel, text));
  }

  /** Writes this node's member count for `room` (0 removes it) in its room summary; with `presenceTtl`, renews its expiry. */
  private async summarize(room: string, localCount: number, presenceTtl?: number): Promise<void> {
    const nodeKey = nodeRoomsKey(this.options.nodeId);
    if (localCount <= 0) await this.redis.hdel(nodeKey, room);
    else if (presenceTtl === undefined) await this.redis.hset(nodeKey, room, localCount);
    else await this.redis.multi().hset(nodeKey, room, localCount).pexpire(nodeKey, presenceTtl * 2).exec();
  }

  /**
   * Records a member in the room's presence hash and this node's room summary, and tells every
   * node (`delta` gets the new count). Both keys expire unless refreshed (refreshPresence).
   */
  async presenceJoin(room: string, session: string, stored: string, localCount: number, presenceTtl: number, delta: (count: number) => string): Promise<void> {
    const k = roomKeys(room);
    // Two slots on a cluster (the room's and the summaries'), so two steps.
    const [results] = await Promise.all([
      this.redis.multi().hset(k.presence, session, stored).pexpire(k.presence, presenceTtl * 2).hlen(k.presence).exec(),
      this.summarize(room, localCount, presenceTtl),
    ]);
    const count = Number(results?.[2]?.[1] ?? 0);
    await this.tellRoom(room, `p ${session}\n${delta(count)}`);
  }

  /** Removes a member; tells every node only when this call removed it (one leave per member). */
  async presenceLeave(room: string, session: string, localCount: number | undefined, delta: (count: number) => string): Promise<boolean> {
    const k = roomKeys(room);
    const [results] = await Promise.all([
      this.redis.multi().hdel(k.presence, session).hlen(k.presence).exec(),
      localCount === undefined ? undefined : this.summarize(room, localCount),
    ]);
    const removed = Number(results?.[0]?.[1] ?? 0) === 1;
    if (removed) await this.tellRoom(room, `p ${session}\n${delta(Number(results?.[1]?.[1] ?? 0))}`);
    return removed;
  }

  /** Every member of the room across nodes: session → stored JSON. */
  async presence(room: string): Promise<Record<string, string>> {
    return this.redis.hgetall(roomKeys(room).presence);
  }

  /** presence() of several rooms at once. */
  async presences(rooms: string[]): Promise<Array<Record<string, string>>> {
    const replies = await this.many(rooms.map((room) => ['hgetall', roomKeys(room).presence]));
    return replies.map((value) => (value ?? {}) as Record<string, string>);
  }

  /**
   * Replaces the room's epoch with `next` (and empties its offsets and history) if it still is
   * `current`: used when Redis lost messages of `current` that nodes had already delivered.
   */
  async retireEpoch(room: string, current: string, next: string): Promise<void> {
    const k = roomKeys(room);
    await this.redis.plazaRetire(k.epoch, k.offset, k.stream, k.gen, current, next, this.options.historyTtl, this.checkLineage);
  }

  /**
   * This node's heartbeat: its members (with fresh timestamps), its room summary and its entry
   * in the node set, all given a new expiry.
   */
  async refresh(
    rooms: Array<{ room: string; members: Array<{ session: string; stored: string }> }>,
    presenceTtl: number,
    now: number,
  ): Promise<void> {
    const nodeKey = nodeRoomsKey(this.options.nodeId);
    // The summary is rewritten atomically, so a reader never sees it half written.
    const summary = this.redis.multi().del(nodeKey);
    const members: Array<[string, ...Array<string | number>]> = [];
    for (const { room, members: list } of rooms) {
      if (list.length === 0) continue;
      const key = roomKeys(room).presence;
      members.push(['hset', key, ...list.flatMap((member) => [member.session, member.stored])], ['pexpire', key, presenceTtl * 2]);
      summary.hset(nodeKey, room, list.length);
    }
    summary
      .pexpire(nodeKey, presenceTtl * 2)
      .zadd(NODES_KEY, now, this.options.nodeId)
      .zremrangebyscore(NODES_KEY, '-inf', now - presenceTtl * 2)
      .pexpire(NODES_KEY, presenceTtl * 4);
    await Promise.all([summary.exec(), this.many(members)]);
  }

  /** Room → members summed over the nodes seen within `presenceTtl`. */
  async roomCounts(presenceTtl: number, now: number): Promise<Map<string, number>> {
    const nodes = await this.redis.zrangebyscore(NODES_KEY, now - presenceTtl, '+inf');
    if (!nodes.includes(this.options.nodeId)) nodes.push(this.options.nodeId);
    // Every summary shares the {nodes} slot: one pipeline, on a cluster too.
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

  /** Epoch and last offset of each room. */
  async positions(rooms: string[]): Promise<Array<{ epoch: string | null; lastOffset: number }>> {
    const replies = await this.many(rooms.flatMap((room) => [['get', roomKeys(room).epoch], ['get', roomKeys(room).offset]] as Array<[string, string]>));
    return rooms.map((_, i) => ({
      epoch: (replies[i * 2] as string | null) ?? null,
      lastOffset: Number(replies[i * 2 + 1] ?? 0),
    }));
  }

  /**
   * Sends a control request to every node; resolves with how many nodes will answer. One Redis
   * counts the subscribers it handed the request to; a cluster's PUBLISH counts only those on
   * the node that took it, so there the nodes seen alive within `presenceTtl` are counted.
   */
  async control(request: ControlRequest, presenceTtl: number): Promise<number> {
    const received = await this.redis.publish(CONTROL_CHANNEL, JSON.stringify(request));
    if (!this.cluster) return received;
    const alive = await this.redis.zcount(NODES_KEY, Date.now() - presenceTtl, '+inf');
    return Math.max(1, alive);
  }

  /**
   * Sends a text to node `to`'s mailbox; false when one Redis counted no subscriber there. A Redis
   * Cluster counts only the subscribers of the master that took the PUBLISH, so it never says false.
   */
  async mail(to: string, text: string): Promise<boolean> {
    const received = await this.redis.publish(mailChannel(to), text);
    return this.cluster !== undefined || received > 0;
  }

  async reply(to: string, id: string, count: number): Promise<void> {
    await this.redis.publish(replyChannel(to), JSON.stringify({ id, count }));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.ready = false;
    this.shards?.close();
    const clients: Array<RedisClient | ClusterClient | undefined> = [this.command, this.subscriber];
    await Promise.all(clients.map((client) => client?.quit().catch(() => client.disconnect())));
  }
}
