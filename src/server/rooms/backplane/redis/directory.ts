/**
 * What the cluster knows about itself, kept in Redis beside the rooms' streams: who is in each
 * room on every node (presence), how many members each node has where (the room summaries the
 * HTTP API lists), room history pages for the API, and the control requests that reach every
 * node (POST /api/disconnect). The Redis backplane owns one and asks it only while Redis is up;
 * the order of messages is not its business (backplane.ts).
 */
import { randomBytes } from 'node:crypto';
import type { Member as PresenceMember } from '../../../../shared/protocol.js';
import { messageEnvelope, presenceEnvelope } from '../../../engine/envelope.js';
import type { Member, Room } from '../../../engine/hub.js';
import type { Logger } from '../../../logger.js';
import type { ControlRequest } from './connections.js';
import type { RedisLink } from './link.js';
import { BackplaneError, type DisconnectSelector, type HistoryPage, type LocalNode, type MemberList, type RoomSummary } from '../types.js';

/** How long POST /api/disconnect waits for the other nodes' counts. */
const CONTROL_TIMEOUT_MS = 2000;
/** Disconnect requests waiting for replies at once. */
const MAX_CONTROL_WAITING = 64;

interface Control {
  expected: number;
  replies: number;
  count: number;
  done: () => void;
}

export class ClusterDirectory {
  private readonly controls = new Map<string, Control>();

  constructor(
    private readonly link: RedisLink,
    private readonly node: LocalNode,
    private readonly nodeId: string,
    /** A node's members vanish from presence this long (ms) after it stops refreshing them. */
    private readonly presenceTtl: number,
    private readonly logger: Logger,
  ) {}

  /** Records a join or leave in cluster presence; the delta comes back to every node's watchers. */
  announce(room: Room, change: 'joined' | 'left', member: Member): void {
    const subject: PresenceMember = { session: member.id, name: member.name };
    const delta = (count: number) => presenceEnvelope(room.name, change, subject, count);
    const done =
      change === 'joined'
        ? this.link.presence.join(room.name, member.id, this.stored(member, Date.now()), room.members.size, this.presenceTtl, delta)
        : this.link.presence.leave(room.name, member.id, room.members.size, delta);
    done.catch((error: Error) => this.logger.debug('presence update failed', { room: room.name, error: error.message }));
  }

  private stored(member: Member, seen: number): string {
    return JSON.stringify({ session: member.id, name: member.name, ...(member.userId !== undefined && { user: member.userId }), node: this.nodeId, seen });
  }

  /**
   * This node's heartbeat (every presenceTtl / 3): refreshes its members and room summary in the
   * rooms it follows, and removes the members of nodes that stopped refreshing (a node that
   * died), announcing them as left.
   */
  async refresh(followed: Iterable<string>): Promise<void> {
    if (!this.link.ready) return;
    const now = Date.now();
    const names = [...followed];
    const rooms = names.map((name) => ({
      room: name,
      members: [...(this.node.hub.room(name)?.members ?? [])].map((member) => ({ session: member.id, stored: this.stored(member, now) })),
    }));
    await this.link.presence.refresh(rooms, this.presenceTtl, now);
    const stored = await this.link.presence.membersOf(names);
    for (let i = 0; i < names.length; i++) {
      const room = names[i]!;
      for (const [session, value] of Object.entries(stored[i] ?? {})) {
        const { seen, name } = parseStored(value);
        if (now - seen > this.presenceTtl) {
          await this.link.presence.leave(room, session, undefined, (count) => presenceEnvelope(room, 'left', { session, name }, count));
        }
      }
    }
  }

  /** Every node's members of `room`; `here` adds this node's, whose records may still be on their way. */
  async members(room: string, here: Room | undefined, limit: number): Promise<MemberList> {
    const stored = await this.link.presence.members(room);
    const members: PresenceMember[] = [];
    const sessions = new Set<string>();
    for (const value of Object.values(stored)) {
      const { session, name, user } = parseStored(value);
      if (!session || sessions.has(session)) continue;
      sessions.add(session);
      if (members.length < limit) members.push(user === undefined ? { session, name } : ({ session, name, user } as PresenceMember));
    }
    for (const member of here?.members ?? []) {
      if (sessions.has(member.id)) continue;
      sessions.add(member.id);
      if (members.length < limit) members.push({ session: member.id, name: member.name });
    }
    return { members, count: sessions.size, sessions };
  }

