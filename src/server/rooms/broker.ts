/**
 * rooms/ — what a room is over time: the broker (joins, leaves, publishes), history (ring
 * buffers with epochs), the journal on disk (--data-dir), and the backplane that gives each
 * message its place (backplane/: local for one server, Redis for a cluster). It may import the
 * engine, src/shared, config and logger; never sessions/, a side or http/, which use it.
 *
 * Rooms as this server's members see them: joining (with the room's position, history and
 * presence), leaving, and publishing. Where a message gets its place in a room's order is the
 * backplane's business (backplane/types.ts), injected here at construction: the same broker runs
 * on one server and in a cluster.
 */
import { ErrorCode, type AppErrorCode, type Member as PresenceMember, type Position } from '../../shared/protocol.js';
import { BackplaneError, type Backplane, type Draft, type MemberList, type Published } from './backplane/types.js';
import type { HistoryEntry, HistoryStore, Recovery, RoomLog } from './history.js';
import type { Hub, Member, Room } from '../engine/hub.js';
import type { Metrics } from '../engine/metrics.js';
import { dataJsonOf, type Payload } from '../engine/publication.js';
import type { RoomHooks, Screened } from '../hooks/room-hooks.js';
import { applicationIn } from './reserved-rooms.js';

export type { Payload, Published };

/** A publish that names itself across retries (issue #22); see Draft.publishId. */
export interface PublishOnce {
  publishId: string;
  fingerprint?: string;
}

/** Who published: the sender part of the envelope, encoded once per connection. */
export interface Publisher {
  readonly fromJson: string;
}

export type JoinResult =
  | {
      ok: true;
      room: Room;
      log: RoomLog;
      /** With `watch`: the members across every node, this one included. */
      members?: MemberList;
    }
  | { ok: false; code: ErrorCode; message: string; byHook?: undefined }
  /** The application's onJoin hook refused it (or could not decide): not the client's mistake. */
  | { ok: false; code: ErrorCode | AppErrorCode; message: string; byHook: true };

/**
 * What the application hears of rooms on this server; plaza.ts turns it into events and
 * webhooks. Never told about the server's own rooms (reserved-rooms.ts).
 */
export interface RoomObserver {
  /** `member` is now in `room` (room.members.size === 1: it is the first here). */
  joined(room: Room, member: Member): void;
  /** `member` left `room` (room.members.size === 0: it was the last here). */
  left(room: Room, member: Member): void;
  /** Read on every publish; while false, published() is never called. */
  readonly watchesPublishes: boolean;
  /** A message published through this server got its offset and reached its members here. */
  published(draft: Draft, published: Published, from: Publisher): void;
}

/** The application's part in rooms: its hooks and what it listens to. Both optional. */
export interface BrokerApp {
  hooks?: RoomHooks;
  observer?: RoomObserver;
}

export interface BrokerOptions {
  maxRoomsPerConnection: number;
  /** Members listed in a presence snapshot. */
  maxPresence: number;
}

export class Broker {
  private readonly roomJson = new Map<string, string>();

  constructor(
    readonly hub: Hub,
    readonly history: HistoryStore,
    readonly backplane: Backplane,
    private readonly options: BrokerOptions,
    readonly metrics: Metrics,
    private readonly app: BrokerApp = {},
  ) {}

  /** An onJoin hook is set: joins wait for it, and a plain client's messages wait for its join. */
  get screensJoins(): boolean {
    return this.app.hooks?.screensJoins === true;
  }

  /** An onPublish hook is set: client publishes go through screen() first, one at a time per connection. */
  get screensPublishes(): boolean {
    return this.app.hooks?.screensPublishes === true;
  }

  /**
   * Runs the onPublish hook on a client's message before it has an offset. Resolves with the
   * payload to publish (the client's, or the hook's replacement) or with the code to answer.
   */
  screen(name: string, payload: Payload, member: Member): Promise<Screened> {
    const hooks = applicationIn(name, this.app).hooks;
    if (!hooks) return Promise.resolve({ ok: true, payload });
    return hooks.screenPublish(name, payload, member);
  }

