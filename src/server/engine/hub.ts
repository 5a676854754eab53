/**
 * engine/ — the fan-out: a message encoded and framed once (envelope, frame, publication),
 * the one place that picks recipients (hub), one write per socket per event-loop turn with the
 * slow-consumer bound (outbox), large replies in pieces (replay), and the counters the hot paths
 * bump (metrics). It knows nothing of HTTP, Redis, tokens or options: it may import only
 * src/shared. Everything else may import it.
 *
 * The registry of rooms and the one place that chooses who receives a message.
 * Rooms are Map<name, Room> with a reverse index on each member (member.rooms), as in
 * socket.io's in-memory adapter. It knows nothing about sockets: members are anything that
 * can take a frame, which is what lets it be tested without a network.
 */

/**
 * How a member's frames are written: `plain` and `v1` are WebSocket frames (raw payloads, or
 * plaza.v1 envelopes); `sse` is the same plaza.v1 envelopes as server-sent events.
 */
export type WireProtocol = 'plain' | 'v1' | 'sse';

/**
 * Which of a message's frames a member takes: its wire protocol, and whether it negotiated
 * permessage-deflate (--compress; WebSocket only). Index into Room.kinds and a room turn's frames:
 * 0 plain, 1 v1, 2 plain+deflate, 3 v1+deflate, 4 sse.
 */
export type FrameKind = 0 | 1 | 2 | 3 | 4;
export const KIND_COUNT = 5;
const SSE_KIND = 4;

export function frameKindOf(member: Pick<Member, 'protocol' | 'deflate'>): FrameKind {
  if (member.protocol === 'sse') return SSE_KIND;
  return ((member.protocol === 'v1' ? 1 : 0) | (member.deflate ? 2 : 0)) as FrameKind;
}

/** The wire protocol of a frame kind, and whether its frames are compressed. */
export const protocolOfKind = (kind: FrameKind): WireProtocol => (kind === SSE_KIND ? 'sse' : (kind & 1) === 1 ? 'v1' : 'plain');
export const isDeflateKind = (kind: FrameKind): boolean => kind !== SSE_KIND && (kind & 2) === 2;
/** The uncompressed kind a compressed one is made from (itself when it is not compressed). */
export const baseKindOf = (kind: FrameKind): FrameKind => (kind === SSE_KIND ? kind : ((kind & 1) as FrameKind));

export interface Member {
  /** Session id, shown to others in presence and as a message's sender. */
  readonly id: string;
  /** Display name shown in presence. */
  readonly name: string;
  /** The authenticated user (token `sub`), when auth is on. */
  readonly userId?: string | undefined;
  /** The client's address, for the application's hooks and events (the engine never reads it). */
  readonly remoteAddress?: string;
  /** What the application attached when it authenticated the member; opaque here. */
  readonly data?: unknown;
  readonly protocol: WireProtocol;
  /** Negotiated permessage-deflate with a server that compresses (--compress): takes compressed frames. */
  readonly deflate?: boolean;
  /** Reverse index: the rooms this member is in, kept by the hub. */
  readonly rooms: Set<Room>;
  /** Queue one ready-made frame for this member (never blocks, never throws). */
  deliver(frame: Buffer): void;
  /** False once the member's connection is closing or closed: it must not join anything. */
  isOpen(): boolean;
  /** Takes one room creation from the member's allowance; false when it is spent. Absent: unlimited. */
  mayCreateRoom?(): boolean;
}

export class Room {
  readonly members = new Set<Member>();
  /** Members that asked for presence: they get join/leave deltas. */
  readonly watchers = new Set<Member>();
  /** Members by frame kind, so a message is framed (and compressed) only for kinds present. */
  readonly kinds = [0, 0, 0, 0, 0];
  constructor(readonly name: string) {}
}

/**
 * How a room's message reaches its members. The server's is the outbox, which queues it once per
 * room and hands each member its frames at the end of the turn; a hub on its own (tests, tools)
 * hands every member its frame at once.
 */
export interface Fanout {
  /** Hands `message` to every member of `room` except `except`. */
  broadcast(room: Room, message: Outgoing, except: Member | undefined): void;
  /** `member` was just added to `room`: it takes only what is broadcast from now on. */
  joined(room: Room, member: Member): void;
  /** `member` is about to leave `room`: what was broadcast to it before stays its own. */
  leaving(room: Room, member: Member): void;
}

/** Every member gets its frame at once, through member.deliver. */
export const DIRECT_FANOUT: Fanout = {
  broadcast(room, message, except) {
    const frames: Array<Buffer | undefined> = [];
    for (const member of room.members) {
      if (member === except) continue;
      const kind = baseKindOf(frameKindOf(member));
      member.deliver((frames[kind] ??= message.frameFor(protocolOfKind(kind))));
    }
  },
  joined() {},
  leaving() {},
};

/**
 * One message on its way to a room's members, encoded at most once per wire protocol and only
 * for a protocol some recipient actually speaks.
 */
export interface Outgoing {
  frameFor(protocol: WireProtocol): Buffer;
}

export class Hub {
  private readonly byName = new Map<string, Room>();

  constructor(private readonly fanout: Fanout = DIRECT_FANOUT) {}

  get roomCount(): number {
    return this.byName.size;
  }

  /** Every room with members, for read-only listings (the HTTP API, the status page). */
  rooms(): IterableIterator<Room> {
    return this.byName.values();
  }

  /** Members whose connection is closing or closed: 0 unless something forgot to leave. O(members). */
  orphans(): number {
    let count = 0;
    for (const room of this.byName.values()) for (const member of room.members) if (!member.isOpen()) count++;
    return count;
  }

  room(name: string): Room | undefined {
    return this.byName.get(name);
  }

  join(member: Member, name: string, watch = false): Room {
    let room = this.byName.get(name);
    if (!room) {
      room = new Room(name);
      this.byName.set(name, room);
    }
    if (!room.members.has(member)) {
      room.members.add(member);
      room.kinds[frameKindOf(member)]!++;
      this.fanout.joined(room, member);
    }
    member.rooms.add(room);
    if (watch) room.watchers.add(member);
    return room;
  }

  leave(member: Member, room: Room): void {
    if (room.members.has(member)) {
      this.fanout.leaving(room, member);
      room.members.delete(member);
      room.kinds[frameKindOf(member)]!--;
    }
    room.watchers.delete(member);
    member.rooms.delete(room);
    // Empty rooms are forgotten so that the map is bounded by live membership.
    if (room.members.size === 0) this.byName.delete(room.name);
  }

  leaveAll(member: Member): void {
    for (const room of member.rooms) this.leave(member, room);
  }

  /** Sends one envelope to the room's presence watchers, except `except`: framed once per wire protocol. */
  notifyWatchers(room: Room, message: Outgoing, except?: Member): void {
    for (const member of room.watchers) if (member !== except) member.deliver(message.frameFor(member.protocol));
  }

  /**
   * Sends `message` to every member of `room` except `except`; returns how many got it. No work
   * per member here: the fan-out queues the message once for the room.
   */
  publish(room: Room, message: Outgoing, except?: Member): number {
    if (room.members.size === 0) return 0;
    this.fanout.broadcast(room, message, except);
    return room.members.size - (except !== undefined && room.members.has(except) ? 1 : 0);
  }
}
