/**
 * What a message the application publishes itself (`plaza.publish(room, data)`) must be: the
 * same rules as for a client's or the HTTP API's, answered with the same codes, as an error the
 * caller can branch on.
 */
import { ErrorCode } from '../../shared/protocol.js';
import { MAX_JSON_DEPTH, nestsWithin } from '../../shared/json.js';
import { reservedRoomProblem, roomNameProblem } from '../../shared/room-name.js';

/** Why `plaza.publish()` did not publish; `code` is one of the protocol's error codes. */
export class PublishError extends Error {
  override readonly name = 'PublishError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Returns why `data` cannot be published to `room`, or undefined when it can. */
export function publishProblem(room: unknown, data: unknown, limits: { maxRoomName: number; maxPayload: number }): PublishError | undefined {
  const problem = roomNameProblem(room, limits.maxRoomName);
  if (problem !== undefined) return new PublishError(ErrorCode.BadRoom, problem);
  const reserved = reservedRoomProblem(room as string, 'publish');
  if (reserved !== undefined) return new PublishError(ErrorCode.Forbidden, reserved);
  if (data === undefined) return new PublishError(ErrorCode.BadRequest, 'data is required: any JSON value');
  if (!nestsWithin(data, MAX_JSON_DEPTH)) return new PublishError(ErrorCode.BadRequest, `data nests deeper than ${MAX_JSON_DEPTH} levels`);
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (error) {
    return new PublishError(ErrorCode.BadRequest, `data cannot be encoded as JSON: ${(error as Error).message}`);
  }
  if (json === undefined) return new PublishError(ErrorCode.BadRequest, 'data must be a JSON value (not a function or a symbol)');
  if (Buffer.byteLength(json) > limits.maxPayload) return new PublishError(ErrorCode.TooLarge, `data is larger than ${limits.maxPayload} bytes (maxPayload)`);
  return undefined;
}
