import type { Duplex } from 'node:stream';
import { compressFrame } from './deflate.js';
import { baseKindOf, frameKindOf, isDeflateKind, KIND_COUNT, protocolOfKind, type Fanout, type FrameKind, type Member, type Outgoing, type Room } from './hub.js';
import type { Metrics } from './metrics.js';

/** Frames for one recipient alone (replies, presence, beats), with their places in the turn's order. */
export interface DirectQueue {
  frames: Buffer[];
  seqs: number[];
  bytes: number;
  /** Frames of a room it left were added out of order: sort by seq before writing. */
  unsorted: boolean;
}

/** What the outbox needs from a connection: a member with a socket. */
export interface Recipient extends Member {
  readonly socket: Duplex;
  /** The outbox's: frames queued for this recipient alone, undefined when none. */
  queued: DirectQueue | undefined;
  /** The outbox's: the last flush that wrote to this recipient. */
  flushMark: number;
  /** False once the connection is closing: nothing more may be written after a close frame. */
  isWritable(): boolean;
  /** Called, once per overflow, when more than `maxBuffered` bytes are waiting for this socket. */
  onOverflow(): void;
  /** A large reply is being paced out (replay.ts): frames must wait behind it, through hold(). */
  readonly replaying: boolean;
  hold(frame: Buffer): void;
  /** Told what was just written to its socket (an SSE stream keeps its rooms' positions from it). */
  wrote?(data: Buffer | readonly Buffer[]): void;
}

export interface OutboxOptions {
  /** Bytes that may wait for one socket (Node's buffer + this turn's frames) before it is dropped. */
  maxBuffered: number;
  /** Largest single write; bigger bursts go out as several writes in one cork. */
  maxWriteBytes: number;
  /**
   * Upper bound (ms) on how long a frame waits to share a write (--write-delay). 0 writes at the
   * end of the event-loop turn in which the frame was queued.
   */
  writeDelay?: number;
  /** Compress frames of at least this many bytes for members that negotiated permessage-deflate. */
  compressMinBytes?: number;
  /**
   * Runs before each turn's frames are written: the journal writes ahead here, so nothing a
   * client has seen can be missing from history after a crash.
   */
  beforeFlush?: () => void;
  metrics?: Metrics;
}

/** What a recipient outside the room's common case is owed of one turn: from where, and what not. */
interface Special {
  /** It joined during the turn: it takes the turn's messages from this index on. */
  start: number;
  /** Indices of messages it is excluded from (excludeSelf / --exclude-sender), ascending. */
  except: number[] | undefined;
}

/**
 * One room's messages in one turn, queued once for all its members: for each message its place in
 * the turn's order and its frame per kind of member (undefined for kinds nobody in the room was).
 */
class RoomTurn {
  readonly seqs: number[] = [];
  readonly frames: Array<Array<Buffer | undefined>> = [[], [], [], [], []];
  readonly bytes = [0, 0, 0, 0, 0];
  /** Members that joined during the turn or are excluded from some of its messages. */
  special: Map<Member, Special> | undefined;
  private readonly batches: Array<Buffer | undefined> = [];

  constructor(readonly room: Room) {}

  specialOf(member: Member): Special {
    this.special ??= new Map();
    let entry = this.special.get(member);
    if (!entry) {
      entry = { start: 0, except: undefined };
      this.special.set(member, entry);
    }
    return entry;
  }

  /** Every frame of `kind` concatenated once, the same bytes for every member of that kind. */
  batch(kind: FrameKind): Buffer {
    let batch = this.batches[kind];
    if (batch === undefined) {
      const frames = this.frames[kind] as Buffer[];
      batch = frames.length === 1 ? frames[0]! : Buffer.concat(frames, this.bytes[kind]);
      this.batches[kind] = batch;
    }
    return batch;
  }
}

/**
 * Coalesces writes: every frame a socket gets during one event-loop turn (or within --write-delay)
 * leaves in one write at the end of it, so a burst of N messages costs one syscall per socket
 * instead of N. One outbox per server, one pending flush at a time, no timers per socket.
 *
 * A room's message is queued once for the room, not once per member: publishing costs the same
 * for 10 members as for 10,000, and at the flush each member whose turn is the room's alone (the
 * common case) gets the room's batch, concatenated once, in one write. Members in several busy
 * rooms, with replies of their own, that joined mid-turn or are excluded from a message get their
 * frames gathered in the order they were queued. A member leaving a room mid-turn keeps what was
 * queued to it before; one joining takes only what comes after.
 */
export class Outbox implements Fanout {
  private turns = new Map<Room, RoomTurn>();
  private directs: Recipient[] = [];
  /**
   * Place in the order of everything queued: each broadcast and each direct frame takes one. It
   * never restarts: a frame queued while a flush runs (a presence change after a slow consumer
   * was dropped) must sort after what that flush still has to write. 2^53 places last centuries.
   */
  private seq = 0;
  private flushes = 0;
  private turnBytes = 0;
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private flushing = false;

