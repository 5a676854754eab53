/**
 * What a <PlazaProvider> holds, without React: one Plaza client for the whole app and the rooms
 * its components use, each counted by who holds it. Components hold in effects and let go in
 * their cleanups; the client closes, and a room is left, one macrotask after its last holder let
 * go, so StrictMode's mount → unmount → mount and a component switching rooms in one commit keep
 * the same connection and join each room once (issue 26). Nothing connects until the first hold,
 * so creating one during a render (or on the server, for SSR) has no effect outside it.
 */
import { connect, PlazaError, type ClientOptions, type PlazaClient, type PublishAck, type PublishOptions, type Status } from '../client/index.js';
import { createRoomEntry, type RoomEntry, type RoomNeeds, type RoomSnapshot } from './room-entry.js';

export interface Connection {
  /** Keeps the client open, connecting on the first hold; returns it. */
  hold(): PlazaClient;
  /** Undoes one hold; the client (if this connection made it) closes a tick after the last one. */
  letGo(): void;
  /** Keeps `room` joined (and the client open) with at least `needs`; returns its entry. */
  holdRoom(room: string, needs: RoomNeeds): RoomEntry;
  /** Undoes one holdRoom(); the room is left a tick after the last. */
  letGoRoom(entry: RoomEntry): void;
  /** Publishes to a held room through the client; rejects with `not_joined` when nothing holds it. */
  publish(room: string, data: unknown, options?: PublishOptions): Promise<PublishAck>;
  /** Changes the display name: sent now if connected (and differs), and on every later connection. */
  setName(name: string): void;
  /** The client's status ('connecting' until the first hold). */
  status(): Status;
  /** The error that stopped the client (`unauthorized`, `token_expired`), if any. */
  error(): PlazaError | undefined;
  /** Calls `fn` when status() or error() changed; returns its unsubscribe. */
  watch(fn: () => void): () => void;
  /** The room's state (an empty one while nothing holds it); a new object after every change. */
  snapshot(room: string): RoomSnapshot;
  /** Calls `fn` when snapshot(room) changed; returns its unsubscribe. */
  watchRoom(room: string, fn: () => void): () => void;
}

/** Where the client comes from: made here from a URL and options, or the application's own. */
export type ClientSource = { url?: string | URL; options?: ClientOptions } | { client: PlazaClient };

/** A room nobody holds: what hooks show before their effect ran, and during a server render. */
export const EMPTY_ROOM: RoomSnapshot = Object.freeze({
  messages: Object.freeze([]),
  members: Object.freeze([]),
  memberCount: 0,
  joined: false,
  reset: undefined,
  error: undefined,
});

/** Runs `fn` one macrotask later: after React has run the whole commit's cleanups and effects. */
const later = (fn: () => void) => void setTimeout(fn, 0);

export function createConnection(source: ClientSource): Connection {
  const own = !('client' in source);
  let client: PlazaClient | undefined = 'client' in source ? source.client : undefined;
  let name = own ? source.options?.name : undefined;
  let holds = 0;
  let error: PlazaError | undefined;
  let offClient: Array<() => void> = [];
  const rooms = new Map<string, RoomEntry>();
  const watchers = new Set<() => void>();
  const roomWatchers = new Map<string, Set<() => void>>();

  const notify = () => {
    for (const fn of [...watchers]) fn();
  };
  const notifyRoom = (room: string) => {
    for (const fn of [...(roomWatchers.get(room) ?? [])]) fn();
  };

  function open(): PlazaClient {
    if (client && (!own || client.status != 'closed')) return attach(client);
    // Rooms mode is what the hooks speak; a caller's `rooms: false` would make join() throw.
    const options = own ? source.options : undefined;
    error = undefined;
    client = connect(own ? source.url : undefined, { ...options, ...(name !== undefined && { name }), rooms: true });
    return attach(client);
  }

  /** Listens to the client once per hold period: its status and its final error. */
  function attach(c: PlazaClient): PlazaClient {
    if (offClient.length) return c;
    offClient = [
      c.on('status', (status) => {
        if (status != 'open') for (const entry of rooms.values()) entry.disconnected();
        notify();
      }),
      c.on('error', (e) => {
        error = e;
        notify();
      }),
    ];
    notify();
    return c;
  }

  function close(): void {
    for (const off of offClient) off();
    offClient = [];
    for (const entry of [...rooms.values()]) {
      entry.release();
      rooms.delete(entry.name);
      notifyRoom(entry.name);
    }
    if (own) client?.close();
    notify();
  }

  const connection: Connection = {
    hold() {
      holds++;
      return open();
    },
    letGo() {
      holds--;
      later(() => {
        if (holds == 0) close();
      });
    },
    holdRoom(room, needs) {
      const c = connection.hold();
      let entry = rooms.get(room);
      if (!entry) {
        entry = createRoomEntry(room, () => notifyRoom(room));
        rooms.set(room, entry);
      }
      entry.hold(c, needs);
      return entry;
    },
    letGoRoom(entry) {
      entry.holds--;
      later(() => {
        if (entry.holds == 0 && rooms.get(entry.name) === entry) {
          rooms.delete(entry.name);
          entry.release();
          notifyRoom(entry.name);
        }
      });
      connection.letGo();
    },
    publish(room, data, options) {
      const joined = rooms.get(room)?.room;
      if (!joined) return Promise.reject(new PlazaError('not_joined', `no component holds room ${room}: publish with the useRoom() of a mounted component`));
      return joined.publish(data, options);
    },
    setName(next) {
      if (next === name) return;
      name = next;
      if (client && client.status != 'closed' && holds > 0) client.setName(next);
    },
    status: () => client?.status ?? 'connecting',
    error: () => error,
    watch(fn) {
      watchers.add(fn);
      return () => void watchers.delete(fn);
    },
    snapshot: (room) => rooms.get(room)?.snapshot ?? EMPTY_ROOM,
    watchRoom(room, fn) {
      let set = roomWatchers.get(room);
      if (!set) roomWatchers.set(room, (set = new Set()));
      set.add(fn);
      return () => {
        set.delete(fn);
        if (set.size == 0 && roomWatchers.get(room) === set) roomWatchers.delete(room);
      };
    },
  };
  return connection;
}
