/** The client's options: documented once, defaulted once, validated once in connect(). */
import type { WebSocketConstructor } from './socket.js';

/**
 * How the client reaches the server: 'websocket', or 'sse' (server-sent events down, POSTs up;
 * PROTOCOL.md "Server-sent events"), for networks that pass plain HTTP and nothing else.
 */
export type TransportName = 'websocket' | 'sse';

export interface ClientOptions {
  /**
   * The WebSocket implementation. Node 20 has no global one: pass `WebSocket` from the `ws`
   * package.
   * @default globalThis.WebSocket
   */
  WebSocket?: WebSocketConstructor;
  /**
   * Speak plaza.v1 instead of plain WebSocket: rooms (`join()`), presence, acknowledged
   * publishes, history and gap-free recovery after a reconnect. Without it the client is a
   * reconnecting plain WebSocket (`send()` and the 'message' event), as wscat would be.
   * @default false
   */
  rooms?: boolean;
  /**
   * With `rooms`: the display name others see (1–64 visible characters; the server removes
   * control characters). Change it later with `setName()`.
   * @default '' (the server calls you "anonymous")
   */
  name?: string;
  /**
   * With `rooms`: how long a publish waits for its ack once written to the socket, in ms. Past
   * it the link is taken for dead: the client reconnects and sends the publish again with the
   * same publish id, so it is published once either way. 0 waits until the connection drops.
   * @default 10000
   */
  ackTimeout?: number;
  /**
   * With `rooms`: the total deadline of a publish, in ms after `publish()`. One not yet written to
   * a socket by then (offline, or queued behind others) is rejected with code 'timeout' and never
   * sent. One written and not answered is not sent again: the client asks the server to settle
   * its id (a `withdraw`, on this connection or the next), and it resolves with its place if it
   * had been published, or rejects with 'timeout' once the server has made sure it never will be.
   * 0: no deadline (a written publish is re-sent until answered).
   * @default 0
   */
  publishTimeout?: number;
  /**
   * Subprotocols offered in `Sec-WebSocket-Protocol` in plain mode. With `rooms` the client
   * offers plaza.v1 itself, so leave this out.
   * @default [] (a plain WebSocket)
   */
  protocols?: string | string[];
  /**
   * Upper bound, in ms, of the wait before the first reconnect; the bound doubles with each
   * failed attempt. The actual wait is random below it ("full jitter").
   * @default 250
   */
  minDelay?: number;
  /**
   * Upper bound, in ms, of any wait between reconnect attempts.
   * @default 10000
   */
  maxDelay?: number;
  /**
   * A connection that stayed open this many ms resets the backoff when it drops; a shorter one
   * keeps growing it, so a server that accepts and then at once closes is not hammered.
   * @default 5000
   */
  minUptime?: number;
  /**
   * Abandon a connection attempt that has not opened after this many ms, and retry. Over SSE
   * also the longest wait for a POST's answer before the link is taken for dead.
   * 0 leaves it to the platform (which may wait minutes on a silent network).
   * @default 10000
   */
  connectTimeout?: number;
  /**
   * How many messages `send()` (or, with `rooms`, `publish()`) keeps while the socket is not
   * open; they go out in order as soon as it is. When the queue is full, the OLDEST queued
   * message is dropped (a dropped publish is rejected with code 'queue_full'): in real time the
   * latest messages matter most, and sending never throws mid-conversation. 0 disables queuing.
   * @default 100
   */
  maxQueue?: number;
  /**
   * The same queue's bound in bytes (UTF-8 bytes of text, the bytes of binary data; with
   * `rooms`, of each publish's frame): past it the oldest queued messages are dropped the same
   * way ('queue_full'); a message larger than this on its own is dropped at once, alone.
   * @default 1048576 (1 MiB)
   */
  maxQueueBytes?: number;
  /**
   * With `rooms`: bytes of publishes written to the socket and not answered yet, however long
   * `ackTimeout` is (0 included). Past it, further publishes wait in the queue, in order, until
   * answers come (so `maxQueue`, `maxQueueBytes` and 'queue_full' apply to them as offline).
   * One publish is always let through, however large.
   * @default 1048576 (1 MiB)
   */
  maxInflightBytes?: number;
  /**
   * A signed token for a server that requires one (`--auth-secret`), sent as `?token=` on every
   * connection attempt. A function is called before each attempt (it may return a Promise), so
   * a reconnect carries a fresh token, and a refused (4003) or expired (4004) token is replaced
   * and retried with backoff. A string is used as is: 4003 and 4004 then end the client
   * ('error' with code 'unauthorized' or 'token_expired').
   * @default undefined (no token)
   */
  token?: string | (() => string | Promise<string>);
  /**
   * The transports to try, in order of preference (docs/client.md, "Transports"). An attempt
   * that fails, or stalls (`stallTimeout`), moves the next attempt to the next transport; the one
   * that brought a welcome is kept for reconnects and remembered for the server's origin
   * (localStorage, where there is one), so the next page load starts there. 'sse' speaks plaza.v1
   * only, so it needs `rooms`.
   * @default ['websocket', 'sse'] with rooms, ['websocket'] without
   */
  transports?: TransportName[];
  /**
   * With `rooms`: ms from a connection opening to the server's `welcome`. A link that opened and
   * brings nothing (a proxy that accepts the upgrade and drops every frame, one that buffers an
   * event stream) gives no error at all: past this it counts as failed, and the next attempt
   * tries the next transport. 0: wait for `connectTimeout`/heartbeats only.
   * @default 5000
   */
  stallTimeout?: number;
  /**
   * With `rooms`: ms after settling on a transport other than the first in `transports` before
   * the first one is tried again, in the background; once it brings a welcome the client moves
   * to it (resuming every room and re-sending unanswered publishes with their ids, so nothing is
   * lost or repeated). Tried again this long after each failure. 0: never.
   * @default 60000
   */
  upgradeDelay?: number;
}

