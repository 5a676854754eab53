/**
 * Ordered history per room, the basis of recovery after a reconnect.
 *
 * Each room message gets the next integer offset; the room's epoch names one unbroken run of
 * offsets and changes whenever history is lost (a restart without --data-dir, a room evicted
 * for age), so a client's `{epoch, offset}` either points into this history or is known stale.
 * Bounded by count per room, by age, by total bytes and by the number of rooms.
 */
import { randomBytes } from 'node:crypto';
import type { Position, UnrecoveredReason } from '../shared/protocol.js';

export interface HistoryOptions {
  /** Messages kept per room. 0 turns history off (offsets still count). */
  size: number;
  /** Messages older than this (ms) are dropped. */
  ttl: number;
  /** Total bytes of envelopes kept across all rooms; the oldest messages go first past it. */
  maxBytes: number;
  /** Rooms tracked at once (live or with history). */
  maxRooms: number;
}

export interface HistoryEntry {
  readonly offset: number;
  readonly time: number;
  /** The message's v1 envelope, exactly as it was sent live. */
  readonly json: string;
  /** Set once the entry left its room (trimmed by count); the global queue skips it. */
  removed: boolean;
  readonly log: RoomLog;
}

/** One room's run of offsets. */
export class RoomLog {
  lastOffset = 0;
  /** Oldest first; entries[0].offset === lastOffset - entries.length + 1. */
  entries: HistoryEntry[] = [];
  /** Members currently in the room on this server; a log with members is never evicted. */
  members = 0;
  constructor(
    readonly room: string,
    public epoch: string,
  ) {}
}

export type Recovery =
  | { recovered: true; entries: HistoryEntry[] }
  | { recovered: false; reason: UnrecoveredReason };

export function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}

/** One history entry as it is written to and read back from durable storage. */
export interface HistoryRecord {
  room: string;
  epoch: string;
  offset: number;
  time: number;
  /** The message envelope JSON. */
  data: string;
}

/** Writes appended entries somewhere durable (the journal); optional. */
export interface HistorySink {
  append(record: HistoryRecord): void;
}

export class HistoryStore {
  private readonly logs = new Map<string, RoomLog>();
  /** Every kept entry in append order across rooms: the age and byte bounds pop from its head. */
  private queue: HistoryEntry[] = [];
  private queueHead = 0;
  private staleInQueue = 0;
  private bytes = 0;

  constructor(
    private readonly options: HistoryOptions,
    private readonly sink?: HistorySink,
  ) {}

  get roomCount(): number {
    return this.logs.size;
  }
  get totalBytes(): number {
    return this.bytes;
  }
  get totalEntries(): number {
    return this.queue.length - this.queueHead - this.staleInQueue;
  }

  log(room: string): RoomLog | undefined {
    return this.logs.get(room);
  }

  /** The room's log, created with a new epoch if needed; undefined when maxRooms are in use. */
  open(room: string): RoomLog | undefined {
    let log = this.logs.get(room);
    if (log) return log;
    if (this.logs.size >= this.options.maxRooms) {
      this.evictIdle(Date.now());
      if (this.logs.size >= this.options.maxRooms) return undefined;
    }
    log = new RoomLog(room, newEpoch());
    this.logs.set(room, log);
    return log;
  }

  /**
   * Takes the next offset and keeps the envelope that `encode` builds for it.
   * `encode` runs exactly once, so the live frame and the history hold the same bytes.
   */
  append(log: RoomLog, time: number, encode: (offset: number, epoch: string) => string): string {
    const offset = ++log.lastOffset;
    const json = encode(offset, log.epoch);
    this.keep(log, offset, time, json);
    this.sink?.append({ room: log.room, epoch: log.epoch, offset, time, data: json });
    return json;
  }

  private keep(log: RoomLog, offset: number, time: number, json: string): void {
    if (this.options.size === 0) return;
    const entry: HistoryEntry = { offset, time, json, removed: false, log };
    log.entries.push(entry);
    this.queue.push(entry);
    this.bytes += json.length;
    if (log.entries.length > this.options.size) this.drop(log.entries.shift()!);
    while (this.bytes > this.options.maxBytes) this.popOldest();
  }

