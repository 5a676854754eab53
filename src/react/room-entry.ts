/**
 * One room as the hooks share it: the client's Room, and an immutable snapshot of what the
 * components show (the last N messages, the members, joined, the last reset, the join's error),
 * replaced on every change so React compares by reference. Every component that uses the room
 * reads the same snapshot, so one mounted later still sees the messages that came before it.
 */
import type { Member, MessageMeta, PlazaClient, PlazaError, Room, UnrecoveredReason } from '../client/index.js';

/** What the components holding a room ask of it; the entry serves the most any of them asks. */
export interface RoomNeeds {
  /** Recent messages to ask for when joining (the client's `history` join option). */
  history: number;
  /** Keep the member list (the client's `presence` join option). */
  presence: boolean;
  /** Messages to keep in the snapshot: the latest this many. */
  keep: number;
}

/** A message as the hooks hand it out. The same object on every render, so rows can be memoised. */
export interface ReceivedMessage<T = unknown> {
  data: T;
  meta: MessageMeta;
}

/** The latest 'reset': missed messages were lost on a reconnect (see docs/client.md, Delivery). */
export interface ResetInfo {
  reason: UnrecoveredReason;
  /** When the page learned of it, ms since the Unix epoch (two resets for the same reason differ). */
  time: number;
}

export interface RoomSnapshot {
  /** The latest messages, oldest first, at most the largest `keep` asked for; each `meta.id` once. */
  readonly messages: readonly ReceivedMessage[];
  /** With presence: the members as last known. */
  readonly members: readonly Member[];
  readonly memberCount: number;
  /** The server answered this connection's join: everything missed while away has arrived. */
  readonly joined: boolean;
  readonly reset: ResetInfo | undefined;
  /** Why the server refused the join (forbidden, bad_room, too_many_rooms, …); cleared by the next join. */
  readonly error: PlazaError | undefined;
}

export interface RoomEntry {
  readonly name: string;
  /** How many components hold it; the Connection counts. */
  holds: number;
  /** The client's Room while joined. */
  readonly room: Room | undefined;
  readonly snapshot: RoomSnapshot;
  /** One more holder: joins, or joins again when it needs more than the current join gives. */
  hold(client: PlazaClient, needs: RoomNeeds): void;
  /** No holder left: stops listening and leaves the room. Idempotent. */
  release(): void;
  /** The connection is not open: the room is not joined until the rejoin's answer. */
  disconnected(): void;
}

export function createRoomEntry(name: string, changed: () => void): RoomEntry {
  let room: Room | undefined;
  let offs: Array<() => void> = [];
  let history = 0;
  let presence = false;
  let keep = 1;
  let snapshot: RoomSnapshot = { messages: [], members: [], memberCount: 0, joined: false, reset: undefined, error: undefined };

  const update = (patch: Partial<RoomSnapshot>) => {
    snapshot = { ...snapshot, ...patch };
    changed();
  };

  function listen(r: Room): void {
    offs = [
      r.on('message', (data, meta) => {
        // After a 'reset' the client no longer knows what was delivered, and the history it asks
        // for may repeat messages this list still shows.
        if (snapshot.messages.some((m) => m.meta.id == meta.id)) return;
        const kept = snapshot.messages.length >= keep ? snapshot.messages.slice(snapshot.messages.length - keep + 1) : snapshot.messages;
        update({ messages: [...kept, { data, meta }] });
      }),
      r.on('presence', (members, memberCount) => update({ members, memberCount })),
      r.on('joined', () => update({ joined: true })),
      r.on('reset', ({ reason }) => update({ reset: { reason, time: Date.now() } })),
      r.on('error', (error) => update({ error, joined: false })),
    ];
  }

  function stop(): void {
    for (const off of offs) off();
    offs = [];
  }

  const entry: RoomEntry = {
    name,
    holds: 0,
    get room() {
      return room?.active ? room : undefined;
    },
    get snapshot() {
      return snapshot;
    },
    hold(client, needs) {
      entry.holds++;
      keep = Math.max(keep, needs.keep);
      const morePresence = needs.presence && !presence;
      history = Math.max(history, needs.history);
      presence ||= needs.presence;
      if (room?.active && !morePresence) return;
      // A join that must now keep presence: leave and join again from where it was, which
      // repeats no message (the chat page changes names the same way).
      const since = room?.active ? room.position : undefined;
      if (room?.active) room.leave();
      stop();
      room = client.join(name, { history, presence, ...(since && { since }) });
      listen(room);
      update({ error: undefined, joined: false });
    },
    release() {
      stop();
      room?.leave();
      room = undefined;
    },
    disconnected() {
      if (snapshot.joined) update({ joined: false });
    },
  };
  return entry;
}
