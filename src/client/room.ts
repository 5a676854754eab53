/**
 * One joined room on the client: what the application holds (`Room`) and the bookkeeping that
 * makes delivery exactly-once across reconnects: the last delivered position, and the member
 * list kept from the join snapshot plus presence deltas. The wire work is in v1.ts.
 */
import type { EphemeralMessage, Joined, JoinRequest, Member, Position, Presence, RoomMessage, Sender, UnrecoveredReason } from '../shared/protocol.js';
import { createEmitter } from './emitter.js';
import type { PlazaError } from './error.js';

export interface JoinOptions {
  /**
   * Also deliver up to this many recent messages when the room is joined without a position to
   * resume from, and after a resume failed ('reset'). The server caps it at its `historySize`.
   * @default 0
   */
  history?: number;
  /** Keep `members` and `memberCount` up to date and emit 'presence'. @default false */
  presence?: boolean;
  /**
   * Resume after this position on the first join too, e.g. a `room.position` the page saved in
   * sessionStorage before a reload.
   * @default undefined (start from now, plus `history`)
   */
  since?: Position;
}

export interface PublishOptions {
  /** Do not send this message back to this client (its ack still comes). @default false */
  excludeSelf?: boolean;
  /**
   * Send it to the room's members of this moment only (typing indicators, cursors): no offset,
   * no history, not replayed on a resume, never queued or sent again. Members get it as an
   * 'ephemeral' event. Resolves with `{ room, ephemeral: true }`; see docs/client.md for its
   * rejections.
   * @default false
   */
  ephemeral?: boolean;
}

/** What an ephemeral publish resolves with: the server handed it on; it has no place in the room. */
export interface EphemeralAck {
  room: string;
  ephemeral: true;
}

/** Who sent an ephemeral message, and when (it has no offset, epoch or id). */
export interface EphemeralMeta {
  sender: Sender;
  /** Server time, ms since the Unix epoch. */
  time: number;
}

/** What a publish's promise resolves with: where the message landed in the room's history. */
export interface PublishAck {
  room: string;
  offset: number;
  epoch: string;
  /**
   * The publish was sent again (after a drop) and the server had already published the first
   * try: this is that first place, and the message is in the room once.
   */
  duplicate?: true;
  /**
   * Sent again after a drop into a room whose history started over meanwhile (a new epoch: a
   * restart without --data-dir, a Redis failover): the server could not know whether the first
   * try was published, so the message may be in the old epoch too. Rare; members were told with
   * a 'reset'.
   */
  mayRepeat?: true;
}

/** Everything the envelope says about a message besides its data. */
export interface MessageMeta {
  /** Who published: the connection's session id and display name ("anonymous" for plain clients). */
  sender: Sender;
  /** The message's place in the room: 1, 2, 3, … within `epoch`. */
  offset: number;
  epoch: string;
  /** Server time of publishing, ms since the Unix epoch. */
  time: number;
  /** `epoch:offset`, unique per room. */
  id: string;
  /** 'base64' when `data` is the base64 of binary bytes a plain client sent. */
  encoding?: 'base64';
}

export interface RoomEvents {
  /** A message: in offset order and exactly once, live or caught up after a reconnect. */
  message: [data: unknown, meta: MessageMeta];
  /** An ephemeral message (`publish(data, { ephemeral: true })`): live only, outside the room's order and position. */
  ephemeral: [data: unknown, meta: EphemeralMeta];
  /** With `presence: true`: the member list after a join snapshot or a join/leave delta. */
  presence: [members: readonly Member[], memberCount: number];
  /**
   * After a reconnect the missed messages could not be recovered (`reason`: epoch_changed,
   * window_passed or offset_ahead). Show a gap or reload; the `history` asked for follows as
   * 'message' events.
   */
  reset: [info: { reason: UnrecoveredReason }];
  /** The server answered a join (the first, or the rejoin after each reconnect); caught up to `position`. */
  joined: [position: Position];
  /** The server refused the join (e.g. forbidden, bad_room, too_many_rooms): the room is left. */
  error: [error: PlazaError];
}

export interface Room {
  readonly name: string;
  /** With `presence: true`: the members as last known (a new array on every change); else []. */
  readonly members: readonly Member[];
  /** With `presence: true`: how many members (exact even when the server cuts `members`). */
  readonly memberCount: number;
  /** The last message delivered (or the join point): where a reconnect resumes. */
  readonly position: Position | undefined;
  /** False once left or refused. */
  readonly active: boolean;
  /**
   * Publishes any JSON value. Resolves with the ack once the server has stored it; rejects with
   * a PlazaError whose `code` says why (see error.ts). Queued while offline, sent after the rejoin.
   */
  publish(data: unknown, options: PublishOptions & { ephemeral: true }): Promise<EphemeralAck>;
  publish(data: unknown, options?: PublishOptions): Promise<PublishAck>;
  /** Listens to `event`; returns the unsubscribe function (safe to call twice). */
  on<K extends keyof RoomEvents>(event: K, fn: (...args: RoomEvents[K]) => void): () => void;
  /** Leaves the room: no more events, no rejoin, its queued publishes rejected (not_joined). Idempotent. */
  leave(): void;
}

