import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { CloseCode, ErrorCode } from '../shared/protocol.js';
import type { Broker } from './broker.js';
import type { PlazaOptions } from './config.js';
import { encodeSender, errorEnvelope, type RequestId } from './envelope.js';
import { encodeTextFrame } from './frame.js';
import type { Member, Room, WireProtocol } from './hub.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { Outbox, OutboxEntry } from './outbox.js';
import { handleRequest } from './commands.js';
import { parseRequest } from './requests.js';
import { TokenBucket } from './token-bucket.js';
import type { Admission, ConnectionLimits } from './upgrade.js';
import type { StatusFeed } from './status-feed.js';

/** What every connection shares: the server's broker, outbox, options and log. */
export interface ConnectionContext {
  readonly broker: Broker;
  readonly outbox: Outbox;
  readonly logger: Logger;
  readonly options: PlazaOptions;
  readonly metrics: Metrics;
  readonly limits: ConnectionLimits;
  /** Decides who may watch the reserved status room. */
  readonly statusFeed: Pick<StatusFeed, 'mayJoin'>;
  /** The server's live connections; a connection removes itself when it closes. */
  readonly connections: Set<Connection>;
}

/** Requests that may queue behind one waiting on the cluster before the connection is closed. */
const MAX_WAITING = 1000;

/** Protocol errors a connection may make in a burst before it is closed with 1008. */
const ERROR_BURST = 20;
/** ...and how fast that allowance comes back, per second. */
const ERROR_REFILL = 2;

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
  connection.context.logger.debug('connection error', { id: connection.id, error: error.code ?? error.message });
}

/** One WebSocket client: reads its messages, hands them to the broker, owns its outgoing queue. */
export class Connection implements Member, OutboxEntry {
  readonly id = randomBytes(9).toString('base64url');
  readonly rooms = new Set<Room>();
  name = 'anonymous';
  /** Sweeps since the last pong; two unanswered pings mean the peer is gone. */
  missedPongs = 0;
  /** Encoded on first publish: most connections only listen. */
  private senderJson: string | undefined;
  pending: Buffer[] = [];
  pendingBytes = 0;
  bufferedAtTurnStart = 0;
  private readonly openedAt = Date.now();
  private messagesIn = 0;
  private bytesIn = 0;
  private closeSent = false;
  /** Created on the first bad request: well-behaved connections never need one. */
  private errorBudget: TokenBucket | undefined;
  private readonly rate: TokenBucket | undefined;
  /** Requests that arrived while one waits on the cluster; undefined when none waits. */
  private waiting: Buffer[] | undefined;
  readonly remoteAddress: string;

  constructor(
    readonly context: ConnectionContext,
    readonly ws: WebSocket,
    /** The raw socket under `ws`: broadcast frames are written here directly, already framed. */
    readonly socket: Duplex,
    readonly protocol: WireProtocol,
    readonly admission: Admission,
  ) {
    this.remoteAddress = admission.ip;
    if (admission.grant) this.name = admission.grant.name;
    const { rateLimit, rateBurst } = context.options;
    if (rateLimit > 0) this.rate = new TokenBucket(rateLimit, rateBurst);
    context.limits.add(admission.ip);
    context.connections.add(this);
    context.metrics.connects[protocol]++;
    if (protocol === 'plain') context.broker.join(this, context.options.defaultRoom, false);
    (ws as Owned)[OWNER] = this;
    ws.on('message', onWsMessage);
    ws.on('close', onWsClose);
    ws.on('pong', onWsPong);
    ws.on('error', onWsError);
    context.logger.info('connection open', { id: this.id, protocol, remote: this.remoteAddress, user: admission.grant?.userId });
  }

