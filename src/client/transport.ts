/**
 * The reconnecting link under the client: one connection at a time, a bounded send queue,
 * backoff, a watchdog for silent links, and the transport ladder (docs/client.md, "Transports"):
 * each attempt goes over one of options.transports (a WebSocket, or an event stream with POSTs,
 * sse.ts); one that fails or stalls before the layer above calls ready() moves the next attempt
 * down the list; the one that works is kept and remembered for the server's origin; and from a
 * fallback the first transport is probed again in the background and taken over when it answers.
 * It knows nothing about message contents; the layer above decides what frames mean (v1.ts for
 * plaza.v1) and may write a handshake on each open, before the queue, so a protocol sits on top
 * without touching reconnect logic.
 */
import type { ResolvedOptions, TransportName } from './options.js';
import { sizeOf, type CloseInfo, type Data, type SocketLike } from './socket.js';
import { backoffDelay, shouldReconnect } from './retry.js';
import { openEventStream } from './sse.js';

/** 'connecting' before the first open, 'reconnecting' between a drop and the next open. */
export type Status = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Callbacks into the layer above. */
export interface TransportHandler {
  /**
   * A socket opened; `write()` now reaches it. What is written here goes out before the queued
   * messages (plaza.v1: hello and the rejoins, so a flushed publish finds its room joined).
   */
  handshake?(): void;
  /**
   * A frame the server answers with a frame (plaza.v1: a hello). Only with it does the transport
   * probe the first transport in the background while on a fallback: the answer proves frames
   * pass both ways, which an open socket alone does not.
   */
  probe?: string;
  /** A socket opened and everything queued has been written to it. */
  open(): void;
  message(data: string | ArrayBuffer): void;
  /** A socket ended; also when the client leaves a fallback for the first transport (willReconnect: true, status stays 'open'). */
  close(info: CloseInfo): void;
  /** The status changed (never called for the initial 'connecting'). */
  status(status: Status): void;
  /** The transport of the current attempt changed. */
  transport?(name: TransportName): void;
}

