/**
 * What a room name may be, checked the same way for plaza.v1 requests, the HTTP API and
 * --default-room: letters, digits and a few separators, so names are safe in URLs, logs and
 * Redis keys (no braces, which Redis Cluster hash tags use).
 */
const ROOM_NAME = /^[\p{L}\p{N}_\-.:@#/+=~]+$/u;

/** The rule above in words, for every error that states it. */
export const ROOM_NAME_RULE = 'letters, digits and _ - . : @ # / + = ~';

/** What is wrong with `room` as a room name, or undefined when it is a good one. */
export function roomNameProblem(room: unknown, maxLength: number): string | undefined {
  if (typeof room !== 'string' || room.length === 0) return '"room" must be a non-empty string';
  if (room.length > maxLength) return `"room" is longer than ${maxLength} characters`;
  if (!ROOM_NAME.test(room)) return `"room" may contain only ${ROOM_NAME_RULE}`;
  return undefined;
}

/**
 * Rooms named `plaza:…` are the server's own. The server alone speaks in them, so the
 * application's hooks, events and webhooks never run for them (rooms/reserved-rooms.ts says
 * what the server does with them); that is safe only because no client gets in: a client may
 * watch the status feed and nothing else.
 */
export const RESERVED_PREFIX = 'plaza:';

/** The live status feed: a client may join it with the API key, or anyone with --status. */
export const STATUS_ROOM = 'plaza:status';

export function isReservedRoom(room: string): boolean {
  return room.startsWith(RESERVED_PREFIX);
}

/**
 * Why a client (a plaza.v1 connection, the HTTP API, `plaza.publish()`, --default-room) may not
 * `use` the room `room`, or undefined when its name allows it. `mayWatchStatus`: the client came
 * with the API key, or the server runs with --status.
 */
export function reservedRoomProblem(room: string, use: 'join' | 'publish', mayWatchStatus = false): string | undefined {
  if (!isReservedRoom(room)) return undefined;
  if (use === 'join' && room === STATUS_ROOM) {
    return mayWatchStatus ? undefined : `${STATUS_ROOM} needs the API key: connect with ?key=<API key>`;
  }
  return use === 'join'
    ? `rooms named ${RESERVED_PREFIX}… are the server's own; of them only ${STATUS_ROOM} may be joined (with the API key); use another name`
    : `rooms named ${RESERVED_PREFIX}… are the server's own and take no messages from clients; publish elsewhere`;
}
