/**
 * The ws server Plaza hands upgraded sockets to, with every bound ws has set explicitly.
 */
import { WebSocket, WebSocketServer, type ServerOptions } from 'ws';
import { SUBPROTOCOL } from '../../shared/protocol.js';
import type { PlazaOptions } from '../config.js';
import { MAX_MESSAGE_CHUNKS } from '../bounds.js';

/**
 * After Plaza (or ws, for a protocol error) sends a close frame, the peer has this long to
 * answer it before its TCP connection is cut. ws waits 30 s by default, and a peer that stopped
 * reading (a dropped slow consumer) never sees the frame, so its socket and buffers would
 * linger that long. A peer that still reads answers within a round trip.
 */
export const CLOSE_GRACE_MS = 2000;


/**
 * The subprotocol to answer with (RFC 6455 §4.2.2: one of those offered, or none). plaza.v1
 * when offered; otherwise the first offered one that is not a `plaza.*` name, as ws does by
 * default, because browsers and ws fail a handshake that offered protocols and got none back.
 * The connection is then plain whatever the name says. An unknown `plaza.*` (a newer client) is
 * never picked, so that client fails loudly instead of speaking plain by mistake.
 */
export function selectProtocol(offered: ReadonlySet<string>): string | false {
  if (offered.has(SUBPROTOCOL)) return SUBPROTOCOL;
  for (const protocol of offered) if (!protocol.startsWith('plaza.')) return protocol;
  return false;
}

/**
 * permessage-deflate as --compress negotiates it (RFC 7692). `server_no_context_takeover` always:
 * Plaza compresses each message once and writes the same compressed frame to every member that
 * took the extension (engine/deflate.ts), which is only valid when no message depends on an
 * earlier one. `client_no_context_takeover` too, so ws resets its inflater after each message
 * instead of keeping the client's window. ws itself never compresses anything: Plaza writes its
 * frames to the raw socket and never calls ws.send, and ws's own frames (ping, pong, close) are
 * control frames, which are never compressed, so nothing ws writes waits behind a deflate and no
 * two writers can interleave mid-frame. What clients send compressed, ws inflates, and
 * maxPayload bounds the inflated size (ws closes with 1009 past it).
 */
function deflateOptions(options: Pick<PlazaOptions, 'compress'>): ServerOptions['perMessageDeflate'] {
  if (!options.compress) return false;
  return { serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: Number.MAX_SAFE_INTEGER };
}

/** What ws 8 keeps about a negotiated extension (its `_extensions`; the public getter gives only names). */
type NegotiatedExtensions = { _extensions?: Record<string, { params?: Record<string, unknown> } | undefined> };

/**
 * True when `ws` negotiated permessage-deflate in a way Plaza's shared compressed frames are valid
 * for: no server context takeover, and a window of the full 15 bits (a client that asked for a
 * smaller one gets uncompressed frames, which RFC 7692 always allows).
 */
export function takesSharedDeflate(ws: WebSocket): boolean {
  const params = (ws as unknown as NegotiatedExtensions)._extensions?.['permessage-deflate']?.params;
  if (!params || params.server_no_context_takeover !== true) return false;
  const bits = params.server_max_window_bits;
  return bits === undefined || bits === true || bits === 15;
}

/** What an owned socket's events are handed to (its Connection, websocket/connection.ts). */
export interface WebSocketEvents {
  handleMessage(data: Buffer, isBinary: boolean): void;
  handleClose(code: number): void;
  handlePong(): void;
  handleError(error: Error): void;
}

/** The property of a PlazaWebSocket that names whom its events go to. */
export const EVENTS = Symbol('plaza.events');

/**
 * The WebSocket class ws makes for every upgrade (its `WebSocket` option). Once a Connection owns
 * it, ws's four events that matter are handed straight to that Connection instead of going
 * through listener tables: four `on()` calls and an events table of four entries per
 * connection are work and memory bare ws does not spend either (issue 24). A socket nobody owns
 * (one closed at once with 4003, upgrade.ts) and every other event keep EventEmitter's way.
 */
export class PlazaWebSocket extends WebSocket {
  declare [EVENTS]: WebSocketEvents | undefined;

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const to = this[EVENTS];
    if (to === undefined) return super.emit(event, ...args);
    switch (event) {
      case 'message':
        to.handleMessage(args[0] as Buffer, args[1] as boolean);
        return true;
      case 'close':
        to.handleClose(args[0] as number);
        return true;
      case 'pong':
        to.handlePong();
        return true;
      case 'error':
        to.handleError(args[0] as Error);
        return true;
      default:
        return super.emit(event, ...args);
    }
  }
}

export function createWebSocketServer(options: Pick<PlazaOptions, 'maxPayload' | 'maxFragments' | 'compress'>): WebSocketServer {
  // ws 8.23 takes closeTimeout; @types/ws does not list it yet, hence the widened type.
  const serverOptions: ServerOptions & { closeTimeout: number } = {
    noServer: true,
    maxPayload: options.maxPayload,
    // Broadcast frames are written pre-framed to the raw socket: ws compresses nothing itself.
    perMessageDeflate: deflateOptions(options),
    clientTracking: false,
    // Explicit bounds against fragment floods (CVE-2026-48779): ws's defaults allow far more.
    maxFragments: options.maxFragments,
    maxBufferedChunks: MAX_MESSAGE_CHUNKS,
    closeTimeout: CLOSE_GRACE_MS,
    // A client that offers plaza.v1 speaks JSON envelopes; anyone else gets plain broadcast.
    handleProtocols: selectProtocol,
    WebSocket: PlazaWebSocket,
  };
  return new WebSocketServer(serverOptions);
}
