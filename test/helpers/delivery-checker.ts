/**
 * Checks the delivery promise from what applications saw through Plaza's own client:
 * per room, every member sees the room's messages in one order, each once, or is told with a
 * `reset` — never a silent gap — and no {epoch, offset} ever names two different messages.
 *
 * Feed it every event each client's Room emitted (in order), every publish with its outcome,
 * and at the end the room's final position; `violations()` lists what broke the promise:
 * - `reused`: one {epoch, offset} carried two different messages (across all clients and acks);
 * - `twice`: one message was given two places (published twice, or moved), except a publish
 *   acknowledged with `mayRepeat`, which may have one place in an epoch the room left and one in
 *   the epoch of its ack;
 * - `duplicate`: a client saw a message twice without a reset in between;
 * - `gap`: a client's view skipped an offset without a reset;
 * - `order`: a client saw an offset at or below one it had already passed in that epoch, or went
 *   back to an epoch it had left, without a reset;
 * - `publisher order`: one connection's sequential publishes landed out of order (a publish
 *   acknowledged with `mayRepeat` is exempt: its first try may sit in an epoch that was lost, and
 *   the documented answer says its retry landed where it could in the new one);
 * - `tail`: after the run a client did not end at the room's final position (so an
 *   acknowledged message that never reached it shows as a `gap` or here);
 * - `stored`: an ephemeral publish (issue #22, item 8) reached a client as a room message, with a
 *   place in the room's order. Ephemeral events themselves have no place: they are never a gap
 *   or an order break, and never move a client's position.
 */

export type RoomEvent =
  | { kind: 'message'; epoch: string; offset: number; data: string }
  | { kind: 'joined'; epoch: string; offset: number }
  | { kind: 'reset'; reason: string }
  /** An ephemeral publish as the client's 'ephemeral' event gave it: no place. */
  | { kind: 'ephemeral'; data: string };

export interface PublishRecord {
  client: string;
  room: string;
  data: string;
  /** Order of sending within the client (per room). */
  seq: number;
  excludeSelf: boolean;
  /** Sent with `ephemeral: true`: it must never take a place. */
  ephemeral?: boolean;
  /** Set when the publish was acknowledged. */
  ack?: { epoch: string; offset: number; mayRepeat?: boolean };
}

export interface Violation {
  kind: 'reused' | 'twice' | 'duplicate' | 'gap' | 'order' | 'publisher order' | 'tail' | 'stored';
  detail: string;
}

const key = (epoch: string, offset: number) => `${epoch}:${offset}`;

export class DeliveryChecker {
  private readonly events = new Map<string, RoomEvent[]>();
  private readonly publishes: PublishRecord[] = [];
  private readonly finals = new Map<string, { epoch: string; offset: number }>();

  /** Everything `client`'s Room `room` emitted, in order. */
  record(client: string, room: string, event: RoomEvent): void {
    const id = `${client}\u0000${room}`;
    let list = this.events.get(id);
    if (!list) this.events.set(id, (list = []));
    list.push(event);
  }

  published(record: PublishRecord): void {
    this.publishes.push(record);
  }

  /** The room's position once everything settled (a fresh join's answer). */
  final(room: string, position: { epoch: string; offset: number }): void {
    this.finals.set(room, position);
  }

  /** How many message events were recorded in all. */
  get deliveries(): number {
    let n = 0;
    for (const list of this.events.values()) for (const e of list) if (e.kind === 'message') n++;
    return n;
  }

  /** How many ephemeral events were recorded in all. */
  get ephemerals(): number {
    let n = 0;
    for (const list of this.events.values()) for (const e of list) if (e.kind === 'ephemeral') n++;
    return n;
  }

  /** Resets recorded for `room`, over every client. */
  resetsIn(room: string): number {
    let n = 0;
    for (const [id, list] of this.events) if (id.endsWith(`\u0000${room}`)) for (const e of list) if (e.kind === 'reset') n++;
    return n;
  }

  get resets(): number {
    let n = 0;
    for (const list of this.events.values()) for (const e of list) if (e.kind === 'reset') n++;
    return n;
  }

