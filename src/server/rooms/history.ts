/**
 * Ordered history per room, the basis of recovery after a reconnect.
 *
 * Each room message gets the next integer offset; the room's epoch names one unbroken run of
 * offsets and changes whenever history is lost (a restart without --data-dir, a room evicted
 * for age), so a client's `{epoch, offset}` either points into this history or is known stale.
 *
 * Bounded by count per room (a ring buffer: O(1) append and eviction whatever `size` is), by
 * age, by total bytes across rooms and by the number of rooms. The byte and age bounds need the
 * globally oldest entry, so every kept entry is also referenced from one store-wide queue in
 * append order. Entries a room trims by count stay in that queue as dead references (their text
 * released at once) until a compaction, which runs whenever the dead outnumber the live: the
 * queue never holds more than twice the live entries plus a constant, so a quiet room's old
 * entry at its head cannot pin everything appended after it.
 */
import { randomBytes } from 'node:crypto';
import type { Position, UnrecoveredReason } from '../../shared/protocol.js';

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
  /** The message's v1 envelope, exactly as it was sent live; '' once the entry left history. */
  json: string;
  /** Set once the entry left its room; the store-wide queue skips it. */
  removed: boolean;
  readonly log: RoomLog;
}

/** Dead queue slots tolerated before a compaction, on top of the live count. */
const QUEUE_SLACK = 1024;

/** A ring buffer's first allocation; it doubles up to the room's `size` as the room fills. */
const INITIAL_CAPACITY = 8;

/** One room's run of offsets and the last `size` entries of it, oldest first. */
export class RoomLog {
  lastOffset = 0;
  /**
   * What keeps this log from being forgotten while its history is empty or old: local members
   * and joins in progress. A log with holds is never evicted. Only hold() and release() change it.
   */
  private holdCount = 0;
  /** The server's own rooms (rooms/reserved-rooms.ts): offsets count, nothing is kept or journaled. */
  ephemeral = false;

  get holds(): number {
    return this.holdCount;
  }

  /** Keeps this log from being forgotten until the matching release(). */
  hold(): void {
    this.holdCount++;
  }

  /** Gives back one hold, never below zero; returns how many are left. */
  release(): number {
    if (this.holdCount > 0) this.holdCount--;
    return this.holdCount;
  }
  private ring: Array<HistoryEntry | undefined> = [];
  private head = 0;
  private size = 0;

  constructor(
    readonly room: string,
    public epoch: string,
    private readonly capacity: number,
  ) {}

  /** Entries kept. */
  get length(): number {
    return this.size;
  }

  /** The offset of the oldest kept entry; lastOffset + 1 when none is kept. */
  get firstOffset(): number {
    return this.lastOffset - this.size + 1;
  }

  /** The i-th oldest kept entry (0 is the oldest). */
  at(i: number): HistoryEntry | undefined {
    return i >= 0 && i < this.size ? this.ring[(this.head + i) % this.ring.length] : undefined;
  }

  get oldest(): HistoryEntry | undefined {
    return this.at(0);
  }

  get newest(): HistoryEntry | undefined {
    return this.at(this.size - 1);
  }

  /** Entries from the i-th oldest to the newest, oldest first. */
  from(i: number): HistoryEntry[] {
    const out: HistoryEntry[] = [];
    for (let k = Math.max(0, i); k < this.size; k++) out.push(this.ring[(this.head + k) % this.ring.length]!);
    return out;
  }

  /** Every kept entry, oldest first. */
  get entries(): HistoryEntry[] {
    return this.from(0);
  }

  /** Adds the newest entry; returns the oldest when the ring was full and it had to go. */
  push(entry: HistoryEntry): HistoryEntry | undefined {
    let evicted: HistoryEntry | undefined;
    if (this.size === this.capacity) evicted = this.shift();
    else if (this.size === this.ring.length) this.grow();
    this.ring[(this.head + this.size) % this.ring.length] = entry;
    this.size++;
    return evicted;
  }

