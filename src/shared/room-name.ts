/**
 * What a room name may be, checked the same way for plaza.v1 requests, the HTTP API and
 * --default-room: letters, digits and a few separators, so names are safe in URLs, logs and
 * Redis keys (no braces, which Redis Cluster hash tags use).
 */
const ROOM_NAME = /^[\p{L}\p{N}_\-.:@#/+=~]+$/u;

/** What is wrong with `room` as a room name, or undefined when it is a good one. */
export function roomNameProblem(room: unknown, maxLength: number): string | undefined {
  if (typeof room !== 'string' || room.length === 0) return '"room" must be a non-empty string';
  if (room.length > maxLength) return `"room" is longer than ${maxLength} characters`;
  if (!ROOM_NAME.test(room)) return '"room" may contain only letters, digits and _ - . : @ # / + = ~';
  return undefined;
}
