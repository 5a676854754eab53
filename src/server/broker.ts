/**
 * Where a room message is born: it takes the room's next offset, is kept in history, and goes
 * to the room's members through the hub. Plain clients, plaza.v1 clients (and later the HTTP
 * API and the cluster backplane) all publish through here, so ordering and offsets have one owner.
 */
import { ErrorCode, type Member as PresenceMember, type Position } from '../shared/protocol.js';
import { messageEnvelope, presenceEnvelope } from './envelope.js';
import { encodeFrame, encodeTextFrame, Opcode } from './frame.js';
import type { HistoryEntry, HistoryStore, Recovery, RoomLog } from './history.js';
import type { Hub, Member, Outgoing, Room, WireProtocol } from './hub.js';
import type { Metrics } from './metrics.js';
import type { ChannelMessage, PlainKind } from './backplane/redis.js';
import type { Cluster, ClusterDelivery } from './cluster.js';

/** What was published, in the form it arrived. */
export type Payload =
  /** Text from a plain client: `bytes` are its exact UTF-8 bytes. */
  | { kind: 'text'; text: string; bytes: Buffer }
  /** Binary from a plain client; v1 clients get it as base64. */
  | { kind: 'binary'; bytes: Buffer }
  /** Any JSON value from a v1 client or the HTTP API. */
  | { kind: 'json'; data: unknown };

/** Who published: the sender part of the envelope, encoded once per connection. */
export interface Publisher {
  readonly fromJson: string;
}

export interface Published {
  offset: number;
  epoch: string;
  delivered: number;
}

function dataJsonOf(payload: Payload): string {
  switch (payload.kind) {
    case 'text':
      return JSON.stringify(payload.text);
    case 'binary':
      return `"${payload.bytes.toString('base64')}"`;
    case 'json':
      return JSON.stringify(payload.data);
  }
}

/** A room message on its way out: v1 gets the envelope, plain clients the bare payload. */
class Publication implements Outgoing {
  constructor(
    private readonly envelope: string,
    private readonly payload: Payload,
    private readonly dataJson: string,
  ) {}

  frameFor(protocol: WireProtocol): Buffer {
    if (protocol === 'v1') return encodeTextFrame(this.envelope);
    const payload = this.payload;
    if (payload.kind === 'binary') return encodeFrame(payload.bytes, Opcode.Binary);
    if (payload.kind === 'text') return encodeFrame(payload.bytes, Opcode.Text);
    // Plain clients read text: a string as itself, anything else as its JSON.
    return typeof payload.data === 'string' ? encodeTextFrame(payload.data) : encodeTextFrame(this.dataJson);
  }
}

/** A message sequenced by the cluster and arriving from Redis: only its envelope is known. */
class RemotePublication implements Outgoing {
  constructor(
    private readonly envelope: string,
    private readonly plain: PlainKind,
  ) {}

  frameFor(protocol: WireProtocol): Buffer {
    if (protocol === 'v1') return encodeTextFrame(this.envelope);
    const { data } = JSON.parse(this.envelope) as { data: unknown };
    if (this.plain === 'b') return encodeFrame(Buffer.from(String(data), 'base64'), Opcode.Binary);
    return encodeTextFrame(this.plain === 'j' ? JSON.stringify(data) : String(data));
  }
}

export type JoinResult = { ok: true; room: Room; log: RoomLog } | { ok: false; code: ErrorCode; message: string };

export interface BrokerOptions {
  maxRoomsPerConnection: number;
  /** Members listed in a presence snapshot. */
  maxPresence: number;
}

/**
 * Rooms named `plaza:…` belong to one server even in a cluster (the status feed describes the
 * node it runs on), so they never go through Redis.
 */
export function isNodeLocal(room: string): boolean {
  return room.startsWith('plaza:');
}

export class Broker implements ClusterDelivery {
  private readonly roomJson = new Map<string, string>();
  /** Set when this server is part of a cluster (--redis). */
  cluster: Cluster | undefined;

  constructor(
    readonly hub: Hub,
    readonly history: HistoryStore,
    private readonly options: BrokerOptions,
    readonly metrics: Metrics,
  ) {}

  /** Joins at once, or once the cluster mirror of the room is in sync. */
  join(member: Member, name: string, watch: boolean): JoinResult | Promise<JoinResult> {
    const syncing = isNodeLocal(name) ? undefined : this.cluster?.sync(name);
    if (!syncing) return this.joinNow(member, name, watch);
    // If Redis fails mid-sync the member still joins the local room, as on an island.
    return syncing.then(
      () => this.joinNow(member, name, watch),
      () => this.joinNow(member, name, watch),
    );
  }