  /**
   * Adds `member` to `name` once the backplane has the room ready. Resolves undefined when the
   * member went away while it waited: it is never added then, and the room is let go.
   */
  async join(member: Member, name: string, watch: boolean): Promise<JoinResult | undefined> {
    const existing = this.hub.room(name);
    if (existing?.members.has(member)) return this.rejoin(member, existing, watch);
    const refused = this.refusal(member, name);
    if (refused) return refused;
    const { hooks, observer } = applicationIn(name, this.app);
    if (hooks?.screensJoins) {
      const admitted = await hooks.screenJoin(name, member);
      if (!admitted.ok) return { ok: false, code: admitted.code, message: admitted.message, byHook: true };
      if (!member.isOpen()) return undefined;
    }
    let log: RoomLog;
    try {
      log = await this.backplane.attach(name);
    } catch (error) {
      if (error instanceof BackplaneError) return { ok: false, code: error.code, message: error.message };
      throw error;
    }
    const listed = watch ? await this.othersOnline(name) : undefined;
    // Every await is a chance for the member to have closed, or joined elsewhere meanwhile.
    const again = this.hub.room(name);
    if (!member.isOpen() || again?.members.has(member) || member.rooms.size >= this.options.maxRoomsPerConnection) {
      this.backplane.detach(name);
      if (!member.isOpen()) return undefined;
      return again?.members.has(member) ? this.rejoin(member, again, watch) : this.tooManyRooms();
    }
    const room = this.enter(member, name, watch, observer);
    return { ok: true, room, log, ...(listed && { members: withLocal(listed, room, this.options.maxPresence) }) };
  }

  /**
   * join() without presence in one synchronous step, when nothing in it waits: the backplane holds
   * a room at once (one server) and no onJoin hook screens the room. The same checks and the same
   * result, without join()'s two awaits and their promises: a plain client joins the default room
   * on every connect (issue 24, handshakes as cheap as bare ws's). Null when it cannot be done at
   * once (a cluster, a hook, the member already in the room): then join() is the way.
   */
  joinAtOnce(member: Member, name: string): JoinResult | null {
    const backplane = this.backplane;
    if (!backplane.hold || this.hub.room(name)?.members.has(member)) return null;
    const { hooks, observer } = applicationIn(name, this.app);
    if (hooks?.screensJoins) return null;
    const refused = this.refusal(member, name);
    if (refused) return refused;
    let log: RoomLog;
    try {
      log = backplane.hold(name);
    } catch (error) {
      if (error instanceof BackplaneError) return { ok: false, code: error.code, message: error.message };
      throw error;
    }
    return { ok: true, room: this.enter(member, name, false, observer), log };
  }

  /** Why `member` may not join `name` now, checked before anything is attached (a refused join leaves no state anywhere). */
  private refusal(member: Member, name: string): JoinResult | undefined {
    if (member.rooms.size >= this.options.maxRoomsPerConnection) return this.tooManyRooms();
    // Rooms are a resource of the server: each connection creates them at a bounded rate.
    if (!this.history.log(name) && member.mayCreateRoom && !member.mayCreateRoom()) {
      return { ok: false, code: ErrorCode.RateLimited, message: 'creating new rooms too fast (--room-creation-rate); join existing rooms or wait a moment' };
    }
    return undefined;
  }

  /** The member is in: the room (made if needed), its presence told, the application told. */
  private enter(member: Member, name: string, watch: boolean, observer: RoomObserver | undefined): Room {
    const room = this.hub.join(member, name, watch);
    this.backplane.announce(room, 'joined', member);
    observer?.joined(room, member);
    return room;
  }

  /** Joining a room again answers again (a re-sync) and does not count as another room. */
  private async rejoin(member: Member, room: Room, watch: boolean): Promise<JoinResult | undefined> {
    if (watch) room.watchers.add(member);
    const listed = watch ? await this.othersOnline(room.name) : undefined;
    const now = this.hub.room(room.name);
    if (!member.isOpen() || !now?.members.has(member)) return undefined;
    return { ok: true, room: now, log: this.history.log(room.name)!, ...(listed && { members: withLocal(listed, now, this.options.maxPresence) }) };
  }

