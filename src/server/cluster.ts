/**
 * Makes several Plaza servers act as one hub through Redis (--redis).
 *
 * Every room message is sequenced by Redis (offset, stream append and pub/sub in one script), and
 * every node, the publishing one included, delivers it when it arrives on the room's channel, so
 * all nodes see one order. A node keeps a local mirror of each room it has members in (the same
 * HistoryStore as embedded mode), filled from the Redis stream when the room is first joined and
 * then from the channel, which lets joins, resumes and presence snapshots be answered locally.
 *
 * While Redis is away a node keeps serving its own members as an island: messages published there
 * reach only that node, under a fresh local epoch so their positions are never mistaken for
 * cluster positions. When Redis returns each room is re-synced; members whose view had a gap
 * are told with an unsolicited `joined` saying `recovered: false`.
 */
import type { Member as PresenceMember } from '../shared/protocol.js';
import type { ChannelMessage, PlainKind, RedisLink, RoomState } from './backplane/redis.js';
import type { Payload, Published, Publisher } from './broker.js';
import { joinedEnvelope, presenceEnvelope } from './envelope.js';
import { encodeTextFrame } from './frame.js';
import { newEpoch, type HistoryStore, type RoomLog } from './history.js';
import type { Hub, Member } from './hub.js';
import type { Logger } from './logger.js';

interface ClusterRoom {
  synced: boolean;
  syncing: Promise<void> | undefined;
  /** Channel messages that arrived while the room was being (re)synced. */
  buffer: ChannelMessage[];
}

/** Bound on channel messages held for one room during a sync; past it the sync starts over. */
const MAX_SYNC_BUFFER = 10_000;

export interface ClusterDelivery {
  /** Delivers a sequenced message to local members (the broker's fan-out). */
  deliver(log: RoomLog, message: Extract<ChannelMessage, { kind: 'message' }>): void;
  /** Forwards a presence delta to local watchers. */
  presence(room: string, json: string): void;
}

export class Cluster {
  private readonly rooms = new Map<string, ClusterRoom>();

  constructor(
    readonly link: RedisLink,
    private readonly hub: Hub,
    private readonly history: HistoryStore,
    private readonly delivery: ClusterDelivery,
    private readonly logger: Logger,
    readonly nodeId: string,
  ) {}

  get online(): boolean {
    return this.link.ready;
  }

  /** Resolves once `room` mirrors the cluster; undefined when it already does or Redis is away. */
  sync(room: string): Promise<void> | undefined {
    let state = this.rooms.get(room);
    if (!state) {
      state = { synced: false, syncing: undefined, buffer: [] };
      this.rooms.set(room, state);
    }
    if (state.synced || !this.online) return undefined;
    state.syncing ??= this.resync(room, state).finally(() => {
      state.syncing = undefined;
    });
    return state.syncing;
  }

  private async resync(room: string, state: ClusterRoom): Promise<void> {
    state.buffer = [];
    await this.link.subscribe(room);
    const fetched = await this.link.fetch(room, newEpoch());
    this.reconcile(room, fetched);
    const buffered = state.buffer;
    state.buffer = [];
    state.synced = true;
    for (const message of buffered) this.onChannel(message);
  }

  /** Makes the local mirror equal the cluster's, and tells members what they could not get. */
  private reconcile(room: string, fetched: RoomState): void {
    const log = this.history.open(room) ?? this.history.log(room);
    if (!log) return;
    const before = { epoch: log.epoch, offset: log.lastOffset };
    const members = this.hub.room(room)?.members;
    const continuous = fetched.epoch === before.epoch && fetched.lastOffset >= before.offset;
    const missed = continuous ? fetched.entries.filter((e) => e.offset > before.offset) : [];
    const gapFree = continuous && (fetched.lastOffset === before.offset || missed[0]?.offset === before.offset + 1);
    this.history.replace(log, fetched.epoch, fetched.lastOffset, fetched.entries);
    if (!members || members.size === 0) return;
    if (gapFree) {
      // Members stay gap-free: hand them what was published while this node was catching up.
      for (const entry of missed) {
        const frame = encodeTextFrame(entry.json);
        for (const member of members) if (member.protocol === 'v1') member.deliver(frame);
      }
      return;
    }
    this.logger.warn('room re-synced with a gap; members are told to reload', { room, members: members.size });
    const reply = joinedEnvelope(
      { type: 'joined', room, epoch: fetched.epoch, offset: fetched.lastOffset, recovered: false, reason: 'epoch_changed' },
      [],
    );
    const frame = encodeTextFrame(reply);
    for (const member of members) if (member.protocol === 'v1') member.deliver(frame);
  }

