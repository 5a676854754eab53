/**
 * The rooms this node follows: a mirror (mirror.ts) for each room it has members in, filled
 * from the room's stream when it is first joined and then from the channel, so joins, resumes
 * and presence snapshots are answered here. A mirror is "synced" while it is continuous with
 * the cluster; a gap on the channel, a lost message or Redis coming back makes it re-read the
 * stream (a resync). A room with no member here is dropped at once, log and all: a log nobody
 * follows goes stale, and a stale log must never give out offsets.
 *
 * When Redis returns every mirror is re-read; members who missed nothing are caught up
 * silently, the others get an unsolicited `joined` with `recovered: false`. If Redis came back
 * with less than this node had seen under the same epoch (an older snapshot), the room's epoch
 * is replaced in Redis, so no offset is ever given to two different messages. After a failover
 * the scripts give the room a new epoch (scripts.ts, Lineage), and the re-read here turns it
 * into a reset for members, never a reused offset.
 *
 * Every message sequenced in Redis is delivered when the room's channel brings it here, the
 * publishing node's own included, so all nodes see one order; this node's own publishes are
 * settled then (pending.ts, Settler).
 */
import { ephemeralEnvelope, joinedEnvelope, messageEnvelope } from '../../../engine/envelope.js';
import type { Member, Room } from '../../../engine/hub.js';
import { Publication, StoredPublication } from '../../../engine/publication.js';
import type { Logger } from '../../../logger.js';
import { newEpoch, type HistoryStore, type RoomLog } from '../../history.js';
import { deliverEphemeral, serverFull } from '../local.js';
import type { LocalNode } from '../types.js';
import type { ChannelMessage, StreamEntry } from './codec.js';
import type { RedisLink } from './link.js';
import { newMirror, type Mirror } from './mirror.js';
import { unavailable, type Settler } from './pending.js';
import type { RoomState } from './room-commands.js';

/** Channel messages (and their bytes) held for one room during a resync; past either, the resync runs again. */
const MAX_SYNC_BUFFER = 10_000;
const MAX_SYNC_BUFFER_BYTES = 8 * 1024 * 1024;
/** A sequenced publish not delivered after this long means the channel lost it: the room is re-read. */
const LOST_AFTER_MS = 1000;

export interface RoomMirrorsOptions {
  nodeId: string;
  /** Channel messages held for one room while it is re-read; past it the room is read again. @default 10000 */
  maxSyncBuffer?: number;
}

export class RoomMirrors {
  private readonly mirrors = new Map<string, Mirror>();
  resyncs = 0;
  resets = 0;
  /** Resyncs whose buffer overflowed and had to read the room again. */
  syncOverflows = 0;

  constructor(
    private readonly options: RoomMirrorsOptions,
    private readonly link: RedisLink,
    private readonly node: LocalNode,
    private readonly store: HistoryStore,
    private readonly logger: Logger,
    private readonly publishes: Settler,
  ) {}

  get(room: string): Mirror | undefined {
    return this.mirrors.get(room);
  }

  get size(): number {
    return this.mirrors.size;
  }

  rooms(): IterableIterator<string> {
    return this.mirrors.keys();
  }

  async attach(room: string): Promise<RoomLog> {
    let mirror = this.mirrors.get(room);
    if (!mirror) {
      // Nothing touches Redis before the room slot is secured: a refused join leaves no state.
      const log = this.store.open(room);
      if (!log) throw serverFull();
      mirror = newMirror(room, log);
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
    this.link.connections.unsubscribe(room).catch(() => undefined);
    // Nobody here is left to hand them to: delivered to this node's members, vacuously.
    for (const pending of mirror.pending) this.publishes.settle(pending, 0);
  }

  // ---- the channel -------------------------------------------------------------------------

  onChannel(message: ChannelMessage): void {
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
    if (message.node === this.options.nodeId) return;
    deliverEphemeral(this.node, mirror.room, ephemeralEnvelope(mirror.roomJson, message.time, message.fromJson, message.dataJson), message.except);
  }

  /** Keeps a sequenced message in the mirror and hands it to the members here. */
  private deliverEntry(mirror: Mirror, epoch: string, entry: StreamEntry): void {
    const { offset, time, fromJson, dataJson, plain, token, except } = entry;
    const envelope = messageEnvelope({ roomJson: mirror.roomJson, offset, epoch, time, fromJson, dataJson, base64: plain === 'b' });
    this.store.appendSequenced(mirror.log, offset, time, envelope);
    const pending = token ? this.publishes.byToken(token) : undefined;
    const room = this.node.hub.room(mirror.room);
    let delivered = 0;
    if (room) {
      const outgoing = pending ? new Publication(envelope, pending.payload, pending.dataJson) : new StoredPublication(envelope, dataJson, plain);
      delivered = this.node.deliver(room, outgoing, pending ? pending.except : memberWithId(room, except));
    }
    if (pending) {
      pending.offset = offset;
      pending.epoch = epoch;
      this.publishes.settle(pending, delivered);
    }
    // Repeated publish ids wait for their first publish's message to pass here (types.ts, rule 1).
    for (const waiting of mirror.pending) if (waiting.repeat && waiting.epoch === epoch && waiting.offset! <= offset) this.publishes.settle(waiting, 0);
  }

  // ---- resync ------------------------------------------------------------------------------

  resync(mirror: Mirror): void {
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
    await this.link.connections.subscribe(mirror.room);
    let fetched = await this.link.rooms.fetch(mirror.room, newEpoch());
    if (this.mirrors.get(mirror.room) !== mirror) return; // left meanwhile
    const log = mirror.log;
    if (!mirror.island && fetched.epoch === log.epoch && fetched.lastOffset < log.lastOffset) {
      // Redis came back with less than we saw (an older snapshot): those offsets would be given
      // again to other messages. Retire the epoch in Redis, then read the room as it is now.
      this.logger.warn('Redis lost messages this node had seen; the room gets a new epoch', { room: mirror.room });
      await this.link.rooms.retireEpoch(mirror.room, fetched.epoch, newEpoch());
      fetched = await this.link.rooms.fetch(mirror.room, newEpoch());
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
      if (pending.epoch !== fetched.epoch) this.publishes.fail(pending, unavailable('lost the message (Redis restarted without it)'));
      else if (pending.offset! <= fetched.lastOffset) this.publishes.settle(pending, 0);
    }
  }

  /** Redis is back: every room is re-read. */
  resyncAll(): void {
    for (const mirror of this.mirrors.values()) this.resync(mirror);
  }

  /** A Redis Cluster ended the room's channel subscription: subscribe again and re-read the room. */
  onLapse(room: string): void {
    const mirror = this.mirrors.get(room);
    if (!mirror) return;
    mirror.synced = false;
    this.resync(mirror);
  }

  /** Redis went away: no room is continuous with the cluster any more. */
  onDown(): void {
    for (const mirror of this.mirrors.values()) mirror.synced = false;
  }

  /** Re-reads rooms whose read failed, or that still wait for one of our own messages. */
  watchdog(now: number): void {
    if (!this.link.ready) return;
    for (const mirror of this.mirrors.values()) {
      if (mirror.syncing) continue;
      let lost = !mirror.synced;
      for (const pending of mirror.pending) if (now - pending.sentAt > LOST_AFTER_MS) lost = true;
      if (lost) this.resync(mirror);
    }
  }
}

function memberWithId(room: Room, session: string): Member | undefined {
  if (!session) return undefined;
  for (const member of room.members) if (member.id === session) return member;
  return undefined;
}