  /** Removes and returns the oldest entry. */
  shift(): HistoryEntry | undefined {
    if (this.size === 0) return undefined;
    const entry = this.ring[this.head];
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.ring.length;
    this.size--;
    return entry;
  }

  /** Removes every entry; returns them, oldest first. */
  clear(): HistoryEntry[] {
    const all = this.entries;
    this.ring = [];
    this.head = 0;
    this.size = 0;
    return all;
  }

  private grow(): void {
    const next = new Array<HistoryEntry | undefined>(Math.min(this.capacity, Math.max(INITIAL_CAPACITY, this.ring.length * 2)));
    for (let k = 0; k < this.size; k++) next[k] = this.ring[(this.head + k) % this.ring.length];
    this.ring = next;
    this.head = 0;
  }
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
  /** The publish id it was published with (issue #22), so a restart keeps the window. */
  publishId?: string;
  /** With publishId: what the HTTP API's request carried ('' or absent: nothing). */
  fingerprint?: string;
}

/** Writes appended entries somewhere durable (the journal); optional. */
export interface HistorySink {
  append(record: HistoryRecord): void;
}

/** A store-wide FIFO of entry references: a growable circular buffer. */
class EntryQueue {
  private slots: Array<HistoryEntry | undefined> = new Array(64);
  private head = 0;
  length = 0;

  push(entry: HistoryEntry): void {
    if (this.length === this.slots.length) this.resize(this.slots.length * 2);
    this.slots[(this.head + this.length) % this.slots.length] = entry;
    this.length++;
  }

  peek(): HistoryEntry | undefined {
    return this.length === 0 ? undefined : this.slots[this.head];
  }

  shift(): HistoryEntry | undefined {
    if (this.length === 0) return undefined;
    const entry = this.slots[this.head];
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) % this.slots.length;
    this.length--;
    return entry;
  }

  /** Keeps only live entries, in order, in a buffer sized for them. */
  compact(): void {
    const live: Array<HistoryEntry | undefined> = [];
    for (let k = 0; k < this.length; k++) {
      const entry = this.slots[(this.head + k) % this.slots.length]!;
      if (!entry.removed) live.push(entry);
    }
    this.slots = live;
    this.head = 0;
    this.length = live.length;
    this.resize(Math.max(64, live.length * 2));
  }

  get capacity(): number {
    return this.slots.length;
  }

  private resize(capacity: number): void {
    const next = new Array<HistoryEntry | undefined>(capacity);
    for (let k = 0; k < this.length; k++) next[k] = this.slots[(this.head + k) % this.slots.length];
    this.slots = next;
    this.head = 0;
  }
}