  /** Keeps a message sequenced elsewhere (the cluster): `offset` must be lastOffset + 1. */
  appendSequenced(log: RoomLog, offset: number, time: number, json: string): void {
    log.lastOffset = offset;
    this.keep(log, offset, time, json);
  }

  /** Makes `log` exactly the given run (a cluster room re-read from Redis). */
  replace(log: RoomLog, epoch: string, lastOffset: number, entries: ReadonlyArray<{ offset: number; time: number; json: string }>): void {
    for (const entry of log.entries) this.drop(entry);
    log.entries = [];
    log.epoch = epoch;
    log.lastOffset = lastOffset;
    const oldest = Date.now() - this.options.ttl;
    // Only a contiguous tail ending at lastOffset is kept, so `since` stays gap-free.
    let expected = lastOffset - entries.length + 1;
    for (const entry of entries) {
      if (entry.offset !== expected++) {
        for (const kept of log.entries) this.drop(kept);
        log.entries = [];
        expected = entry.offset + 1;
      }
      if (entry.time > oldest) this.keep(log, entry.offset, entry.time, entry.json);
    }
  }

  /** Replays journal records at start-up; a record from a newer epoch restarts that room. */
  restore(record: HistoryRecord, now: number): void {
    let log = this.logs.get(record.room);
    if (!log) {
      log = new RoomLog(record.room, record.epoch);
      this.logs.set(record.room, log);
    } else if (log.epoch !== record.epoch || record.offset !== log.lastOffset + 1) {
      // A different run of offsets: what came before no longer connects to what follows.
      for (const entry of log.entries) this.drop(entry);
      log.entries = [];
      log.epoch = record.epoch;
    }
    log.lastOffset = record.offset;
    if (now - record.time <= this.options.ttl) this.keep(log, record.offset, record.time, record.data);
  }

  /** Exactly the entries after `position`, or why that is impossible. */
  since(log: RoomLog, position: Position): Recovery {
    if (position.epoch !== log.epoch) return { recovered: false, reason: 'epoch_changed' };
    if (position.offset > log.lastOffset) return { recovered: false, reason: 'offset_ahead' };
    const missed = log.lastOffset - position.offset;
    if (missed === 0) return { recovered: true, entries: [] };
    if (missed > log.entries.length) return { recovered: false, reason: 'window_passed' };
    return { recovered: true, entries: log.entries.slice(log.entries.length - missed) };
  }

  /** Up to `count` most recent entries, oldest first. */
  last(log: RoomLog, count: number): HistoryEntry[] {
    return count <= 0 ? [] : log.entries.slice(-count);
  }

  /** Drops entries older than the TTL and forgets idle rooms with nothing left. */
  sweep(now: number): void {
    const oldest = now - this.options.ttl;
    while (this.queueHead < this.queue.length) {
      const entry = this.queue[this.queueHead]!;
      if (!entry.removed && entry.time > oldest) break;
      this.popOldest();
    }
    this.evictIdle(now);
  }

  private evictIdle(now: number): void {
    const oldest = now - this.options.ttl;
    for (const [room, log] of this.logs) {
      const newest = log.entries[log.entries.length - 1];
      if (log.members === 0 && (!newest || newest.time <= oldest)) {
        for (const entry of log.entries) this.drop(entry);
        this.logs.delete(room);
      }
    }
  }

  private popOldest(): void {
    const entry = this.queue[this.queueHead++];
    if (entry) {
      if (entry.removed) this.staleInQueue--;
      else {
        // Per-room order is append order, so the globally oldest entry heads its room.
        entry.log.entries.shift();
        this.forget(entry);
      }
    }
    this.compactQueue();
  }

  /** Removes an entry that its room no longer holds. */
  private drop(entry: HistoryEntry): void {
    if (entry.removed) return;
    this.forget(entry);
    this.staleInQueue++;
  }

  private forget(entry: HistoryEntry): void {
    entry.removed = true;
    this.bytes -= entry.json.length;
  }

  private compactQueue(): void {
    // Popped and stale slots are reclaimed in one pass once they are the majority,
    // which keeps the queue O(live entries) at amortised O(1) per message.
    const dead = this.queueHead + this.staleInQueue;
    if (dead < 1024 || dead * 2 < this.queue.length) return;
    this.queue = this.queue.slice(this.queueHead).filter((entry) => !entry.removed);
    this.queueHead = 0;
    this.staleInQueue = 0;
  }
}
