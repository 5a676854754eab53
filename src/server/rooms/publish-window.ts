/**
 * The publish-id window of one server (issue #22): which publish ids each room has given an
 * offset, so a retried publish is answered with its first ack instead of being published twice.
 * A cluster keeps its window in Redis instead (backplane/redis/scripts.ts); this one serves one
 * server in memory and, restored from the journal, with --data-dir.
 *
 * Bounded three ways, all options (config.ts): per room by count (a room's oldest id goes first),
 * by age (ids older than the TTL are forgotten, checked on read and swept from the oldest end),
 * and across rooms by a total (the globally oldest id goes first). A client sending random ids
 * therefore evicts only ids older than its own, never grows memory. A room's Map keeps insertion
 * order and one queue keeps it across rooms, so "oldest" is always at a head: eviction is O(1).
 */

export interface PublishWindowOptions {
  /** Ids remembered per room; 0 turns the window off. */
  size: number;
  /** Ids older than this (ms) are forgotten. */
  ttl: number;
  /** Ids remembered across all rooms. */
  maxEntries: number;
}

/** Where a publish id landed, as its first ack said. */
export interface FirstAck {
  readonly offset: number;
  readonly epoch: string;
  /** When it was published (ms since the Unix epoch): the window's age bound reads it. */
  readonly time: number;
  /** What the first publish carried, for the HTTP API's same-key-other-body check ('' when not recorded). */
  readonly fingerprint: string;
  /** The id was withdrawn, not published (issue #22, item 3): no copy of it may be published now. */
  readonly withdrawn?: boolean;
}

interface Entry extends FirstAck {
  readonly room: string;
  readonly id: string;
  /** Set once it left its room's map; the store-wide queue skips it. */
  removed: boolean;
}

/** Dead queue slots tolerated before a compaction, on top of the live count. */
const QUEUE_SLACK = 1024;

export class PublishWindow {
  /** Per room: id → entry, oldest first (a Map keeps insertion order). */
  private readonly rooms = new Map<string, Map<string, Entry>>();
  /**
   * Every entry in insertion order across rooms, plus dead ones (removed from their room) until
   * a compaction: at most twice the live entries plus a constant. No key is built per publish,
   * so the check costs two lookups and an insert on the hot path.
   */
  private queue: Entry[] = [];
  private head = 0;
  private live = 0;
  /** Repeated publish ids answered with their first ack (for /metrics). */
  duplicates = 0;

  constructor(
    readonly options: PublishWindowOptions,
    private readonly now: () => number = Date.now,
  ) {}

  get enabled(): boolean {
    return this.options.size > 0;
  }

  /** Ids remembered now, across rooms. */
  get size(): number {
    return this.live;
  }

  /** Slots of the store-wide queue in use, dead ones included (for the bound's test). */
  get queueLength(): number {
    return this.queue.length - this.head;
  }

  /** The first ack of `id` in `room`, if it is still in the window. */
  get(room: string, id: string): FirstAck | undefined {
    const entry = this.rooms.get(room)?.get(id);
    if (!entry) return undefined;
    if (entry.time <= this.now() - this.options.ttl) {
      this.remove(entry);
      return undefined;
    }
    return entry;
  }

  /**
   * Remembers where a publish landed by its id (a publish without one, undefined or '', leaves
   * nothing). The one way a place gets in: the local backplane, island publishes, a cluster
   * node's own publishes and the journal's replay at start-up all call it, so a retry or an HTTP
   * Idempotency-Key (`api:` + key) is answered the same wherever its first try landed.
   */
  landed(room: string, publishId: string | undefined, place: { offset: number; epoch: string; time: number; fingerprint?: string | undefined }): void {
    if (publishId === undefined || publishId === '') return;
    this.remember(room, publishId, { offset: place.offset, epoch: place.epoch, time: place.time, fingerprint: place.fingerprint ?? '' });
  }

  /**
   * What the window knows of a publish's id before it is sequenced: its first place (counted in
   * `duplicates`), its withdrawal, or undefined for a new publish. Call it in the same
   * synchronous step as the sequencing and `landed`, so nothing can come between.
   */
  repeatOf(room: string, publishId: string | undefined): FirstAck | undefined {
    if (publishId === undefined || publishId === '') return undefined;
    const first = this.get(room, publishId);
    if (first && !first.withdrawn) this.duplicates++;
    return first;
  }

  /** Remembers where `id` landed in `room`; the oldest ids make way past the bounds. */
  remember(room: string, id: string, ack: FirstAck): void {
    if (!this.enabled) return;
    let ids = this.rooms.get(room);
    if (!ids) this.rooms.set(room, (ids = new Map()));
    // The first ack stands: a publish id names one message for as long as it is remembered.
    if (ids.has(id)) return;
    const entry: Entry = { room, id, offset: ack.offset, epoch: ack.epoch, time: ack.time, fingerprint: ack.fingerprint, ...(ack.withdrawn && { withdrawn: true }), removed: false };
    ids.set(id, entry);
    this.queue.push(entry);
    this.live++;
    if (ids.size > this.options.size) this.remove(ids.values().next().value!);
    while (this.live > this.options.maxEntries) this.remove(this.oldest()!);
    if (this.queue.length - this.head > 2 * this.live + QUEUE_SLACK) this.compact();
  }

  /**
   * Settles `id` in `room` for a client that gave up waiting (issue #22, item 3): its first ack
   * if it was published, or else undefined, having recorded it as withdrawn in the same
   * synchronous step, so a late copy is refused (`get` returns the withdrawn entry) instead of
   * published. With the window off nothing can be recorded: the caller must not promise.
   */
  withdraw(room: string, id: string, time: number): FirstAck | undefined {
    const first = this.get(room, id);
    if (first && !first.withdrawn) return first;
    if (!first) this.remember(room, id, { offset: 0, epoch: '', time, fingerprint: '', withdrawn: true });
    return undefined;
  }

  /** Forgets ids older than the TTL, oldest first (called with the history sweep). */
  sweep(): void {
    const oldest = this.now() - this.options.ttl;
    for (let entry = this.oldest(); entry; entry = this.oldest()) {
      // Insertion order is time order only roughly (restored records, clock steps): stop at the first young one.
      if (entry.time > oldest) break;
      this.remove(entry);
    }
    this.compact();
  }

  /** The oldest live entry, dropping dead ones from the head of the queue. */
  private oldest(): Entry | undefined {
    while (this.head < this.queue.length && this.queue[this.head]!.removed) this.head++;
    return this.queue[this.head];
  }

  private remove(entry: Entry): void {
    if (entry.removed) return;
    entry.removed = true;
    this.live--;
    const ids = this.rooms.get(entry.room);
    if (!ids) return;
    ids.delete(entry.id);
    if (ids.size === 0) this.rooms.delete(entry.room);
  }

  private compact(): void {
    this.queue = this.queue.slice(this.head).filter((entry) => !entry.removed);
    this.head = 0;
  }
}