export interface Transport {
  readonly status: Status;
  /** The transport of the current connection or attempt. */
  readonly name: TransportName;
  /** Writes now if open, else queues (bounded in count and bytes, oldest dropped); ignored once closed. */
  send(data: Data): void;
  /** Writes now if a socket is open and says whether it did; never queues. */
  write(data: Data): boolean;
  /**
   * The layer above heard the server's greeting (plaza.v1: welcome), so frames pass both ways:
   * the stall timer stops, the transport is remembered for the origin (and, if it is a fallback,
   * the first transport is probed again after upgradeDelay). From now on a socket that receives
   * no frame at all for `ms` is taken for dead: closed (code 1006, reason 'heartbeat timeout')
   * and replaced. Browsers answer pings without telling the page, so only the server's own
   * frames can prove the link alive. 0 turns the watchdog off.
   */
  ready(ms: number): void;
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
 * The transport that last brought a welcome from the server at `url`, kept per host in
 * localStorage so a page behind a proxy that eats WebSockets starts on the fallback next time
 * instead of waiting out a stall. localStorage may be missing (Node), or throw (storage
 * disabled, a sandboxed frame): then there is no memory, which costs one failed attempt.
 */
const KEY = 'plaza.transport@';
function recall(url: string): string | null | undefined {
  try {
    return localStorage.getItem(KEY + new URL(url).host);
  } catch {}
}
function remember(url: string, name: TransportName): void {
  try {
    localStorage.setItem(KEY + new URL(url).host, name);
  } catch {}
}

/**
 * Connects at once; the first `new WebSocket()` throwing (a URL the platform refuses, CSP)
 * throws here, unless options.token is a function (then the first attempt is asynchronous too).
 */
export function createTransport(url: string, options: ResolvedOptions, handler: TransportHandler): Transport {
  const transports = options.transports;
  let status: Status = 'connecting';
  let socket: SocketLike | undefined;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Until the link proves itself: connectTimeout up to the open, then stallTimeout up to ready(). */
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
  /** Which of `transports` this attempt uses: the one remembered for the origin, else the first. */
  let at = Math.max(0, transports.indexOf(recall(url) as TransportName));
  /** The current socket brought the server's greeting (ready() was called for it). */
  let proven = false;
  /** The background attempt on transports[0] while on a fallback, and its timer (the wait before it, then its deadline). */
  let probe: SocketLike | undefined;
  let probeTimer: ReturnType<typeof setTimeout> | undefined;

  function move(to: number): void {
    const changed = transports[to] != transports[at];
    at = to;
    if (changed) handler.transport?.(transports[at]!);
  }

  /** Opens a socket of transport `which`; the constructor may throw (a refused URL, CSP). */
  function make(which: number, token: string | undefined): SocketLike {
    const target = token ? withToken(url, token) : url;
    const ws = transports[which] == 'sse' ? openEventStream(target, options.connectTimeout) : new options.WebSocket(target, options.protocols);
    ws.binaryType = 'arraybuffer';
    // A 'close' always follows an 'error' and says all there is to say.
    ws.onerror = () => {};
    return ws;
  }

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

  /** Closes a socket after clearing its handlers, so its late events are ignored. */
  function drop(ws: SocketLike | undefined): void {
    if (ws) {
      // onerror stays a no-op: `ws` throws an 'error' that nobody listens to.
      ws.onopen = ws.onmessage = ws.onclose = null;
      ws.close(1000);
    }
  }

  /** Gives up the background probe (if any) and its timer. */
  function unprobe(): void {
    clearTimeout(probeTimer);
    drop(probe);
    probe = probeTimer = undefined;
  }

  /** Forgets the current socket (and any probe) so their late events are ignored, and closes them. */
  function release(): void {
    clearTimeout(connectTimer);
    clearTimeout(watchTimer);
    unprobe();
    drop(socket);
    socket = undefined;
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
    // Failed, or stalled, before the greeting: this transport does not get through from here
    // (or the server is down, which every transport will find out). A link that worked and
    // dropped keeps its transport: the network or the server failed, not the transport.
    if (!proven) move((at + 1) % transports.length);
    proven = false;
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

  /** Calls `then` with the token for an attempt: options.token, or what options.token() gives. */
  function token(then: (token: string | undefined) => void, failed: (reason: string) => void): void {
    const given = options.token;
    if (typeof given != 'function') return then(given);
    new Promise<string>((resolve) => resolve(given())).then(
      (fresh) => {
        // close() may have come while the application fetched the token.
        if (status == 'closed') return;
        if (typeof fresh == 'string' && fresh) then(fresh);
        else failed('options.token() gave no token');
      },
      (error: unknown) => {
        if (status != 'closed') failed(`options.token() failed: ${String(error)}`);
      },
    );
  }

  /** One attempt: with a token function, ask it for this attempt's token first. */
  function open(): void {
    token((given) => dial(given, !retryTimer && typeof options.token != 'function'), (reason) => ended(1006, reason));
  }

  /** `mayThrow`: only the synchronous first attempt reports a failure to the caller of connect(). */
  function dial(token: string | undefined, mayThrow: boolean): void {
    let ws: SocketLike;
    try {
      ws = socket = make(at, token);
    } catch (error) {
      if (mayThrow) throw new TypeError(`Plaza: cannot open a ${transports[at] == 'sse' ? 'event stream' : 'WebSocket'} to ${url}: ${(error as Error)?.message ?? String(error)}`);
      return ended(1006, String(error));
    }
    wire(ws);
    ws.onopen = () => opened(ws);
    if (options.connectTimeout) {
      connectTimer = setTimeout(() => ended(1006, 'connect timeout'), options.connectTimeout);
    }
  }

  function wire(ws: SocketLike): void {
    ws.onmessage = (event: { data: string | ArrayBuffer }) => {
      heardAt = Date.now();
      handler.message(event.data);
    };
    ws.onclose = (event: { code: number; reason: string }) => ended(event.code, event.reason);
  }

  function opened(ws: SocketLike): void {
    clearTimeout(connectTimer);
    heardAt = openedAt = Date.now();
    // Open is not working: a proxy may accept the upgrade, or answer the event stream, and then
    // pass nothing. Only the greeting (ready()) proves it, so with rooms it must come in time.
    if (options.rooms && options.stallTimeout) {
      connectTimer = setTimeout(() => ended(1006, 'stalled: no welcome within stallTimeout'), options.stallTimeout);
    }
    handler.handshake?.();
    for (const data of queue.splice(0)) ws.send(data);
    queuedBytes = 0;
    const previous = status;
    status = 'open';
    watchdog();
    // Not on a move from a fallback, where the client stays open throughout.
    if (previous != status) handler.status(status);
    handler.open();
  }

  /**
   * On a fallback that works: opens transports[0] beside it and writes the probe frame. A frame
   * back proves it, and the client moves over (takeOver); an error, a close or silence until the
   * stall timeout drops it, and it is tried again upgradeDelay later.
   */
  function upgrade(): void {
    const retry = () => {
      unprobe();
      probeTimer = setTimeout(upgrade, options.upgradeDelay);
    };
    token((given) => {
      if (status != 'open' || !proven || probe) return;
      let ws: SocketLike;
      try {
        ws = probe = make(0, given);
      } catch {
        return retry();
      }
      ws.onopen = () => ws.send(handler.probe!);
      ws.onmessage = () => takeOver(ws);
      ws.onclose = retry;
      clearTimeout(probeTimer);
      probeTimer = setTimeout(retry, options.stallTimeout || options.connectTimeout || options.upgradeDelay);
    }, retry);
  }

  /**
   * Moves from the fallback to the probe that answered, all at once so nothing happens in
   * between: the old link is closed, the layer above told (it re-sends what was unanswered),
   * then the probe becomes the socket and gets the handshake (plaza.v1: hello, every room
   * rejoined from its position, unanswered publishes re-sent with their ids), as after any
   * reconnect. The status stays 'open'.
   */
  function takeOver(ws: SocketLike): void {
    probe = undefined;
    release();
    handler.close({ code: 1000, reason: `moving to ${transports[0]}`, willReconnect: true });
    if (status != 'open') return drop(ws);
    proven = false;
    move(0);
    socket = ws;
    wire(ws);
    opened(ws);
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
    get name() {
      return transports[at]!;
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
    ready(ms) {
      clearTimeout(connectTimer);
      remember(url, transports[at]!);
      proven = true;
      silence = ms;
      heardAt = Date.now();
      watchdog();
      // Only one failed attempt before this fallback worked: the first transport is blocked from
      // here, so wait upgradeDelay. More: the server was unreachable (a restart) and the fallback
      // merely answered first, so try the first transport again right away.
      if (at && handler.probe && options.upgradeDelay && !probeTimer) probeTimer = setTimeout(upgrade, attempt > 1 ? options.minDelay : options.upgradeDelay);
    },
    close() {
      if (status != 'closed') finish(1000, '');
    },
  };
}