  /** Rooms with members on any node, with their cluster positions; `followed`: the rooms this node follows. */
  async rooms(followed: Iterable<string>): Promise<RoomSummary[]> {
    const counts = await this.link.presence.roomCounts(this.presenceTtl, Date.now());
    // Rooms with members here whose summary is not written yet still count.
    for (const name of followed) {
      const here = this.node.hub.room(name)?.members.size ?? 0;
      if (!counts.has(name)) counts.set(name, here);
    }
    const names = [...counts.keys()].filter((name) => (counts.get(name) ?? 0) > 0);
    const positions = await this.link.rooms.positions(names);
    return names.map((room, i) => ({ room, members: counts.get(room)!, ...positions[i]! }));
  }

  /** A page of the room's stream, whatever node is asked. */
  async history(room: string, since: number, limit: number): Promise<HistoryPage | undefined> {
    const page = await this.link.rooms.page(room, since, limit);
    if (!page) return undefined;
    const roomJson = JSON.stringify(room);
    return {
      epoch: page.epoch,
      lastOffset: page.lastOffset,
      complete: since <= page.lastOffset && since + 1 >= page.first,
      messages: page.entries.map((entry) =>
        messageEnvelope({ roomJson, offset: entry.offset, epoch: page.epoch, time: entry.time, fromJson: entry.fromJson, dataJson: entry.dataJson, base64: entry.plain === 'b' }),
      ),
    };
  }

  /** Asks every node to close its matching connections; resolves with their sum (nodes silent for 2 s do not count). */
  async disconnect(selector: DisconnectSelector): Promise<number> {
    if (this.controls.size >= MAX_CONTROL_WAITING) throw new BackplaneError('unavailable', 'the cluster backplane has too many disconnect requests waiting; retry shortly');
    const id = randomBytes(8).toString('base64url');
    const control: Control = { expected: Number.POSITIVE_INFINITY, replies: 0, count: 0, done: () => undefined };
    const finished = new Promise<void>((resolve) => {
      control.done = resolve;
    });
    this.controls.set(id, control);
    const timer = setTimeout(() => control.done(), CONTROL_TIMEOUT_MS);
    try {
      control.expected = await this.link.presence.control({ id, from: this.nodeId, op: 'disconnect', ...selector }, this.presenceTtl);
      if (control.replies >= control.expected) control.done();
      await finished;
      return control.count;
    } finally {
      clearTimeout(timer);
      this.controls.delete(id);
    }
  }

  /** A control request from any node (this one included): answer it with this node's count. */
  onControl(request: ControlRequest): void {
    if (request.op !== 'disconnect' || typeof request.id !== 'string' || typeof request.from !== 'string') return;
    const count = this.node.disconnect({ session: request.session, user: request.user, reason: String(request.reason ?? '') });
    this.link.presence.reply(request.from, request.id, count).catch((error: Error) => this.logger.debug('control reply failed', { error: error.message }));
  }

  onReply(id: string, count: number): void {
    const control = this.controls.get(id);
    if (!control) return;
    control.count += count;
    if (++control.replies >= control.expected) control.done();
  }

  /** Lets every waiting disconnect request answer with what it has. */
  close(): void {
    for (const control of this.controls.values()) control.done();
  }
}

function parseStored(value: string): { session: string; name: string; user?: string; seen: number } {
  try {
    const parsed = JSON.parse(value) as { session?: unknown; name?: unknown; user?: unknown; seen?: unknown };
    return {
      session: typeof parsed.session === 'string' ? parsed.session : '',
      name: typeof parsed.name === 'string' ? parsed.name : '',
      ...(typeof parsed.user === 'string' && { user: parsed.user }),
      seen: typeof parsed.seen === 'number' ? parsed.seen : 0,
    };
  } catch {
    // Unreadable entries are stale by definition.
    return { session: '', name: '', seen: 0 };
  }
}
