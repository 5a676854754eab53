/**
 * The reconnecting socket under the client: one WebSocket at a time, a bounded send queue,
 * backoff, and a watchdog for silent links. It knows nothing about message contents; the layer
 * above decides what frames mean (v1.ts for plaza.v1) and may write a handshake on each open,
 * before the queue, so a protocol sits on top without touching reconnect logic.
 */
import type { ResolvedOptions } from './options.js';
import { sizeOf, type CloseInfo, type Data, type SocketLike } from './socket.js';
import { backoffDelay, shouldReconnect } from './retry.js';

/** 'connecting' before the first open, 'reconnecting' between a drop and the next open. */
export type Status = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Callbacks into the layer above. */
export interface TransportHandler {
  /**
   * A socket opened; `write()` now reaches it. What is written here goes out before the queued
   * messages (plaza.v1: hello and the rejoins, so a flushed publish finds its room joined).
   */
  handshake?(): void;
  /** A socket opened and everything queued has been written to it. */
  open(): void;
  message(data: string | ArrayBuffer): void;
  close(info: CloseInfo): void;
  /** The status changed (never called for the initial 'connecting'). */
  status(status: Status): void;
}

export interface Transport {
  readonly status: Status;
  /** Writes now if open, else queues (bounded in count and bytes, oldest dropped); ignored once closed. */
  send(data: Data): void;
  /** Writes now if a socket is open and says whether it did; never queues. */
  write(data: Data): boolean;
  /**
   * Treats a socket that receives no frame at all for `ms` as dead: closes it (code 1006,
   * reason 'heartbeat timeout') and reconnects. Browsers answer pings without telling the page,
   * so only the server's own frames can prove the link alive. 0 turns the watchdog off.
   */
  watch(ms: number): void;
  /** Takes the open socket for dead (1006, `reason`) and reconnects with backoff; nothing when not open. */
  reconnect(reason: string): void;
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

/** `url` with `?token=` set (replacing one already there). */
function withToken(url: string, token: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('token', token);
  return parsed.href;
}

/**
 * Connects at once; the first `new WebSocket()` throwing (a URL the platform refuses, CSP)
 * throws here, unless options.token is a function (then the first attempt is asynchronous too).
 */
export function createTransport(url: string, options: ResolvedOptions, handler: TransportHandler): Transport {
  let status: Status = 'connecting';
  let socket: SocketLike | undefined;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let connectTimer: ReturnType<typeof setTimeout> | undefined;
  /** Failed attempts since the last connection that stayed up; drives the backoff. */
  let attempt = 0;
  let openedAt = 0;
  const queue: Data[] = [];
  let queuedBytes = 0;
  /** Watchdog: the longest silence allowed, when the last frame came, and one timer. */
  let silence = 0;
  let heardAt = 0;
  let watchTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Re-arms itself for the time left instead of being reset by every frame, so a busy link
   * costs a Date.now() per frame and no timer churn.
   */
  function watchdog(): void {
    clearTimeout(watchTimer);
    if (!silence || status != 'open') return;
    const left = heardAt + silence - Date.now();
    if (left <= 0) return ended(1006, 'heartbeat timeout');
    watchTimer = setTimeout(watchdog, left);
  }

  /** Forgets the current socket so its late events are ignored, and closes it. */
  function release(): void {
    clearTimeout(connectTimer);
    clearTimeout(watchTimer);
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
    queue.length = queuedBytes = 0;
    clearTimeout(retryTimer);
    release();
    handler.close({ code, reason, willReconnect: false });
    handler.status(status);
  }

  function ended(code: number, reason: string): void {
    release();
    if (!shouldReconnect(code, typeof options.token == 'function')) return finish(code, reason);
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

  /** One attempt: with a token function, ask it for this attempt's token first. */
  function open(): void {
    const token = options.token;
    if (typeof token != 'function') return dial(token, !retryTimer);
    new Promise<string>((resolve) => resolve(token())).then(
      (fresh) => {
        // close() may have come while the application fetched the token.
        if (status == 'closed') return;
        if (typeof fresh == 'string' && fresh) dial(fresh, false);
        else ended(1006, 'options.token() gave no token');
      },
      (error: unknown) => {
        if (status != 'closed') ended(1006, `options.token() failed: ${String(error)}`);
      },
    );
  }

  /** `mayThrow`: only the synchronous first attempt reports a failure to the caller of connect(). */
  function dial(token: string | undefined, mayThrow: boolean): void {
    let ws: SocketLike;
    try {
      ws = socket = new options.WebSocket(token ? withToken(url, token) : url, options.protocols);
    } catch (error) {
      if (mayThrow) throw new TypeError(`Plaza: cannot open a WebSocket to ${url}: ${(error as Error)?.message ?? String(error)}`);
      return ended(1006, String(error));
    }
    ws.binaryType = 'arraybuffer';
    // A 'close' always follows an 'error' and says all there is to say.
    ws.onerror = () => {};
    ws.onopen = () => {
      clearTimeout(connectTimer);
      heardAt = openedAt = Date.now();
      handler.handshake?.();
      for (const data of queue.splice(0)) ws.send(data);
      queuedBytes = 0;
      status = 'open';
      watchdog();
      handler.status(status);
      handler.open();
    };
    ws.onmessage = (event: { data: string | ArrayBuffer }) => {
      heardAt = Date.now();
      handler.message(event.data);
    };
    ws.onclose = (event: { code: number; reason: string }) => ended(event.code, event.reason);
    if (options.connectTimeout) {
      connectTimer = setTimeout(() => ended(1006, 'connect timeout'), options.connectTimeout);
    }
  }

  function write(data: Data): boolean {
    if (socket?.readyState !== OPEN) return false;
    socket.send(data);
    return true;
  }

  open();
  return {
    get status() {
      return status;
    },
    write,
    send(data) {
      const size = write(data) || status == 'closed' ? -1 : sizeOf(data);
      // Larger than the whole queue on its own: dropped, and nothing else with it.
      if (size >= 0 && size <= options.maxQueueBytes) {
        queue.push(copy(data));
        queuedBytes += size;
        while (queue.length > options.maxQueue || queuedBytes > options.maxQueueBytes) queuedBytes -= sizeOf(queue.shift()!);
      }
    },
    reconnect(reason) {
      if (status == 'open') ended(1006, reason);
    },
    watch(ms) {
      silence = ms;
      heardAt = Date.now();
      watchdog();
    },
    close() {
      if (status != 'closed') finish(1000, '');
    },
  };
}
