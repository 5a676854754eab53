/**
 * rooms/backplane/ — where messages get their order: this contract, the local (one-server)
 * implementation, and the Redis one in redis/ (backplane.ts wires it: the wire link.ts, the
 * publishes in flight, the room mirrors, and the cluster's directory of presence and summaries
 * directory.ts). It may import what rooms/ may.
 *
 * The Backplane: where a room message gets its place in the room's order and from where it
 * reaches this node's members. Two implementations keep the same contract:
 *
 * - `LocalBackplane` (local.ts): one server; the offset comes from the room's log in memory.
 * - `RedisBackplane` (redis/backplane.ts): several servers as one; the offset comes from Redis, and every
 *   node, the publishing one included, delivers when the room's channel brings the message back.
 *
 * The broker is written against this interface only, as socket.io's in-memory adapter is the
 * reference that its Redis adapter replaces. The contract, for both:
 *
 * 1. `publish` resolves with `{epoch, offset}` only after this node's members of the room have
 *    been handed the message (queued in their outbox), so an ack sent on resolution can never
 *    overtake its own message, or any earlier one, on the same connection.
 * 2. `attach` resolves with a log the caller may answer a join from; it holds the room until the
 *    matching `detach`. The caller re-checks that its member is still open after the await and
 *    detaches if not, so a connection that closed meanwhile never becomes a member.
 * 3. A log is used to give out offsets under an epoch only while it is continuous with every
 *    message ever given out under that epoch. Otherwise it takes a fresh (island) epoch first.
 *    Members whose view of a room has a gap get an unsolicited `joined` with `recovered: false`;
 *    members who missed nothing are caught up silently.
 * 4. Every queue towards the backplane is bounded; past the bound `publish` rejects at once with
 *    `BackplaneError('unavailable')`, it never buffers without limit.
 * 5. One async shape: every operation that may wait returns a Promise, always.
 */
import type { Member as PresenceMember, Position } from '../../../shared/protocol.js';
import type { HistoryEntry, RoomLog } from '../history.js';
import type { Hub, Member, Outgoing, Room } from '../../engine/hub.js';
import type { Payload } from '../../engine/publication.js';

/** A room message before it has a place in the room's order. */
export interface Draft {
  readonly room: string;
  /** JSON.stringify(room), computed once per room. */
  readonly roomJson: string;
  /** `{"session":…,"name":…}` of the publisher. */
  readonly fromJson: string;
  /** JSON of `data` as v1 clients receive it (base64 string for binary). */
  readonly dataJson: string;
  readonly payload: Payload;
  /** Server time of publishing, ms since the Unix epoch. */
  readonly time: number;
  /** A member that must not receive it (excludeSelf / --exclude-sender). */
  readonly except: Member | undefined;
  /** Names the message across retries: a repeat within the room's window is not published again (issue #22). */
  readonly publishId?: string;
  /** What the HTTP API's Idempotency-Key request carried, kept with the id ('' or undefined: nothing). */
  readonly fingerprint?: string;
}

export interface Published {
  offset: number;
  epoch: string;
  /** Members of this node that were handed the message. */
  delivered: number;
  /** The draft's publishId was published before: this is its first place, nothing was published now. */
  duplicate?: boolean;
  /** With `duplicate`: the fingerprint kept with the first publish ('' when none). */
  fingerprint?: string;
}

/** `bad_request` only answers a withdraw where no window is kept (--publish-id-window 0). */
export type BackplaneErrorCode = 'server_full' | 'unavailable' | 'withdrawn' | 'bad_request';