  /** The authenticated user (token `sub`), when auth is on. */
  get userId(): string | undefined {
    return this.admission.grant?.userId;
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

  /** Spends one unit of the error allowance; false once the connection has erred too much. */
  private spendError(): boolean {
    return (this.errorBudget ??= new TokenBucket(ERROR_REFILL, ERROR_BURST)).take();
  }

  isWritable(): boolean {
    return this.ws.readyState === WebSocket.OPEN && !this.closeSent;
  }

  deliver(frame: Buffer): void {
    this.context.outbox.enqueue(this, frame);
  }

  /** Queues one envelope for this connection alone. */
  reply(json: string): void {
    this.deliver(encodeTextFrame(json));
  }

  /** Answers a bad request with an error envelope; a connection that keeps erring is closed. */
  replyError(id: RequestId, code: ErrorCode, message: string): void {
    this.context.metrics.countIn(this.context.metrics.protocolErrors, code);
    this.reply(errorEnvelope(id, code, message));
    if (!this.spendError()) {
      this.context.logger.warn('closing a connection that keeps sending bad requests', { id: this.id, remote: this.remoteAddress });
      this.close(CloseCode.PolicyViolation, 'too many bad requests');
    }
  }

  onOverflow(): void {
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
    this.context.outbox.flush(this);
    this.closeSent = true;
    this.ws.close(code, reason);
  }

  /** Called by the shared ws listener. */
  handleMessage(bytes: Buffer, isBinary: boolean): void {
    // After our close frame nothing more from this peer counts.
    if (this.closeSent) return;
    this.messagesIn++;
    this.bytesIn += bytes.length;
    this.context.metrics.messagesIn++;
    this.context.metrics.bytesIn += bytes.length;
    if (this.rate && !this.rate.take()) return this.onRateLimited();
    try {
      if (this.protocol === 'plain') this.onPlainMessage(bytes, isBinary);
      else this.onV1Message(bytes, isBinary);
    } catch (error) {
      this.fail(error);
    }
  }

  /** Over the rate the message is dropped; v1 clients are told, and a sender that keeps going is closed. */
  private onRateLimited(): void {
    this.context.metrics.rateLimited++;
    if (this.protocol === 'v1') {
      return this.replyError(undefined, ErrorCode.RateLimited, `more than ${this.context.options.rateLimit} messages per second; slow down`);
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
    const payload = isBinary
      ? ({ kind: 'binary', bytes } as const)
      : ({ kind: 'text', text: bytes.toString('utf8'), bytes } as const);
    const except = this.context.options.excludeSender ? this : undefined;
    const published = this.context.broker.publish(this.context.options.defaultRoom, payload, this, except);
    // Plain clients cannot be told; a message Redis could not take is dropped and logged.
    if (published instanceof Promise) published.catch((error: Error) => this.context.logger.debug('plain publish failed', { id: this.id, error: error.message }));
  }

  private onV1Message(bytes: Buffer, isBinary: boolean): void {
    if (isBinary) return this.replyError(undefined, ErrorCode.BadRequest, 'plaza.v1 takes JSON in text frames, not binary');
    // While a request waits on the cluster, later ones wait behind it, so a publish right
    // after a join still finds the connection in the room.
    if (this.waiting) {
      if (this.waiting.length >= MAX_WAITING) return this.close(CloseCode.PolicyViolation, 'too many requests waiting');
      this.waiting.push(bytes);
      return;
    }
    const options = this.context.options;
    const parsed = parseRequest(bytes.toString('utf8'), { maxRoomName: options.maxRoomName, historySize: options.historySize });
    if (!parsed.ok) return this.replyError(parsed.id, parsed.code, parsed.message);
    const pending = handleRequest(this, parsed.request);
    if (pending) {
      this.waiting = [];
      pending.catch((error: unknown) => this.fail(error)).finally(() => this.drainWaiting());
    }
  }

  private drainWaiting(): void {
    const waiting = this.waiting ?? [];
    this.waiting = undefined;
    while (waiting.length > 0 && !this.closeSent) {
      try {
        this.onV1Message(waiting.shift()!, false);
      } catch (error) {
        return this.fail(error);
      }
      // onV1Message may have set it again (TypeScript cannot see that through the call).
      const again = this.waiting as Buffer[] | undefined;
      if (again) {
        // Another request went async: what is left keeps its place in front of newer ones.
        again.unshift(...waiting);
        return;
      }
    }
  }

  private fail(error: unknown): void {
    // A bug while handling one message must cost only this connection, never the process.
    this.context.logger.error('message handler failed', { id: this.id, error: error instanceof Error ? error.stack : String(error) });
    this.close(CloseCode.InternalError, 'internal error');
  }

  /** Called by the shared ws listener. */
  handleClose(code: number): void {
    this.context.broker.leaveAll(this);
    this.context.connections.delete(this);
    this.context.limits.remove(this.remoteAddress);
    this.context.metrics.countIn(this.context.metrics.disconnects, code);
    this.pending = [];
    this.pendingBytes = 0;
    this.context.logger.info('connection closed', {
      id: this.id,
      code,
      remote: this.remoteAddress,
      ms: Date.now() - this.openedAt,
      messagesIn: this.messagesIn,
      bytesIn: this.bytesIn,
    });
  }
}
