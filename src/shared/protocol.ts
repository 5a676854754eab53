/**
 * What server and client agree on: WebSocket close codes and (with plaza.v1) message shapes.
 * Imported by the browser client too, so it must not touch Node APIs.
 */

/** Close codes Plaza sends. 1xxx are RFC 6455 §7.4.1; 4xxx are Plaza's own. */
export const CloseCode = {
  /** Normal closure: the client or server is done. */
  Normal: 1000,
  /** The server is shutting down (SIGTERM/SIGINT); reconnect to another or the same server later. */
  GoingAway: 1001,
  /** The peer broke the WebSocket protocol (e.g. an unmasked client frame). */
  ProtocolError: 1002,
  /** A text frame was not valid UTF-8. */
  InvalidPayload: 1007,
  /** The peer kept breaking the rules (floods, sustained garbage); do not retry at once. */
  PolicyViolation: 1008,
  /** A message was larger than the server's max payload. */
  MessageTooBig: 1009,
  /** The server hit an unexpected error while handling this connection. */
  InternalError: 1011,
  /** The client could not keep up: too many bytes were waiting to be sent to it. */
  TryAgainLater: 1013,
  /** An operator disconnected this session or user through the HTTP API (POST /api/disconnect). */
  Disconnected: 4001,
  /**
   * A plaza.v1 upgrade had no valid token (missing, bad signature, expired) while the server
   * requires one (--auth-secret). The socket is accepted only to say why: a browser cannot read
   * the HTTP status of a refused WebSocket. The reason says what was wrong; reconnect only with
   * a new token.
   */
  Unauthorized: 4003,
  /** The token's `exp` passed while the connection was open; reconnect with a fresh token. */
  TokenExpired: 4004,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Longest `publishId` (and HTTP `Idempotency-Key`), in characters. */
export const MAX_PUBLISH_ID = 64;

/** What a `publishId` may hold: printable ASCII, no spaces. */
export const PUBLISH_ID_PATTERN = /^[\x21-\x7e]{1,64}$/;

/** The WebSocket subprotocol that selects JSON envelopes instead of plain broadcast. */
export const SUBPROTOCOL = 'plaza.v1';

/** Stable codes in `error` envelopes. Listed in README.md and PROTOCOL.md; never renamed. */
export const ErrorCode = {
  /** The frame was not valid JSON. */
  BadJson: 'bad_json',
  /** The JSON was not an object of a known shape (missing or wrong-typed field). */
  BadRequest: 'bad_request',
  /** `type` is not one this server knows. */
  UnknownType: 'unknown_type',
  /** The room name is empty, too long or has characters outside the allowed set. */
  BadRoom: 'bad_room',
  /** The connection is already in `maxRoomsPerConnection` rooms. */
  TooManyRooms: 'too_many_rooms',
  /** The server keeps history for `maxRooms` rooms and all are in use. */
  ServerFull: 'server_full',
  /** Publish or leave on a room the connection has not joined. */
  NotJoined: 'not_joined',
  /** The published data, once encoded, is larger than the server accepts. */
  TooLarge: 'too_large',
  /** Too many messages too fast; slow down (see `limits.rate`). */
  RateLimited: 'rate_limited',
  /** The token does not allow this room. */
  Forbidden: 'forbidden',
  /** The cluster backplane (Redis) could not be reached for this request; retry shortly. */
  Unavailable: 'unavailable',
  /** The publish's `publishId` was withdrawn (a `withdraw` came first): it was not published, and will not be. */
  Withdrawn: 'withdrawn',
  /** The request timed out on the client side (never sent by the server). */
  Timeout: 'timeout',
  /** The server failed unexpectedly; the error is in its log. */
  Internal: 'internal',
  /** The server application's hook threw or returned something it may not; the error is in its log. Try again later. */
  HookFailed: 'hook_failed',
  /** The server application's hook did not answer within its timeout; try again. */
  HookTimeout: 'hook_timeout',
  /** Too many of the server application's hook calls are running; try again shortly. */
  HookBusy: 'hook_busy',
  /** The server application refused the request without naming a code of its own. */
  Rejected: 'rejected',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * An error code chosen by the server application's hook (`reject(code, message)`): lower-case
 * letters, digits and `_`. Error replies carry one of Plaza's codes or one of these.
 */
export type AppErrorCode = string & { readonly appErrorCode?: never };

/** Why a resume could not be served gap-free. */
export type UnrecoveredReason =
  /** The room's history was lost (restart without --data-dir, eviction): epochs differ. */
  | 'epoch_changed'
  /** The messages after the position are no longer in history (count or age window passed). */
  | 'window_passed'
  /** The position is after the room's last offset: it is from another history. */
  | 'offset_ahead'
  /** (SSE) A reconnect's `Last-Event-ID` did not name this room of the stream's URL. */
  | 'no_position';

/** A place in a room's history: messages after `offset` in `epoch`. */
export interface Position {
  epoch: string;
  offset: number;
}

export interface Sender {
  /** Session id of the connection that published (`"api"` for the HTTP API). */
  session: string;
  name: string;
}

export interface Member {
  session: string;
  name: string;
}

// ---- client → server --------------------------------------------------------------------

export interface HelloRequest {
  type: 'hello';
  id?: number | string;
  /** Display name shown to others. */
  name?: string;
}
export interface JoinRequest {
  type: 'join';
  id?: number | string;
  room: string;
  /** Resume: send what came after this position, before anything live. */
  since?: Position;
  /** Also send up to this many recent messages (when not resuming, or when resume fails). */
  history?: number;
  /** Receive the member list and join/leave deltas. @default false */
  presence?: boolean;
}
export interface LeaveRequest {
  type: 'leave';
  id?: number | string;
  room: string;
}
export interface PublishRequest {
  type: 'publish';
  id?: number | string;
  room: string;
  data: unknown;
  /** Do not send this message back to me. @default false */
  excludeSelf?: boolean;
  /**
   * Names this message across retries (1–64 printable ASCII characters, unique per room; Plaza's
   * client sends a random part per client plus a counter). A repeat within the server's window
   * is answered with the first ack (`duplicate: true`) and not published again.
   * @default undefined (every publish is a new message)
   */
  publishId?: string;
  /**
   * Send it only to the room's members of this moment (typing indicators, cursors): it takes no
   * offset, is kept in no history or journal, is never replayed on a resume, and may not carry a
   * `publishId`. Members receive an `ephemeral` envelope; the answer is an ack with
   * `ephemeral: true` and no place.
   * @default false
   */
  ephemeral?: boolean;
}
/**
 * Settles a publish whose ack never came (issue #22, item 3): the server answers the publish's
 * first ack (`duplicate: true`) if it was published, or else records the id as withdrawn, in the
 * same atomic step that checks it, and answers `withdrawn`: from then on, within the room's
 * window, no copy of that publish can be published.
 */
export interface WithdrawRequest {
  type: 'withdraw';
  id?: number | string;
  room: string;
  publishId: string;
}
export type ClientMessage = HelloRequest | JoinRequest | LeaveRequest | PublishRequest | WithdrawRequest;

// ---- server → client --------------------------------------------------------------------

export interface Limits {
  maxPayload: number;
  maxRoomsPerConnection: number;
  maxRoomName: number;
  historySize: number;
  /** Messages per second and burst allowed per connection. */
  rate: { perSecond: number; burst: number };
}
export interface Welcome {
  type: 'welcome';
  id?: number | string;
  session: string;
  name: string;
  limits: Limits;
  /** The server sends `{type:"beat"}` this often (ms); silence for two beats means a dead link. */
  heartbeat: number;
  /** (SSE) The stream id to POST requests to (PROTOCOL.md, "Server-sent events"). */
  stream?: string;
}
export interface RoomMessage {
  type: 'message';
  room: string;
  /** Unique per room and epoch: `${epoch}:${offset}`. */
  id: string;
  offset: number;
  epoch: string;
  /** Server time, ms since the Unix epoch. */
  time: number;
  from: Sender;
  data: unknown;
  /** Present when `data` is base64 of binary bytes sent by a plain client. */
  encoding?: 'base64';
}
export interface Joined {
  type: 'joined';
  id?: number | string;
  room: string;
  epoch: string;
  /** The room's last offset at the moment of joining (0 when empty). */
  offset: number;
  /** Only with `since`: true when `messages` are exactly what was missed. */
  recovered?: boolean;
  reason?: UnrecoveredReason;
  /** Missed (or recent) messages, oldest first, all before any live message. */
  messages: RoomMessage[];
  /** Only with `presence: true`. */
  members?: Member[];
  /** Total members, even when `members` is cut at the presence limit. */
  memberCount?: number;
}
export interface Left {
  type: 'left';
  id?: number | string;
  room: string;
}
export interface Ack {
  type: 'ack';
  id: number | string;
  room: string;
  offset: number;
  epoch: string;
  /** The `publishId` was published before: this is its first ack, and nothing was published now. */
  duplicate?: true;
}
/** The answer to a `withdraw` whose publish was not published: now it never will be. */
export interface Withdrawn {
  type: 'withdrawn';
  id: number | string;
  room: string;
  publishId: string;
}
/** The answer to an ephemeral publish: the room's members here were handed it; it has no place. */
export interface EphemeralAck {
  type: 'ack';
  id: number | string;
  room: string;
  ephemeral: true;
}
/** An ephemeral publish as members receive it: no id, offset or epoch; it is not part of the room's order. */
export interface EphemeralMessage {
  type: 'ephemeral';
  room: string;
  /** Server time, ms since the Unix epoch. */
  time: number;
  from: Sender;
  data: unknown;
}
export interface ErrorReply {
  type: 'error';
  id?: number | string;
  code: ErrorCode | AppErrorCode;
  message: string;
}
export interface Presence {
  type: 'presence';
  room: string;
  joined?: Member[];
  left?: Member[];
  memberCount: number;
}
export interface Beat {
  type: 'beat';
}
/** The server's greeting (`--welcome`), sent once on connect; it belongs to no room and no history. */
export interface Notice {
  type: 'notice';
  text: string;
}
export type ServerMessage = Welcome | Joined | Left | RoomMessage | EphemeralMessage | Ack | EphemeralAck | Withdrawn | ErrorReply | Presence | Beat | Notice;
