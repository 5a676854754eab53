/**
 * The client applications hold: a typed event surface over the reconnecting transport. Frames
 * are passed through as they come (the plain WebSocket protocol); a subprotocol such as plaza.v1
 * decodes them here, between transport.message and the 'message' event.
 */
import { createEmitter } from './emitter.js';
import { resolveOptions, resolveUrl, type ClientOptions } from './options.js';
import { createTransport, type CloseInfo, type Data, type Status } from './transport.js';

export interface ClientEvents {
  /** A message from the server: text as a string, binary as an ArrayBuffer. */
  message: string | ArrayBuffer;
  /** A connection opened (the first or a reconnect); everything queued has been sent. */
  open: void;
  /** A connection closed or an attempt failed; `willReconnect` says whether the client retries. */
  close: CloseInfo;
  /** `status` changed. */
  status: Status;
}

export interface PlazaClient {
  /** The WebSocket URL in use (after defaulting and http → ws conversion). */
  readonly url: string;
  /** 'connecting' → 'open' ⇄ 'reconnecting' → 'closed'. */
  readonly status: Status;
  /**
   * Sends text as a text frame, bytes as a binary frame. While not open, queues up to
   * `maxQueue` messages (dropping the oldest past that) and sends them in order on (re)connect.
   * Ignored after `close()`. Delivery is at-most-once: a message written just before a
   * connection drops may be lost.
   */
  send(data: Data): void;
  /** Listens to `event`; returns the unsubscribe function (safe to call twice). */
  on<K extends keyof ClientEvents>(event: K, fn: (payload: ClientEvents[K]) => void): () => void;
  /** Closes for good with 1000: no reconnect, queued messages dropped. Idempotent. */
  close(): void;
}

/**
 * Connects to a Plaza server (or any WebSocket server) and keeps reconnecting, with exponential
 * backoff and full jitter, until `close()` or a close code that means retrying is pointless.
 *
 * @param url `ws(s)://` or `http(s)://`, absolute or relative to the page; default: the page's origin.
 * @throws TypeError when an option or the URL is invalid, saying what to change.
 */
export function connect(url?: string | URL, options?: ClientOptions): PlazaClient {
  const resolved = resolveOptions(options);
  const href = resolveUrl(url);
  const events = createEmitter<ClientEvents>();
  const transport = createTransport(href, resolved, {
    open: () => events.emit('open', undefined),
    message: (data) => events.emit('message', data),
    close: (info) => events.emit('close', info),
    status: (status) => events.emit('status', status),
  });
  return {
    url: href,
    get status() {
      return transport.status;
    },
    send: transport.send,
    on: events.on,
    close: transport.close,
  };
}
