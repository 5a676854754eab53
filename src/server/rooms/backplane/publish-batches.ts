/**
 * One room's publishes leave a node in the order they were made, one batch at a time: a batch
 * goes to Redis when the room's previous batch was answered, holding whatever queued meanwhile
 * (up to a bound). On a Redis Cluster a command can be redirected or retried (ASK, MOVED,
 * TRYAGAIN while a slot migrates, CLUSTERDOWN during a failover), and two commands in flight for
 * one room could then run in the opposite order; with one batch in flight per room they cannot.
 * Batching also keeps a busy room's rate independent of the round trip to Redis, and spends
 * one script call on many messages.
 */
export interface PublishBatchesOptions<T> {
  /** Sends one batch; resolves (never rejects) once its outcome was handed out. */
  send(room: string, batch: T[]): Promise<void>;
  /** Bytes an item adds to a batch. */
  bytes(item: T): number;
}

/** Messages in one batch, at most, and their bytes: a script call must stay short, Redis runs nothing else meanwhile. */
export const MAX_BATCH = 256;
export const MAX_BATCH_BYTES = 1024 * 1024;

export class PublishBatches<T> {
  private readonly rooms = new Map<string, { waiting: T[]; sending: boolean }>();

  constructor(private readonly options: PublishBatchesOptions<T>) {}

  /** Queues `item` behind the room's earlier ones; sends at once when nothing of the room is on its way. */
  add(room: string, item: T): void {
    let queue = this.rooms.get(room);
    if (!queue) this.rooms.set(room, (queue = { waiting: [], sending: false }));
    queue.waiting.push(item);
    if (!queue.sending) this.flush(room, queue);
  }

  /** Something of `room` is on its way or waiting. */
  busy(room: string): boolean {
    return this.rooms.has(room);
  }

  /** Takes every item still waiting for `room` out of its queue (the batch on its way stays). */
  drain(room: string): T[] {
    const queue = this.rooms.get(room);
    return queue ? queue.waiting.splice(0) : [];
  }

  private flush(room: string, queue: { waiting: T[]; sending: boolean }): void {
    let count = 0;
    let bytes = 0;
    while (count < queue.waiting.length && count < MAX_BATCH) {
      bytes += this.options.bytes(queue.waiting[count]!);
      // One item larger than the bound still goes, alone.
      if (count > 0 && bytes > MAX_BATCH_BYTES) break;
      count++;
    }
    const batch = queue.waiting.splice(0, count);
    queue.sending = true;
    void this.options.send(room, batch).finally(() => {
      queue.sending = false;
      if (queue.waiting.length > 0) this.flush(room, queue);
      else if (this.rooms.get(room) === queue) this.rooms.delete(room);
    });
  }
}