  /**
   * Members other nodes know of, read before joining so that the reply is then built in one
   * synchronous step that nothing live can overtake. On one server the room itself is the list.
   */
  private othersOnline(name: string): Promise<MemberList> {
    return this.backplane.presenceForJoin(name, this.options.maxPresence);
  }

  private tooManyRooms(): JoinResult {
    return { ok: false, code: ErrorCode.TooManyRooms, message: `a connection may be in at most ${this.options.maxRoomsPerConnection} rooms; leave one first` };
  }

  leave(member: Member, room: Room): void {
    if (!room.members.has(member)) return;
    this.hub.leave(member, room);
    this.backplane.announce(room, 'left', member);
    this.backplane.detach(room.name);
    const { hooks, observer } = applicationIn(room.name, this.app);
    observer?.left(room, member);
    hooks?.left(room.name, member);
  }

  leaveAll(member: Member): void {
    for (const room of member.rooms) this.leave(member, room);
  }

  /**
   * Publishes to `name`, which need not have members here. Resolves once this server's members
   * have been handed the message; rejects with a BackplaneError (`server_full`, `unavailable`).
   */
  async publish(name: string, payload: Payload, from: Publisher, except?: Member, once?: PublishOnce): Promise<Published> {
    const draft = this.draftOf(name, payload, from, except, once);
    const published = await this.backplane.publish(draft);
    // A repeated publish id: the first one was counted and told to the application, once.
    if (published.duplicate) return published;
    this.metrics.published++;
    const observer = applicationIn(name, this.app).observer;
    if (observer?.watchesPublishes) observer.published(draft, published, from);
    return published;
  }

  /**
   * Hands a message to `name`'s members of this moment, on every node, outside its order (issue
   * #22, item 8): no offset, history, journal, publish id, webhook or `published` event. Resolves
   * with how many members here got it.
   */
  publishEphemeral(name: string, payload: Payload, from: Publisher, except?: Member): Promise<number> {
    this.metrics.ephemeral++;
    return this.backplane.publishEphemeral(this.draftOf(name, payload, from, except));
  }

  /** A message as the backplane takes it: stored (with its publish id, if any) or ephemeral. */
  private draftOf(name: string, payload: Payload, from: Publisher, except: Member | undefined, once?: PublishOnce): Draft {
    return {
      room: name,
      roomJson: this.encodedRoom(name),
      fromJson: from.fromJson,
      dataJson: dataJsonOf(payload),
      payload,
      time: Date.now(),
      except,
      ...(once && { publishId: once.publishId, fingerprint: once.fingerprint }),
    };
  }

  /** Settles `publishId` in `name` (Backplane.withdraw): its first place, or undefined once withdrawn. */
  withdraw(name: string, publishId: string): Promise<{ offset: number; epoch: string } | undefined> {
    return this.backplane.withdraw(name, publishId, Date.now());
  }

  /**
   * Where `publishId` landed in `name`, if the room's window has it: read before an onPublish
   * hook runs, so a retry is not screened twice. publish() stays the atomic check.
   */
  firstAck(name: string, publishId: string): Promise<{ offset: number; epoch: string; fingerprint: string } | undefined> {
    return this.backplane.firstAck(name, publishId);
  }

  recover(log: RoomLog, since: Position): Recovery {
    return this.history.since(log, since);
  }

  recent(log: RoomLog, count: number): HistoryEntry[] {
    return this.history.last(log, count);
  }

  /** Room names held encoded; at most the rooms tracked × 2 + 1024. */
  get encodedRoomCount(): number {
    return this.roomJson.size;
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

/** A member list read before joining, completed with this node's members (`room` after the join). */
function withLocal(listed: MemberList, room: Room, limit: number): MemberList {
  const members: PresenceMember[] = [...listed.members];
  const sessions = new Set(listed.sessions);
  for (const member of room.members) {
    if (sessions.has(member.id)) continue;
    sessions.add(member.id);
    if (members.length < limit) members.push({ session: member.id, name: member.name });
  }
  return { members, count: sessions.size, sessions };
}