  violations(): Violation[] {
    const found: Violation[] = [];
    // One place per message, one message per place: from every view and every ack.
    const byPlace = new Map<string, Map<string, string>>(); // room → place → data
    const placeOf = new Map<string, Map<string, string>>(); // room → data → place
    // An ack with mayRepeat says the first try may be in an epoch the room has left: one place there, one here.
    const mayRepeat = new Set(this.publishes.filter((p) => p.ack?.mayRepeat).map((p) => `${p.room}\u0000${p.data}`));
    const epochOf = (place: string) => place.slice(0, place.lastIndexOf(':'));
    const note = (room: string, place: string, data: string, where: string) => {
      let places = byPlace.get(room);
      if (!places) byPlace.set(room, (places = new Map()));
      let datas = placeOf.get(room);
      if (!datas) placeOf.set(room, (datas = new Map()));
      const had = places.get(place);
      if (had !== undefined && had !== data) found.push({ kind: 'reused', detail: `${room} ${place} carried ${had} and ${data} (${where})` });
      else places.set(place, data);
      const was = datas.get(data);
      const excused = mayRepeat.has(`${room}\u0000${data}`) && was !== undefined && epochOf(was) !== epochOf(place);
      if (was !== undefined && was !== place && !excused) found.push({ kind: 'twice', detail: `${room} ${data} at ${was} and ${place} (${where})` });
      else datas.set(data, place);
    };
    for (const [id, list] of this.events) {
      const [client, room] = id.split('\u0000') as [string, string];
      for (const e of list) if (e.kind === 'message') note(room, key(e.epoch, e.offset), e.data, client);
    }
    for (const p of this.publishes) if (p.ack) note(p.room, key(p.ack.epoch, p.ack.offset), p.data, `ack to ${p.client}`);
    for (const p of this.publishes) {
      const place = p.ephemeral ? placeOf.get(p.room)?.get(p.data) : undefined;
      if (place !== undefined) found.push({ kind: 'stored', detail: `${p.room}: the ephemeral ${p.data} took the place ${place}` });
    }

    // What each client published with excludeSelf: it may never see those, so their places may be skipped.
    const excluded = new Map<string, Set<string>>();
    for (const p of this.publishes) {
      if (!p.excludeSelf) continue;
      const id = `${p.client}\u0000${p.room}`;
      if (!excluded.has(id)) excluded.set(id, new Set());
      excluded.get(id)!.add(p.data);
    }

    for (const [id, list] of this.events) {
      const [client, room] = id.split('\u0000') as [string, string];
      const own = excluded.get(id) ?? new Set<string>();
      const mayMiss = (epoch: string, offset: number) => {
        const data = byPlace.get(room)?.get(key(epoch, offset));
        return data !== undefined && own.has(data);
      };
      let at: { epoch: string; offset: number } | undefined;
      const left = new Set<string>();
      let seen = new Set<string>();
      for (const e of list) {
        // Outside the room's order: neither a gap nor a step.
        if (e.kind === 'ephemeral') continue;
        if (e.kind === 'reset') {
          at = undefined;
          left.clear();
          seen = new Set();
          continue;
        }
        if (e.kind === 'joined') {
          // Caught up to this position: what comes next continues from it.
          if (at && at.epoch === e.epoch && e.offset < at.offset) {
            found.push({ kind: 'order', detail: `${client} ${room}: joined at ${key(e.epoch, e.offset)} after delivering ${key(at.epoch, at.offset)}` });
          }
          if (at && at.epoch === e.epoch && e.offset > at.offset) this.checkGap(found, client, room, at, e.offset, mayMiss, 'joined');
          if (at && at.epoch !== e.epoch) left.add(at.epoch);
          at = { epoch: e.epoch, offset: e.offset };
          continue;
        }
        if (seen.has(e.data)) found.push({ kind: 'duplicate', detail: `${client} ${room}: ${e.data} twice without a reset` });
        seen.add(e.data);
        if (left.has(e.epoch)) {
          found.push({ kind: 'order', detail: `${client} ${room}: back to epoch ${e.epoch} after leaving it, without a reset` });
        } else if (at && at.epoch === e.epoch) {
          if (e.offset <= at.offset) found.push({ kind: 'order', detail: `${client} ${room}: ${key(e.epoch, e.offset)} after ${key(at.epoch, at.offset)}` });
          else this.checkGap(found, client, room, at, e.offset, mayMiss, e.data);
        } else if (at) {
          left.add(at.epoch);
        }
        at = { epoch: e.epoch, offset: e.offset };
      }
      const final = this.finals.get(room);
      if (final) {
        if (!at || at.epoch !== final.epoch) {
          found.push({ kind: 'tail', detail: `${client} ${room}: ended at ${at ? key(at.epoch, at.offset) : 'nothing'}, the room is at ${key(final.epoch, final.offset)}` });
        } else if (at.offset < final.offset) {
          this.checkGap(found, client, room, at, final.offset + 1, mayMiss, 'the end');
        }
      }
    }

    // One connection's publishes, one after another, keep their order in the room.
    const byPublisher = new Map<string, PublishRecord[]>();
    for (const p of this.publishes) {
      if (!p.ack || p.ack.mayRepeat) continue;
      const id = `${p.client}\u0000${p.room}\u0000${p.ack.epoch}`;
      if (!byPublisher.has(id)) byPublisher.set(id, []);
      byPublisher.get(id)!.push(p);
    }
    for (const list of byPublisher.values()) {
      list.sort((a, b) => a.seq - b.seq);
      for (let i = 1; i < list.length; i++) {
        if (list[i]!.ack!.offset <= list[i - 1]!.ack!.offset) {
          found.push({ kind: 'publisher order', detail: `${list[i]!.client} ${list[i]!.room}: ${list[i - 1]!.data} at ${list[i - 1]!.ack!.offset}${list[i - 1]!.ack!.mayRepeat ? ' (mayRepeat)' : ''}, then ${list[i]!.data} at ${list[i]!.ack!.offset}${list[i]!.ack!.mayRepeat ? ' (mayRepeat)' : ''}` });
        }
      }
    }
    return found;
  }

  /** Offsets strictly between `at` and `next` are a gap unless the client may miss them. */
  private checkGap(
    found: Violation[],
    client: string,
    room: string,
    at: { epoch: string; offset: number },
    next: number,
    mayMiss: (epoch: string, offset: number) => boolean,
    what: string,
  ): void {
    for (let o = at.offset + 1; o < next; o++) {
      if (mayMiss(at.epoch, o)) continue;
      found.push({ kind: 'gap', detail: `${client} ${room}: ${key(at.epoch, o)} missing before ${what} (had ${key(at.epoch, at.offset)})` });
      return;
    }
  }

  /** Throws with every violation and the seed, so a failure can be replayed. */
  assertClean(seed: number): void {
    const found = this.violations();
    if (found.length === 0) return;
    const lines = found.slice(0, 20).map((v) => `  ${v.kind}: ${v.detail}`);
    throw new Error(`delivery promise broken (seed ${seed}; replay with PLAZA_SEED=${seed}), ${found.length} violations:\n${lines.join('\n')}`);
  }
}
