/**
 * Turns an untrusted plaza.v1 text frame into a typed request, or a coded error.
 * Only known fields are read, one by one, so keys like `__proto__` or `constructor` in the
 * JSON can never reach an object's prototype or the server's state.
 */
import { ErrorCode, MAX_PUBLISH_ID, PUBLISH_ID_PATTERN, type ClientMessage, type Position } from '../../shared/protocol.js';
import { DisplayNameError, normalizeDisplayName } from '../access/display-name.js';
import { isObject, MAX_JSON_DEPTH, own, textNestsWithin } from '../../shared/json.js';
import { roomNameProblem } from '../../shared/room-name.js';
import { MAX_EPOCH_LENGTH, MAX_REQUEST_ID_LENGTH } from '../bounds.js';

export interface RequestLimits {
  maxRoomName: number;
  historySize: number;
}

export type ParseResult =
  | { ok: true; request: ClientMessage }
  | { ok: false; id: number | string | undefined; code: ErrorCode; message: string };


class Invalid {
  constructor(
    readonly code: ErrorCode,
    readonly message: string,
  ) {}
}

function fail(message: string, code: ErrorCode = ErrorCode.BadRequest): never {
  throw new Invalid(code, message);
}



function validateRoomName(room: unknown, maxLength: number): string {
  const problem = roomNameProblem(room, maxLength);
  if (problem !== undefined) fail(problem, ErrorCode.BadRoom);
  return room as string;
}

function optionalBoolean(object: Record<string, unknown>, key: string): boolean | undefined {
  const value = own(object, key);
  if (value !== undefined && typeof value !== 'boolean') fail(`"${key}" must be true or false`);
  return value as boolean | undefined;
}

function readId(object: Record<string, unknown>): number | string | undefined {
  const id = own(object, 'id');
  if (id === undefined) return undefined;
  if (typeof id === 'number' && Number.isFinite(id)) return id;
  if (typeof id === 'string' && id.length <= MAX_REQUEST_ID_LENGTH) return id;
  throw new Invalid(ErrorCode.BadRequest, `"id" must be a number or a string of at most ${MAX_REQUEST_ID_LENGTH} characters`);
}

function readPosition(value: unknown): Position | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) fail('"since" must be an object {epoch, offset}');
  const epoch = own(value, 'epoch');
  const offset = own(value, 'offset');
  if (typeof epoch !== 'string' || epoch.length === 0 || epoch.length > MAX_EPOCH_LENGTH) {
    fail('"since.epoch" must be the epoch string the server sent');
  }
  if (!Number.isSafeInteger(offset) || (offset as number) < 0) fail('"since.offset" must be an integer ≥ 0');
  return { epoch, offset: offset as number };
}

function readPublishId(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !PUBLISH_ID_PATTERN.test(value)) {
    fail(`"publishId" must be 1 to ${MAX_PUBLISH_ID} printable ASCII characters without spaces`);
  }
  return value;
}

function readName(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') fail('"name" must be a string');
  try {
    return normalizeDisplayName(value);
  } catch (error) {
    if (error instanceof DisplayNameError) fail(error.message);
    throw error;
  }
}

/** The `id` of a request frame that will not be handled (over the rate), if it has a valid one. */
export function requestIdOf(text: string): number | string | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? readId(value) : undefined;
  } catch {
    return undefined;
  }
}

export function parseRequest(text: string, limits: RequestLimits): ParseResult {
  // Counted on the text, before anything is built from it. The envelope is one level, so
  // `data` may nest as deep as the HTTP API allows.
  if (!textNestsWithin(text, MAX_JSON_DEPTH + 1)) {
    return { ok: false, id: undefined, code: ErrorCode.BadRequest, message: `the JSON nests deeper than ${MAX_JSON_DEPTH} levels inside the envelope; flatten "data"` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, id: undefined, code: ErrorCode.BadJson, message: 'the frame is not valid JSON' };
  }
  if (!isObject(value)) return { ok: false, id: undefined, code: ErrorCode.BadRequest, message: 'a request must be a JSON object with a "type"' };
  let id: number | string | undefined;
  try {
    id = readId(value);
    return { ok: true, request: readRequest(value, id, limits) };
  } catch (error) {
    if (error instanceof Invalid) return { ok: false, id, code: error.code, message: error.message };
    throw error;
  }
}

function readRequest(value: Record<string, unknown>, id: number | string | undefined, limits: RequestLimits): ClientMessage {
  const type = own(value, 'type');
  switch (type) {
    case 'hello':
      return { type, id, name: readName(own(value, 'name')) };
    case 'join': {
      const history = own(value, 'history');
      if (history !== undefined && (!Number.isSafeInteger(history) || (history as number) < 0)) {
        fail('"history" must be an integer ≥ 0');
      }
      return {
        type,
        id,
        room: validateRoomName(own(value, 'room'), limits.maxRoomName),
        since: readPosition(own(value, 'since')),
        history: history === undefined ? undefined : Math.min(history as number, limits.historySize),
        presence: optionalBoolean(value, 'presence'),
      };
    }
    case 'leave':
      return { type, id, room: validateRoomName(own(value, 'room'), limits.maxRoomName) };
    case 'publish': {
      const data = own(value, 'data');
      if (data === undefined) fail('"data" is required (any JSON value)');
      const ephemeral = optionalBoolean(value, 'ephemeral');
      const publishId = readPublishId(own(value, 'publishId'));
      // An ephemeral publish has no place to remember an id by, and is never retried.
      if (ephemeral && publishId !== undefined) fail('an ephemeral publish takes no "publishId": it is sent once, to the members there now');
      return {
        type,
        id,
        room: validateRoomName(own(value, 'room'), limits.maxRoomName),
        data,
        excludeSelf: optionalBoolean(value, 'excludeSelf'),
        publishId,
        ...(ephemeral && { ephemeral }),
      };
    }
    case 'withdraw': {
      const publishId = readPublishId(own(value, 'publishId'));
      if (publishId === undefined) fail('"publishId" is required: the id of the publish to withdraw');
      return { type, id, room: validateRoomName(own(value, 'room'), limits.maxRoomName), publishId };
    }
    default:
      if (typeof type !== 'string') fail('"type" must be a string');
      return fail(`unknown type ${JSON.stringify(type.slice(0, 32))}; expected hello, join, leave, publish or withdraw`, ErrorCode.UnknownType);
  }
}
