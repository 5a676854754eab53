/**
 * What the server does with its own rooms, the ones named `plaza:…` (shared/room-name.ts says
 * which names those are and what a client may do with them), in one place:
 *
 * - **Routing**: they describe one server, so they stay on it in every mode: a LocalBackplane of
 *   their own serves them, one that keeps no history, and no other backplane (Redis) ever sees
 *   one. `withReservedRooms` puts it in front of the server's backplane.
 * - **The application**: its hooks, events and webhooks never run for them (`applicationIn`):
 *   only the server speaks there, which holds because every door refuses clients with
 *   `reservedRoomProblem` (plaza.v1 join and publish, the HTTP API, `plaza.publish()`,
 *   --default-room).
 */
import { isReservedRoom } from '../../shared/room-name.js';
import { LocalBackplane } from './backplane/local.js';
import type { Backplane, DisconnectSelector, Draft, LocalNode, RoomSummary } from './backplane/types.js';
import type { Member, Room } from '../engine/hub.js';
import type { HistoryStore, RoomLog } from './history.js';

/** `backplane` for every room but the server's own, which stay on this node, history-less. */
export function withReservedRooms(backplane: Backplane, node: LocalNode, store: HistoryStore): Backplane {
  return new ReservedRoomRouter(backplane, new LocalBackplane(node, store, { ephemeral: true }));
}

/** The application's part (hooks, observer) in `room`: none in the server's own rooms. */
export function applicationIn<App extends object>(room: string, app: App): Partial<App> {
  return isReservedRoom(room) ? NO_APPLICATION : app;
}

const NO_APPLICATION = Object.freeze({});

/** Sends each room to the backplane that serves it; the server's backplane speaks for the node. */
class ReservedRoomRouter implements Backplane {
  /** Only where the node's backplane has it (one server): the server's own rooms always do. */
  readonly hold?: (room: string) => RoomLog;

  constructor(
    private readonly backplane: Backplane,
    private readonly own: Backplane,
  ) {
    if (backplane.hold && own.hold) this.hold = (room) => this.serving(room).hold!(room);
  }

  get status() {
    return this.backplane.status;
  }

  get stats() {
    return this.backplane.stats;
  }

  get publishIdCounts() {
    return this.backplane.publishIdCounts;
  }

  get mail() {
    return this.backplane.mail;
  }

  start(): Promise<void> {
    return this.backplane.start();
  }

  close(): Promise<void> {
    return this.backplane.close();
  }

  private serving(room: string): Backplane {
    return isReservedRoom(room) ? this.own : this.backplane;
  }

  attach(room: string) {
    return this.serving(room).attach(room);
  }

  detach(room: string): void {
    this.serving(room).detach(room);
  }

  publish(draft: Draft) {
    return this.serving(draft.room).publish(draft);
  }

  publishEphemeral(draft: Draft) {
    return this.serving(draft.room).publishEphemeral(draft);
  }

  withdraw(room: string, publishId: string, time: number) {
    return this.serving(room).withdraw(room, publishId, time);
  }

  firstAck(room: string, publishId: string) {
    return this.serving(room).firstAck(room, publishId);
  }

  announce(room: Room, change: 'joined' | 'left', member: Member): void {
    this.serving(room.name).announce(room, change, member);
  }

  members(room: string, limit: number) {
    return this.serving(room).members(room, limit);
  }

  presenceForJoin(room: string, limit: number) {
    return this.serving(room).presenceForJoin(room, limit);
  }

  /** Each backplane lists what it serves (a local one lists every room of this node's hub). */
  async rooms(): Promise<RoomSummary[]> {
    const [theirs, ours] = await Promise.all([this.backplane.rooms(), this.own.rooms()]);
    return [...theirs.filter((summary) => !isReservedRoom(summary.room)), ...ours.filter((summary) => isReservedRoom(summary.room))];
  }

  history(room: string, since: number, limit: number) {
    return this.serving(room).history(room, since, limit);
  }

  /** Connections are not the rooms': the server's backplane reaches every node's. */
  disconnect(selector: DisconnectSelector): Promise<number> {
    return this.backplane.disconnect(selector);
  }
}
