/**
 * The reconnecting socket under the client: one WebSocket at a time, a bounded send queue, and
 * backoff. It knows nothing about message contents; the layer above (client.ts) decides what
 * frames mean, so a protocol such as plaza.v1 sits on top without touching reconnect logic.
 */
import type { ResolvedOptions } from './options.js';
import { backoffDelay, shouldReconnect } from './retry.js';

/** 'connecting' before the first open, 'reconnecting' between a drop and the next open. */
export type Status = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** What `send()` takes: text goes out as a text frame, bytes as a binary frame. */
export type Data = string | ArrayBuffer | ArrayBufferView;

export interface CloseInfo {
  /** The WebSocket close code; 1006 when the connection dropped, was refused or timed out. */
  code: number;
  reason: string;
  /** False exactly once: on the last 'close', after `close()` or a code that means "don't retry". */
  willReconnect: boolean;
}

/**
 * The part of a WebSocket the transport uses; both the DOM WebSocket and `ws` fit. The handler
 * parameters are typed `never` because the two declare different event classes; the handlers
 * read only `data`, `code` and `reason`, which both provide.
 */
export interface SocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
  send(data: Data): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => SocketLike;

/** Callbacks into the layer above. */
export interface TransportHandler {
  /** A socket opened and everything queued has been written to it. */
  open(): void;
  message(data: string | ArrayBuffer): void;
  close(info: CloseInfo): void;
  /** The status changed (never called for the initial 'connecting'). */
  status(status: Status): void;
}

export interface Transport {
  readonly status: Status;
  /** Writes now if open, else queues (bounded, oldest dropped); ignored once closed. */
  send(data: Data): void;
  /** Closes for good with 1000; idempotent. */
  close(): void;
}

/** WebSocket.OPEN; not every implementation has the constant on instances. */
const OPEN = 1;

/** Queued bytes are copied: callers often reuse a buffer as soon as send() returns. */
const copy = (data: Data): Data =>
  typeof data == 'string'
    ? data
    : ArrayBuffer.isView(data)
      ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice()
      : data.slice(0);

/** Connects at once; the first `new WebSocket()` throwing (bad URL for it, CSP) throws here. */
export function createTransport(url: string, options: ResolvedOptions, handler: TransportHandler): Transport {
  let status: Status = 'connecting';
  let socket: SocketLike | undefined;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let connectTimer: ReturnType<typeof setTimeout> | undefined;
  /** Failed attempts since the last connection that stayed up; drives the backoff. */
  let attempt = 0;
  let openedAt = 0;
  const queue: Data[] = [];

  /** Forgets the current socket so its late events are ignored, and closes it. */
  function release(): void {
    clearTimeout(connectTimer);
    const ws = socket;
    socket = undefined;
    if (ws) {
      // onerror stays a no-op: `ws` throws an 'error' that nobody listens to.
      ws.onopen = ws.onmessage = ws.onclose = null;
      ws.close(1000);
    }
  }

  /** Stops for good: no socket, no timer, no queue. */
  function finish(code: number, reason: string): void {
    status = 'closed';
    queue.length = 0;
    clearTimeout(retryTimer);
    release();
    handler.close({ code, reason, willReconnect: false });
    handler.status(status);
  }

  function ended(code: number, reason: string): void {
    release();
    if (!shouldReconnect(code)) return finish(code, reason);
    if (openedAt && Date.now() - openedAt >= options.minUptime) attempt = 0;
    openedAt = 0;
    const previous = status;
    status = 'reconnecting';
    handler.close({ code, reason, willReconnect: true });
    // A 'close' listener may have called close().
    if (status != 'reconnecting') return;
    if (previous != status) handler.status(status);
    retryTimer = setTimeout(open, backoffDelay(attempt++, options.minDelay, options.maxDelay));
  }

  function open(): void {
    let ws: SocketLike;
    try {
      ws = socket = new options.WebSocket(url, options.protocols);
    } catch (error) {
      // Only reconnects have set retryTimer: the first failure reaches the caller of connect().
      if (!retryTimer) throw error;
      return ended(1006, String(error));
    }
    ws.binaryType = 'arraybuffer';
    // A 'close' always follows an 'error' and says all there is to say.
    ws.onerror = () => {};
    ws.onopen = () => {
      clearTimeout(connectTimer);
      openedAt = Date.now();
      for (const data of queue.splice(0)) ws.send(data);
      status = 'open';
      handler.status(status);
      handler.open();
    };
    ws.onmessage = (event: { data: string | ArrayBuffer }) => handler.message(event.data);
    ws.onclose = (event: { code: number; reason: string }) => ended(event.code, event.reason);
    if (options.connectTimeout) {
      connectTimer = setTimeout(() => ended(1006, 'connect timeout'), options.connectTimeout);
    }
  }

  open();
  return {
    get status() {
      return status;
    },
    send(data) {
      if (socket?.readyState == OPEN) socket.send(data);
      else if (status != 'closed' && options.maxQueue) {
        if (queue.push(copy(data)) > options.maxQueue) queue.shift();
      }
    },
    close() {
      if (status != 'closed') finish(1000, '');
    },
  };
}
