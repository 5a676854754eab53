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
import { CloseCode, ErrorCode, type AppErrorCode } from '../../shared/protocol.js';
import { BackplaneError } from '../rooms/backplane/types.js';
import type { JoinResult } from '../rooms/broker.js';
import { encodeSender, errorEnvelope, joinedEnvelope, type RequestId } from '../engine/envelope.js';
import { encodeTextFrame } from '../engine/frame.js';
import type { Member, Room, WireProtocol } from '../engine/hub.js';
import type { DirectQueue, Recipient } from '../engine/outbox.js';
import type { Payload } from '../engine/publication.js';
import { handleRequest, type Requester } from '../sessions/commands.js';
import type { Admission, ConnectionContext } from '../sessions/context.js';
import { parseRequest, requestIdOf } from '../sessions/requests.js';
import { TokenBucket } from '../sessions/token-bucket.js';
import { Replay, type ReplayTarget } from '../engine/replay.js';
import type { Joined } from '../../shared/protocol.js';
import { closeCodeOfWsError } from './ws-errors.js';
import { PROTOCOL_ERROR_BURST, PROTOCOL_ERROR_REFILL, REQUEST_GATE_MAX_FRAMES, REQUEST_GATE_PAUSE_FRAMES } from '../bounds.js';

/** What ws reports when no close frame came back: the TCP connection just ended (RFC 6455 §7.1.5). */
const ABNORMAL_CLOSURE = 1006;

/** Who ended a connection: sent the first close frame, or neither (the TCP link ended). */
export type ClosedBy = 'server' | 'client' | 'network';

/**
 * A frame as it waits its turn. plaza.v1: its bytes, or what it earned on arrival (over the
 * rate, binary). Plain: its bytes and kind (plain frames wait only behind an application hook).
 */
type Waiting = Buffer | { limited: Buffer } | 'binary' | { plain: Buffer; binary: boolean };

function sizeOf(frame: Waiting): number {
  if (typeof frame === 'string') return 0;
  if (Buffer.isBuffer(frame)) return frame.length;
  return 'limited' in frame ? frame.limited.length : frame.plain.length;
}

/** Plaza's own error codes: the only ones counted by code in /metrics (an app's codes are its own). */
const PLAZA_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** Close codes for a plain client the onJoin hook kept out of the default room (it cannot read errors). */
const HOOK_FAILURES: ReadonlySet<string> = new Set([ErrorCode.HookFailed, ErrorCode.HookTimeout, ErrorCode.HookBusy]);

/** A close reason must fit in a control frame: 123 bytes of UTF-8 (RFC 6455 §5.5). */
const MAX_REASON_BYTES = 123;

/** Where the shared ws listeners below find their connection. */
const OWNER = Symbol('plaza.connection');
type Owned = WebSocket & { [OWNER]: Connection };

// One set of listener functions for every socket instead of four closures per connection:
// at 10,000 idle connections that is memory bare ws does not spend either.
const owner = (ws: WebSocket): Connection => (ws as Owned)[OWNER];
function onWsMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  owner(this).handleMessage(data, isBinary);
}
function onWsClose(this: WebSocket, code: number): void {
  owner(this).handleClose(code);
}
function onWsPong(this: WebSocket): void {
  owner(this).missedPongs = 0;
}
// Without this listener one invalid frame would be an uncaught 'error' and kill the process;
// ws has already answered the peer with the right close code (1002, 1007, 1009).
function onWsError(this: WebSocket, error: Error & { code?: string }): void {
  const connection = owner(this);
  connection.noteSentClose(closeCodeOfWsError(error));
  connection.context.logger.debug('connection error', { id: connection.id, error: error.code ?? error.message });
}

/** One WebSocket client: reads its messages, hands them to the broker, owns its outgoing queue. */
export class Connection implements Member, Recipient, ReplayTarget, Requester {
  readonly id: string;
  readonly rooms = new Set<Room>();
  name = 'anonymous';
  /** Sweeps since the last pong; two unanswered pings mean the peer is gone. */
  missedPongs = 0;
  /** Encoded on first publish: most connections only listen. */
  private senderJson: string | undefined;
  /** The outbox's bookkeeping (outbox.ts): frames for this connection alone, and its last flush. */
  queued: DirectQueue | undefined = undefined;
  flushMark = 0;
  private readonly openedAt = Date.now();
  private messagesIn = 0;
  private bytesIn = 0;
  private closeSent = false;
  /** Set once ws reported the close: the connection is gone. */
  private closed = false;
  /** A reply too large to queue at once, going out as the socket drains; live frames wait behind it. */
  private replay: Replay | undefined;
  /** The close code Plaza sent first, if it closed first; what the log and metrics report. */
  private sentCode: number | undefined;
  /** Created on the first bad request: well-behaved connections never need one. */
  private errorBudget: TokenBucket | undefined;
  /** Created on the first new room: most connections join rooms that exist. */
  private roomCreations: TokenBucket | undefined;
  /**
   * Created on the first message (--rate-limit): a bucket starts full, so one made then is the one
   * made at connect, and a connection that only listens never needs one.
   */
  private rate: TokenBucket | undefined;
  /** Frames that arrived while a request waits on the backplane; undefined when none waits. */
  private waiting: Waiting[] | undefined;
  private waitingBytes = 0;

