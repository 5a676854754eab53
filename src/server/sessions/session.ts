/**
 * One client session whatever transport carries it: what a WebSocket connection and an SSE
 * stream share. Its name and sender, rate buckets, error allowance and room-creation allowance;
 * plaza.v1 requests parsed, answered (commands.ts) and kept in order behind one that waits on
 * the cluster; its replies and large paced replies; the slow-consumer drop; and what happens
 * when it has closed. A transport says how an envelope is framed, how the session is closed, and
 * how its reading is paused (websocket/connection.ts, streams/stream.ts).
 */
import type { Duplex } from 'node:stream';
import { CloseCode, ErrorCode, type AppErrorCode, type Joined } from '../../shared/protocol.js';
import { encodeSender, errorEnvelope, joinedEnvelope, type RequestId } from '../engine/envelope.js';
import type { Member, Room, WireProtocol } from '../engine/hub.js';
import type { DirectQueue, Recipient } from '../engine/outbox.js';
import { Replay, type ReplayTarget } from '../engine/replay.js';
import { handleRequest, type Requester } from './commands.js';
import type { Admission, ConnectionContext } from './context.js';
import { parseRequest, requestIdOf } from './requests.js';
import { TokenBucket } from './token-bucket.js';
import { PROTOCOL_ERROR_BURST, PROTOCOL_ERROR_REFILL, REQUEST_GATE_MAX_FRAMES, REQUEST_GATE_PAUSE_FRAMES } from '../bounds.js';

/**
 * Requests queued behind one waiting on the backplane: past PAUSE_WAITING (or --max-buffered
 * bytes) the session stops reading (a WebSocket is paused, an SSE stream's POSTs get 429); past
 * MAX_WAITING (or 4 × --max-buffered bytes), which only a peer ignoring that reaches, it is
 * closed with 1008.
 */
const PAUSE_WAITING = REQUEST_GATE_PAUSE_FRAMES;
const MAX_WAITING = REQUEST_GATE_MAX_FRAMES;

/**
 * A request as it waits its turn: plaza.v1, its bytes, or what it earned on arrival (over the
 * rate, binary); a plain WebSocket frame, its bytes and kind (waiting only behind a hook).
 */
export type Waiting = Buffer | { limited: Buffer } | 'binary' | { plain: Buffer; binary: boolean };

function sizeOf(frame: Waiting): number {
  if (typeof frame === 'string') return 0;
  if (Buffer.isBuffer(frame)) return frame.length;
  return 'limited' in frame ? frame.limited.length : frame.plain.length;
}

/** Plaza's own error codes: the only ones counted by code in /metrics (an app's codes are its own). */
const PLAZA_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** Protocol errors a session may make in a burst before it is closed with 1008, and their refill per second. */
const ERROR_BURST = PROTOCOL_ERROR_BURST;
const ERROR_REFILL = PROTOCOL_ERROR_REFILL;

/** Who ended a session: sent the first close, or neither (the TCP link ended). */
export type ClosedBy = 'server' | 'client' | 'network';

export abstract class Session implements Member, Recipient, ReplayTarget, Requester {
  readonly id: string;
  readonly rooms = new Set<Room>();
  name = 'anonymous';
  /** Encoded on first publish: most sessions only listen. */
  private senderJson: string | undefined;
  /** The outbox's bookkeeping (outbox.ts): frames for this session alone, and its last flush. */
  queued: DirectQueue | undefined = undefined;
  flushMark = 0;
  protected readonly openedAt = Date.now();
  protected messagesIn = 0;
  protected bytesIn = 0;
  /** Set once the session began to close: nothing more is read or written but the goodbye. */
  protected closeSent = false;
  /** Set once the transport reported the end: the session is gone. */
  protected closed = false;
  /** A reply too large to queue at once, going out as the socket drains; live frames wait behind it. */
  private replay: Replay | undefined;
  /** Created on the first bad request: well-behaved sessions never need one. */
  private errorBudget: TokenBucket | undefined;
  /** Created on the first new room: most sessions join rooms that exist. */
  private roomCreations: TokenBucket | undefined;
  /**
   * Created on the first message (--rate-limit): a bucket starts full, so one made then is the one
   * made at connect, and a session that only listens never needs one.
   */
  private rate: TokenBucket | undefined;
  /** Requests that arrived while one waits on the backplane; undefined when none waits. */
  protected waiting: Waiting[] | undefined;
  protected waitingBytes = 0;

