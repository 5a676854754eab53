/**
 * Several Plaza servers as one hub through Redis (--redis): the Backplane contract (types.ts)
 * kept across nodes.
 *
 * Order: every room message is sequenced by one Lua script in Redis (redis-link.ts), and every
 * node, the publishing one included, delivers it when the room's channel brings it back, so all
 * nodes see one order. A node sends a room's publishes in batches, one batch on its way at a
 * time (publish-batches.ts), so a connection's publishes keep their order even where a Redis
 * Cluster redirects or retries a command. A publish resolves when its own message has been
 * delivered here (matched by a per-publish token carried on the channel and kept in the
 * stream), never on the script's reply alone: the reply and the channel travel on two
 * connections and the reply often wins.
 *
 * Mirrors: a node keeps a local log (the same HistoryStore as one server uses) for each room it
 * has members in, filled from the room's stream when it is first joined and then from the
 * channel, so joins, resumes and presence snapshots are answered here. A mirror is "synced"
 * while it is continuous with the cluster; a gap on the channel, a lost message or Redis coming
 * back makes it re-read the stream (a resync). A room with no member here is dropped at once,
 * log and all: a log nobody follows goes stale, and a stale log must never give out offsets.
 *
 * Outages: while Redis is away, rooms with members here go on as islands: the first message
 * published on one switches its log to a fresh island epoch (until then it still is a faithful,
 * if old, copy of the cluster's and is served as such). When Redis returns every mirror is
 * re-read; members who missed nothing are caught up silently, the others get an unsolicited
 * `joined` with `recovered: false`. If Redis came back with less than this node had seen under
 * the same epoch (an older snapshot), the room's epoch is replaced in Redis, so no offset is
 * ever given to two different messages.
 *
 * Failovers (Sentinel, Redis Cluster): a promoted replica may lack messages its old master gave
 * out; the scripts give the room a new epoch when another master first serves it (redis-link.ts,
 * Lineage), and every node re-reads it then, so members get a reset, never a reused offset. On
 * a cluster a single shard failing over makes only its rooms unavailable for a moment; the
 * node stays up (no islands) and re-reads each room whose channel lapsed (onLapse).
 */
import { randomBytes } from 'node:crypto';
import { ephemeralEnvelope, joinedEnvelope, messageEnvelope } from '../../engine/envelope.js';
import { newEpoch, type HistoryStore, type RoomLog } from '../history.js';
import type { Member, Room } from '../../engine/hub.js';
import type { Logger } from '../../logger.js';
import { Publication, StoredPublication, plainKindOf, type Payload } from '../../engine/publication.js';
import { deliverEphemeral, LocalBackplane, localMembers, noWindow, repeatAnswer, serverFull, withdrawn } from './local.js';
import { sequence } from './sequence.js';
import { ClusterDirectory } from './redis-directory.js';
import { redactRedisUrl } from '../../redis-target.js';
import { PublishBatches } from './publish-batches.js';
import type { PublishWindow } from '../publish-window.js';
import { RedisLink, type ChannelMessage, type PublishOnce, type PublishParts, type RoomState, type Sequenced, type StreamEntry } from './redis-link.js';
import {
  BackplaneError,
  type Backplane,
  type BackplaneStats,
  type PublishIdCounts,
  type BackplaneStatus,
  type DisconnectSelector,
  type Draft,
  type HistoryPage,
  type LocalNode,
  type MemberList,
  type NodeMail,
  type Published,
  type RoomSummary,
} from './types.js';

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
   * This node's own memory of publish ids: what it published through Redis and on islands. While
   * Redis is away a retry is answered from it instead of being published again on the island.
   * @default none (island publishes are never deduplicated)
   */
  localIds?: PublishWindow;
}

/** One publish of this node between its script call and its delivery here. */
interface Pending {
  readonly token: string;
  readonly room: string;
  readonly payload: Payload;
  readonly dataJson: string;
  readonly except: Member | undefined;
  readonly bytes: number;
  /** What the publish script gets. */
  readonly parts: PublishParts & PublishOnce;
  /** The script found its publish id in the window: settled once `offset` is delivered here, with the first publish's fingerprint. */
  repeat?: { fingerprint: string };
  readonly sentAt: number;
  /** Known once the script answered. */
  offset?: number;
  epoch?: string;
  settled: boolean;
  resolve(published: Published): void;
  reject(error: Error): void;
}

