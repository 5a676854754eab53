/**
 * websocket/ — the WebSocket side of a node (side.ts), one client from the door to its close:
 * the upgrade checks (path, origin, caps, token), the ws server, the connection (frames in and
 * out, rate limit, order), heartbeats. What a client asks and how it is answered is sessions/',
 * shared with every other side. It may import sessions/, rooms/, the engine, access/, hooks/,
 * src/shared, config and logger; never http/ or node/.
 *
 * This file: one client, reading its messages, handing them to the broker, owning its
 * outgoing queue.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { CloseCode, ErrorCode } from '../../shared/protocol.js';
import { BackplaneError } from '../rooms/backplane/types.js';
import type { JoinResult } from '../rooms/broker.js';
import { encodeTextFrame } from '../engine/frame.js';
import type { Payload } from '../engine/publication.js';
import type { Admission, ConnectionContext } from '../sessions/context.js';
import { Session, type ClosedBy, type Waiting } from '../sessions/session.js';
import { closeCodeOfWsError } from './ws-errors.js';
import { EVENTS, type PlazaWebSocket, type WebSocketEvents } from './ws-server.js';

/** The wire protocols a WebSocket speaks. */
export type WebSocketProtocol = 'plain' | 'v1';

/** What ws reports when no close frame came back: the TCP connection just ended (RFC 6455 §7.1.5). */
const ABNORMAL_CLOSURE = 1006;

/** Close codes for a plain client the onJoin hook kept out of the default room (it cannot read errors). */
const HOOK_FAILURES: ReadonlySet<string> = new Set([ErrorCode.HookFailed, ErrorCode.HookTimeout, ErrorCode.HookBusy]);

/** A close reason must fit in a control frame: 123 bytes of UTF-8 (RFC 6455 §5.5). */
const MAX_REASON_BYTES = 123;

/** One WebSocket client: reads its messages, hands them to the broker, owns its outgoing queue. */
export class Connection extends Session implements WebSocketEvents {
  /** Sweeps since the last pong; two unanswered pings mean the peer is gone. */
  missedPongs = 0;
  /** The close code Plaza sent first, if it closed first; what the log and metrics report. */
  private sentCode: number | undefined;

  constructor(
    context: ConnectionContext<Connection>,
    /** ws hands its events straight to this connection (ws-server.ts PlazaWebSocket). */
    readonly ws: PlazaWebSocket,
    /** The raw socket under `ws`: broadcast frames are written here directly, already framed. */
    readonly socket: Duplex,
    readonly protocol: WebSocketProtocol,
    admission: Admission,
    /** Negotiated permessage-deflate with a server that compresses (--compress). */
    readonly deflate = false,
  ) {
    super(context as unknown as ConnectionContext<Session>, admission);
    // The address is not read for a count nobody caps (late-address.ts).
    context.limits.add(context.limits.countsAddresses ? admission.ip : undefined);
    context.connections.add(this);
    context.metrics.connects[protocol]++;
    ws[EVENTS] = this;
    if (context.logger.writes?.('info') !== false) {
      context.logger.info('connection open', { id: this.id, transport: 'websocket', protocol, remote: this.remoteAddress, user: admission.grant?.userId });
    }
  }

  protected frame(json: string): Buffer {
    return encodeTextFrame(json);
  }

  protected pauseReading(): void {
    this.ws.pause();
  }

  protected resumeReading(): void {
    if (this.ws.isPaused) this.ws.resume();
  }

  /**
   * Called once the connection is announced (the application's `connect` comes before its
   * `join`): a plain client joins the default room.
   */
  start(): void {
    if (this.protocol === 'plain') this.joinDefaultRoom();
  }

  /**
   * Plain clients live in the default room; a server with no room slot left turns them away, and
   * so does the application's onJoin hook (1008 with its message; 1013 when the hook failed).
   * With that hook, the client's messages wait until it is in: none is published before. On one
   * server without that hook the join is done at once, without a promise (Broker.joinAtOnce).
   */
  private joinDefaultRoom(): void {
    let now: JoinResult | null;
    try {
      now = this.context.broker.joinAtOnce(this, this.context.options.defaultRoom);
      if (now !== null) return this.joinedDefaultRoom(now);
    } catch (error) {
      return this.fail(error);
    }
    const joining = this.context.broker.join(this, this.context.options.defaultRoom, false);
    if (this.context.broker.screensJoins) return this.waitFor(joining.then((result) => this.joinedDefaultRoom(result)));
    // One reaction for both outcomes rather than a .catch() chained on: a promise fewer per plain client.
    joining.then(
      (result) => {
        try {
          this.joinedDefaultRoom(result);
        } catch (error) {
          this.fail(error);
        }
      },
      (error: unknown) => this.fail(error),
    );
  }

  private joinedDefaultRoom(result: JoinResult | undefined): void {
    if (!result || result.ok) return;
    this.context.logger.warn('plain client refused: the default room cannot be joined', { id: this.id, code: result.code });
    if (!result.byHook) return this.close(CloseCode.TryAgainLater, 'the server is full; try again later');
    if (HOOK_FAILURES.has(result.code)) return this.close(CloseCode.TryAgainLater, `${result.code}: try again later`);
    this.close(CloseCode.PolicyViolation, Buffer.from(`${result.code}: ${result.message}`).subarray(0, MAX_REASON_BYTES).toString());
  }