/** The v1 layer's handle on a room. */
export interface RoomState {
  readonly room: Room;
  active: boolean;
  /** Resumes refused so far (`'reset'`): a publish written before one may have a first copy in the timeline left behind. */
  resets: number;
  request(): Omit<JoinRequest, 'id'>;
  joined(reply: Joined): void;
  message(message: RoomMessage): void;
  ephemeral(message: EphemeralMessage): void;
  presence(delta: Presence): void;
  /**
   * The ack of our own publish sent with `excludeSelf`: that message never comes to us, so the
   * position steps over its offset once everything before it was delivered. Other acks are not
   * deliveries and never move the position: only messages do.
   */
  skip(position: Position): void;
  fail(error: PlazaError): void;
}

export interface RoomHost {
  publish(state: RoomState, data: unknown, options: PublishOptions): Promise<PublishAck | EphemeralAck>;
  leave(state: RoomState): void;
}

/** Own excludeSelf messages remembered at once; far more than acks can be outstanding. */
const MAX_SKIPS = 1000;

export function createRoom(name: string, options: JoinOptions, host: RoomHost): RoomState {
  const events = createEmitter<RoomEvents>();
  let position = options.since;
  /** Offsets of our own excludeSelf messages not yet stepped over, in the current epoch. */
  let skips: Position[] = [];
  let members: readonly Member[] = [];
  let memberCount = 0;

  const setMembers = (list: readonly Member[], count: number) => {
    members = list;
    memberCount = count;
    events.emit('presence', list, count);
  };

  const isSkipped = (epoch: string, offset: number) => skips.some((s) => s.epoch == epoch && s.offset == offset);

  /** Steps over our own excludeSelf messages that come next, and forgets skips already passed. */
  function advance(): void {
    while (position && isSkipped(position.epoch, position.offset + 1)) position = { epoch: position.epoch, offset: position.offset + 1 };
    skips = skips.filter((s) => position && s.epoch == position.epoch && s.offset > position.offset);
  }

  /** Drops what was delivered already: a re-sent join may repeat messages (PROTOCOL.md, recovery). */
  function deliver(m: RoomMessage): void {
    if (position && m.epoch == position.epoch && m.offset <= position.offset) return;
    position = { epoch: m.epoch, offset: m.offset };
    // Our own excludeSelf message, coming back in a resume: never shown to us.
    if (!isSkipped(m.epoch, m.offset)) emitMessage(m);
    advance();
  }

  function emitMessage(m: RoomMessage): void {
    events.emit('message', m.data, {
      sender: m.from,
      offset: m.offset,
      epoch: m.epoch,
      time: m.time,
      id: m.id,
      ...(m.encoding && { encoding: m.encoding }),
    });
  }

  const state: RoomState = {
    active: true,
    resets: 0,
    room: {
      name,
      get members() {
        return members;
      },
      get memberCount() {
        return memberCount;
      },
      get position() {
        return position;
      },
      get active() {
        return state.active;
      },
      publish: ((data: unknown, publishOptions: PublishOptions = {}) => host.publish(state, data, publishOptions)) as Room['publish'],
      on: events.on,
      leave: () => host.leave(state),
    },
    request: () => ({
      type: 'join',
      room: name,
      ...(position && { since: position }),
      ...(options.history && { history: options.history }),
      ...(options.presence && { presence: true }),
    }),
    joined(reply) {
      if (reply.recovered === false) {
        // The old position means nothing now; everything in this reply is news.
        position = undefined;
        skips = [];
        state.resets++;
        events.emit('reset', { reason: reply.reason ?? 'epoch_changed' });
      }
      if (reply.members) setMembers(reply.members, reply.memberCount ?? reply.members.length);
      for (const m of reply.messages) deliver(m);
      position = { epoch: reply.epoch, offset: reply.offset };
      advance();
      events.emit('joined', position);
    },
    message: deliver,
    // Never moves the position: it has none, and a resume never brings it back.
    ephemeral: (m) => events.emit('ephemeral', m.data, { sender: m.from, time: m.time }),
    presence(delta) {
      const gone = new Set(delta.left?.map((m) => m.session));
      const list = members.filter((m) => !gone.has(m.session));
      for (const m of delta.joined ?? []) if (!list.some((k) => k.session == m.session)) list.push(m);
      setMembers(list, delta.memberCount);
    },
    skip(ack) {
      if (position && ack.epoch == position.epoch && ack.offset <= position.offset) return;
      // Bounded: only excludeSelf publishes in flight add to it, and passing them removes them.
      if (skips.length < MAX_SKIPS) skips.push({ epoch: ack.epoch, offset: ack.offset });
      advance();
    },
    fail(error) {
      state.active = false;
      events.emit('error', error);
    },
  };
  return state;
}