interface Mirror {
  readonly room: string;
  readonly roomJson: string;
  readonly log: RoomLog;
  /** Continuous with the cluster and following the channel. */
  synced: boolean;
  /** The log's epoch is this node's own (never synced, or island messages were published). */
  island: boolean;
  syncing: Promise<void> | undefined;
  /** Another resync was asked for while one ran. */
  again: boolean;
  /** Channel messages that arrived during a resync, and their bytes. */
  buffer: ChannelMessage[];
  bufferBytes: number;
  overflowed: boolean;
  /** Re-reads have failed since the last good one (logged once, not at every retry). */
  failing: boolean;
  /** Own publishes the script has sequenced, waiting for their delivery here. */
  readonly pending: Set<Pending>;
}

/** Channel messages (and their bytes) held for one room during a resync; past either, the resync runs again. */
const MAX_SYNC_BUFFER = 10_000;
const MAX_SYNC_BUFFER_BYTES = 8 * 1024 * 1024;
/** A sequenced publish not delivered after this long means the channel lost it: the room is re-read. */
const LOST_AFTER_MS = 1000;
/** An unanswered script call this old means Redis has stopped answering (/readyz says so). */
const STALLED_AFTER_MS = 5000;
/** How often the watchdog looks for rooms to re-read. */
const WATCHDOG_MS = 250;

function unavailable(why: string): BackplaneError {
  return new BackplaneError('unavailable', `the cluster backplane ${why}; retry shortly`);
}

export class RedisBackplane implements Backplane {
  readonly nodeId = randomBytes(6).toString('base64url');
  readonly link: RedisLink;
  /** Answers for this node alone while Redis is away, through the Backplane interface only. */
  private readonly local: Backplane;
  private readonly mirrors = new Map<string, Mirror>();
  private readonly pendings = new Map<string, Pending>();
  private inflightBytes = 0;
  /** Ephemeral publishes sent to Redis and not answered yet (counted against maxInflight). */
  private ephemeralInflight = 0;
  private seq = 0;
  private rejected = 0;
  /** Repeated publish ids answered with their first place (for /metrics). */
  duplicates = 0;
  private resyncs = 0;
  private resets = 0;
  /** Resyncs whose buffer overflowed and had to read the room again. */
  syncOverflows = 0;
  private readonly directory: ClusterDirectory;
  private readonly batches = new PublishBatches<Pending>({ send: (room, batch) => this.sendBatch(room, batch), bytes: (pending) => pending.bytes });
  private presenceTimer: NodeJS.Timeout | undefined;
  private watchdogTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private mailListener: ((text: string) => void) | undefined;
  readonly mail: NodeMail = {
    nodeId: this.nodeId,
    send: (to, text) => this.link.mail(to, text),
    receive: (listener) => {
      this.mailListener = listener;
    },
  };

