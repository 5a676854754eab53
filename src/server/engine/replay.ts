/**
 * A `joined` reply too large to queue at once: a resume or a history request whose messages
 * add up to more than half of --max-buffered. Queued whole it would trip the slow-consumer bound
 * and close the connection (1013) for asking for history the server itself allows.
 *
 * Instead the reply goes out in pieces the connection can take: the `joined` frame carries the
 * oldest messages that fit and says, in `offset`, the last one it carries; the others follow as
 * ordinary `message` envelopes, one frame each, written only while the socket has room and
 * resumed on 'drain'. Everything else for this connection (live messages, replies) waits behind
 * it, in order and bounded by --max-buffered, so nothing live can come between (PROTOCOL.md).
 */
import type { Duplex } from 'node:stream';
import type { Joined } from '../../shared/protocol.js';
import { joinedEnvelope } from './envelope.js';
import { encodeTextFrame } from './frame.js';

/** What a replay writes to: the connection's socket and its bookkeeping. */
export interface ReplayTarget {
  readonly socket: Duplex;
  isWritable(): boolean;
  /** More than --max-buffered bytes of live frames waited behind the replay. */
  onOverflow(): void;
  /** Writes the journal's pending records before any frame that carries them leaves. */
  writeAhead(): void;
  countWrite(bytes: number): void;
  /** Told what was just written (as the outbox tells it). */
  wrote?(data: Buffer): void;
}

/** One reply written in pieces: its `joined` frame, then its remaining messages, one frame each. */
class PagedReply {
  private index = -1;
  constructor(
    private readonly first: Buffer,
    private readonly rest: readonly string[],
    private readonly frame: (json: string) => Buffer,
  ) {}

  next(): Buffer | undefined {
    const i = this.index++;
    if (i < 0) return this.first;
    return i < this.rest.length ? this.frame(this.rest[i]!) : undefined;
  }
}

export class Replay {
  /** Live frames and further paged replies waiting their turn, in order. */
  private readonly queue: Array<Buffer | PagedReply>;
  private heldBytes = 0;
  private target: ReplayTarget | undefined;
  private done: (() => void) | undefined;
  private finished = false;

  private constructor(
    reply: PagedReply,
    private readonly maxBuffered: number,
  ) {
    this.queue = [reply];
  }

  /**
   * A paced replay of `reply` with `messages` (contiguous, ending at `reply.offset`), each envelope
   * framed by `frame` (a WebSocket text frame, or an SSE event), or
   * undefined when the whole reply fits in half of --max-buffered and can simply be queued.
   */
  static of(reply: Omit<Joined, 'messages'>, messages: readonly string[], maxBuffered: number, frame: (json: string) => Buffer = encodeTextFrame): Replay | undefined {
    let total = 0;
    for (const message of messages) total += message.length;
    if (total <= maxBuffered / 2) return undefined;
    // The joined frame itself takes what fits in a quarter; the rest follow one by one.
    let carried = 0;
    let bytes = 0;
    while (carried < messages.length && bytes + messages[carried]!.length <= maxBuffered / 4) bytes += messages[carried++]!.length;
    const offset = reply.offset - (messages.length - carried);
    const first = frame(joinedEnvelope({ ...reply, offset }, messages.slice(0, carried)));
    return new Replay(new PagedReply(first, messages.slice(carried), frame), maxBuffered);
  }

  start(target: ReplayTarget, done: () => void): void {
    this.target = target;
    this.done = done;
    this.pump();
  }

  /** A frame for this connection while the replay runs: it waits its turn, within --max-buffered. */
  hold(frame: Buffer): void {
    if (this.finished) return;
    if (this.heldBytes + frame.length > this.maxBuffered) return this.target?.onOverflow();
    this.queue.push(frame);
    this.heldBytes += frame.length;
  }

  /** Another large reply while this one runs: it follows everything queued so far. */
  then(next: Replay): void {
    if (!this.finished) this.queue.push(...next.queue);
  }

  /** Stops at once (the connection is closing); nothing more is written. Idempotent. */
  cancel(): void {
    if (this.finished) return;
    this.target?.socket.off('drain', this.pump);
    this.finish();
  }

  private finish(): void {
    this.finished = true;
    this.queue.length = 0;
    this.heldBytes = 0;
    this.done?.();
  }

  private readonly pump = (): void => {
    const target = this.target;
    if (this.finished || !target) return;
    if (!target.isWritable()) return this.cancel();
    target.writeAhead();
    const socket = target.socket;
    socket.cork();
    try {
      while (this.queue.length > 0) {
        if (socket.writableLength >= this.maxBuffered / 2) {
          socket.once('drain', this.pump);
          return;
        }
        const head = this.queue[0]!;
        let frame: Buffer | undefined;
        if (head instanceof PagedReply) {
          frame = head.next();
          if (!frame) {
            this.queue.shift();
            continue;
          }
        } else {
          this.queue.shift();
          this.heldBytes -= head.length;
          frame = head;
        }
        socket.write(frame);
        target.countWrite(frame.length);
        target.wrote?.(frame);
      }
    } finally {
      socket.uncork();
    }
    this.finish();
  };
}
