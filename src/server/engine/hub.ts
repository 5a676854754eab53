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

export type WireProtocol = 'plain' | 'v1';

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
  constructor(readonly name: string) {}
}

/**
 * One message on its way to a room's members, encoded at most once per wire protocol and only
 * for a protocol some recipient actually speaks.
 */
export interface Outgoing {
  frameFor(protocol: WireProtocol): Buffer;
}

export class Hub {
  private readonly byName = new Map<string, Room>();

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
    room.members.add(member);
    member.rooms.add(room);
    if (watch) room.watchers.add(member);
    return room;
  }

  leave(member: Member, room: Room): void {
    room.members.delete(member);
    room.watchers.delete(member);
    member.rooms.delete(room);
    // Empty rooms are forgotten so that the map is bounded by live membership.
    if (room.members.size === 0) this.byName.delete(room.name);
  }

  leaveAll(member: Member): void {
    for (const room of member.rooms) this.leave(member, room);
  }

  /** Sends one ready frame to the room's presence watchers, except `except`. */
  notifyWatchers(room: Room, frame: Buffer, except?: Member): void {
    for (const member of room.watchers) if (member !== except) member.deliver(frame);
  }

  /** Sends `message` to every member of `room` except `except`; returns how many got it. */
  publish(room: Room, message: Outgoing, except?: Member): number {
    let plain: Buffer | undefined;
    let v1: Buffer | undefined;
    let delivered = 0;
    for (const member of room.members) {
      if (member === except) continue;
      const frame =
        member.protocol === 'plain' ? (plain ??= message.frameFor('plain')) : (v1 ??= message.frameFor('v1'));
      member.deliver(frame);
      delivered++;
    }
    return delivered;
  }
}