  constructor(
    readonly context: ConnectionContext<Connection>,
    readonly ws: WebSocket,
    /** The raw socket under `ws`: broadcast frames are written here directly, already framed. */
    readonly socket: Duplex,
    readonly protocol: WireProtocol,
    readonly admission: Admission,
    /** Negotiated permessage-deflate with a server that compresses (--compress). */
    readonly deflate = false,
  ) {
    this.id = context.sessionIds.next();
    if (admission.grant) this.name = admission.grant.name;
    // The address is not read for a count nobody caps (late-address.ts).
    context.limits.add(context.limits.countsAddresses ? admission.ip : undefined);
    context.connections.add(this);
    context.metrics.connects[protocol]++;
    if (protocol === 'plain') this.joinDefaultRoom();
    (ws as Owned)[OWNER] = this;
    ws.on('message', onWsMessage);
    ws.on('close', onWsClose);
    ws.on('pong', onWsPong);
    ws.on('error', onWsError);
    if (context.logger.writes?.('info') !== false) {
      context.logger.info('connection open', { id: this.id, protocol, remote: this.remoteAddress, user: admission.grant?.userId });
    }
  }

  /**
   * Plain clients live in the default room; a server with no room slot left turns them away, and
   * so does the application's onJoin hook (1008 with its message; 1013 when the hook failed).
   * With that hook, the client's messages wait until it is in: none is published before.
   */
  private joinDefaultRoom(): void {
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

  /** The client's address (what --trust-proxy says, or the TCP peer): limits and logs. */
  get remoteAddress(): string {
    return this.admission.ip;
  }

  /** The authenticated user (token `sub`, or the id an authenticate hook gave), when there is one. */
  get userId(): string | undefined {
    return this.admission.grant?.userId;
  }

  /** What the application's authenticate hook attached to this connection. */
  get data(): unknown {
    return this.admission.data;
  }

  /** Presented the API key when connecting: may watch the status feed. */
  get isOperator(): boolean {
    return this.admission.isOperator;
  }

  setName(name: string): void {
    // With auth the name is the token's, so nobody can pose as someone else.
    if (this.admission.grant) return;
    this.name = name;
    this.senderJson = undefined;
  }

  /** `{"session":…,"name":…}`, the sender part of every envelope this connection publishes. */
  get fromJson(): string {
    return (this.senderJson ??= encodeSender(this.id, this.name));
  }

  /** Takes a token for one message; false past --rate-limit (always true when it is 0). */
  private withinRate(): boolean {
    const { rateLimit, rateBurst } = this.context.options;
    if (rateLimit === 0) return true;
    return (this.rate ??= new TokenBucket(rateLimit, rateBurst)).take();
  }

  /** Spends one unit of the error allowance; false once the connection has erred too much. */
  private spendError(): boolean {
    return (this.errorBudget ??= new TokenBucket(PROTOCOL_ERROR_REFILL, PROTOCOL_ERROR_BURST)).take();
  }

  isWritable(): boolean {
    return this.ws.readyState === WebSocket.OPEN && !this.closeSent;
  }

  mayCreateRoom(): boolean {
    const { roomCreationRate, roomCreationBurst } = this.context.options;
    if (roomCreationRate === 0) return true;
    return (this.roomCreations ??= new TokenBucket(roomCreationRate, roomCreationBurst)).take();
  }

  isOpen(): boolean {
    return !this.closed && !this.closeSent;
  }

  deliver(frame: Buffer): void {
    this.context.outbox.send(this, frame);
  }

  /** A large reply is going out in pieces: the outbox hands frames to hold() instead of the socket. */
  get replaying(): boolean {
    return this.replay !== undefined;
  }

  hold(frame: Buffer): void {
    this.replay?.hold(frame);
  }

  /**
   * Sends a `joined` reply with its messages. One that would not fit in --max-buffered goes out
   * in pieces as the socket drains (replay.ts), instead of closing the connection as too slow.
   */
  replyJoined(reply: Omit<Joined, 'messages'>, messages: readonly string[]): void {
    const replay = Replay.of(reply, messages, this.context.options.maxBuffered);
    if (!replay) return this.deliver(encodeTextFrame(joinedEnvelope(reply, messages)));
    if (this.replay) return this.replay.then(replay);
    this.context.outbox.flushAll();
    this.replay = replay;
    replay.start(this, () => {
      this.replay = undefined;
    });
  }

  /** Queues one envelope for this connection alone. */
  reply(json: string): void {
    this.deliver(encodeTextFrame(json));
  }

  /**
   * Answers a request with an error envelope. A client's own mistakes spend its error allowance
   * and a connection that keeps erring is closed; refusals that are the server's state
   * (`unavailable`, `server_full`) do not.
   */
  replyError(id: RequestId, code: ErrorCode, message: string): void {
    this.context.metrics.countIn(this.context.metrics.protocolErrors, code);
    this.reply(errorEnvelope(id, code, message));
    if (code === ErrorCode.Unavailable || code === ErrorCode.ServerFull) return;
    if (!this.spendError()) {
      this.context.logger.warn('closing a connection that keeps sending bad requests', { id: this.id, remote: this.remoteAddress });
      this.close(CloseCode.PolicyViolation, 'too many bad requests');
    }
  }

  /**
   * Answers with the application's refusal or a hook failure: never spends the error allowance
   * (the client did nothing wrong by Plaza's rules). An app's own codes are not counted by code.
   */
  replyRefusal(id: RequestId, code: ErrorCode | AppErrorCode, message: string): void {
    if (PLAZA_CODES.has(code)) this.context.metrics.countIn(this.context.metrics.protocolErrors, code);
    this.reply(errorEnvelope(id, code, message));
  }

  writeAhead(): void {
    this.context.outbox.writeAhead();
  }

  countWrite(bytes: number): void {
    this.context.metrics.bytesOut += bytes;
    this.context.metrics.writes++;
  }

  onOverflow(): void {
    this.replay?.cancel();
    this.context.metrics.slowConsumerDrops++;
    this.context.logger.warn('slow consumer dropped', { id: this.id, remote: this.remoteAddress });
    // Out of every room at once, so no more frames are even selected for it. The close frame
    // waits behind what is already buffered; ws destroys the socket CLOSE_GRACE_MS later if the
    // peer never answers it (ws-server.ts), so what this connection holds is bounded by
    // maxBuffered, and for two seconds.
    this.context.broker.leaveAll(this);
    this.close(CloseCode.TryAgainLater, 'too slow: messages were piling up');
  }

  /** Sends what is queued, then the close frame. Safe to call more than once. */
  close(code: number, reason: string): void {
    if (this.closeSent) return;
    this.replay?.cancel();
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

  /** Called by the shared ws listener. */
  handleMessage(bytes: Buffer, isBinary: boolean): void {
    // After our close frame nothing more from this peer counts.
    if (this.closeSent) return;
    this.messagesIn++;
    this.bytesIn += bytes.length;
    this.context.metrics.messagesIn++;
    this.context.metrics.bytesIn += bytes.length;
    const limited = !this.withinRate();
    try {
      if (this.protocol === 'v1') this.onV1Message(limited ? { limited: bytes } : isBinary ? 'binary' : bytes);
      else if (limited) this.onRateLimited();
      else if (this.waiting) this.waitBehind({ plain: bytes, binary: isBinary });
      else this.onPlainMessage(bytes, isBinary);
    } catch (error) {
      this.fail(error);
    }
  }

  /**
   * Over the rate the message is dropped; v1 clients are told (with the request's id when it has
   * one, so the client knows which request it was), and a sender that keeps going is closed.
   */
  private onRateLimited(dropped?: Buffer): void {
    this.context.metrics.rateLimited++;
    if (this.protocol === 'v1') {
      const id = dropped ? requestIdOf(dropped.toString('utf8')) : undefined;
      return this.replyError(id, ErrorCode.RateLimited, `more than ${this.context.options.rateLimit} messages per second; slow down`);
    }
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

  /**
   * One plaza.v1 frame, or what became of it on arrival (over the rate, or binary). While a
   * request waits (a join on the backplane), later frames wait behind it, and so do the errors
   * they earned, so a publish right after a join finds the connection in the room.
   */
  private onV1Message(frame: Waiting): void {
    if (this.waiting) return this.waitBehind(frame);
    if (frame === 'binary') return this.replyError(undefined, ErrorCode.BadRequest, 'plaza.v1 takes JSON in text frames, not binary');
    if (!Buffer.isBuffer(frame)) return 'limited' in frame ? this.onRateLimited(frame.limited) : this.fail(new Error('a plain frame in the plaza.v1 path'));
    const bytes = frame;
    const options = this.context.options;
    const parsed = parseRequest(bytes.toString('utf8'), { maxRoomName: options.maxRoomName, historySize: options.historySize });
    if (!parsed.ok) return this.replyError(parsed.id, parsed.code, parsed.message);
    const pending = handleRequest(this, parsed.request);
    if (pending) this.waitFor(pending);
  }

  /** Queues a frame behind the request that waits. */
  private waitBehind(frame: Waiting): void {
    const waiting = this.waiting!;
    const bytes = sizeOf(frame);
    // Past the hard bound only a peer that ignores TCP backpressure is left: it is closed.
    if (waiting.length >= REQUEST_GATE_MAX_FRAMES || this.waitingBytes + bytes > 4 * this.context.options.maxBuffered) {
      return this.close(CloseCode.PolicyViolation, 'too many requests waiting');
    }
    waiting.push(frame);
    this.waitingBytes += bytes;
    // Past the soft bound the socket is not read until the queue drains: a client flushing its
    // offline queue right behind a rejoin waits, instead of being cut off.
    if (waiting.length >= REQUEST_GATE_PAUSE_FRAMES || this.waitingBytes > this.context.options.maxBuffered) this.ws.pause();
  }

  /** Frames arriving from now on wait until `pending` settles, then go on in their order. */
  private waitFor(pending: Promise<void>): void {
    this.waiting = [];
    pending.catch((error: unknown) => this.fail(error)).finally(() => this.drainWaiting());
  }

  private drainWaiting(): void {
    const waiting = this.waiting ?? [];
    this.waiting = undefined;
    this.waitingBytes = 0;
    while (waiting.length > 0 && !this.closeSent) {
      try {
        const frame = waiting.shift()!;
        if (typeof frame === 'object' && 'plain' in frame) this.onPlainMessage(frame.plain, frame.binary);
        else this.onV1Message(frame);
      } catch (error) {
        return this.fail(error);
      }
      // Handling it may have set it again (TypeScript cannot see that through the call).
      const again = this.waiting as Waiting[] | undefined;
      if (again) {
        // Another request went async: what is left keeps its place in front of newer ones.
        again.unshift(...waiting);
        for (const frame of waiting) this.waitingBytes += sizeOf(frame);
        break;
      }
    }
    // Reading goes on once what waits is back under the soft bound.
    const queued = this.waiting as Waiting[] | undefined;
    const full = queued !== undefined && (queued.length >= REQUEST_GATE_PAUSE_FRAMES || this.waitingBytes > this.context.options.maxBuffered);
    if (!full && this.ws.isPaused) this.ws.resume();
  }

  fail(error: unknown): void {
    // A bug while handling one message must cost only this connection, never the process.
    this.context.logger.error('message handler failed', { id: this.id, error: error instanceof Error ? error.stack : String(error) });
    this.close(CloseCode.InternalError, 'internal error');
  }

  /**
   * Called by the shared ws listener with the code ws saw. When Plaza closed first, the log and
   * metrics report the code Plaza sent: ws reports 1006 when it ended the socket without the
   * peer's reply (after 1007, 1009, 1002) and the peer's echo otherwise.
   */
  handleClose(received: number): void {
    this.closed = true;
    this.replay?.cancel();
    this.context.broker.leaveAll(this);
    this.context.connections.delete(this);
    this.context.limits.remove(this.context.limits.countsAddresses ? this.remoteAddress : undefined);
    this.context.expiries?.delete(this);
    const by: ClosedBy = this.sentCode !== undefined ? 'server' : received === ABNORMAL_CLOSURE ? 'network' : 'client';
    const code = this.sentCode ?? received;
    this.context.metrics.countIn(this.context.metrics.disconnects, code);
    this.queued = undefined;
    if (this.context.logger.writes?.('info') !== false) this.logClosed(code, by);
    this.context.onClosed?.(this, code);
  }

  private logClosed(code: number, by: ClosedBy): void {
    this.context.logger.info('connection closed', {
      id: this.id,
      code,
      by,
      remote: this.remoteAddress,
      ms: Date.now() - this.openedAt,
      messagesIn: this.messagesIn,
      bytesIn: this.bytesIn,
      // Everything written to the socket: the 101 response, frames, pings and the close frame.
      bytesOut: (this.socket as Partial<Socket>).bytesWritten ?? 0,
    });
  }
}