  abstract readonly protocol: WireProtocol;
  /** Where the outbox writes this session's frames, already framed for its transport. */
  abstract readonly socket: Duplex;

  constructor(
    readonly context: ConnectionContext<Session>,
    readonly admission: Admission,
  ) {
    this.id = context.sessionIds.next();
    if (admission.grant) this.name = admission.grant.name;
  }

  /** One plaza.v1 envelope framed for this transport. */
  protected abstract frame(json: string): Buffer;
  abstract isWritable(): boolean;
  /** Sends what is queued, then the transport's goodbye (close frame, `close` event). Idempotent. */
  abstract close(code: number, reason: string): void;
  /** Stops and restarts taking requests while too many wait (WebSocket: the socket is not read). */
  protected abstract pauseReading(): void;
  protected abstract resumeReading(): void;

  /** The client's address (what --trust-proxy says, or the TCP peer): limits and logs. */
  get remoteAddress(): string {
    return this.admission.ip;
  }

  /** The authenticated user (token `sub`, or the id an authenticate hook gave), when there is one. */
  get userId(): string | undefined {
    return this.admission.grant?.userId;
  }

  /** What the application's authenticate hook attached to this session. */
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

  /** `{"session":…,"name":…}`, the sender part of every envelope this session publishes. */
  get fromJson(): string {
    return (this.senderJson ??= encodeSender(this.id, this.name));
  }

  /** Takes a token for one message; false past --rate-limit (always true when it is 0). */
  protected withinRate(): boolean {
    const { rateLimit, rateBurst } = this.context.options;
    if (rateLimit === 0) return true;
    return (this.rate ??= new TokenBucket(rateLimit, rateBurst)).take();
  }