  private joinNow(member: Member, name: string, watch: boolean): JoinResult {
    const existing = this.hub.room(name);
    if (existing?.members.has(member)) {
      if (watch) existing.watchers.add(member);
      return { ok: true, room: existing, log: this.history.open(name)! };
    }
    if (member.rooms.size >= this.options.maxRoomsPerConnection) {
      return { ok: false, code: ErrorCode.TooManyRooms, message: `a connection may be in at most ${this.options.maxRoomsPerConnection} rooms; leave one first` };
    }
    const log = this.history.open(name);
    if (!log) return { ok: false, code: ErrorCode.ServerFull, message: 'the server tracks as many rooms as it may; try again later' };
    const room = this.hub.join(member, name, watch);
    log.members = room.members.size;
    this.announce(room, 'joined', member);
    return { ok: true, room, log };
  }

  leave(member: Member, room: Room): void {
    this.hub.leave(member, room);
    const log = this.history.log(room.name);
    if (log) log.members = room.members.size;
    this.announce(room, 'left', member);
    if (room.members.size === 0 && !isNodeLocal(room.name)) this.cluster?.release(room.name);
  }

  leaveAll(member: Member): void {
    for (const room of member.rooms) this.leave(member, room);
  }

  /**
   * Publishes to `name`, which need not have members here; fails only when no room slot is left.
   * In a cluster the message is sequenced by Redis and delivered when it comes back on the channel.
   */
  publish(name: string, payload: Payload, from: Publisher, except?: Member): Published | undefined | Promise<Published> {
    const dataJson = dataJsonOf(payload);
    const roomJson = this.encodedRoom(name);
    if (this.cluster?.online && !isNodeLocal(name)) {
      this.metrics.published++;
      return this.cluster.publish(name, payload, dataJson, roomJson, from, except);
    }
    const log = this.history.open(name);
    if (!log) return undefined;
    const time = Date.now();
    const envelope = this.history.append(log, time, (offset, epoch) =>
      messageEnvelope({ roomJson, offset, epoch, time, fromJson: from.fromJson, dataJson, base64: payload.kind === 'binary' }),
    );
    const room = this.hub.room(name);
    const delivered = room ? this.hub.publish(room, new Publication(envelope, payload, dataJson), except) : 0;
    this.metrics.published++;
    this.metrics.deliveries += delivered;
    return { offset: log.lastOffset, epoch: log.epoch, delivered };
  }

  /** ClusterDelivery: a sequenced message arrived from the cluster. */
  deliver(log: RoomLog, message: Extract<ChannelMessage, { kind: 'message' }>): void {
    const room = this.hub.room(log.room);
    if (!room) return;
    let except: Member | undefined;
    if (message.except) for (const member of room.members) if (member.id === message.except) except = member;
    this.metrics.deliveries += this.hub.publish(room, new RemotePublication(message.json, message.plain), except);
  }

  /** ClusterDelivery: a presence delta from any node (this one included). */
  presence(name: string, json: string): void {
    const room = this.hub.room(name);
    if (!room || room.watchers.size === 0) return;
    const subject = (JSON.parse(json) as { joined?: PresenceMember[]; left?: PresenceMember[] });
    const session = (subject.joined ?? subject.left ?? [])[0]?.session;
    let except: Member | undefined;
    for (const member of room.watchers) if (member.id === session) except = member;
    this.hub.notifyWatchers(room, encodeTextFrame(json), except);
  }

  recover(log: RoomLog, since: Position): Recovery {
    return this.history.since(log, since);
  }

  recent(log: RoomLog, count: number): HistoryEntry[] {
    return this.history.last(log, count);
  }

  /** The presence snapshot, cut at maxPresence; memberCount says how many there are. */
  members(room: Room): PresenceMember[] {
    const list: PresenceMember[] = [];
    for (const member of room.members) {
      if (list.length >= this.options.maxPresence) break;
      list.push({ session: member.id, name: member.name });
    }
    return list;
  }

  private announce(room: Room, change: 'joined' | 'left', member: Member): void {
    const cluster = this.cluster;
    if (cluster?.online && !isNodeLocal(room.name)) {
      // Cluster-wide: the delta reaches every node's watchers, this one's included, via Redis.
      cluster.announce(room.name, change, { session: member.id, name: member.name });
      return;
    }
    if (room.watchers.size === 0) return;
    const envelope = presenceEnvelope(room.name, change, { session: member.id, name: member.name }, room.members.size);
    this.hub.notifyWatchers(room, encodeTextFrame(envelope), member);
  }

  private encodedRoom(name: string): string {
    let json = this.roomJson.get(name);
    if (json === undefined) {
      // Bounded with the history's room count: cleared wholesale when it outgrows it.
      if (this.roomJson.size > this.history.roomCount * 2 + 1024) this.roomJson.clear();
      json = JSON.stringify(name);
      this.roomJson.set(name, json);
    }
    return json;
  }
}
