/**
 * streams/ — the server-sent-events side of a node (side.ts; PROTOCOL.md, "Server-sent events"):
 * a client's plaza.v1 envelopes go down one `text/event-stream` response and its requests come
 * up as POSTs, on this node or carried here from another over the backplane (relay.ts). What a
 * client asks and how it is answered is sessions/', shared with the WebSocket side. It may import
 * sessions/, rooms/, the engine, access/, hooks/, src/shared, config and logger; never
 * websocket/, http/ or node/.
 *
 * This file: one stream, the session whose frames are events on an HTTP response's socket and
 * whose requests are the lines of its POSTs, taken in their `Plaza-Seq` order.
 */
import type { Socket } from 'node:net';
import { encodeSseEnvelope, encodeSseEvent } from '../engine/sse-event.js';
import type { Admission, ConnectionContext } from '../sessions/context.js';
import { Session } from '../sessions/session.js';
import { lastIdIn, Positions } from './positions.js';
import type { StreamClose } from '../../shared/sse.js';

/** How long a stream's last event and buffered bytes get to leave before the socket is cut off. */
export const CLOSE_GRACE_MS = 2000;

/** Where the shared close listener finds its stream: one function for every socket, no closure each. */
const OWNER = Symbol('plaza.stream');
type Owned = Socket & { [OWNER]: Stream };
function onSocketClose(this: Socket): void {
  (this as Owned)[OWNER].handleClose();
}

/** What a stream says to one POST's lines. */
export type Taken =
  | { status: 204; duplicate?: true }
  /** `Plaza-Seq` is past the next one: `expected` must come first. */
  | { status: 409; expected: number }
  /** Too many requests wait already: send it again later. */
  | { status: 429 }
  /** The stream is closing: it takes nothing more. */
  | { status: 404 };

/** An SSE stream: the outbox writes its events straight to the response's socket. */
export class Stream extends Session {
  readonly protocol = 'sse' as const;
  /** Heartbeats as `{"type":"beat"}` events (`?beats=1`) instead of comments. */
  beats = false;
  /** The `Plaza-Seq` the next numbered POST must carry. */
  private nextSeq = 1;
  /** The close code Plaza sent in the `close` event, if it ended the stream. */
  private sentCode: number | undefined;
  private cutOff: NodeJS.Timeout | undefined;
  /** Made when the stream is first in two rooms at once: one room's ids are the whole position. */
  private positions: Positions | undefined;
  /** The last `id:` written while in one room, to start `positions` from. */
  private lastId: string | undefined;

  constructor(
    context: ConnectionContext<Stream>,
    /** The response's socket, past the head: nothing but events is written to it. */
    readonly socket: Socket,
    admission: Admission,
    /** The secret the client POSTs to (welcome.stream). */
    readonly streamId: string,
  ) {
    super(context as unknown as ConnectionContext<Session>, admission);
    context.limits.add(context.limits.countsAddresses ? admission.ip : undefined);
    context.connections.add(this);
    context.metrics.connects.sse++;
    (socket as Owned)[OWNER] = this;
    // `on`, not `once`: a socket closes once, and `once` wraps the listener in a closure per socket.
    socket.on('close', onSocketClose);
    if (context.logger.writes?.('info') !== false) {
      context.logger.info('connection open', { id: this.id, transport: 'sse', protocol: 'sse', remote: this.remoteAddress, user: admission.grant?.userId });
    }
  }

  protected frame(json: string): Buffer {
    return encodeSseEnvelope(json);
  }

  isWritable(): boolean {
    return !this.closeSent && this.socket.writable;
  }

  /**
   * After each write: a stream in several rooms ends it with an id-only line naming every room's
   * position, so `Last-Event-ID` resumes them all (PROTOCOL.md, "Ids and resuming").
   */
  wrote(data: Buffer | readonly Buffer[]): void {
    const options = this.context.options;
    if (this.rooms.size < 2 && this.positions === undefined) {
      // Kept cheaply: only the last write that carried an id matters, and only until a second room.
      const last = Buffer.isBuffer(data) ? data : data[data.length - 1];
      if (last) this.lastId = lastIdIn(last) ?? this.lastId;
      return;
    }
    if (!this.positions) {
      this.positions = new Positions();
      if (this.lastId !== undefined) this.positions.take(Buffer.from(`id: ${this.lastId}\n`), options.maxRoomName, options.maxRoomsPerConnection);
      this.lastId = undefined;
    }
    if (!this.positions.take(data, options.maxRoomName, options.maxRoomsPerConnection) || this.rooms.size < 2) return;
    const line = this.positions.line([...this.rooms].map((room) => room.name));
    if (line && this.socket.writable) this.socket.write(line);
  }

  // A stream is not read: its POSTs are refused with 429 while too many requests wait.
  protected pauseReading(): void {}
  protected resumeReading(): void {}

  /**
   * Takes one POST's lines, in order behind everything taken before. With `seq`, only the next
   * number is taken; an earlier one was taken already and is not taken again.
   */
  take(seq: number | undefined, lines: readonly Buffer[]): Taken {
    if (this.closeSent || this.closed) return { status: 404 };
    if (seq !== undefined) {
      if (seq < this.nextSeq) return { status: 204, duplicate: true };
      if (seq > this.nextSeq) return { status: 409, expected: this.nextSeq };
    }
    if (this.waitingIsFull) return { status: 429 };
    if (seq !== undefined) this.nextSeq++;
    for (const line of lines) {
      if (this.closeSent) break;
      const limited = !this.countIn(line.length);
      try {
        this.onV1Message(limited ? { limited: line } : line);
      } catch (error) {
        this.fail(error);
      }
    }
    return { status: 204 };
  }

  /** Requests the server makes for the client at opening (`?room=`): later POSTs wait behind them. */
  startWith(pending: Promise<void>): void {
    this.waitFor(pending);
  }

  /** Sends what is queued, then the `close` event, and ends the response. Idempotent. */
  close(code: number, reason: string): void {
    if (this.closeSent) return;
    this.cancelReplay();
    this.context.outbox.flushAll();
    this.closeSent = true;
    this.sentCode ??= code;
    const last: StreamClose = { type: 'close', code, reason };
    if (this.socket.writable) this.socket.end(encodeSseEvent(JSON.stringify(last)));
    // A reader that does not take what is buffered is cut off, so a stream holds at most
    // --max-buffered bytes, and for this long.
    this.cutOff = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
    this.cutOff.unref();
  }

  /** Called by the shared close listener. */
  handleClose(): void {
    clearTimeout(this.cutOff);
    this.ended(this.sentCode ?? 1006, this.sentCode !== undefined ? 'server' : 'network', this.socket.bytesWritten);
  }
}