  constructor(
    private readonly options: RedisBackplaneOptions,
    private readonly node: LocalNode,
    private readonly store: HistoryStore,
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
        onChannel: (message) => this.onChannel(message),
        onControl: (request) => this.directory.onControl(request),
        onReply: (id, count) => this.directory.onReply(id, count),
        onMail: (text) => this.mailListener?.(text),
        onLapse: (room) => this.onLapse(room),
      },
    );
    this.directory = new ClusterDirectory(this.link, node, this.nodeId, options.presenceTtl, logger);
  }

  async start(): Promise<void> {
    await this.link.connect();
    this.presenceTimer = setInterval(() => {
      this.directory.refresh(this.mirrors.keys()).catch((error: Error) => this.logger.debug('presence refresh failed', { error: error.message }));
    }, Math.max(250, Math.floor(this.options.presenceTtl / 3)));
    this.presenceTimer.unref();
    this.watchdogTimer = setInterval(() => this.watchdog(), WATCHDOG_MS);
    this.watchdogTimer.unref();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.presenceTimer);
    clearInterval(this.watchdogTimer);
    for (const pending of this.pendings.values()) this.fail(pending, unavailable('is shutting down'));
    this.directory.close();
    await this.link.close();
  }

  get status(): BackplaneStatus {
    if (!this.link.ready) {
      return { up: false, reason: `Redis at ${redactRedisUrl(this.options.url)} is unreachable (${this.link.lastError ?? 'connecting'}); serving local members only` };
    }
    const now = Date.now();
    for (const pending of this.pendings.values()) {
      if (pending.offset === undefined && now - pending.sentAt > STALLED_AFTER_MS) {
        return { up: false, reason: `Redis at ${redactRedisUrl(this.options.url)} has not answered a publish for ${Math.round((now - pending.sentAt) / 1000)} s` };
      }
    }
    return { up: true };
  }

  get stats(): BackplaneStats {
    return {
      rooms: this.mirrors.size,
      channels: this.link.channelCount,
      inflight: this.pendings.size,
      inflightBytes: this.inflightBytes,
      rejected: this.rejected,
      resyncs: this.resyncs,
      resets: this.resets,
      publishLatencyMs: this.link.lastLatency,
    };
  }

  get publishIdCounts(): PublishIdCounts {
    // Repeats answered by Redis, and by this node's own memory while Redis was away.
    return { entries: this.options.localIds?.size ?? 0, duplicates: this.duplicates + (this.options.localIds?.duplicates ?? 0) };
  }

  // ---- rooms followed here --------------------------------------------------------------

  async attach(room: string): Promise<RoomLog> {
    let mirror = this.mirrors.get(room);
    if (!mirror) {
      // Nothing touches Redis before the room slot is secured: a refused join leaves no state.
      const log = this.store.open(room);
      if (!log) throw serverFull();
      mirror = {
        room, roomJson: JSON.stringify(room), log, synced: false, island: true, syncing: undefined, again: false,
        buffer: [], bufferBytes: 0, overflowed: false, failing: false, pending: new Set(),
      };
      this.mirrors.set(room, mirror);
    }
    mirror.log.hold();
    if (this.link.ready && !mirror.synced) {
      // If Redis fails now the member still joins, answered from the island or stale-but-faithful log.
      await this.sync(mirror).catch((error: Error) => this.logger.warn('room sync failed; answering from this node', { room, error: error.message }));
    }
    return mirror.log;
  }

  detach(room: string): void {
    const mirror = this.mirrors.get(room);
    if (!mirror) return;
    if (mirror.log.release() > 0) return;
    this.mirrors.delete(room);
    this.store.remove(room);
    this.link.unsubscribe(room).catch(() => undefined);
    // Nobody here is left to hand them to: delivered to this node's members, vacuously.
    for (const pending of mirror.pending) this.settle(pending, 0);
  }

  // ---- publishing --------------------------------------------------------------------------

  publish(draft: Draft): Promise<Published> {
    const mirror = this.mirrors.get(draft.room);
    if (!this.link.ready) {
      if (!mirror) return Promise.reject(unavailable('is unreachable and no member of this room is here'));
      return Promise.resolve(this.islandPublish(mirror, draft));
    }
    const bytes = draft.dataJson.length + draft.fromJson.length + draft.roomJson.length;
    if (this.pendings.size >= this.options.maxInflight || this.inflightBytes + bytes > this.options.maxInflightBytes) {
      this.rejected++;
      return Promise.reject(unavailable('is falling behind (too many publishes on their way to Redis)'));
    }
    return new Promise<Published>((resolve, reject) => {
      const token = `${this.nodeId}.${(++this.seq).toString(36)}`;
      const pending: Pending = {
        token, room: draft.room, payload: draft.payload, dataJson: draft.dataJson, except: draft.except, bytes,
        parts: {
          time: draft.time, fromJson: draft.fromJson, dataJson: draft.dataJson, plain: plainKindOf(draft.payload), except: draft.except?.id ?? '', token,
          publishId: draft.publishId ?? '', fingerprint: draft.fingerprint ?? '',
        },
        sentAt: Date.now(), settled: false, resolve, reject,
      };
      this.pendings.set(pending.token, pending);
      this.inflightBytes += bytes;
      this.batches.add(draft.room, pending);
    });
  }

  /** Sends one batch of a room's publishes (publish-batches.ts: one batch per room on its way at a time). */
  private async sendBatch(room: string, batch: Pending[]): Promise<void> {
    // Publishes already answered (the node is closing) are not sent.
    const live = batch.filter((pending) => !pending.settled);
    if (live.length === 0) return;
    if (!this.link.ready) {
      for (const pending of live) this.fail(pending, unavailable('is unreachable'));
      return;
    }
    try {
      const { epoch, sequenced } = await this.link.publish(room, newEpoch(), live.map((pending) => pending.parts));
      live.forEach((pending, i) => this.onSequenced(pending, sequenced[i]!, epoch));
    } catch (error) {
      // Redis's own words (MOVED or READONLY with node addresses, a script's error) are for the
      // log: clients and the HTTP API get the code and this sentence.
      this.logger.warn('Redis did not confirm a publish', { room, error: (error as Error).message });
      const why = unavailable('did not confirm the publish; it may or may not have been published');
      for (const pending of live) this.fail(pending, why);
      // The room's publishes queued behind this batch are refused too, never sent: a client that
      // sends the failed ones again (with their publish ids) keeps its order (issue #22).
      for (const pending of this.batches.drain(room)) this.fail(pending, unavailable('did not confirm an earlier publish of this room; this one was not sent'));
    }
  }

  /** The script answered: the message has its place; wait for it to come by here. */
  private onSequenced(pending: Pending, { offset, first, withdrawn: refused }: Sequenced, epoch: string): void {
    if (pending.settled) return; // its channel message was faster
    if (refused) return this.fail(pending, withdrawn());
    pending.offset = offset;
    pending.epoch = first ? first.epoch : epoch;
    if (first) pending.repeat = { fingerprint: first.fingerprint };
    const mirror = this.mirrors.get(pending.room);
    if (!mirror) return this.settle(pending, 0); // no member here: nothing to wait for
    const log = mirror.log;
    if (mirror.synced && log.epoch === pending.epoch && log.lastOffset >= offset) return this.settle(pending, 0);
    // A repeat from an epoch this node has left: its message is behind every member here.
    if (first && first.epoch !== epoch) return this.settle(pending, 0);
    mirror.pending.add(pending);
  }

  private settle(pending: Pending, delivered: number): void {
    if (pending.settled) return;
    pending.settled = true;
    this.release(pending);
    if (pending.repeat) this.duplicates++;
    else this.options.localIds?.landed(pending.room, pending.parts.publishId, { offset: pending.offset!, epoch: pending.epoch!, time: pending.parts.time, fingerprint: pending.parts.fingerprint });
    pending.resolve(pending.repeat
      ? { offset: pending.offset!, epoch: pending.epoch!, delivered: 0, duplicate: true, fingerprint: pending.repeat.fingerprint }
      : { offset: pending.offset!, epoch: pending.epoch!, delivered });
  }

  private fail(pending: Pending, error: Error): void {
    if (pending.settled) return;
    pending.settled = true;
    this.release(pending);
    pending.reject(error);
  }

  private release(pending: Pending): void {
    this.pendings.delete(pending.token);
    this.inflightBytes -= pending.bytes;
    this.mirrors.get(pending.room)?.pending.delete(pending);
  }

  /** While Redis is away: sequenced here, under an island epoch, for this node's members only. */
  private islandPublish(mirror: Mirror, draft: Draft): Published {
    const ids = this.options.localIds;
    const first = ids?.repeatOf(draft.room, draft.publishId);
    if (first) return repeatAnswer(first);
    const published = this.islandSequence(mirror, draft);
    ids?.landed(draft.room, draft.publishId, { ...published, time: draft.time, fingerprint: draft.fingerprint });
    return published;
  }

  private islandSequence(mirror: Mirror, draft: Draft): Published {
    if (!mirror.island) {
      // Offsets given out here must never collide with the cluster's: a new epoch first. Its
      // entries belong to the cluster's epoch, so they cannot be served under this one.
      this.store.restart(mirror.log, newEpoch());
      mirror.island = true;
    }
    return sequence(this.node, this.store, mirror.log, draft);
  }

  /**
   * Members here first, then the channel for the other nodes (no script, no stream: outside the
   * room's order). While Redis is away only this node's members can have it. Bounded with the
   * publishes by --redis-max-inflight.
   */
  async publishEphemeral(draft: Draft): Promise<number> {
    const envelope = ephemeralEnvelope(draft.roomJson, draft.time, draft.fromJson, draft.dataJson);
    if (!this.link.ready) return deliverEphemeral(this.node, draft.room, envelope, draft.except);
    if (this.pendings.size + this.ephemeralInflight >= this.options.maxInflight) {
      this.rejected++;
      throw unavailable('is falling behind (too many publishes on their way to Redis)');
    }
    const delivered = deliverEphemeral(this.node, draft.room, envelope, draft.except);
    this.ephemeralInflight++;
    try {
      await this.link.publishEphemeral(draft.room, { time: draft.time, fromJson: draft.fromJson, dataJson: draft.dataJson, plain: plainKindOf(draft.payload), except: draft.except?.id ?? '' });
    } catch (error) {
      this.logger.debug('Redis did not take an ephemeral publish', { room: draft.room, error: (error as Error).message });
      throw unavailable('did not take the ephemeral publish; members on this node got it, others may not have');
    } finally {
      this.ephemeralInflight--;
    }
    return delivered;
  }

  /**
   * Settled in Redis, atomically with the publish script's check (WITHDRAW_SCRIPT); this node
   * remembers a withdrawal too, so a copy retried here during a later outage is refused as well.
   * While Redis is away it cannot be settled: 'unavailable', and the client asks again.
   */
  async withdraw(room: string, publishId: string, time: number): Promise<{ offset: number; epoch: string } | undefined> {
    if (!this.options.publishIdWindow) throw noWindow();
    if (!this.link.ready) throw unavailable('is unreachable');
    let first;
    try {
      first = await this.link.withdraw(room, publishId, time);
    } catch (error) {
      this.logger.warn('Redis did not settle a withdraw', { room, error: (error as Error).message });
      throw unavailable('did not answer the withdraw');
    }
    if (!first) this.options.localIds?.withdraw(room, publishId, time);
    return first;
  }

  firstAck(room: string, publishId: string): Promise<{ offset: number; epoch: string; fingerprint: string } | undefined> {
    if (!this.link.ready || !this.options.publishIdWindow) return Promise.resolve(undefined);
    return this.link.firstAck(room, publishId, Date.now());
  }

  // ---- the channel -------------------------------------------------------------------------

  private onChannel(message: ChannelMessage): void {
    const mirror = this.mirrors.get(message.room);
    if (!mirror) return;
    // Outside the room's order: handed on at once, never held by a resync nor taken for a gap.
    // The publishing node handed it to its own members already.
    if (message.kind === 'ephemeral') return this.onEphemeral(mirror, message);
    if (!mirror.synced) {
      const bytes = message.kind === 'message' ? message.dataJson.length + message.fromJson.length : message.json.length;
      if (mirror.buffer.length >= (this.options.maxSyncBuffer ?? MAX_SYNC_BUFFER) || mirror.bufferBytes + bytes > MAX_SYNC_BUFFER_BYTES) {
        // Everything dropped here is in the stream: the room is simply read once more.
        if (!mirror.overflowed) this.syncOverflows++;
        mirror.overflowed = true;
        mirror.buffer = [];
        mirror.bufferBytes = 0;
      } else if (!mirror.overflowed) {
        mirror.buffer.push(message);
        mirror.bufferBytes += bytes;
      }
      return;
    }
    if (message.kind === 'presence') {
      const room = this.node.hub.room(message.room);
      if (room) this.node.presence(room, message.json, message.subject);
      return;
    }
    const log = mirror.log;
    if (message.epoch === log.epoch && message.offset <= log.lastOffset) return; // seen already
    if (message.epoch !== log.epoch || message.offset !== log.lastOffset + 1) {
      // A gap (pub/sub lost something) or a new epoch: re-read the stream.
      mirror.synced = false;
      mirror.buffer.push(message);
      this.resync(mirror);
      return;
    }
    this.deliverEntry(mirror, message.epoch, message);
  }

  private onEphemeral(mirror: Mirror, message: ChannelMessage & { kind: 'ephemeral' }): void {
    if (message.node === this.nodeId) return;
    deliverEphemeral(this.node, mirror.room, ephemeralEnvelope(mirror.roomJson, message.time, message.fromJson, message.dataJson), message.except);
  }

  /** Keeps a sequenced message in the mirror and hands it to the members here. */
  private deliverEntry(mirror: Mirror, epoch: string, entry: StreamEntry): void {
    const { offset, time, fromJson, dataJson, plain, token, except } = entry;
    const envelope = messageEnvelope({ roomJson: mirror.roomJson, offset, epoch, time, fromJson, dataJson, base64: plain === 'b' });
    this.store.appendSequenced(mirror.log, offset, time, envelope);
    const pending = token ? this.pendings.get(token) : undefined;
    const room = this.node.hub.room(mirror.room);
    let delivered = 0;
    if (room) {
      const outgoing = pending ? new Publication(envelope, pending.payload, pending.dataJson) : new StoredPublication(envelope, dataJson, plain);
      delivered = this.node.deliver(room, outgoing, pending ? pending.except : memberWithId(room, except));
    }
    if (pending) {
      pending.offset = offset;
      pending.epoch = epoch;
      this.settle(pending, delivered);
    }
    // Repeated publish ids wait for their first publish's message to pass here (types.ts, rule 1).
    for (const waiting of mirror.pending) if (waiting.repeat && waiting.epoch === epoch && waiting.offset! <= offset) this.settle(waiting, 0);
  }

  // ---- resync ------------------------------------------------------------------------------

  private resync(mirror: Mirror): void {
    this.sync(mirror).catch((error: Error) => {
      // The watchdog retries every WATCHDOG_MS: during a failover that is many times per room.
      this.logger[mirror.failing ? 'debug' : 'warn']('room re-sync failed; retrying', { room: mirror.room, error: error.message });
      mirror.failing = true;
    });
  }

  /** Re-reads the room from Redis; one at a time per room, and again if asked meanwhile. */
  private sync(mirror: Mirror): Promise<void> {
    if (mirror.syncing) {
      mirror.again = true;
      return mirror.syncing;
    }
    mirror.synced = false;
    const run = async () => {
      do {
        mirror.again = false;
        await this.readRoom(mirror);
      } while (mirror.again && this.mirrors.get(mirror.room) === mirror && this.link.ready);
    };
    mirror.syncing = run().finally(() => {
      mirror.syncing = undefined;
    });
    return mirror.syncing;
  }

  private async readRoom(mirror: Mirror): Promise<void> {
    this.resyncs++;
    // Every read, the repeated ones too: what arrives on the channel meanwhile is held back, so
    // the log cannot move while the stream is read (and never looks ahead of Redis).
    mirror.synced = false;
    mirror.buffer = [];
    mirror.bufferBytes = 0;
    mirror.overflowed = false;
    // Subscribed first: whatever is published after the read arrives on the channel.
    await this.link.subscribe(mirror.room);
    let fetched = await this.link.fetch(mirror.room, newEpoch());
    if (this.mirrors.get(mirror.room) !== mirror) return; // left meanwhile
    const log = mirror.log;
    if (!mirror.island && fetched.epoch === log.epoch && fetched.lastOffset < log.lastOffset) {
      // Redis came back with less than we saw (an older snapshot): those offsets would be given
      // again to other messages. Retire the epoch in Redis, then read the room as it is now.
      this.logger.warn('Redis lost messages this node had seen; the room gets a new epoch', { room: mirror.room });
      await this.link.retireEpoch(mirror.room, fetched.epoch, newEpoch());
      fetched = await this.link.fetch(mirror.room, newEpoch());
      if (this.mirrors.get(mirror.room) !== mirror) return;
    }
    this.reconcile(mirror, fetched);
    mirror.failing = false;
    const buffered = mirror.buffer;
    const overflowed = mirror.overflowed;
    mirror.buffer = [];
    mirror.bufferBytes = 0;
    mirror.overflowed = false;
    mirror.synced = true;
    if (overflowed) mirror.again = true;
    else for (const message of buffered) this.onChannel(message);
  }

  /** Makes the mirror equal the cluster's room, and tells members exactly what they missed. */
  private reconcile(mirror: Mirror, fetched: RoomState): void {
    const log = mirror.log;
    const before = { epoch: log.epoch, offset: log.lastOffset };
    const continuous = !mirror.island && fetched.epoch === before.epoch && fetched.lastOffset >= before.offset;
    const missed = continuous ? fetched.entries.filter((entry) => entry.offset > before.offset) : [];
    const gapFree = continuous && (fetched.lastOffset === before.offset || missed[0]?.offset === before.offset + 1);
    const room = this.node.hub.room(mirror.room);
    mirror.island = false;
    if (gapFree) {
      // Members stay gap-free: hand them, in order, what was published while this node was away.
      for (const entry of missed) this.deliverEntry(mirror, fetched.epoch, entry);
    } else {
      this.store.replace(log, fetched.epoch, fetched.lastOffset, fetched.entries.map((entry) => ({
        offset: entry.offset,
        time: entry.time,
        json: messageEnvelope({ roomJson: mirror.roomJson, offset: entry.offset, epoch: fetched.epoch, time: entry.time, fromJson: entry.fromJson, dataJson: entry.dataJson, base64: entry.plain === 'b' }),
      })));
      if (room && room.members.size > 0) {
        this.resets++;
        const reason = fetched.epoch === before.epoch ? 'window_passed' : 'epoch_changed';
        this.logger.warn('room re-synced with a gap; members are told to reload', { room: mirror.room, members: room.members.size, reason });
        this.node.tell(room, joinedEnvelope({ type: 'joined', room: mirror.room, epoch: fetched.epoch, offset: fetched.lastOffset, recovered: false, reason }, []));
      }
    }
    // Own publishes this read has settled one way or the other.
    for (const pending of [...mirror.pending]) {
      if (pending.epoch !== fetched.epoch) this.fail(pending, unavailable('lost the message (Redis restarted without it)'));
      else if (pending.offset! <= fetched.lastOffset) this.settle(pending, 0);
    }
  }

  private onReady(): void {
    this.logger.info('cluster backplane ready', { node: this.nodeId, redis: redactRedisUrl(this.options.url), rooms: this.mirrors.size });
    for (const mirror of this.mirrors.values()) this.resync(mirror);
  }

  /** A Redis Cluster ended the room's channel subscription: subscribe again and re-read the room. */
  private onLapse(room: string): void {
    const mirror = this.mirrors.get(room);
    if (!mirror) return;
    mirror.synced = false;
    this.resync(mirror);
  }

  private onDown(reason: string): void {
    this.logger.warn('cluster backplane down; serving local members only', { node: this.nodeId, reason });
    for (const mirror of this.mirrors.values()) mirror.synced = false;
  }

  /** Re-reads rooms whose read failed, or that still wait for one of our own messages. */
  private watchdog(): void {
    if (!this.link.ready) return;
    const now = Date.now();
    for (const mirror of this.mirrors.values()) {
      if (mirror.syncing) continue;
      let lost = !mirror.synced;
      for (const pending of mirror.pending) if (now - pending.sentAt > LOST_AFTER_MS) lost = true;
      if (lost) this.resync(mirror);
    }
  }

  // ---- presence and the HTTP API's cluster-wide views (redis-directory.ts) ------------

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
    return this.directory.rooms(this.mirrors.keys());
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

function memberWithId(room: Room, session: string): Member | undefined {
  if (!session) return undefined;
  for (const member of room.members) if (member.id === session) return member;
  return undefined;
}