  constructor(private readonly options: OutboxOptions) {}

  broadcast(room: Room, message: Outgoing, except: Member | undefined): void {
    // Framed (and compressed) once per kind of member the room has, before anything is queued.
    const kinds = room.kinds;
    const frames: Array<Buffer | undefined> = [undefined, undefined, undefined, undefined, undefined];
    let bytes = 0;
    for (let kind = 0 as FrameKind; kind < KIND_COUNT; kind++) {
      if (kinds[kind] === 0) continue;
      const base = baseKindOf(kind);
      const plain = (frames[base] ??= message.frameFor(protocolOfKind(kind)));
      const frame = isDeflateKind(kind) ? compressFrame(plain, this.options.compressMinBytes ?? Infinity) : plain;
      frames[kind] = frame;
      bytes += frame.length;
    }
    // An uncompressed frame built only to be compressed is not the plain kind's.
    for (let base = 0; base < 2; base++) if (kinds[base] === 0) frames[base] = undefined;
    this.makeRoom(bytes);
    let turn = this.turns.get(room);
    if (!turn) {
      turn = new RoomTurn(room);
      this.turns.set(room, turn);
    }
    const index = turn.seqs.length;
    turn.seqs.push(this.seq++);
    for (let kind = 0; kind < KIND_COUNT; kind++) {
      const frame = frames[kind];
      turn.frames[kind]!.push(frame);
      if (frame !== undefined) turn.bytes[kind]! += frame.length;
    }
    this.turnBytes += bytes;
    if (except !== undefined && room.members.has(except)) (turn.specialOf(except).except ??= []).push(index);
    this.scheduleFlush();
  }

  /**
   * The turn's frames are held in memory until the flush: when `bytes` more would take them past
   * half of --max-buffered (a huge turn, or a long --write-delay under load), what is queued goes
   * out first. So a member's share of one flush stays within the slow-consumer bound.
   */
  private makeRoom(bytes: number): void {
    if (this.turnBytes > 0 && this.turnBytes + bytes > this.options.maxBuffered / 2 && !this.flushing) this.flushAll();
  }

  joined(room: Room, member: Member): void {
    const turn = this.turns.get(room);
    if (turn) turn.specialOf(member).start = turn.seqs.length;
  }

  leaving(room: Room, member: Member): void {
    const turn = this.turns.get(room);
    if (!turn) return;
    // What was queued to it in this room before it left is still its own: moved to its queue.
    const recipient = member as Recipient;
    const special = turn.special?.get(member);
    turn.special?.delete(member);
    const kind = frameKindOf(member);
    const frames = turn.frames[kind]!;
    let skip = 0;
    for (let i = special?.start ?? 0; i < frames.length; i++) {
      if (special?.except !== undefined && special.except[skip] === i) {
        skip++;
        continue;
      }
      this.queue(recipient, frames[i]!, turn.seqs[i]!);
      recipient.queued!.unsorted = true;
    }
  }

  /** Queues one ready-made frame for one recipient (a reply, a presence change, a beat). */
  send(recipient: Recipient, frame: Buffer): void {
    if (!recipient.isWritable()) return;
    this.makeRoom(frame.length);
    this.queue(recipient, frame, this.seq++);
    this.turnBytes += frame.length;
    this.scheduleFlush();
  }

  private queue(recipient: Recipient, frame: Buffer, seq: number): void {
    let queued = recipient.queued;
    if (queued === undefined) {
      queued = recipient.queued = { frames: [], seqs: [], bytes: 0, unsorted: false };
      this.directs.push(recipient);
    }
    queued.frames.push(frame);
    queued.seqs.push(seq);
    queued.bytes += frame.length;
  }

  private scheduleFlush(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const delay = this.options.writeDelay ?? 0;
    if (delay > 0) this.timer = setTimeout(this.flushAll, delay);
    else setImmediate(this.flushAll);
  }

  /** Runs the write-ahead hook (the journal) for frames written outside the outbox. */
  writeAhead(): void {
    this.options.beforeFlush?.();
  }

