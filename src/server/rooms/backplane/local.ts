/**
 * The backplane of one server: offsets come from the room's log in this process, delivery
 * happens in the same synchronous step, so `publish` resolves after the fan-out by construction.
 * It is the reference implementation of the Backplane contract (types.ts); the Redis backplane
 * also uses it for island publishes while Redis is away, and rooms/reserved-rooms.ts for the
 * server's own rooms in every mode.
 */
import { ephemeralEnvelope, presenceEnvelope } from '../../engine/envelope.js';
import type { HistoryStore, RoomLog } from '../history.js';
import { sequence } from './sequence.js';
import type { Member, Room } from '../../engine/hub.js';
import type { FirstAck, PublishWindow } from '../publish-window.js';
import {
  BackplaneError,
  type Backplane,
  type DisconnectSelector,
  type Draft,
  type HistoryPage,
  type LocalNode,
  type MemberList,
  type PublishIdCounts,
  type Published,
  type RoomSummary,
} from './types.js';

/** On one server the room here is every member: nobody else to tell a joining watcher of. */
const NOBODY: MemberList = Object.freeze({ members: [], count: 0, sessions: new Set<string>() });

export function serverFull(): BackplaneError {
  return new BackplaneError('server_full', 'the server tracks as many rooms as it may (--max-rooms); try again later');
}

/** A publish whose id was withdrawn first: it is not published, now or later. */
export function withdrawn(): BackplaneError {
  return new BackplaneError('withdrawn', 'this publishId was withdrawn: it was not published, and will not be');
}

/** A publish whose id the window knows gets its first place instead of a new one, or a refusal once withdrawn. */
export function repeatAnswer(first: FirstAck): Published {
  if (first.withdrawn) throw withdrawn();
  return { offset: first.offset, epoch: first.epoch, delivered: 0, duplicate: true, fingerprint: first.fingerprint };
}

/** Without a window nothing can be withdrawn: the server would promise what it cannot keep. */
export function noWindow(): BackplaneError {
  return new BackplaneError('bad_request', 'this server keeps no publish ids (--publish-id-window 0), so it cannot withdraw one');
}

export class LocalBackplane implements Backplane {
  readonly status = { up: true };
  /** Not a cluster: nothing for /metrics' cluster gauges. */
  readonly stats = undefined;

  get publishIdCounts(): PublishIdCounts {
    return { entries: this.window?.size ?? 0, duplicates: this.window?.duplicates ?? 0 };
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

  async presenceForJoin(_room: string, _limit: number): Promise<MemberList> {
    return NOBODY;
  }

  async close(): Promise<void> {}

  async attach(room: string): Promise<RoomLog> {
    return this.hold(room);
  }

  /** attach() without the wait: the log, held. */
  hold(room: string): RoomLog {
    const log = this.store.open(room);
    if (!log) throw serverFull();
    log.ephemeral = this.settings.ephemeral;
    log.hold();
    return log;
  }

  detach(room: string): void {
    const log = this.store.log(room);
    log?.release();
  }

  async publish(draft: Draft): Promise<Published> {
    // Looked up and remembered in the same synchronous step as the append: nothing can come between.
    const first = this.window?.repeatOf(draft.room, draft.publishId);
    // Its message was delivered here in the step that gave it its offset: nothing to wait for.
    if (first) return repeatAnswer(first);
    const log = this.store.open(draft.room);
    if (!log) throw serverFull();
    log.ephemeral = this.settings.ephemeral;
    const published = sequence(this.node, this.store, log, draft);
    this.window?.landed(draft.room, draft.publishId, { ...published, time: draft.time, fingerprint: draft.fingerprint });
    return published;
  }

  async publishEphemeral(draft: Draft): Promise<number> {
    return deliverEphemeral(this.node, draft.room, ephemeralEnvelope(draft.roomJson, draft.time, draft.fromJson, draft.dataJson), draft.except);
  }

  async withdraw(room: string, publishId: string, time: number): Promise<{ offset: number; epoch: string } | undefined> {
    if (!this.window?.enabled) throw noWindow();
    return this.window.withdraw(room, publishId, time);
  }

  async firstAck(room: string, publishId: string): Promise<{ offset: number; epoch: string; fingerprint: string } | undefined> {
    return this.window?.get(room, publishId);
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

/**
 * Hands an ephemeral publish to the room's plaza.v1 members on this node, in the turn's order
 * with its messages. Plain members never get one: they could not tell it from a message.
 */
export function deliverEphemeral(node: LocalNode, room: string, envelope: string, except: Member | string | undefined): number {
  const here = node.hub.room(room);
  if (!here) return 0;
  let member = typeof except === 'string' ? undefined : except;
  if (typeof except === 'string' && except !== '') for (const candidate of here.members) if (candidate.id === except) member = candidate;
  return node.tell(here, envelope, member);
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