/** Why a publish or attach could not be done; `code` is the error code clients see. */
export class BackplaneError extends Error {
  override readonly name = 'BackplaneError';
  constructor(
    readonly code: BackplaneErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface MemberList {
  /** Cut at the limit asked for. */
  members: PresenceMember[];
  /** Exact. */
  count: number;
  /** Every member's session, uncut. */
  sessions: ReadonlySet<string>;
}

export interface RoomSummary {
  room: string;
  /** Members across every node. */
  members: number;
  epoch: string | null;
  lastOffset: number;
}

/** One page of a room's history for the HTTP API. */
export interface HistoryPage {
  epoch: string;
  lastOffset: number;
  /** Nothing between `since` and the first message returned was trimmed away. */
  complete: boolean;
  /** Envelope JSON, oldest first. */
  messages: string[];
}

/** Whom POST /api/disconnect closes: sessions, a user's connections, or both must match. */
export interface DisconnectSelector {
  session?: string;
  user?: string;
  reason: string;
}

/** What a backplane needs of this node: its rooms, and the fan-out to their members. */
export interface LocalNode {
  readonly hub: Hub;
  /** Hands one message to the room's members here; returns how many got it. */
  deliver(room: Room, message: Outgoing, except: Member | undefined): number;
  /**
   * Hands an already encoded envelope to the room's plaza.v1 members but `except` (a catch-up, a
   * reset, an ephemeral publish), in the turn's order with its messages; returns how many got it.
   */
  tell(room: Room, json: string, except?: Member): number;
  /** Hands a presence delta to the room's watchers, except the member it is about. */
  presence(room: Room, json: string, subject: string | undefined): void;
  /** Closes this node's matching connections with 4001; returns how many. */
  disconnect(selector: DisconnectSelector): number;
}

export interface BackplaneStatus {
  up: boolean;
  /** Why not, for /readyz and logs. */
  reason?: string;
}

/** Counters and gauges for /metrics; all zero for the local backplane. */
export interface BackplaneStats {
  /** Rooms this node follows for the cluster (it has members or joins in progress there). */
  rooms: number;
  /** Channels subscribed in Redis. */
  channels: number;
  /** Publishes sent to Redis and not yet delivered here, and their bytes. */
  inflight: number;
  inflightBytes: number;
  /** Publishes refused because the in-flight bound was reached, by who sent them. */
  rejected: number;
  /** Rooms re-read from Redis after a gap, an outage or a lost channel message. */
  resyncs: number;
  /** Rooms whose members were told their view had a gap. */
  resets: number;
  /** Round trip of the last publish through Redis, in ms. */
  publishLatencyMs: number;
}

/** The publish-id window's gauges for /metrics, in every mode. */
export interface PublishIdCounts {
  /** Publish ids remembered in this server's memory (one server; a cluster keeps its own in Redis, bounded per room). */
  readonly entries: number;
  /** Repeated publish ids answered with their first place instead of being published again. */
  readonly duplicates: number;
}

/**
 * The admin plane: what an operator asks of the whole cluster (the HTTP API), apart from the
 * data plane that carries messages.
 */
export interface ClusterAdmin {
  /** The room's members across every node. */
  members(room: string, limit: number): Promise<MemberList>;
  /** Rooms with members across every node, with their positions. */
  rooms(): Promise<RoomSummary[]>;
  /** A page of the room's history; undefined when the room has none anywhere. */
  history(room: string, since: number, limit: number): Promise<HistoryPage | undefined>;
  /** Closes matching connections on every node; resolves with how many. */
  disconnect(selector: DisconnectSelector): Promise<number>;
}

/**
 * Texts between the nodes of a cluster, one channel per node (`plaza:sse:<node>` on Redis): how
 * a POST for an SSE stream that another node holds reaches that node, and its answer comes back.
 */
export interface NodeMail {
  /** This node's id among the cluster's nodes. */
  readonly nodeId: string;
  /**
   * Sends `text` to node `to`. Resolves false when Redis knows no node listens there (it is
   * gone); rejects when Redis cannot be reached.
   */
  send(to: string, text: string): Promise<boolean>;
  /** Sets the one listener for texts sent to this node. */
  receive(listener: (text: string) => void): void;
}

/** The operations plane: running, health and counters. */
export interface BackplaneOperations {
  /** Connects; resolves without waiting for Redis to answer (a node starts while Redis is down). */
  start(): Promise<void>;
  /** Undoes start(): timers, connections. Idempotent. */
  close(): Promise<void>;
  readonly status: BackplaneStatus;
  /** The cluster's counters for /metrics; undefined for a backplane that is not a cluster. */
  readonly stats: BackplaneStats | undefined;
  /** The publish-id window's counts (one server and cluster alike). */
  readonly publishIdCounts: PublishIdCounts;
  /** Texts between nodes; absent on one server, which has no other node. */
  readonly mail?: NodeMail;
}

/** The data plane (rooms, publishing, presence) with the two others; see the contract above. */
export interface Backplane extends BackplaneOperations, ClusterAdmin {
  /**
   * Makes `room`'s log ready to answer a join and holds the room until `detach`.
   * Rejects with BackplaneError('server_full') when no room slot is left; nothing is held then.
   */
  attach(room: string): Promise<RoomLog>;
  /**
   * attach() at once, on a backplane that never has to wait for it (one server): the log, held,
   * or a BackplaneError thrown. Absent where attaching waits (Redis); joins then go through attach.
   */
  hold?(room: string): RoomLog;
  /** Gives back one hold taken by attach or hold; the last one lets the room go. */
  detach(room: string): void;
  /**
   * Gives `draft` the room's next offset and delivers it here (see the contract above). With a
   * `publishId` already in the room's window, publishes nothing and resolves with the first
   * place (`duplicate: true`) once that message has reached this node's members; the check and
   * the append are one atomic step, so two nodes given the same id cannot both publish it.
   */
  publish(draft: Draft): Promise<Published>;
  /**
   * Hands `draft` to the room's members of this moment, on every node, outside the room's order
   * (issue #22, item 8): no offset, no history, no journal, no publish id; a node that follows
   * the room never takes it for a gap. Resolves with how many members here were handed it, once
   * it is also on its way to the other nodes; rejects with BackplaneError('unavailable') when a
   * cluster could not send it on (the members here have it then).
   */
  publishEphemeral(draft: Draft): Promise<number>;
  /**
   * Settles `publishId` in `room` (issue #22, item 3): resolves with its first place if it was
   * published, or else records it as withdrawn, atomically with the check publish() makes, and
   * resolves undefined; a publish of a withdrawn id then rejects with
   * BackplaneError('withdrawn'). Rejects with 'unavailable' when that cannot be done now.
   */
  withdraw(room: string, publishId: string, time: number): Promise<{ offset: number; epoch: string } | undefined>;
  /** Where `publishId` landed in `room`, if the window still has it (a read; publish() is the atomic check). */
  firstAck(room: string, publishId: string): Promise<{ offset: number; epoch: string; fingerprint: string } | undefined>;
  /** Tells watchers, on every node, that `member` joined or left `room` (count: members here now). */
  announce(room: Room, change: 'joined' | 'left', member: Member): void;
  /**
   * The members a joining watcher is told of besides those in the room on this node: every
   * node's for a cluster, none on one server (the room here is the whole list then).
   */
  presenceForJoin(room: string, limit: number): Promise<MemberList>;
}

/** What a join is answered from: the room's log (offsets, epoch, kept entries). */
export type { HistoryEntry, Position, RoomLog };
