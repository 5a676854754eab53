/**
 * Publish fences (issue #22): after a connection's publish with a publish id was answered
 * `unavailable`, the client sends it again, and its later publishes to that room after it. Until
 * that retry comes, the connection's other publishes to the room are refused (`unavailable`, not
 * sent), so none of them can land before it and the connection's order holds. Kept beside the
 * connection, not in it: a WeakMap goes with the connection, and a connection has at most one
 * fence per room it is in (--max-rooms-per-connection bounds them).
 */
const fences = new WeakMap<object, Map<string, string>>();

/** The publish id `connection` must send next to `room`, if a fence stands. */
export function fenceOf(connection: object, room: string): string | undefined {
  return fences.get(connection)?.get(room);
}

/** Fences `room` for `connection` until `publishId` comes again; an earlier fence stands. */
export function raiseFence(connection: object, room: string, publishId: string): void {
  let rooms = fences.get(connection);
  if (!rooms) fences.set(connection, (rooms = new Map()));
  if (!rooms.has(room)) rooms.set(room, publishId);
}

export function lowerFence(connection: object, room: string): void {
  fences.get(connection)?.delete(room);
}