  isWritable(): boolean {
    return this.ws.readyState === WebSocket.OPEN && !this.closeSent;
  }

  /** Sends what is queued, then the close frame. Safe to call more than once. */
  close(code: number, reason: string): void {
    if (this.closeSent) return;
    this.cancelReplay();
    this.context.outbox.flushAll();
    this.closeSent = true;
    // Not OPEN: the peer's close frame came first, and this close only answers it.
    if (this.ws.readyState === WebSocket.OPEN) this.noteSentClose(code);
    this.ws.close(code, reason);
  }

  /** Remembers the code of the close frame Plaza sent first (ws's own close after a bad frame included). */
  noteSentClose(code: number | undefined): void {
    this.sentCode ??= code;
  }

  /** A pong: the peer is alive (heartbeat.ts). */
  handlePong(): void {
    this.missedPongs = 0;
  }

  /**
   * ws reports a bad frame, which it has already answered with the right close code (1002, 1007,
   * 1009); handled here, so it is never an uncaught 'error' that would end the process.
   */
  handleError(error: Error & { code?: string }): void {
    this.noteSentClose(closeCodeOfWsError(error));
    this.context.logger.debug('connection error', { id: this.id, error: error.code ?? error.message });
  }

  /** A message, from ws. */
  handleMessage(bytes: Buffer, isBinary: boolean): void {
    // After our close frame nothing more from this peer counts.
    if (this.closeSent) return;
    const limited = !this.countIn(bytes.length);
    try {
      if (this.protocol === 'v1') this.onV1Message(limited ? { limited: bytes } : isBinary ? 'binary' : bytes);
      else if (limited) this.onPlainRateLimited();
      else if (this.waiting) this.waitBehind({ plain: bytes, binary: isBinary });
      else this.onPlainMessage(bytes, isBinary);
    } catch (error) {
      this.fail(error);
    }
  }

  /** Over the rate a plain client's message is dropped (it cannot be told), and one that keeps going is closed. */
  private onPlainRateLimited(): void {
    this.context.metrics.rateLimited++;
    if (!this.spendError()) this.close(CloseCode.PolicyViolation, 'message rate limit exceeded');
  }

  private onPlainMessage(bytes: Buffer, isBinary: boolean): void {
    const grant = this.admission.grant;
    if (grant && !grant.mayPublish(this.context.options.defaultRoom)) {
      // Plain clients cannot read error envelopes; dropping plus the error budget is the answer.
      this.context.metrics.countIn(this.context.metrics.protocolErrors, ErrorCode.Forbidden);
      if (!this.spendError()) this.close(CloseCode.PolicyViolation, 'this token may not publish here');
      return;
    }
    const payload: Payload = isBinary ? { kind: 'binary', bytes } : { kind: 'text', text: bytes.toString('utf8'), bytes };
    const broker = this.context.broker;
    if (!broker.screensPublishes) return this.publishPlain(payload);
    // Later messages wait behind this one until the hook decided, so they keep their order.
    this.waitFor(
      broker.screen(this.context.options.defaultRoom, payload, this).then((screened) => {
        if (screened.ok) return this.publishPlain(screened.payload);
        // Plain clients cannot be told: the message is dropped, counted and logged.
        this.context.metrics.plainDropped++;
        this.context.logger.debug('plain message refused by the onPublish hook', { id: this.id, code: screened.code });
      }),
    );
  }

  private publishPlain(payload: Payload): void {
    const except = this.context.options.excludeSender ? this : undefined;
    this.context.broker.publish(this.context.options.defaultRoom, payload, this, except).catch((error: unknown) => {
      if (!(error instanceof BackplaneError)) return this.fail(error);
      // Plain clients cannot be told: the message is dropped, counted and logged.
      this.context.metrics.plainDropped++;
      this.context.logger.debug('plain message dropped', { id: this.id, code: error.code, error: error.message });
    });
  }

  /** A frame that waited: plain ones are this transport's own. */
  protected override dispatch(frame: Waiting): void {
    if (typeof frame === 'object' && 'plain' in frame) this.onPlainMessage(frame.plain, frame.binary);
    else this.onV1Message(frame);
  }

  /**
   * Called by ws with the code it saw. When Plaza closed first, the log and
   * metrics report the code Plaza sent: ws reports 1006 when it ended the socket without the
   * peer's reply (after 1007, 1009, 1002) and the peer's echo otherwise.
   */
  handleClose(received: number): void {
    const by: ClosedBy = this.sentCode !== undefined ? 'server' : received === ABNORMAL_CLOSURE ? 'network' : 'client';
    // Everything written to the socket: the 101 response, frames, pings and the close frame.
    this.ended(this.sentCode ?? received, by, (this.socket as Partial<Socket>).bytesWritten ?? 0);
  }
}
