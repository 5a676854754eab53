/**
 * A room's commands in Redis: sequencing a batch of its messages (the publish script, which
 * takes the room's next offsets, appends the messages to its stream and publishes them on its
 * channel atomically, so channel order is offset order), reading it back (its epoch, last offset
 * and history), retiring an epoch, settling publish ids (issue #22) and ephemeral publishes. It
 * knows keys and formats, nothing of members or logs.
 */
import { ephemeralText, parseStreamEntry, type PublishOnce, type PublishParts, type StreamEntry } from './codec.js';
import type { RedisConnections } from './connections.js';
import { roomKeys } from './keys.js';

export interface RoomCommandsOptions {
  /** This node's id: ephemeral publishes carry it, so the node skips its own. */
  nodeId: string;
  /** Stream length kept per room (history size). */
  historySize: number;
  /** Room keys expire this long (ms) after their last message. */
  historyTtl: number;
  /** Publish ids remembered per room (issue #22). @default 0 (none) */
  publishIdWindow?: number;
  /** How long a publish id is remembered (ms). @default 120000 */
  publishIdTtl?: number;
}

/** Where one message of a batch landed: its offset, and whether its publish id had landed before. */
export interface Sequenced {
  offset: number;
  /** Set for a repeated publish id: the first publish's epoch and fingerprint; nothing was published now. */
  first?: { epoch: string; fingerprint: string };
  /** The publish id was withdrawn (issue #22, item 3): nothing was published, and `offset` means nothing. */
  withdrawn?: true;
}

export interface RoomState {
  epoch: string;
  lastOffset: number;
  /** The newest `historySize` entries, oldest first. */
  entries: StreamEntry[];
}

export class RoomCommands {
  /** Round trip of the last publish, in ms (for metrics). */
  lastLatency = 0;

  constructor(
    private readonly connections: RedisConnections,
    private readonly options: RoomCommandsOptions,
  ) {}

  private get idTtl(): number {
    return this.options.publishIdTtl ?? 120_000;
  }

  private get redis() {
    return this.connections.redis;
  }

  /** The room's epoch (created when missing, or renewed when another master serves it), last offset and kept history. */
  async fetch(room: string, newEpoch: string): Promise<RoomState> {
    const k = roomKeys(room);
    const [epoch, offset, entries] = await this.redis.plazaFetch(k.epoch, k.offset, k.stream, k.gen, newEpoch, this.options.historyTtl, this.options.historySize, this.connections.checkLineage);
    const lastOffset = Number(offset);
    // Only entries this format wrote (ID `<offset>-1`, within the offsets given out) are history.
    const parsed = entries
      .filter(([id]) => /^\d+-1$/.test(id))
      .map(([id, fields]) => parseStreamEntry(id, fields))
      .filter((entry) => entry.offset <= lastOffset)
      .reverse();
    return { epoch, lastOffset, entries: parsed };
  }

  /** Up to `limit` entries after offset `since`, with the room's position; undefined when the room has none. */
  async page(room: string, since: number, limit: number): Promise<{ epoch: string; lastOffset: number; entries: StreamEntry[]; first: number } | undefined> {
    const k = roomKeys(room);
    const [[, epoch], [, offset], [, entries], [, oldest]] = (await this.redis
      .multi()
      .get(k.epoch)
      .get(k.offset)
      .xrange(k.stream, `${since + 1}-0`, '+', 'COUNT', limit)
      .xrange(k.stream, '-', '+', 'COUNT', 1)
      .exec()) as [[unknown, string | null], [unknown, string | null], [unknown, Array<[string, string[]]>], [unknown, Array<[string, string[]]>]];
    if (epoch === null) return undefined;
    const lastOffset = Number(offset ?? 0);
    // XADD trims with MAXLEN ~ (whole stream nodes only), so the stream may hold older entries
    // than the newest historySize; the API serves the same window a join does (the contract suite
    // holds both backplanes to it). Reading from the window again costs a round trip only then.
    const windowStart = Math.max(1, lastOffset - this.options.historySize + 1);
    const oldestKept = oldest.length > 0 ? Number.parseInt(oldest[0]![0], 10) : lastOffset + 1;
    const first = Math.max(oldestKept, Math.min(windowStart, lastOffset + 1));
    let kept = entries;
    if (kept.length > 0 && Number.parseInt(kept[0]![0], 10) < windowStart) {
      kept = (await this.redis.xrange(k.stream, `${windowStart}-0`, '+', 'COUNT', limit)) as Array<[string, string[]]>;
    }
    return { epoch, lastOffset, entries: kept.map(([id, fields]) => parseStreamEntry(id, fields)), first };
  }