  /**
   * Writes everything queued so far. Also called before a connection sends its close frame and
   * before a paced reply starts, so that what was queued earlier goes first.
   */
  readonly flushAll = (): void => {
    // Re-entered from a write's consequences (a slow consumer closing): the flush under way
    // covers it, and what that queues waits for the next one.
    if (this.flushing) return;
    this.scheduled = false;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.turns.size === 0 && this.directs.length === 0) return;
    this.flushing = true;
    try {
      this.options.beforeFlush?.();
      const turns = this.turns;
      const directs = this.directs;
      this.turns = new Map();
      this.directs = [];
      this.turnBytes = 0;
      const mark = ++this.flushes;
      for (const turn of turns.values()) {
        for (const member of turn.room.members) {
          const recipient = member as Recipient;
          if (recipient.flushMark === mark) continue;
          recipient.flushMark = mark;
          if (recipient.queued === undefined && !turn.special?.has(member) && (member.rooms.size === 1 || busyRooms(member, turns) === 1)) {
            this.writeTurn(recipient, turn, frameKindOf(member));
          } else {
            this.writeGathered(recipient, turns);
          }
        }
      }
      for (const recipient of directs) {
        if (recipient.flushMark === mark) continue;
        recipient.flushMark = mark;
        this.writeGathered(recipient, turns);
      }
    } finally {
      this.flushing = false;
    }
  };

  /** The common case: the recipient's whole turn is its room's, the same batch as its neighbours'. */
  private writeTurn(recipient: Recipient, turn: RoomTurn, kind: FrameKind): void {
    if (!recipient.isWritable()) return;
    if (recipient.replaying) {
      for (const frame of turn.frames[kind]!) recipient.hold(frame!);
      return;
    }
    const bytes = turn.bytes[kind]!;
    if (bytes <= this.options.maxWriteBytes) this.write(recipient, turn.batch(kind), bytes);
    else this.write(recipient, turn.frames[kind] as Buffer[], bytes);
  }

  /** Everything else: the recipient's frames from each busy room it is in and its own, in order. */
  private writeGathered(recipient: Recipient, turns: Map<Room, RoomTurn>): void {
    const queued = recipient.queued;
    recipient.queued = undefined;
    if (!recipient.isWritable()) return;
    const kind = frameKindOf(recipient);
    const frames: Buffer[] = queued ? queued.frames : [];
    const seqs: number[] = queued ? queued.seqs : [];
    let bytes = queued ? queued.bytes : 0;
    let sources = queued ? 1 : 0;
    let unsorted = queued?.unsorted ?? false;
    for (const room of recipient.rooms) {
      const turn = turns.get(room);
      if (!turn) continue;
      const special = turn.special?.get(recipient);
      const except = special?.except;
      const own = turn.frames[kind]!;
      let skip = 0;
      const first = frames.length;
      for (let i = special?.start ?? 0; i < own.length; i++) {
        if (except !== undefined && except[skip] === i) {
          skip++;
          continue;
        }
        const frame = own[i]!;
        frames.push(frame);
        seqs.push(turn.seqs[i]!);
        bytes += frame.length;
      }
      if (frames.length > first && sources++ > 0) unsorted = true;
    }
    if (frames.length === 0) return;
    const ordered = unsorted ? inOrder(frames, seqs) : frames;
    if (recipient.replaying) {
      for (const frame of ordered) recipient.hold(frame);
      return;
    }
    if (ordered.length === 1) return this.write(recipient, ordered[0]!, bytes);
    this.write(recipient, bytes <= this.options.maxWriteBytes ? Buffer.concat(ordered, bytes) : ordered, bytes);
  }

  /** One socket write of a batch (or a corked series of them), within the slow-consumer bound. */
  private write(recipient: Recipient, data: Buffer | Buffer[], bytes: number): void {
    const socket = recipient.socket;
    if (socket.writableLength + bytes > this.options.maxBuffered) return recipient.onOverflow();
    const metrics = this.options.metrics;
    if (metrics) {
      metrics.bytesOut += bytes;
      metrics.writes++;
    }
    if (Buffer.isBuffer(data)) {
      socket.write(data);
      recipient.wrote?.(data);
      return;
    }
    // Small frames are cheaper copied into one buffer than walked one by one through the
    // stream machinery; large ones go out as a corked writev without copying.
    socket.cork();
    let batch: Buffer[] = [];
    let batchBytes = 0;
    for (const frame of data) {
      if (batchBytes + frame.length > this.options.maxWriteBytes && batch.length > 0) {
        socket.write(batch.length === 1 ? batch[0] : Buffer.concat(batch, batchBytes));
        batch = [];
        batchBytes = 0;
      }
      batch.push(frame);
      batchBytes += frame.length;
    }
    socket.write(batch.length === 1 ? batch[0] : Buffer.concat(batch, batchBytes));
    recipient.wrote?.(data);
    socket.uncork();
  }
}

/** How many of the member's rooms have messages in this flush. */
function busyRooms(member: Member, turns: Map<Room, RoomTurn>): number {
  let count = 0;
  for (const room of member.rooms) if (turns.has(room)) count++;
  return count;
}

/** `frames` sorted by their `seqs` (stable; the sources are each in order already). */
function inOrder(frames: Buffer[], seqs: number[]): Buffer[] {
  const order = frames.map((_, i) => i).sort((a, b) => seqs[a]! - seqs[b]!);
  return order.map((i) => frames[i]!);
}
