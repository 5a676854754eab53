/**
 * Publish fences (issue #22): after a connection's publish with a publish id was answered
 * `unavailable`, the client sends it again, and its later publishes to that room after it. Until
 * that retry comes, the connection's other publishes to the room are refused (`unavailable`, not
 * sent), so none of them can land before it and the connection's order holds. Kept beside the
 * connection, not in it: a WeakMap goes with the connection, and a connection has at most one
 * fence per room it is in (--max-rooms-per-connection bounds them).
 *
 * Refusals do not always come back in the order the publishes came: one may be refused at once
 * (Redis away while an earlier one of the room is still on its way) and the earlier one later.
 * The client re-sends the earliest first, so the fence names the earliest refused publish, by
 * the order the connection's publishes arrived (`arrived`).
 */
interface Fences {
  /** Publishes of this connection handed on so far: their arrival order. */
  arrivals: number;
  readonly rooms: Map<string, { publishId: string; arrival: number }>;
}

const fences = new WeakMap<object, Fences>();

function fencesOf(connection: object): Fences {
  let entry = fences.get(connection);
  if (!entry) fences.set(connection, (entry = { arrivals: 0, rooms: new Map() }));
  return entry;
}

/** The publish id `connection` must send next to `room`, if a fence stands. */
export function fenceOf(connection: object, room: string): string | undefined {
  return fences.get(connection)?.rooms.get(room)?.publishId;
}

/** Numbers a publish of `connection` as it is handed on, for raiseFence. */
export function arrived(connection: object): number {
  return ++fencesOf(connection).arrivals;
}

/** Fences `room` for `connection` until `publishId` comes again; a fence for an earlier publish stands. */
export function raiseFence(connection: object, room: string, publishId: string, arrival: number): void {
  const rooms = fencesOf(connection).rooms;
  const standing = rooms.get(room);
  if (!standing || arrival < standing.arrival) rooms.set(room, { publishId, arrival });
}

export function lowerFence(connection: object, room: string): void {
  fences.get(connection)?.rooms.delete(room);
}