  onChannel(message: ChannelMessage): void {
    const state = this.rooms.get(message.room);
    if (!state) return;
    if (!state.synced) {
      if (state.buffer.length < MAX_SYNC_BUFFER) state.buffer.push(message);
      return;
    }
    if (message.kind === 'presence') return this.delivery.presence(message.room, message.json);
    const log = this.history.log(message.room);
    if (!log) return;
    if (message.epoch === log.epoch && message.offset <= log.lastOffset) return; // seen already
    if (message.epoch !== log.epoch || message.offset !== log.lastOffset + 1) {
      // A gap (lost pub/sub while Redis was away) or a new epoch: re-read the stream.
      state.synced = false;
      state.buffer.push(message);
      void this.sync(message.room)?.catch((error: Error) => this.logger.warn('room re-sync failed', { room: message.room, error: error.message }));
      return;
    }
    this.history.appendSequenced(log, message.offset, message.time, message.json);
    this.delivery.deliver(log, message);
  }

  async publish(room: string, payload: Payload, dataJson: string, roomJson: string, from: Publisher, except: Member | undefined): Promise<Published> {
    const plain: PlainKind = payload.kind === 'binary' ? 'b' : payload.kind === 'json' && typeof payload.data !== 'string' ? 'j' : 't';
    const { offset, epoch } = await this.link.publish(room, {
      roomJson,
      time: Date.now(),
      fromJson: from.fromJson,
      dataJson,
      base64: payload.kind === 'binary',
      plain,
      except: except?.id ?? '',
      newEpoch: newEpoch(),
    });
    return { offset, epoch, delivered: 0 };
  }

  /** Redis is back: every room re-reads its stream, in case pub/sub lost something meanwhile. */
  onReady(): void {
    this.logger.info('cluster backplane ready', { node: this.nodeId, rooms: this.rooms.size });
    for (const [room, state] of this.rooms) {
      state.synced = false;
      void this.sync(room)?.catch((error: Error) => this.logger.warn('room re-sync failed', { room, error: error.message }));
    }
  }

  /** Redis is away: rooms go on locally under island epochs until it returns. */
  onDown(reason: string): void {
    this.logger.warn('cluster backplane down; serving local members only', { node: this.nodeId, reason });
    for (const [room, state] of this.rooms) {
      state.synced = false;
      const log = this.history.log(room);
      if (log) log.epoch = newEpoch();
    }
  }

  /** Records a join or leave in cluster presence; the delta comes back to every node's watchers. */
  announce(room: string, change: 'joined' | 'left', member: PresenceMember): void {
    const delta = (count: number) => presenceEnvelope(room, change, member, count);
    const stored = JSON.stringify({ ...member, node: this.nodeId, seen: Date.now() });
    const done = change === 'joined' ? this.link.presenceJoin(room, member.session, stored, delta) : this.link.presenceLeave(room, member.session, delta);
    done.catch((error: Error) => this.logger.debug('presence update failed', { room, error: error.message }));
  }

  /**
   * Presence heartbeat: refreshes this node's members and removes members of nodes that stopped
   * refreshing (a node that died), announcing them as left. Run every presenceTtl / 3.
   */
  async refreshPresence(presenceTtl: number): Promise<void> {
    if (!this.online) return;
    const now = Date.now();
    const mine: Array<{ room: string; session: string; member: string }> = [];
    for (const room of this.rooms.keys()) {
      for (const member of this.hub.room(room)?.members ?? []) {
        mine.push({ room, session: member.id, member: JSON.stringify({ session: member.id, name: member.name, node: this.nodeId, seen: now }) });
      }
    }
    await this.link.refreshPresence(mine);
    for (const room of this.rooms.keys()) {
      const stored = await this.link.presence(room);
      for (const [session, value] of Object.entries(stored)) {
        let seen = 0;
        let name = '';
        try {
          ({ seen, name } = JSON.parse(value) as { seen: number; name: string });
        } catch {
          // Unreadable entries are stale by definition.
        }
        if (now - seen > presenceTtl) {
          await this.link.presenceLeave(room, session, (count) => presenceEnvelope(room, 'left', { session, name }, count));
        }
      }
    }
  }

  /** The last local member left: stop following the room. */
  release(room: string): void {
    if (!this.rooms.delete(room)) return;
    void this.link.unsubscribe(room).catch(() => undefined);
  }

  /** Cluster-wide members of a room, falling back to local ones while Redis is away. */
  async members(room: string, limit: number): Promise<{ members: PresenceMember[]; count: number } | undefined> {
    if (!this.online) return undefined;
    const stored = await this.link.presence(room);
    const members: PresenceMember[] = [];
    let count = 0;
    for (const value of Object.values(stored)) {
      count++;
      if (members.length >= limit) continue;
      try {
        const { session, name } = JSON.parse(value) as PresenceMember;
        members.push({ session, name });
      } catch {
        // A malformed entry is skipped; it is not ours to repair.
      }
    }
    return { members, count };
  }
}