export class HistoryStore {
  private readonly logs = new Map<string, RoomLog>();
  /**
   * The log last placed at the end of `logs` (the most recently used), or one no longer in it:
   * touching it again would move nothing. Every join opens its room, and most joins go to the
   * room the last one went to, so this spares a delete and a set of the Map per join.
   */
  private newest: RoomLog | undefined;
  /** Every kept entry in append order across rooms, plus dead references awaiting compaction. */
  private readonly queue = new EntryQueue();
  private deadInQueue = 0;
  private liveEntries = 0;
  private bytes = 0;
  /** Rooms forgotten at maxRooms to make way for another (for /metrics). */
  evicted = 0;

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
    return this.liveEntries;
  }
  /** Slots of the store-wide queue in use, dead ones included; at most 2 × totalEntries + 1024. */
  get queueLength(): number {
    return this.queue.length;
  }
  /** Slots the queue has allocated (for the bound's test). */
  get queueCapacity(): number {
    return this.queue.capacity;
  }

  log(room: string): RoomLog | undefined {
    return this.logs.get(room);
  }

  /** Every room log, for read-only listings. */
  rooms(): IterableIterator<RoomLog> {
    return this.logs.values();
  }

  /**
   * Whether `open(room)` could succeed now. At maxRooms the least recently used room nobody is
   * in gives way, history and all (its epoch with it: a later resume there is told
   * epoch_changed), so rooms with members are never refused because of rooms without.
   */
  canOpen(room: string): boolean {
    if (this.logs.has(room) || this.logs.size < this.options.maxRooms) return true;
    return this.evictLeastRecent();
  }

  /**
   * The room's log, created with a new epoch if needed; undefined when maxRooms rooms all have
   * members. Opening a room marks it as the most recently used.
   */
  open(room: string): RoomLog | undefined {
    let log = this.logs.get(room);
    if (log) {
      this.touch(log);
      return log;
    }
    if (!this.canOpen(room)) return undefined;
    log = new RoomLog(room, newEpoch(), this.options.size);
    this.logs.set(room, log);
    this.newest = log;
    return log;
  }

  /** Rooms are kept in use order (a Map keeps insertion order): the oldest first. */
  private touch(log: RoomLog): void {
    if (log === this.newest) return;
    this.logs.delete(log.room);
    this.logs.set(log.room, log);
    this.newest = log;
  }

  /** Forgets the least recently used room without holds; false when every room is held. */
  private evictLeastRecent(): boolean {
    for (const log of this.logs.values()) {
      if (log.holds > 0) continue;
      for (const entry of log.clear()) this.drop(entry);
      this.logs.delete(log.room);
      this.evicted++;
      return true;
    }
    return false;
  }

  /** Forgets a room and its history at once (a cluster room no local member follows any more). */
  remove(room: string): void {
    const log = this.logs.get(room);
    if (!log) return;
    for (const entry of log.clear()) this.drop(entry);
    this.logs.delete(room);
  }

  /**
   * Takes the next offset and keeps the envelope that `encode` builds for it.
   * `encode` runs exactly once, so the live frame and the history hold the same bytes.
   */
  append(log: RoomLog, time: number, encode: (offset: number, epoch: string) => string, id?: { publishId: string; fingerprint: string }): string {
    const offset = ++log.lastOffset;
    const json = encode(offset, log.epoch);
    if (log.ephemeral) return json;
    this.keep(log, offset, time, json);
    if (this.sink) {
      const record: HistoryRecord = { room: log.room, epoch: log.epoch, offset, time, data: json };
      if (id) {
        record.publishId = id.publishId;
        if (id.fingerprint) record.fingerprint = id.fingerprint;
      }
      this.sink.append(record);
    }
    return json;
  }

  private keep(log: RoomLog, offset: number, time: number, json: string): void {
    if (this.options.size === 0) return;
    const entry: HistoryEntry = { offset, time, json, removed: false, log };
    const evicted = log.push(entry);
    if (evicted) this.drop(evicted);
    this.queue.push(entry);
    this.liveEntries++;
    this.bytes += json.length;
    while (this.bytes > this.options.maxBytes) this.popOldest();
  }

  /** Keeps a message sequenced elsewhere (the cluster): `offset` must be lastOffset + 1. */
  appendSequenced(log: RoomLog, offset: number, time: number, json: string): void {
    log.lastOffset = offset;
    this.keep(log, offset, time, json);
  }

  /** Makes `log` exactly the given run (a cluster room re-read from Redis). */
  replace(log: RoomLog, epoch: string, lastOffset: number, entries: ReadonlyArray<{ offset: number; time: number; json: string }>): void {
    for (const entry of log.clear()) this.drop(entry);
    log.epoch = epoch;
    log.lastOffset = lastOffset;
    const oldest = Date.now() - this.options.ttl;
    // Only a contiguous tail ending at lastOffset is kept, so `since` stays gap-free.
    let start = entries.length;
    while (start > 0 && entries[start - 1]!.offset === lastOffset - (entries.length - start)) start--;
    const tail = entries.slice(start);
    const firstKept = lastOffset - tail.length + 1;
    // Kept as if appended one by one: lastOffset advances with them, then lands on the real last.
    log.lastOffset = firstKept - 1;
    for (const entry of tail) {
      log.lastOffset = entry.offset;
      if (entry.time > oldest) this.keep(log, entry.offset, entry.time, entry.json);
      else for (const dropped of log.clear()) this.drop(dropped);
    }
    log.lastOffset = lastOffset;
  }

  /** Starts a new run of offsets under `epoch`, after the last one; what was kept belongs to the old run. */
  restart(log: RoomLog, epoch: string): void {
    for (const entry of log.clear()) this.drop(entry);
    log.epoch = epoch;
  }

  /** Replays journal records at start-up; a record from a newer epoch restarts that room. */
  restore(record: HistoryRecord, now: number): void {
    let log = this.logs.get(record.room);
    if (!log) {
      // The journal may hold more rooms than maxRooms: the ones used longest ago give way.
      if (this.logs.size >= this.options.maxRooms) this.evictLeastRecent();
      log = new RoomLog(record.room, record.epoch, this.options.size);
      this.logs.set(record.room, log);
      this.newest = log;
    } else {
      this.touch(log);
      if (log.epoch !== record.epoch || record.offset !== log.lastOffset + 1) {
        // A different run of offsets: what came before no longer connects to what follows.
        for (const entry of log.clear()) this.drop(entry);
        log.epoch = record.epoch;
      }
    }
    log.lastOffset = record.offset;
    if (now - record.time <= this.options.ttl) this.keep(log, record.offset, record.time, record.data);
    else for (const entry of log.clear()) this.drop(entry);
  }

  /** Exactly the entries after `position`, or why that is impossible. */
  since(log: RoomLog, position: Position): Recovery {
    if (position.epoch !== log.epoch) return { recovered: false, reason: 'epoch_changed' };
    if (position.offset > log.lastOffset) return { recovered: false, reason: 'offset_ahead' };
    const missed = log.lastOffset - position.offset;
    if (missed === 0) return { recovered: true, entries: [] };
    if (missed > log.length) return { recovered: false, reason: 'window_passed' };
    return { recovered: true, entries: log.from(log.length - missed) };
  }

  /** Up to `count` most recent entries, oldest first. */
  last(log: RoomLog, count: number): HistoryEntry[] {
    return count <= 0 ? [] : log.from(log.length - count);
  }

  /** Drops entries older than the TTL and forgets idle rooms with nothing left. */
  sweep(now: number): void {
    const oldest = now - this.options.ttl;
    for (;;) {
      const entry = this.queue.peek();
      if (!entry || (!entry.removed && entry.time > oldest)) break;
      this.popOldest();
    }
    this.evictIdle(now);
  }

  private evictIdle(now: number): void {
    const oldest = now - this.options.ttl;
    for (const [room, log] of this.logs) {
      const newest = log.newest;
      if (log.holds === 0 && (!newest || newest.time <= oldest)) {
        for (const entry of log.clear()) this.drop(entry);
        this.logs.delete(room);
      }
    }
  }

  /** Takes the head of the queue out of history (the globally oldest entry). */
  private popOldest(): void {
    const entry = this.queue.shift();
    if (!entry) return;
    if (entry.removed) {
      this.deadInQueue--;
      return;
    }
    // Per-room order is append order, so the globally oldest entry heads its room.
    entry.log.shift();
    this.forget(entry);
  }

  /** An entry its room no longer holds: forgotten now, its queue slot reclaimed later. */
  private drop(entry: HistoryEntry): void {
    if (entry.removed) return;
    this.forget(entry);
    this.deadInQueue++;
    if (this.deadInQueue > this.liveEntries + QUEUE_SLACK) {
      this.queue.compact();
      this.deadInQueue = 0;
    }
  }

  private forget(entry: HistoryEntry): void {
    entry.removed = true;
    this.bytes -= entry.json.length;
    this.liveEntries--;
    // The text goes now, whenever the queue slot does.
    entry.json = '';
  }
}
