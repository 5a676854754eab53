/**
 * The ws server Plaza hands upgraded sockets to, with every bound ws has set explicitly.
 */
import { WebSocketServer, type ServerOptions } from 'ws';
import { SUBPROTOCOL } from '../../shared/protocol.js';
import type { PlazaOptions } from '../config.js';

/**
 * After Plaza (or ws, for a protocol error) sends a close frame, the peer has this long to
 * answer it before its TCP connection is cut. ws waits 30 s by default, and a peer that stopped
 * reading (a dropped slow consumer) never sees the frame, so its socket and buffers would
 * linger that long. A peer that still reads answers within a round trip.
 */
export const CLOSE_GRACE_MS = 2000;

/** ws keeps at most this many TCP chunks of one unfinished message (its default is 256 Ki). */
const MAX_BUFFERED_CHUNKS = 16 * 1024;

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

export function createWebSocketServer(options: Pick<PlazaOptions, 'maxPayload' | 'maxFragments'>): WebSocketServer {
  // ws 8.23 takes closeTimeout; @types/ws does not list it yet, hence the widened type.
  const serverOptions: ServerOptions & { closeTimeout: number } = {
    noServer: true,
    maxPayload: options.maxPayload,
    // Broadcast frames are written pre-framed to the raw socket; compression would make
    // ws queue its own writes and the two streams could interleave mid-frame.
    perMessageDeflate: false,
    clientTracking: false,
    // Explicit bounds against fragment floods (CVE-2026-48779): ws's defaults allow far more.
    maxFragments: options.maxFragments,
    maxBufferedChunks: MAX_BUFFERED_CHUNKS,
    closeTimeout: CLOSE_GRACE_MS,
    // A client that offers plaza.v1 speaks JSON envelopes; anyone else gets plain broadcast.
    handleProtocols: selectProtocol,
  };
  return new WebSocketServer(serverOptions);
}
