/**
 * The client applications hold: a typed event surface over the reconnecting transport. In plain
 * mode frames pass through as they come; with `rooms: true` the plaza.v1 layer (v1.ts) sits
 * between the transport and the application and hands out Rooms.
 */
import { SUBPROTOCOL, type Welcome } from '../shared/protocol.js';
import { createEmitter } from './emitter.js';
import { PlazaError, type ErrorCode } from './error.js';
import { fail, resolveOptions, resolveUrl, type ClientOptions, type TransportName } from './options.js';
import type { JoinOptions, Room } from './room.js';
import type { CloseInfo, Data } from './socket.js';
import { createTransport, type Status, type Transport } from './transport.js';
import { createV1 } from './v1.js';


/** Close codes that end the client for want of a (fresh) token, and what to tell the application. */
const REFUSALS: Record<number, [ErrorCode, string]> = {
  4003: ['unauthorized', 'the server refused the token'],
  4004: ['token_expired', 'the token expired while connected'],
};

export interface ClientEvents {
  /** Plain mode: a message from the server, text as a string, binary as an ArrayBuffer. */
  message: [data: string | ArrayBuffer];
  /** With `rooms`: the server greeted this connection (after every (re)connect): session id, name, limits. */
  welcome: [welcome: Welcome];
  /** With `rooms`: the server's own greeting text (`--welcome`), on every (re)connect; not a room message. */
  notice: [text: string];
  /**
   * The server refused to let this client in and it stopped: `unauthorized` (4003, the token
   * was refused) or `token_expired` (4004). Only without a token function, which would fetch a
   * new token and retry instead.
   */
  error: [error: PlazaError];
  /** A connection opened (the first or a reconnect); the handshake and everything queued have been written. */
  open: [];
  /** A connection closed or an attempt failed; `willReconnect` says whether the client retries. */
  close: [info: CloseInfo];
  /** `status` changed. */
  status: [status: Status];
  /** `transport` changed: an attempt moved down `transports` (a failure or a stall), or the client moved back to the first one. */
  transport: [transport: TransportName];
}

export interface PlazaClient {
  /** The WebSocket URL in use (after defaulting and http → ws conversion). */
  readonly url: string;
  /** 'connecting' → 'open' ⇄ 'reconnecting' → 'closed'. */
  readonly status: Status;
  /** The transport of the current connection or attempt: 'websocket' or 'sse' (options.transports). */
  readonly transport: TransportName;
  /** With `rooms`: this connection's session id from the latest welcome (new on every reconnect). */
  readonly session: string | undefined;
  /**
   * Plain mode: sends text as a text frame, bytes as a binary frame. While not open, queues up
   * to `maxQueue` messages (dropping the oldest past that) and sends them in order on
   * (re)connect. Ignored after `close()`. Delivery is at-most-once: a message written just before
   * a connection drops may be lost.
   * @throws TypeError with `rooms: true` (use `room.publish()`).
   */
  send(data: Data): void;
  /**
   * With `rooms`: joins `room` (now, and again after every reconnect, resuming after the last
   * message delivered) and returns its Room. A room already joined returns the same Room.
   * @throws TypeError in plain mode.
   */
  join(room: string, options?: JoinOptions): Room;
  /** With `rooms`: changes the display name from now on (also after reconnects). */
  setName(name: string): void;
  /** Listens to `event`; returns the unsubscribe function (safe to call twice). */
  on<K extends keyof ClientEvents>(event: K, fn: (...args: ClientEvents[K]) => void): () => void;
  /** Closes for good with 1000: no reconnect, queued messages dropped, pending publishes rejected ('closed'). Idempotent. */
  close(): void;
}

/**
 * Connects to a Plaza server (or any WebSocket server, in plain mode) and keeps reconnecting,
 * with exponential backoff and full jitter, until `close()` or a close code that means retrying
 * is pointless.
 *
 * @param url `ws(s)://` or `http(s)://`, absolute or relative to the page; default: the page's origin.
 * @throws TypeError when an option or the URL is invalid, saying what to change.
 */
export function connect(url?: string | URL, options?: ClientOptions): PlazaClient {
  const resolved = resolveOptions(options);
  const href = resolveUrl(url);
  const events = createEmitter<ClientEvents>();
  const rooms = resolved.rooms;
  const v1 = rooms
    ? createV1(resolved, () => transport, {
        welcome: (welcome) => events.emit('welcome', welcome),
        notice: (text) => events.emit('notice', text),
      })
    : undefined;
  const needRooms = (what: string) => fail(`${what} needs connect(url, { rooms: true })`);
  const transport: Transport = createTransport(href, rooms ? { ...resolved, protocols: SUBPROTOCOL } : resolved, {
    // plaza.v1 answers a hello with a welcome: what a background probe of the first transport sends.
    ...(v1 && { handshake: v1.handshake, probe: '{"type":"hello"}' }),
    open: () => events.emit('open'),
    message: (data) => (v1 ? v1.message(data) : events.emit('message', data)),
    close: (info) => {
      v1?.close(info);
      events.emit('close', info);
      const refusal = info.willReconnect ? undefined : REFUSALS[info.code];
      if (refusal) {
        const why = info.reason ? ` (${info.reason})` : '';
        events.emit('error', new PlazaError(refusal[0], `${refusal[1]}${why}; options.token as a function gets a fresh one`));
      }
    },
    status: (status) => events.emit('status', status),
    transport: (name) => events.emit('transport', name),
  });
  return {
    url: href,
    get status() {
      return transport.status;
    },
    get transport() {
      return transport.name;
    },
    get session() {
      return v1?.session;
    },
    send: (data) => (v1 ? fail('send() is for plain mode; with rooms: true use room.publish()') : transport.send(data)),
    join: (room, joinOptions) => (v1 ? v1.join(room, joinOptions) : needRooms('join()')),
    setName: (name) => (v1 ? v1.setName(name) : needRooms('setName()')),
    on: events.on,
    close: transport.close,
  };
}