  /** Spends one unit of the error allowance; false once the session has erred too much. */
  protected spendError(): boolean {
    return (this.errorBudget ??= new TokenBucket(ERROR_REFILL, ERROR_BURST)).take();
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
   * in pieces as the socket drains (replay.ts), instead of closing the session as too slow.
   */
  replyJoined(reply: Omit<Joined, 'messages'>, messages: readonly string[]): void {
    const replay = Replay.of(reply, messages, this.context.options.maxBuffered, (json) => this.frame(json));
    if (!replay) return this.deliver(this.frame(joinedEnvelope(reply, messages)));
    if (this.replay) return this.replay.then(replay);
    this.context.outbox.flushAll();
    this.replay = replay;
    replay.start(this, () => {
      this.replay = undefined;
    });
  }

  /** Stops a paced reply (the session is closing). */
  protected cancelReplay(): void {
    this.replay?.cancel();
  }

  /** Queues one envelope for this session alone. */
  reply(json: string): void {
    this.deliver(this.frame(json));
  }

  /**
   * Answers a request with an error envelope. A client's own mistakes spend its error allowance
   * and a session that keeps erring is closed; refusals that are the server's state
   * (`unavailable`, `server_full`) do not.
   */
  replyError(id: RequestId, code: ErrorCode, message: string): void {
    this.context.metrics.countIn(this.context.metrics.protocolErrors, code);
    this.reply(errorEnvelope(id, code, message));
    if (code === ErrorCode.Unavailable || code === ErrorCode.ServerFull) return;
    if (!this.spendError()) {
      this.context.logger.warn('closing a session that keeps sending bad requests', { id: this.id, remote: this.remoteAddress });
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
    // Out of every room at once, so no more frames are even selected for it. The goodbye waits
    // behind what is already buffered, and the transport cuts the socket off soon after if the
    // peer does not take it, so what this session holds is bounded by maxBuffered.
    this.context.broker.leaveAll(this);
    this.close(CloseCode.TryAgainLater, 'too slow: messages were piling up');
  }

  /** Counts one request's bytes in; false when it is over the rate (and so must not be read). */
  protected countIn(bytes: number): boolean {
    this.messagesIn++;
    this.bytesIn += bytes;
    this.context.metrics.messagesIn++;
    this.context.metrics.bytesIn += bytes;
    return this.withinRate();
  }

  /**
   * Over the rate the request is dropped and the client told, with the request's id when it has
   * one, so it knows which request it was.
   */
  protected onRateLimited(dropped?: Buffer): void {
    this.context.metrics.rateLimited++;
    const id = dropped ? requestIdOf(dropped.toString('utf8')) : undefined;
    this.replyError(id, ErrorCode.RateLimited, `more than ${this.context.options.rateLimit} messages per second; slow down`);
  }

  /**
   * One plaza.v1 request, or what became of it on arrival (over the rate, binary). While a
   * request waits (a join on the backplane), later ones wait behind it, and so do the errors
   * they earned, so a publish right after a join finds the session in the room.
   */
  protected onV1Message(frame: Waiting): void {
    if (this.waiting) return this.waitBehind(frame);
    if (frame === 'binary') return this.replyError(undefined, ErrorCode.BadRequest, 'plaza.v1 takes JSON in text frames, not binary');
    if (!Buffer.isBuffer(frame)) return 'limited' in frame ? this.onRateLimited(frame.limited) : this.fail(new Error('a plain frame in the plaza.v1 path'));
    const options = this.context.options;
    const parsed = parseRequest(frame.toString('utf8'), { maxRoomName: options.maxRoomName, historySize: options.historySize });
    if (!parsed.ok) return this.replyError(parsed.id, parsed.code, parsed.message);
    const pending = handleRequest(this, parsed.request);
    if (pending) this.waitFor(pending);
  }

  /** What a frame that waited does when its turn comes (a WebSocket's plain frames are its own). */
  protected dispatch(frame: Waiting): void {
    this.onV1Message(frame);
  }

  /** True while so many requests wait that the session takes no more for now. */
  protected get waitingIsFull(): boolean {
    const waiting = this.waiting;
    return waiting !== undefined && (waiting.length >= PAUSE_WAITING || this.waitingBytes > this.context.options.maxBuffered);
  }

  /** Queues a request behind the one that waits. */
  protected waitBehind(frame: Waiting): void {
    const waiting = this.waiting!;
    const bytes = sizeOf(frame);
    // Past the hard bound only a peer that ignores backpressure is left: it is closed.
    if (waiting.length >= MAX_WAITING || this.waitingBytes + bytes > 4 * this.context.options.maxBuffered) {
      return this.close(CloseCode.PolicyViolation, 'too many requests waiting');
    }
    waiting.push(frame);
    this.waitingBytes += bytes;
    // Past the soft bound nothing more is read until the queue drains: a client flushing its
    // offline queue right behind a rejoin waits, instead of being cut off.
    if (this.waitingIsFull) this.pauseReading();
  }

  /** Requests arriving from now on wait until `pending` settles, then go on in their order. */
  protected waitFor(pending: Promise<void>): void {
    this.waiting = [];
    pending.catch((error: unknown) => this.fail(error)).finally(() => this.drainWaiting());
  }

  private drainWaiting(): void {
    const waiting = this.waiting ?? [];
    this.waiting = undefined;
    this.waitingBytes = 0;
    while (waiting.length > 0 && !this.closeSent) {
      try {
        this.dispatch(waiting.shift()!);
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
    if (!this.waitingIsFull) this.resumeReading();
  }

  fail(error: unknown): void {
    // A bug while handling one request must cost only this session, never the process.
    this.context.logger.error('message handler failed', { id: this.id, error: error instanceof Error ? error.stack : String(error) });
    this.close(CloseCode.InternalError, 'internal error');
  }

  /**
   * The transport has ended: out of every room, out of the counts, logged, and the application
   * told (its `disconnect` event). `code` is the close code Plaza sent first, or what ended it.
   */
  protected ended(code: number, by: ClosedBy, bytesOut: number): void {
    this.closed = true;
    this.replay?.cancel();
    this.context.broker.leaveAll(this);
    this.context.connections.delete(this);
    this.context.limits.remove(this.context.limits.countsAddresses ? this.remoteAddress : undefined);
    this.context.expiries?.delete(this);
    this.context.metrics.countIn(this.context.metrics.disconnects, code);
    this.queued = undefined;
    if (this.context.logger.writes?.('info') !== false) this.logClosed(code, by, bytesOut);
    this.context.onClosed?.(this, code);
  }

  private logClosed(code: number, by: ClosedBy, bytesOut: number): void {
    this.context.logger.info('connection closed', {
      id: this.id,
      transport: this.protocol === 'sse' ? 'sse' : 'websocket',
      code,
      by,
      remote: this.remoteAddress,
      ms: Date.now() - this.openedAt,
      messagesIn: this.messagesIn,
      bytesIn: this.bytesIn,
      bytesOut,
    });
  }
}