  /** Epoch and last offset of each room. */
  async positions(rooms: string[]): Promise<Array<{ epoch: string | null; lastOffset: number }>> {
    const replies = await this.connections.many(rooms.flatMap((room) => [['get', roomKeys(room).epoch], ['get', roomKeys(room).offset]] as Array<[string, string]>));
    return rooms.map((_, i) => ({
      epoch: (replies[i * 2] as string | null) ?? null,
      lastOffset: Number(replies[i * 2 + 1] ?? 0),
    }));
  }

  /**
   * Sequences `messages` (one room's, in the order given) in one script call; resolves with the
   * first one's offset (the rest follow it) and the epoch. `newEpoch` starts the room if it has
   * none (or another master's lineage).
   */
  async publish(room: string, newEpoch: string, messages: ReadonlyArray<PublishParts & PublishOnce>): Promise<{ epoch: string; sequenced: Sequenced[] }> {
    const k = roomKeys(room);
    const started = performance.now();
    const args: Array<string | number> = [
      k.epoch, k.offset, k.stream, k.gen, k.channel, k.ids, k.idq,
      newEpoch, this.options.historySize, this.options.historyTtl, this.connections.isCluster ? 'SPUBLISH' : 'PUBLISH', this.connections.checkLineage,
      this.options.publishIdWindow ?? 0, this.idTtl,
    ];
    for (const m of messages) args.push(m.time, m.fromJson, m.dataJson, m.plain, m.except || '-', m.token || '-', m.publishId, m.fingerprint);
    const [epoch, offsets, repeats] = await this.redis.plazaPublish(...args);
    this.lastLatency = performance.now() - started;
    const sequenced = offsets.map((offset, i): Sequenced => {
      const repeat = repeats[i] ?? '';
      if (repeat === '') return { offset: Number(offset) };
      const space = repeat.indexOf(' ');
      // A withdrawn id's entry is '- 0 <time>' (WITHDRAW_SCRIPT): the script reports it as a repeat of epoch '-'.
      if (repeat.slice(1, space) === '-') return { offset: 0, withdrawn: true };
      return { offset: Number(offset), first: { epoch: repeat.slice(1, space), fingerprint: repeat.slice(space + 1) } };
    });
    return { epoch, sequenced };
  }

  /**
   * Settles `publishId` in `room` (WITHDRAW_SCRIPT): its first place if it was published within
   * the window, or else undefined, the id now recorded as withdrawn.
   */
  async withdraw(room: string, publishId: string, now: number): Promise<{ offset: number; epoch: string } | undefined> {
    const k = roomKeys(room);
    const kept = await this.redis.plazaWithdraw(k.ids, k.idq, publishId, now, this.options.publishIdWindow ?? 0, this.idTtl);
    const match = /^(\S+) (\d+) /.exec(kept);
    if (!match || match[1] === '-') return undefined;
    return { epoch: match[1]!, offset: Number(match[2]) };
  }

  /** Where `publishId` landed in `room`, if its window still has it (a plain read; the publish script is the check). */
  async firstAck(room: string, publishId: string, now: number): Promise<{ offset: number; epoch: string; fingerprint: string } | undefined> {
    const kept = await this.redis.hget(roomKeys(room).ids, publishId);
    const match = kept ? /^(\S+) (\d+) (\d+) ?(.*)$/.exec(kept) : null;
    if (!match || Number(match[3]) <= now - this.idTtl) return undefined;
    return { epoch: match[1]!, offset: Number(match[2]), fingerprint: match[4]! };
  }

  /** Sends an ephemeral publish on the room's channel only: no offset, nothing stored (issue #22, item 8). */
  async publishEphemeral(room: string, parts: Omit<PublishParts, 'token'>): Promise<void> {
    await this.connections.tellRoom(room, ephemeralText(this.options.nodeId, parts));
  }

  /**
   * Replaces the room's epoch with `next` (and empties its offsets and history) if it still is
   * `current`: used when Redis lost messages of `current` that nodes had already delivered.
   */
  async retireEpoch(room: string, current: string, next: string): Promise<void> {
    const k = roomKeys(room);
    await this.redis.plazaRetire(k.epoch, k.offset, k.stream, k.gen, current, next, this.options.historyTtl, this.connections.checkLineage);
  }
}