export type ResolvedOptions = Required<Omit<ClientOptions, 'token'>> & Pick<ClientOptions, 'token'>;

const DEFAULTS = {
  rooms: false,
  name: '',
  ackTimeout: 10_000,
  publishTimeout: 0,
  protocols: [],
  minDelay: 250,
  maxDelay: 10_000,
  minUptime: 5_000,
  connectTimeout: 10_000,
  maxQueue: 100,
  maxQueueBytes: 1 << 20,
  maxInflightBytes: 1 << 20,
  transports: [],
  stallTimeout: 5_000,
  upgradeDelay: 60_000,
} satisfies Omit<ResolvedOptions, 'WebSocket'>;

/** setTimeout treats longer delays (and Infinity) as 1 ms, which would turn backoff into a busy loop. */
const MAX_TIMER = 2 ** 31 - 1;

export function fail(message: string): never {
  throw new TypeError(`Plaza: ${message}`);
}

/** Merges `options` over the defaults (undefined fields keep the default) and validates once. */
export function resolveOptions(options: ClientOptions = {}): ResolvedOptions {
  const resolved: ClientOptions = { ...DEFAULTS, WebSocket: globalThis.WebSocket, token: undefined };
  for (const [key, value] of Object.entries(options)) {
    if (!(key in resolved)) fail(`unknown option "${key}"; the options are ${Object.keys(resolved).join(', ')}`);
    if (value !== undefined) Object.assign(resolved, { [key]: value });
  }
  const o = resolved as ResolvedOptions;
  const list = o.transports;
  if (!Array.isArray(list) || new Set(list).size != list.length || list.some((t) => t != 'websocket' && t != 'sse')) {
    fail(`options.transports must list 'websocket' and/or 'sse', each once, got ${JSON.stringify(list)}`);
  }
  if (!list.length) o.transports = o.rooms ? ['websocket', 'sse'] : ['websocket'];
  if (!o.rooms && list.includes('sse')) fail("options.transports: 'sse' speaks plaza.v1 only; it needs options.rooms: true");
  // A page behind a proxy that refuses WebSockets may have no use for a WebSocket class at all.
  if (typeof o.WebSocket != 'function' && o.transports.includes('websocket')) {
    fail("no WebSocket implementation here; pass one as options.WebSocket (on Node 20: import { WebSocket } from 'ws'), or transports: ['sse']");
  }
  for (const key of ['minDelay', 'maxDelay', 'minUptime', 'connectTimeout', 'maxQueue', 'ackTimeout', 'publishTimeout', 'maxQueueBytes', 'maxInflightBytes', 'stallTimeout', 'upgradeDelay'] as const) {
    const value = o[key];
    if (!(typeof value == 'number' && value >= 0 && value <= MAX_TIMER)) {
      fail(`options.${key} must be a number of ${key == 'maxQueue' ? 'messages' : key.endsWith('s') ? 'bytes' : 'milliseconds'} from 0 to ${MAX_TIMER}, got ${String(value)}`);
    }
  }
  if (!Number.isInteger(o.maxQueue)) fail(`options.maxQueue must be a whole number, got ${o.maxQueue}`);
  if (o.minDelay > o.maxDelay) fail(`options.minDelay (${o.minDelay}) must not exceed options.maxDelay (${o.maxDelay})`);
  if (typeof o.rooms != 'boolean') fail(`options.rooms must be true or false, got ${String(o.rooms)}`);
  if (typeof o.name != 'string') fail(`options.name must be a string, got ${typeof o.name}`);
  if (!(o.token === undefined || (typeof o.token == 'string' && o.token) || typeof o.token == 'function')) {
    fail('options.token must be a non-empty string or a function that returns one (or a Promise of one)');
  }
  if (!o.rooms && o.name) fail('options.name needs options.rooms: true (a plain WebSocket has no names)');
  // plaza.v1 is chosen by the subprotocol; a second list would make the choice ambiguous.
  if (o.rooms && o.protocols.length) fail('options.rooms offers the plaza.v1 subprotocol itself; leave out options.protocols');
  return o;
}

/**
 * The WebSocket URL to connect to. Without `url`, the page's own origin: `ws:`/`wss:` to match
 * `http:`/`https:`, the same host, path `/`. A relative `url` resolves against the page, and
 * `http(s)://` becomes `ws(s)://`, so `connect(location.origin)` works too.
 */
export function resolveUrl(url?: string | URL, base: { href: string } | undefined = globalThis.location): string {
  if (url === undefined && !base) fail('pass a URL outside a browser, e.g. connect("ws://127.0.0.1:8080")');
  // A page opened from disk (file:) or inside another scheme has no server of its own.
  if (url === undefined && !/^https?:/.test(base!.href)) {
    fail(`a ${base!.href.split(':')[0]}: page has no server of its own; pass its URL, e.g. connect("ws://localhost:8080")`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url ?? '/', base?.href);
  } catch {
    return fail(`${String(url)} is not a valid URL; use e.g. "wss://chat.example.com/"`);
  }
  // http: → ws:, https: → wss: (both are "special" schemes, so the protocol setter allows it).
  parsed.protocol = parsed.protocol.replace(/^http/, 'ws');
  if (!/^wss?:$/.test(parsed.protocol)) fail(`${parsed.href} is not a server address: use ws:, wss:, http: or https:, e.g. "ws://localhost:8080"`);
  // The WebSocket constructor rejects URLs with a fragment.
  parsed.hash = '';
  return parsed.href;
}
