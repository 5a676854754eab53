/**
 * useRoom() and usePresence(): a room joined while the component is mounted, as React state.
 * The join lives in an effect keyed by the room's name, so a new name leaves the old room and
 * joins the new one, and unmounting leaves; the Connection's counting makes StrictMode's double
 * mount join once. State comes through useSyncExternalStore, so every component reading a room
 * sees the same snapshot, and publish() is bound to the current room (no stale closure).
 */
import { useCallback, useEffect, useMemo, useSyncExternalStore } from 'react';
import type { Member, PlazaError, PublishAck, PublishOptions, Status } from '../client/index.js';
import { EMPTY_ROOM } from './connection.js';
import { useConnection, usePlazaStatus } from './provider.js';
import type { ReceivedMessage, ResetInfo } from './room-entry.js';

export interface UseRoomOptions {
  /**
   * Recent messages the server sends on joining (capped by its `--history-size`), and after a
   * 'reset'.
   * @default 0
   */
  history?: number;
  /** Keep `members` and `memberCount`. @default false */
  presence?: boolean;
  /**
   * Messages this component keeps: the latest this many (older ones are dropped, oldest first).
   * @default 100
   */
  keep?: number;
}

export interface RoomView<T = unknown> {
  /** The room's name. */
  room: string;
  /** The latest `keep` messages, oldest first; each object stays the same while it is shown, keyed by `meta.id`. */
  messages: readonly ReceivedMessage<T>[];
  /** With `presence`: one entry per connection in the room (see docs/client.md, Presence). */
  members: readonly Member[];
  /** With `presence`: how many, exact even when the server shortens `members`. */
  memberCount: number;
  /** The connection's status. */
  status: Status;
  /** True once the server answered this connection's join (after every reconnect: caught up). */
  joined: boolean;
  /** The latest reset: messages missed while away could not be recovered. Undefined until one happens. */
  reset: ResetInfo | undefined;
  /** Why the server refused the join; the room is not joined until the component mounts again. */
  error: PlazaError | undefined;
  /**
   * Publishes `data` to the room: the client's Promise, resolving with `{ room, offset, epoch }`
   * once the server stored it, or rejecting with a PlazaError (docs/client.md, Delivery).
   */
  publish(data: T, options?: PublishOptions): Promise<PublishAck>;
}

const DEFAULT_KEEP = 100;

function check(hook: string, room: unknown, { history = 0, presence = false, keep = DEFAULT_KEEP }: UseRoomOptions): Required<UseRoomOptions> {
  if (typeof room != 'string' || room == '') throw new TypeError(`${hook} takes a room name (a non-empty string), got ${JSON.stringify(room)}`);
  if (!Number.isInteger(history) || history < 0) throw new TypeError(`${hook}: history must be a whole number ≥ 0, got ${history}`);
  if (!Number.isInteger(keep) || keep < 1) throw new TypeError(`${hook}: keep must be a whole number ≥ 1, got ${keep}`);
  return { history, presence: !!presence, keep };
}

/**
 * Joins `room` while the component is mounted and returns its messages, members, status, last
 * reset and a publish function. `T` types the messages' `data` and what `publish` takes; Plaza
 * does not check it, so validate data from untrusted peers before relying on its shape.
 */
export function useRoom<T = unknown>(room: string, options: UseRoomOptions = {}): RoomView<T> {
  const connection = useConnection('useRoom()');
  const { history, presence, keep } = check('useRoom()', room, options);
  useEffect(() => {
    const entry = connection.holdRoom(room, { history, presence, keep });
    return () => connection.letGoRoom(entry);
  }, [connection, room, history, presence, keep]);
  const watch = useCallback((fn: () => void) => connection.watchRoom(room, fn), [connection, room]);
  const snapshot = useSyncExternalStore(watch, () => connection.snapshot(room), emptyRoom);
  const { status } = usePlazaStatus();
  const all = snapshot.messages as readonly ReceivedMessage<T>[];
  const messages = useMemo(() => (all.length > keep ? all.slice(all.length - keep) : all), [all, keep]);
  const publish = useCallback((data: T, publishOptions?: PublishOptions) => connection.publish(room, data, publishOptions), [connection, room]);
  return {
    room,
    messages,
    members: snapshot.members,
    memberCount: snapshot.memberCount,
    status,
    joined: snapshot.joined,
    reset: snapshot.reset,
    error: snapshot.error,
    publish,
  };
}

export interface PresenceView {
  members: readonly Member[];
  memberCount: number;
}

/** Who is in `room` (joined with presence while the component is mounted). */
export function usePresence(room: string): PresenceView {
  const { members, memberCount } = useRoom(room, { presence: true, keep: 1 });
  return useMemo(() => ({ members, memberCount }), [members, memberCount]);
}

const emptyRoom = () => EMPTY_ROOM;
