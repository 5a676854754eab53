/**
 * The backplane of one server: offsets come from the room's log in this process, delivery
 * happens in the same synchronous step, so `publish` resolves after the fan-out by construction.
 * It is the reference implementation of the Backplane contract (types.ts); the Redis backplane
 * also uses it for island publishes while Redis is away, and rooms/reserved-rooms.ts for the
 * server's own rooms in every mode.
 */
import { presenceEnvelope, messageEnvelope } from '../../engine/envelope.js';
import type { HistoryStore, RoomLog } from '../history.js';
import type { Member, Room } from '../../engine/hub.js';
import { Publication } from '../../engine/publication.js';
import type { PublishWindow } from '../publish-window.js';
import {
  BackplaneError,
  type Backplane,
  type BackplaneStats,
  type DisconnectSelector,
  type Draft,
  type HistoryPage,
  type LocalNode,
  type MemberList,
  type Published,
  type RoomSummary,
} from './types.js';

const NO_STATS: BackplaneStats = Object.freeze({
  rooms: 0, channels: 0, inflight: 0, inflightBytes: 0, rejected: 0, resyncs: 0, resets: 0, publishLatencyMs: 0, publishIds: 0, duplicates: 0,
});

export function serverFull(): BackplaneError {
  return new BackplaneError('server_full', 'the server tracks as many rooms as it may (--max-rooms); try again later');
}

export class LocalBackplane implements Backplane {
  readonly kind = 'local';
  readonly status = { up: true };
  get stats(): BackplaneStats {
    return this.window ? { ...NO_STATS, publishIds: this.window.size, duplicates: this.window.duplicates } : NO_STATS;
  }

  constructor(
    private readonly node: LocalNode,
    private readonly store: HistoryStore,
    /** Its rooms count offsets but keep no history (the server's own: rooms/reserved-rooms.ts). @default false */
    private readonly settings: { readonly ephemeral: boolean } = { ephemeral: false },
    /** The rooms' publish ids (issue #22); without one every publish is new. */
    private readonly window?: PublishWindow,
  ) {}

  async start(): Promise<void> {}

  async close(): Promise<void> {}

  async attach(room: string): Promise<RoomLog> {
    return this.hold(room);
  }

  /** attach() without the wait: the log, held. */
  hold(room: string): RoomLog {
    const log = this.store.open(room);
    if (!log) throw serverFull();
    log.ephemeral = this.settings.ephemeral;
    log.holds++;
    return log;
  }

  detach(room: string): void {
    const log = this.store.log(room);
    if (log && log.holds > 0) log.holds--;
  }

  async publish(draft: Draft): Promise<Published> {
    // Looked up and remembered in the same synchronous step as the append: nothing can come between.
    const first = draft.publishId === undefined ? undefined : this.window?.get(draft.room, draft.publishId);
    if (first) {
      this.window!.duplicates++;
      // Its message was delivered here in the step that gave it its offset: nothing to wait for.
      return { offset: first.offset, epoch: first.epoch, delivered: 0, duplicate: true, fingerprint: first.fingerprint };
    }
    const log = this.store.open(draft.room);
    if (!log) throw serverFull();
    log.ephemeral = this.settings.ephemeral;
    const published = this.sequence(log, draft);
    if (draft.publishId !== undefined) {
      this.window?.remember(draft.room, draft.publishId, { offset: published.offset, epoch: published.epoch, time: draft.time, fingerprint: draft.fingerprint ?? '' });
    }
    return published;
  }

  async firstAck(room: string, publishId: string): Promise<{ offset: number; epoch: string; fingerprint: string } | undefined> {
    return this.window?.get(room, publishId);
  }

  /** Gives `draft` the log's next offset, keeps it and hands it to the members here, in one step. */
  sequence(log: RoomLog, draft: Draft): Published {
    const { roomJson, time, fromJson, dataJson, payload } = draft;
    const envelope = this.store.append(log, time, (offset, epoch) =>
      messageEnvelope({ roomJson, offset, epoch, time, fromJson, dataJson, base64: payload.kind === 'binary' }),
    draft.publishId === undefined ? undefined : { publishId: draft.publishId, fingerprint: draft.fingerprint ?? '' });
    const room = this.node.hub.room(draft.room);
    const delivered = room ? this.node.deliver(room, new Publication(envelope, payload, dataJson), draft.except) : 0;
    return { offset: log.lastOffset, epoch: log.epoch, delivered };
  }

  announce(room: Room, change: 'joined' | 'left', member: Member): void {
    if (room.watchers.size === 0) return;
    const json = presenceEnvelope(room.name, change, { session: member.id, name: member.name }, room.members.size);
    this.node.presence(room, json, member.id);
  }

  async members(room: string, limit: number): Promise<MemberList> {
    return localMembers(this.node.hub.room(room), limit);
  }

  async rooms(): Promise<RoomSummary[]> {
    const list: RoomSummary[] = [];
    for (const room of this.node.hub.rooms()) {
      const log = this.store.log(room.name);
      list.push({ room: room.name, members: room.members.size, epoch: log?.epoch ?? null, lastOffset: log?.lastOffset ?? 0 });
    }
    return list;
  }

  async history(room: string, since: number, limit: number): Promise<HistoryPage | undefined> {
    const log = this.store.log(room);
    return log ? pageOf(log, since, limit) : undefined;
  }

  async disconnect(selector: DisconnectSelector): Promise<number> {
    return this.node.disconnect(selector);
  }
}

/** The members of a room on this node, cut at `limit`. */
export function localMembers(room: Room | undefined, limit: number): MemberList {
  const members = [];
  const sessions = new Set<string>();
  for (const member of room?.members ?? []) {
    sessions.add(member.id);
    if (members.length < limit) members.push({ session: member.id, name: member.name });
  }
  return { members, count: sessions.size, sessions };
}

/** Up to `limit` messages after offset `since` from a log. */
function pageOf(log: RoomLog, since: number, limit: number): HistoryPage {
  const first = log.firstOffset;
  const start = Math.max(0, since + 1 - first);
  const messages = log.from(start).slice(0, limit).map((entry) => entry.json);
  return { epoch: log.epoch, lastOffset: log.lastOffset, complete: since <= log.lastOffset && since + 1 >= first, messages };
}
